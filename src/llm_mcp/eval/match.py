"""Does a reply's set of tool calls meet what was expected? The rules of BFCL's AST checker.

An expectation is a function name and, per parameter, the list of acceptable values; a gold call
from a training-style dataset becomes one with a single value per parameter. Two judgements:

- **AST match** (BFCL): the same function name; every parameter the schema requires present and
  none it does not know; types as the schema says (an int is accepted where a number is
  expected, not the reverse; a bool is never a number); strings compared after lower-casing and
  removing whitespace and punctuation; each value one of the acceptable ones; a parameter may be
  left out only when "" is among its acceptable values, or when the expectation has no entry for
  it (a gold call that omits an optional parameter); lists and objects element by element;
  parallel calls in any order, paired one to one (the best pairing, not the first that fits).
- **Exact match**: the same, but values must be equal as JSON (1 == 1.0; "Tokyo" != "tokyo").

No expected call: only a reply without calls passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llm_mcp.chat.types import ToolCall, normalize
from llm_mcp.errors import LLMMCPError



@dataclass
class Expected:
    """One expected call: `arguments` maps a parameter to its acceptable values."""

    name: str
    arguments: dict[str, list]

    @classmethod
    def from_call(cls, call: ToolCall) -> Expected:
        return cls(call.name, {k: [v] for k, v in call.arguments.items()})

    @classmethod
    def parse(cls, obj: Any) -> Expected:
        """{"name", "arguments": {param: [values…]}}, or BFCL's {name: {param: [values…]}}."""
        if isinstance(obj, dict) and len(obj) == 1 and "name" not in obj:
            (name, args), = obj.items()
        elif isinstance(obj, dict):
            name, args = obj.get("name"), obj.get("arguments", {})
        else:
            raise LLMMCPError(f"an expected call must be an object, got {type(obj).__name__}")
        if not isinstance(name, str) or not name:
            raise LLMMCPError("an expected call needs a non-empty string 'name'")
        if not isinstance(args, dict):
            raise LLMMCPError(f"the arguments of expected call {name!r} must be an object")
        bad = [k for k, v in args.items() if not isinstance(v, list) or not v]
        if bad:
            raise LLMMCPError(f"expected call {name!r}: the acceptable values of {', '.join(bad)} "
                              "must be a non-empty list", 'write {"unit": ["celsius", ""]}: '
                              '"" means the parameter may be left out')
        return cls(name, dict(args))


@dataclass
class Verdict:
    ok: bool
    kind: str = "ok"  # ok, missed-call, false-call, wrong-count, wrong-name, wrong-arguments
    detail: str = ""


def type_ok(value: Any, schema: dict | None) -> bool:
    """Is `value` of the JSON Schema type (recursively into items and properties)?"""
    if not isinstance(schema, dict):
        return True
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_is(value, k) for k in kinds):
        return False
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(type_ok(v, schema["items"]) for v in value)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        return all(type_ok(v, schema["properties"].get(k)) for k, v in value.items())
    return True


def _is(value: Any, kind: str) -> bool:
    if kind == "number":  # an int is a number; a bool is not
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    checks = {"boolean": bool, "string": str, "array": list, "object": dict, "null": type(None)}
    return isinstance(value, checks[kind]) if kind in checks else True


def same_value(a: Any, b: Any, loose: bool = False) -> bool:
    """JSON equality (numbers by value, bools apart); `loose`: strings compared normalised."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        return normalize(a) == normalize(b) if loose else a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], loose) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, loose) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def check_call(call: ToolCall, want: Expected, schema: dict | None = None, strict: bool = False) -> Verdict:
    """One predicted call against one expected call. `schema`: the tool's parameters schema."""
    if call.name != want.name:
        return Verdict(False, "wrong-name", f"called {call.name!r}, expected {want.name!r}")
    props = schema.get("properties") if isinstance(schema, dict) else None
    required = schema.get("required", []) if isinstance(schema, dict) else []
    for key, value in call.arguments.items():
        if isinstance(props, dict) and key not in props:
            return Verdict(False, "wrong-arguments", f"{call.name}: unknown parameter {key!r}")
        if key not in want.arguments:
            return Verdict(False, "wrong-arguments", f"{call.name}: unexpected parameter {key!r}={value!r}")
        if not strict and isinstance(props, dict) and not type_ok(value, props.get(key)):
            return Verdict(False, "wrong-arguments", f"{call.name}: {key}={value!r} is not of type "
                           f"{props[key].get('type')}")
        if not any(same_value(value, alt, loose=not strict) for alt in want.arguments[key]):
            return Verdict(False, "wrong-arguments", f"{call.name}: {key}={value!r}, expected "
                           + " or ".join(repr(a) for a in want.arguments[key]))
    for key in required:
        if key not in call.arguments:
            return Verdict(False, "wrong-arguments", f"{call.name}: missing required parameter {key!r}")
    for key, alts in want.arguments.items():
        if key not in call.arguments and "" not in alts:
            return Verdict(False, "wrong-arguments", f"{call.name}: missing parameter {key!r} "
                           f"(expected {alts[0]!r})")
    return Verdict(True)


def match_calls(calls: list[ToolCall], expected: list[Expected], tools: list[dict] | None = None,
                strict: bool = False) -> Verdict:
    """All predicted calls against all expected ones, paired one to one in the best way."""
    if not expected:
        return Verdict(True) if not calls else Verdict(False, "false-call", f"{len(calls)} call(s) "
                                                       "where none was expected")
    if not calls:
        return Verdict(False, "missed-call", "no call where one was expected")
    if len(calls) != len(expected):
        return Verdict(False, "wrong-count", f"{len(calls)} call(s), expected {len(expected)}")
    schemas = {t["name"]: t.get("parameters") for t in tools or []}
    verdicts = [[check_call(c, w, schemas.get(w.name), strict) for w in expected] for c in calls]
    pair: dict[int, int] = {}  # expected index → call index

    def place(i: int, seen: set) -> bool:  # Kuhn's augmenting path
        for j, v in enumerate(verdicts[i]):
            if v.ok and j not in seen:
                seen.add(j)
                if j not in pair or place(pair[j], seen):
                    pair[j] = i
                    return True
        return False

    if all(place(i, set()) for i in range(len(calls))):
        return Verdict(True)
    for j in range(len(expected)):  # the reason: the first expected call left unpaired
        if j not in pair:
            same_name = [verdicts[i][j] for i in range(len(calls)) if calls[i].name == expected[j].name]
            if same_name:
                return same_name[0]
            return Verdict(False, "wrong-name", f"no call to {expected[j].name!r} (called "
                           + ", ".join(c.name for c in calls) + ")")
    return Verdict(False, "wrong-arguments")


def calls_match(predicted: list[ToolCall], gold: list[ToolCall]) -> bool:
    """Exact match of predicted against gold calls."""
    return match_calls(predicted, [Expected.from_call(g) for g in gold], strict=True).ok
