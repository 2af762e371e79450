"""Dates and times a model wrote without their leading zeros, padded to the form the schema asks.

A small model often writes `2026-12-1` for a `format: date` string and `9:00` for a time the
tool wants as HH:MM: the right day and hour in the wrong form, which a tool may refuse. The
grammar (chat/guide.py) cannot hold these, since it leaves `format` and `pattern` to be checked
after parsing, and forcing a digit there would make the model pick one, not mean one. Padding is
the one repair that changes no meaning, so it is the only one made here:

    format: date, or "YYYY-MM-DD" in the description    2026-12-1  →  2026-12-01   (a real day only)
    "HH:MM" in the description, or a pattern it meets    9:00       →  09:00

A value is changed only when it is one of these shapes with a digit missing; when the parameter
has a `pattern`, only when the padded value meets it and the written one does not. Everything
else is left as written for the tool (and `llm-mcp eval`) to judge. Parameters are found through
`properties`, array `items` and local `$ref`s; a value under `anyOf`/`oneOf` is left alone.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from llm_mcp.chat.types import Resolver, ToolCall

_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


def conform(calls: list[ToolCall], tools: list[dict]) -> list[ToolCall]:
    """`calls` with their short dates and times padded (see the module doc); the others as they are."""
    params = {t["name"]: t.get("parameters") or {} for t in tools}
    out = []
    for call in calls:
        schema = params.get(call.name)
        if schema is None:
            out.append(call)
            continue
        arguments = _value(call.arguments, schema, Resolver(schema))
        out.append(call if arguments == call.arguments else ToolCall(call.name, arguments, call.id))
    return out


def padded(value: str, schema: dict) -> str:
    """`value` padded where `schema` (a string's) asks for the full form, else `value`."""
    desc = str(schema.get("description", "")).lower()
    pattern = schema.get("pattern")
    fixed = value
    if (m := _DATE.fullmatch(value)) and (schema.get("format") == "date" or "yyyy-mm-dd" in desc or pattern):
        year, month, day = (int(g) for g in m.groups())
        try:
            fixed = date(year, month, day).isoformat()
        except ValueError:
            return value  # not a day: the tool's to refuse
    elif (m := _CLOCK.fullmatch(value)) and (("hh:mm" in desc and "hh:mm:ss" not in desc) or pattern):
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            return value
        fixed = f"{hour:02d}:{minute:02d}"
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) or not re.search(pattern, fixed):
                return value
        except re.error:
            return value
    return fixed


def _value(value: Any, schema: Any, resolve: Resolver, depth: int = 0) -> Any:
    schema = resolve(schema)
    if depth > 32:
        return value
    kinds = schema.get("type")
    if isinstance(value, str) and (kinds is None or kinds == "string" or (isinstance(kinds, list) and "string" in kinds)):
        return padded(value, schema)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        return {k: _value(v, props[k], resolve, depth + 1) if k in props else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_value(v, schema["items"], resolve, depth + 1) for v in value]
    return value
