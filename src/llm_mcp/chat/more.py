"""One more call, asked for where a reply of calls ends, kept only if it carries something new.

Asked for two or three things in one message, a small model often makes the first calls and
stops: "stock prices for NVDA, TSLA and AMZN" answered with NVDA and TSLA only, "email Priya …
and send the exact same email to accounts@quillworks.in" with the first email only. Where a
reply of calls alone reaches its end of turn, the decode core (serve/decode.py, `Row.more`)
writes the opening of one more call block in place of the end of turn and lets the model go on,
the guide holding it to the tools. The call it makes is kept only if it asks for something the
reply's calls have not (`fits`): else it is dropped with the block's opening, and the reply
ends where the model ended it:

    stock prices for NVDA, TSLA and AMZN please
        get_stock_price(NVDA), get_stock_price(TSLA)  + get_stock_price(AMZN)          kept
    what's NFLX trading at
        get_stock_price(NFLX)                          + get_stock_price(NFLX)          dropped
    set a timer for an hour and a half for the roast
        set_timer(minutes=90, label="roast")           + set_timer(minutes=90, label="hour")   dropped

"Something new": every required argument (but booleans and enums) holds a value the
conversation states, and at least one of them is a value of a kind with a form of its own
(`typed`: a number, an address, an identifier or ticker, a day, a time, a currency, a language)
that no call of the reply holds or contains. A required value that is said nowhere (the model
making up a city, a ticker, an amount), a call that repeats one already made, one whose
required values are all taken ("hour" as a second timer's label, its minutes those of the
first), one that is new only in free words: dropped. Free words are no sign of another request:
in a chatty message any phrase can fill a city, a query or a title ("I'm European, so celsius"
→ `get_weather(location="European")`), so a second city or query is left to the model. One is
asked for only where the conversation states such a value that no call holds yet (`untaken`:
else nothing could be kept, and the decoding would be spent for nothing). A kept call is
followed by the model's own choice to stop or go on; a reply asks for at most `MAX_MORE`.

Only a decoder that can write into the reply does this (the local engine, `llm-mcp chat`,
`llm-mcp eval`, with the guide and the grounding on); vLLM's replies are taken as vLLM ends them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from llm_mcp.chat.kinds import kind_of
from llm_mcp.chat.types import Resolver, ToolCall, normalize

MAX_MORE = 2  # calls asked for per reply beyond the model's own
ROOM = 32  # reply tokens left, at least, to ask for one (one that runs out is dropped)
OPENING = '\n<tool_call>{"name": "'  # the built-in format's call block, up to the tool's name


@dataclass(frozen=True)
class Dropped:
    """A call asked for that asks for nothing new: the reply ends before it."""
    call: ToolCall


def fits(call: ToolCall, schema: dict, made: list[ToolCall], stated: Any) -> bool:
    """Is `call`, asked for after the reply's calls `made`, one to keep (see the module doc)?
    `stated`: chat.ground.Stated, the conversation's values."""
    from llm_mcp.chat.ground import leaves

    resolve = Resolver(schema)
    top = resolve(schema)
    props = top.get("properties") or {}
    if any(call.name == m.name and _same(call.arguments, m.arguments) for m in made):
        return False
    held = [v for m in made for v in leaves(m.arguments) if not isinstance(v, bool)]
    new = False
    for name in top.get("required") or []:
        spec = resolve(props.get(name))
        value = call.arguments.get(name)
        if value is None or isinstance(value, (bool, dict, list)) or "enum" in spec or "const" in spec:
            continue
        if not said(name, spec, value, stated):
            return False
        new = new or (typed(name, spec, value) and not any(_holds(h, value) for h in held))
    return new


def untaken(tools: list[dict], made: list[ToolCall], stated: Any) -> bool:
    """Does the conversation state a value no call of the reply holds, of a kind with a form of
    its own, that some tool's required parameter takes? Where it does not, no call asked for
    could be kept (`fits`), and none is asked for."""
    from llm_mcp.chat.ground import leaves
    from llm_mcp.chat.kinds import example_of

    held = [v for m in made for v in leaves(m.arguments) if not isinstance(v, bool)]
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        top = resolve(schema)
        for name in top.get("required") or []:
            spec = resolve((top.get("properties") or {}).get(name))
            if spec.get("type") in ("integer", "number"):
                found = [m.readings for m in stated("number")]
            elif (kind := kind_of(name, spec)) == "ticker":  # a word in capitals
                found = [(w,) for w in re.findall(r"\b[A-Z]{2,5}\b", stated.text)]
            elif kind in TYPED and kind != "date-time":
                found = [m.readings for m in stated(kind, example_of(spec) if kind == "identifier" else None)]
            else:
                continue
            if any(not any(_holds(h, r) for h in held for r in readings) for readings in found):
                return True
    return False


# kinds whose values the conversation states in a form of their own (chat/kinds.py)
TYPED = {"email", "phone", "url", "uuid", "identifier", "date", "time", "date-time", "currency", "language",
         "ticker"}


def typed(name: str, spec: dict, value: Any) -> bool:
    """Is `value` one of a kind with a form of its own: a number, an address, an identifier or a
    ticker as such, a day, a time, a currency, a language? Free words (a city, a query, a title)
    are not: any phrase of a chatty message can fill them."""
    from llm_mcp.chat.ground import _looks

    if isinstance(value, (int, float)):
        return True
    kind, value = kind_of(name, spec), str(value).strip()
    if kind not in TYPED:
        return False
    if kind == "ticker":
        return re.fullmatch(r"[A-Z][A-Z0-9.\-]{0,5}", value) is not None
    if kind == "email":
        return "@" in value
    if kind in ("phone", "url", "uuid", "identifier"):
        return _looks(kind, value, spec)
    return True  # a day, a time, a currency or a language: `said` read it as one


def said(name: str, spec: dict, value: Any, stated: Any) -> bool:
    """Does the conversation state `value` for this parameter: word for word, or as one of its
    readings (a currency's code for its name, a day or a time in the tool's form, a number in
    words or a length of time in the parameter's unit)?"""
    from llm_mcp.chat.ground import _own_numbers

    if isinstance(value, (int, float)):
        return value in {m.readings[0] for m in stated("number")} or value in _own_numbers(name, spec, stated)
    value = str(value)
    if _words(value).strip() and _words(value) in _words(stated.text):
        return True
    kind = kind_of(name, spec)
    readers = {"currency": ("currency",), "date": ("date",), "time": ("time",)}.get(kind, ())
    if kind == "language":
        readers = ("language", "language-code")
    readings = {str(r).lower() for k in readers for m in stated(k) for r in m.readings}
    year_less = "--" + value[5:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    return value.strip().lower() in readings or (year_less is not None and year_less in readings)


def _holds(held: Any, value: Any) -> bool:
    """Does an earlier call's value `held` hold `value` (a number: equal; words: one inside the other)?"""
    if isinstance(value, (int, float)) or isinstance(held, (int, float)):
        return isinstance(value, (int, float)) and isinstance(held, (int, float)) and held == value
    a, b = _words(str(held)), _words(str(value))
    return b.strip() != "" and (b in a or a in b)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[^\W_]+", text.lower())) + " "


def _same(a: dict, b: dict) -> bool:
    return {k: _norm(v) for k, v in a.items()} == {k: _norm(v) for k, v in b.items()}


def _norm(value: Any) -> Any:
    return normalize(value) if isinstance(value, str) else value
