"""Example → a record in a chosen format (for `llm-mcp data convert`)."""

from __future__ import annotations

from llm_mcp.data.example import Example
from llm_mcp.errors import LLMMCPError

TARGETS = ("openai", "flat")


def to_record(ex: Example, target: str, with_tools: bool = True) -> dict:
    if target == "openai":
        out: dict = {"messages": [m.to_openai() for m in ex.messages]}
        if with_tools:
            out["tools"] = [{"type": "function", "function": t} for t in ex.tools]
        return out
    if target == "flat":
        msgs = ex.messages
        system = msgs[0].content if msgs and msgs[0].role == "system" else None
        rest = msgs[1:] if system is not None else msgs
        if [m.role for m in rest] != ["user", "assistant"]:
            raise LLMMCPError(f"{ex.where}: a {len(rest)}-turn conversation does not fit the flat "
                              "format (one user turn, one assistant turn)", "convert --to openai")
        out = {"input": rest[0].content, "output": rest[1].content,
               "tool_calls": [c.to_dict() for c in rest[1].tool_calls]}
        if system is not None:
            out["system"] = system
        if with_tools:
            out["tools"] = ex.tools
        return out
    raise LLMMCPError(f"unknown target format {target!r}", f"choose one of {', '.join(TARGETS)}")
