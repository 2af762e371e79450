"""Messages, tool calls and tool schemas, normalised from the shapes users bring (OpenAI, MCP)."""

from __future__ import annotations

import functools
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mcp.errors import LLMMCPError

_DROP = str.maketrans("", "", string.punctuation + string.whitespace)


def normalize(text: str) -> str:
    """A string as values are compared (BFCL's rule, eval/match.py; the teacher's and the grounding
    check's "does the request say it"): lower case, no whitespace or punctuation."""
    return text.lower().translate(_DROP)

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class ToolCall:
    """One call: a tool name and its arguments. `id` is carried along but not compared."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = field(default=None, compare=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments}

    def to_openai(self, index: int = 0) -> dict:
        return {
            "id": self.id or f"call_{index}",
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }

    @classmethod
    def from_any(cls, obj: Any) -> ToolCall:
        """From {"name", "arguments"} or OpenAI {"function": {"name", "arguments": "<json>"}}."""
        if not isinstance(obj, dict):
            raise LLMMCPError(f"a tool call must be an object, got {type(obj).__name__}")
        call_id = obj.get("id")
        if isinstance(obj.get("function"), dict):
            obj = obj["function"]
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            raise LLMMCPError("a tool call needs a non-empty string 'name'")
        args = obj.get("arguments", obj.get("parameters", {}))
        if args is None:
            args = {}
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as err:
                raise LLMMCPError(f"arguments of {name!r} are a string but not JSON: {err}") from err
        if not isinstance(args, dict):
            raise LLMMCPError(f"arguments of {name!r} must be an object, got {type(args).__name__}")
        return cls(name, args, call_id if isinstance(call_id, str) else None)


@dataclass
class Message:
    """A conversation turn. Tool results are role "tool" with the call's id and tool name."""

    role: str
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def from_any(cls, obj: Any) -> Message:
        if isinstance(obj, Message):
            return obj
        if not isinstance(obj, dict):
            raise LLMMCPError(f"a message must be an object, got {type(obj).__name__}")
        role = obj.get("role")
        if role not in ROLES:
            raise LLMMCPError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        content = obj.get("content")
        if content is None:
            content = ""
        elif isinstance(content, list):  # OpenAI content parts
            texts = [p.get("text") for p in content if isinstance(p, dict) and "text" in p]
            if not all(isinstance(t, str) for t in texts):
                raise LLMMCPError("a content part's 'text' must be a string")
            content = "".join(texts)
        elif not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        calls = obj.get("tool_calls") or []
        if not isinstance(calls, list):
            raise LLMMCPError("a message's tool_calls must be a list")
        extra = {key: obj.get(key) for key in ("tool_call_id", "name")}
        for key, value in extra.items():
            if value is not None and not isinstance(value, str):
                raise LLMMCPError(f"a message's {key} must be a string")
        return cls(role, content, [ToolCall.from_any(c) for c in calls], extra["tool_call_id"], extra["name"])

    def to_openai(self) -> dict:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai(i) for i, c in enumerate(self.tool_calls)]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        if self.name:
            out["name"] = self.name
        return out


def normalize_tool(obj: Any) -> dict:
    """A tool schema as {"name", "description", "parameters"} from OpenAI or MCP shapes."""
    if not isinstance(obj, dict):
        raise LLMMCPError(f"a tool must be an object, got {type(obj).__name__}")
    if obj.get("type") == "function" and isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise LLMMCPError("a tool needs a non-empty string 'name'")
    if not TOOL_NAME.fullmatch(name):
        raise LLMMCPError(f"bad tool name {name[:80]!r}", "a tool name is 1-128 characters without "
                          "quotes, backslashes, angle brackets or control characters")
    params = obj.get("parameters", obj.get("inputSchema", obj.get("input_schema")))
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise LLMMCPError(f"parameters of tool {name!r} must be a JSON Schema object")
    try:
        params = _json_types(params)
    except RecursionError:
        raise LLMMCPError(f"parameters of tool {name!r} are nested too deeply") from None
    check_schema(name, params)
    description = obj.get("description") or ""
    if not isinstance(description, str):
        raise LLMMCPError(f"the description of tool {name!r} must be a string")
    return {"name": name, "description": description, "parameters": params}


