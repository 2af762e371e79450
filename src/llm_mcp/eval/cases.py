"""Eval data → Cases: a prompt (the conversation so far), the tools, and the expected calls.

Any dataset format `llm-mcp data` reads works: the last assistant turn is the gold answer, the
turns before it the prompt, and its calls become expectations with one acceptable value per
parameter. A BFCL-style record lists the acceptable values itself:

    {"messages": [{"role": "user", "content": "…"}], "tools": [...],
     "expected": [{"name": "get_weather", "arguments": {"location": ["Tokyo", "tokyo, japan"],
                                                       "unit": ["celsius", ""]}}]}

("" = may be left out; `"expected": []` = no call expected; BFCL's own {name: {param: [...]}}
shape is read too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm_mcp.chat.types import Message
from llm_mcp.data.example import Example, Issue, issues_error
from llm_mcp.eval.match import Expected
from llm_mcp.errors import LLMMCPError


@dataclass
class Case:
    prompt: list[Message]
    tools: list[dict]
    expected: list[Expected]
    gold_text: str = ""  # the gold reply's text, when there is one
    source: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.source else "<memory>"

    @property
    def tool_names(self) -> list[str]:
        return [e.name for e in self.expected]


def from_example(ex: Example) -> Case:
    """The last assistant turn is the answer; the turns before it are the prompt."""
    turns = [k for k, m in enumerate(ex.messages) if m.role == "assistant"]
    if not turns:
        raise LLMMCPError(f"{ex.where}: no assistant turn to compare the model's reply with",
                          "give the expected answer, or an \"expected\" list of calls")
    gold = ex.messages[turns[-1]]
    return Case(ex.messages[:turns[-1]], ex.tools, [Expected.from_call(c) for c in gold.tool_calls],
                gold.content, ex.source, ex.line)


def read_cases(path: str | Path, tools: list[dict] | None = None, fmt: str | None = None) -> list[Case]:
    """Every case of a file, or one error listing every problem with file:line."""
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.data.records import iter_records

    ds = read_dataset(path, fmt, tools)
    problems = list(ds.errors)
    expected = {line: rec["expected"] for line, rec in iter_records(path)
                if isinstance(rec, dict) and "expected" in rec}
    cases = []
    for ex in ds.examples:
        if ex.line in expected:
            raw = expected[ex.line]
            try:
                if not isinstance(raw, list):
                    raise LLMMCPError("'expected' must be a list of calls ([] = no call expected)")
                want = [Expected.parse(e) for e in raw]
            except LLMMCPError as err:
                problems.append(Issue(ex.source, ex.line, "bad-expected", err.message, err.hint))
                continue
            listed = {t["name"] for t in ex.tools}
            missing = sorted({e.name for e in want} - listed)
            if missing:  # scored without its tool, a call could never be right
                problems.append(Issue(ex.source, ex.line, "unknown-tool",
                                      f"expects a call to {', '.join(map(repr, missing))}, which the record's "
                                      f"tools do not list ({', '.join(sorted(listed)) or 'it has none'})",
                                      "give the tool schemas with --tools FILE, or put them in the record"))
                continue
            if ex.messages and ex.messages[-1].role == "assistant":
                problems.append(Issue(ex.source, ex.line, "bad-expected", "the record has both an "
                                      "'expected' list and a final assistant turn",
                                      "end the messages with the user's turn"))
                continue
            cases.append(Case(ex.messages, ex.tools, want, "", ex.source, ex.line))
            continue
        try:
            cases.append(from_example(ex))
        except LLMMCPError as err:
            problems.append(Issue(ex.source, ex.line, "no-assistant", err.message.split(": ", 1)[-1], err.hint))
    if problems or not cases:
        raise issues_error(path, problems, "nothing evaluated")
    return cases
