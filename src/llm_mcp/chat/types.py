"""Messages, tool calls and tool schemas, normalised from the shapes users bring (OpenAI, MCP)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_mcp.errors import LLMMCPError

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
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        elif not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        calls = [ToolCall.from_any(c) for c in obj.get("tool_calls") or []]
        return cls(role, content, calls, obj.get("tool_call_id"), obj.get("name"))

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
    params = obj.get("parameters", obj.get("inputSchema", obj.get("input_schema")))
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise LLMMCPError(f"parameters of tool {name!r} must be a JSON Schema object")
    tool = {"name": name, "description": obj.get("description") or "", "parameters": params}
    return tool


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
