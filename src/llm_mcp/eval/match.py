"""Does a predicted set of tool calls match the gold one? BFCL's AST rules, in their strict form:
the same number of calls; each gold call matched by exactly one predicted call (in any order,
as parallel calls are unordered) with the same function name and the same arguments, where
numbers compare by value (1 == 1.0, but never "1" == 1) and objects and lists recursively.
An example without gold calls is correct when the reply makes no call."""

from __future__ import annotations

from typing import Any

from llm_mcp.chat.types import ToolCall


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def same_call(a: ToolCall, b: ToolCall) -> bool:
    return a.name == b.name and same_value(a.arguments, b.arguments)


def calls_match(predicted: list[ToolCall], gold: list[ToolCall]) -> bool:
    if len(predicted) != len(gold):
        return False
    left = list(predicted)
    for g in gold:
        hit = next((k for k, p in enumerate(left) if same_call(p, g)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True
