"""Dataset formats → Example. Each reader takes one record and raises RecordError on problems.

  flat      {"input", "output", "tool_calls"?, "tools"?, "system"?}  (the documented format)
  openai    {"messages": [...], "tools"?: [...]}
  sharegpt  {"conversations": [{"from": system|human|gpt|tool|function_call|observation,
            "value"}], "tools"?}; Hermes function calling: tools inside <tools></tools> in the
            system turn, calls as <tool_call> blocks in gpt turns
  xlam      {"query", "tools", "answers"}
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from llm_mcp.chat.toolcalls import parse
from llm_mcp.chat.types import Message, ToolCall, normalize_tool, normalize_tools
from llm_mcp.data.example import Dataset, Example, Issue
from llm_mcp.data.records import iter_records
from llm_mcp.errors import LLMMCPError

FORMATS = ("flat", "openai", "sharegpt", "xlam")


class RecordError(Exception):
    def __init__(self, kind: str, message: str, hint: str = ""):
        super().__init__(message)
        self.kind, self.message, self.hint = kind, message, hint


def detect(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "query" in record and "answers" in record:
        return "xlam"
    if "input" in record:
        return "flat"
    return None


def _json_field(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise RecordError("invalid-json", f"{what} is a string but not JSON ({err.msg})") from err
    return value


def _tools(value: Any) -> list[dict] | None:
    if value is None:
        return None
    try:
        return normalize_tools(_json_field(value, "tools"))
    except LLMMCPError as err:
        raise RecordError("bad-tools", err.message) from err


def _calls(value: Any, what: str) -> list[ToolCall]:
    value = _json_field(value, what) or []
    if not isinstance(value, list):
        value = [value]
    try:
        return [ToolCall.from_any(c) for c in value]
    except LLMMCPError as err:
        raise RecordError("bad-call", f"{what}: {err.message}") from err


def _message(obj: Any, k: int) -> Message:
    try:
        return Message.from_any(obj)
    except LLMMCPError as err:
        raise RecordError("bad-message", f"message {k}: {err.message}") from err


def from_flat(r: dict) -> tuple[list[Message], list[dict] | None]:
    if not isinstance(r.get("input"), str) or not r["input"].strip():
        raise RecordError("missing-field", "'input' must be a non-empty string")
    output = r.get("output", "")
    if output is None:
        output = ""
    if not isinstance(output, str):
        raise RecordError("missing-field", "'output' must be a string (\"\" when the answer is only tool calls)")
    msgs = []
    if r.get("system"):
        msgs.append(Message("system", str(r["system"])))
    msgs.append(Message("user", r["input"]))
    msgs.append(Message("assistant", output, _calls(r.get("tool_calls"), "tool_calls")))
    return msgs, _tools(r.get("tools"))


def from_openai(r: dict) -> tuple[list[Message], list[dict] | None]:
    if not isinstance(r["messages"], list) or not r["messages"]:
        raise RecordError("missing-field", "'messages' must be a non-empty list")
    return [_message(m, k) for k, m in enumerate(r["messages"])], _tools(r.get("tools"))


_TOOLS_BLOCK = re.compile(r"<tools>(.*?)</tools>", re.S)
_RESPONSE = re.compile(r"^\s*<tool_response>\s*(.*?)\s*</tool_response>\s*$", re.S)
_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                   "assistant": "assistant", "tool": "tool", "observation": "tool",
                   "function_response": "tool", "function_call": "function_call"}


def _tools_from_text(block: str) -> list[dict]:
    block = block.strip()
    try:
        values = json.loads(block)
        return normalize_tools(values if isinstance(values, list) else [values])
    except json.JSONDecodeError:
        pass
    tools, decoder, i = [], json.JSONDecoder(), 0
    while i < len(block):  # one schema per line, or objects glued together
        while i < len(block) and block[i] in " \n\r\t,":
            i += 1
        if i >= len(block):
            break
        value, i = decoder.raw_decode(block, i)
        tools.append(normalize_tool(value))
    return tools


def from_sharegpt(r: dict) -> tuple[list[Message], list[dict] | None]:
    turns = r["conversations"]
    if not isinstance(turns, list) or not turns:
        raise RecordError("missing-field", "'conversations' must be a non-empty list")
    tools = _tools(r.get("tools"))
    msgs: list[Message] = []
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise RecordError("bad-message", f"turn {k} needs 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(turn["from"])
        if role is None:
            raise RecordError("unknown-role", f"turn {k}: unknown 'from' {turn['from']!r}",
                              f"use one of {', '.join(sorted(_SHAREGPT_ROLES))}")
        value = turn["value"] if isinstance(turn["value"], str) else json.dumps(turn["value"])
        if role == "system":
            found = next((m for m in _TOOLS_BLOCK.finditer(value) if m.group(1).strip()), None)
            if found:
                if tools is None:
                    try:
                        tools = _tools_from_text(found.group(1))
                    except (ValueError, LLMMCPError) as err:
                        raise RecordError("bad-tools", f"turn {k}: the <tools> block is not readable: {err}")
                # A Hermes system turn is instructions for that tool format, which the model's
                # ChatFormat writes itself: drop it rather than teach two tool formats at once.
                value = ""
            if value:
                msgs.append(Message("system", value))
        elif role == "assistant":
            parsed = parse(value)
            if parsed.errors:
                raise RecordError("bad-call", f"turn {k}: unreadable <tool_call>: {parsed.errors[0].reason}")
            msgs.append(Message("assistant", parsed.content, parsed.calls))
        elif role == "function_call":
            call_list = _calls(value, f"turn {k}")
            if msgs and msgs[-1].role == "assistant" and not msgs[-1].tool_calls:
                msgs[-1].tool_calls = call_list
            else:
                msgs.append(Message("assistant", "", call_list))
        elif role == "tool":
            match = _RESPONSE.match(value)
            msgs.append(Message("tool", match.group(1) if match else value))
        else:
            msgs.append(Message(role, value))
    return msgs, tools


_PY_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
             "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean",
             "list": "array", "array": "array", "dict": "object", "object": "object"}


def _xlam_schema(params: dict) -> dict:
    """xLAM writes parameters as {name: {"type": "str, optional", "description", "default"}};
    turn that into a JSON Schema object."""
    if params.get("type") == "object" or "properties" in params:
        return params
    props, required = {}, []
    for name, spec in params.items():
        spec = dict(spec) if isinstance(spec, dict) else {}
        raw = str(spec.pop("type", "")).lower()
        optional = "optional" in raw or "default" in spec
        base = raw.replace(", optional", "").replace("optional", "").strip()
        base = base.split("[")[0].strip()  # List[str] -> list
        if base in _PY_TYPES:
            spec["type"] = _PY_TYPES[base]
        props[name] = spec
        if not optional:
            required.append(name)
    return {"type": "object", "properties": props, "required": required}


def from_xlam(r: dict) -> tuple[list[Message], list[dict] | None]:
    if not isinstance(r["query"], str) or not r["query"].strip():
        raise RecordError("missing-field", "'query' must be a non-empty string")
    calls = _calls(r["answers"], "answers")
    raw_tools = _json_field(r.get("tools"), "tools")
    if isinstance(raw_tools, list):
        raw_tools = [dict(t, parameters=_xlam_schema(t["parameters"]))
                     if isinstance(t, dict) and isinstance(t.get("parameters"), dict) else t
                     for t in raw_tools]
    return [Message("user", r["query"]), Message("assistant", "", calls)], _tools(raw_tools)


READERS = {"flat": from_flat, "openai": from_openai, "sharegpt": from_sharegpt, "xlam": from_xlam}


def infer_tools(examples: list[Example]) -> list[dict]:
    """Minimal schemas from the calls themselves: argument names, JSON types, and as required
    the arguments present in every call of that tool."""
    seen: dict[str, list[dict]] = {}
    for ex in examples:
        for call in ex.calls():
            seen.setdefault(call.name, []).append(call.arguments)
    tools = []
    for name, arg_sets in seen.items():
        props: dict[str, dict] = {}
        for args in arg_sets:
            for key, value in args.items():
                props.setdefault(key, {"type": _json_type(value)})
                if props[key].get("type") != _json_type(value):
                    props[key] = {}  # mixed types: accept anything
        required = [k for k in props if all(k in a for a in arg_sets)]
        tools.append({"name": name, "description": "",
                      "parameters": {"type": "object", "properties": props, "required": required}})
    return tools


def _json_type(value: Any) -> str:
    # bool before int: True is an int to Python, not to JSON Schema
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def read_dataset(path: str | Path, fmt: str | None = None, tools: list[dict] | None = None) -> Dataset:
    """Read every record of a file into Examples; every problem becomes an Issue (no raising,
    except for a file that cannot be opened at all)."""
    if fmt is not None and fmt not in FORMATS:
        raise LLMMCPError(f"unknown dataset format {fmt!r}", f"choose one of {', '.join(FORMATS)}")
    name = str(path)
    out = Dataset()
    counts: Counter = Counter()
    no_tools: list[Example] = []
    for line, record in iter_records(path):
        if isinstance(record, Issue):
            out.issues.append(record)
            continue
        kind = fmt or detect(record)
        if kind is None:
            keys = ", ".join(sorted(record)) if isinstance(record, dict) else type(record).__name__
            out.issues.append(Issue(name, line, "unknown-format", f"cannot tell the format of this "
                                    f"record (keys: {keys})", "flat records need 'input' (and "
                                    "'output'/'tool_calls'); OpenAI ones 'messages'; ShareGPT ones "
                                    "'conversations'; xLAM ones 'query' and 'answers'"))
            continue
        if not isinstance(record, dict) or (fmt and detect(record) not in (fmt, None)):
            out.issues.append(Issue(name, line, "wrong-format",
                                    f"this record is not in the {fmt} format (looks like {detect(record)})"))
            continue
        counts[kind] += 1
        try:
            messages, record_tools = READERS[kind](record)
        except RecordError as err:
            out.issues.append(Issue(name, line, err.kind, err.message, err.hint))
            continue
        except KeyError as err:  # a forced --format on a record that lacks one of its fields
            out.issues.append(Issue(name, line, "missing-field", f"no {err} field for the {kind} format"))
            continue
        ex = Example(messages, record_tools if record_tools is not None else list(tools or []), name, line)
        if record_tools is None and tools is None:
            no_tools.append(ex)
        out.examples.append(ex)
    out.formats = dict(counts)
    out.format = counts.most_common(1)[0][0] if counts else (fmt or "")
    if no_tools and any(ex.calls() for ex in no_tools):
        inferred = infer_tools(no_tools)
        for ex in no_tools:
            ex.tools = inferred
        out.inferred_tools = [t["name"] for t in inferred]
        out.issues.append(Issue(name, 0, "inferred-tools",
                                f"{len(inferred)} tool schemas were inferred from the calls "
                                f"({', '.join(out.inferred_tools)}); they have no descriptions",
                                "pass --tools tools.json with the real schemas", level="warning"))
    if not out.examples and not out.issues:
        out.issues.append(Issue(name, 0, "empty-file", "the file has no records"))
    return out
