"""Recorded conversations (`llm-mcp serve --record-conversations`) → reviewed training examples.

A row becomes an example only through the feedback a client gave on it:

    correct = true                      the reply as given (its text and calls) is the answer
    correct = false, corrected_calls    the corrected calls replace the reply's ([]: no call, the
                                        reply's text kept)
    correct = false, no corrections     nothing to learn from: shown for review, never written
    no feedback                         never selected

Every example is checked like any dataset's (its calls against the request's tool schemas)
before it is written."""

from __future__ import annotations

import json
from dataclasses import dataclass

from llm_mcp.chat.types import Message, ToolCall
from llm_mcp.data.example import Example
from llm_mcp.data.validate import check_example

CALL_ISSUES = ("unknown-tool", "bad-arguments", "missing-argument")


@dataclass
class Entry:
    row: dict
    example: Example | None  # None: it cannot become an example (`reason` says why)
    reason: str = ""


def example_of(row: dict, calls: list[ToolCall] | None = None, content: str | None = None) -> Example:
    """The request's messages followed by the answer: the reply's text and calls, or the ones given."""
    messages = [Message.from_any(m) for m in row["messages"]]
    if calls is None:
        calls = [ToolCall.from_any(c) for c in row["tool_calls"]]
    answer = Message("assistant", row["content"] if content is None else content, calls)
    return Example(messages + [answer], row["tools"], f"request {row['id']}", 0)


def call_problems(row: dict, calls: list[ToolCall]) -> list[str]:
    """What is wrong with corrected `calls` for this request's tools (names, argument schemas)."""
    issues = check_example(example_of(row, calls, content=""))
    return [i.message + (f" ({i.hint})" if i.hint else "") for i in issues if i.kind in CALL_ISSUES]


def selected(row: dict, only: str) -> bool:
    """`--only`: corrected, failed (every reply marked wrong) or all (every reply with feedback)."""
    if only == "corrected":
        return row["correct"] is False and row["corrected_calls"] is not None
    if only == "failed":
        return row["correct"] is False
    return row["correct"] is not None


def entry(row: dict) -> Entry:
    if row["correct"]:
        ex = example_of(row)
    elif row["corrected_calls"] is None:
        return Entry(row, None, "marked wrong without corrected calls: nothing to learn from "
                                "(give corrected_calls in the feedback)")
    elif row["corrected_calls"]:
        ex = example_of(row, [ToolCall.from_any(c) for c in row["corrected_calls"]], content="")
    elif row["content"].strip():  # it should not have called a tool: its text is the answer
        ex = example_of(row, [])
    else:
        return Entry(row, None, "corrected to no call, but the reply has no text to keep as the answer")
    errors = [i for i in check_example(ex) if i.level == "error"]
    if errors:
        return Entry(row, None, f"[{errors[0].kind}] {errors[0].message}")
    return Entry(row, ex)


def collect(rows: list[dict], only: str = "corrected") -> list[Entry]:
    return [entry(r) for r in rows if selected(r, only)]


def _calls_text(calls: list[dict]) -> str:
    return "; ".join(f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False)})" for c in calls)


def show(e: Entry) -> str:
    """One entry for a person to review."""
    r = e.row
    verdict = "✓ right" if r["correct"] else ("✗ corrected" if r["corrected_calls"] is not None else "✗ wrong")
    last = next((m for m in reversed(r["messages"]) if isinstance(m, dict) and m.get("role") == "user"), {})
    text = last.get("content")
    lines = [f"{r['id']}  {r['ts']}  {r['adapter'] or 'base'}  {verdict}",
             f"  user:  {text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)}",
             f"  reply: {_calls_text(r['tool_calls']) or r['content'].strip() or '(empty)'}"]
    if r["corrected_calls"] is not None:
        lines.append(f"  fixed: {_calls_text(r['corrected_calls']) or '(no call)'}")
    if r["note"]:
        lines.append(f"  note:  {r['note']}")
    if e.example is None:
        lines.append(f"  not written: {e.reason}")
    return "\n".join(lines)