# What a tool name may hold: it is written inside JSON strings and markup (`<tool_call>`), so no
# quotes, backslashes, angle brackets or control characters.
TOOL_NAME = re.compile(r'[^\x00-\x1f\x7f"\\<>]{1,128}')

# Python type names that BFCL (Gorilla) and other function-calling sets write for JSON Schema's
_PY_TYPES = {"dict": "object", "float": "number", "tuple": "array", "list": "array", "str": "string",
             "int": "integer", "bool": "boolean"}


def _json_types(schema: Any) -> Any:
    """`schema` with Python type names (BFCL's `"type": "dict"`) as JSON Schema's, and BFCL's
    `"type": "any"` dropped; a schema without either is returned as it is."""
    if isinstance(schema, list):
        return [_json_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_types(v) if k != "enum" and k != "const" and k != "default" else v
           for k, v in schema.items()}
    kind = out.get("type")
    if kind == "any":
        del out["type"]
    elif isinstance(kind, str) and kind in _PY_TYPES:
        out["type"] = _PY_TYPES[kind]
    return out


def check_schema(name: str, params: dict) -> None:
    """A tool's parameters must be a valid JSON Schema (the metaschema its `$schema` names, else
    2020-12) describing an object; checked once per distinct schema."""
    problem = schema_problem(params)
    if problem:
        raise LLMMCPError(f"parameters of tool {name!r} are not a valid JSON Schema: {problem}",
                          "tool parameters are a JSON Schema of type object")


def schema_problem(params: Any) -> str | None:
    """What makes `params` not a valid JSON Schema of an object, or None."""
    try:
        key = json.dumps(params, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return "it is not JSON"
    return _schema_problem(key)


@functools.lru_cache(maxsize=4096)
def _schema_problem(key: str) -> str | None:
    from jsonschema import SchemaError, validators

    params = json.loads(key)
    try:
        validators.validator_for(params, default=validators.Draft202012Validator).check_schema(params)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the top"
        return f"{err.message[:200]} (at {where})"
    except RecursionError:
        return "it is nested too deeply"
    if params.get("type", "object") != "object":
        return f"its type is {params.get('type')!r}; tool arguments are an object"
    return None


def normalize_tools(tools: Any) -> list[dict]:
    """A list of tools from a list, an MCP `tools/list` result ({"tools": [...]}) or None."""
    if tools is None:
        return []
    if isinstance(tools, dict) and isinstance(tools.get("tools"), list):
        tools = tools["tools"]
    if not isinstance(tools, list):
        raise LLMMCPError("tools must be a list of tool schemas (or an MCP tools/list result)")
    return [normalize_tool(t) for t in tools]


def read_tools_file(path: str | Path) -> list[dict]:
    """Tool schemas from a JSON file: a list (OpenAI or MCP shapes) or an MCP tools/list result."""
    p = Path(path)
    if not p.is_file():
        raise LLMMCPError(f"tools file {path} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise LLMMCPError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    try:
        return normalize_tools(data)
    except LLMMCPError as err:
        raise LLMMCPError(f"{path}: {err.message}", err.hint) from err


class Resolver:
    """`$ref` into the root schema's `$defs`/`definitions` (local references only)."""

    def __init__(self, root: dict):
        self.root = root

    def __call__(self, spec: Any) -> dict:
        seen = 0
        while isinstance(spec, dict) and "$ref" in spec and seen < 20:
            ref, seen = spec["$ref"], seen + 1
            if not isinstance(ref, str) or not ref.startswith("#"):
                return {k: v for k, v in spec.items() if k != "$ref"}
            target: Any = self.root
            for part in ref.lstrip("#/").split("/"):
                if not part:
                    continue
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            spec = {**target, **{k: v for k, v in spec.items() if k != "$ref"}}
        return spec if isinstance(spec, dict) else {}
