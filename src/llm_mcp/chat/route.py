"""A call that puts another tool's identifier where none goes, or a phrase where its own goes, is decoded again.

Asked "please deliver PX-482913 on 20 August 2027 instead", a small model may answer
`schedule_pickup(address="PX-482913", pickup_date="2027-08-20")`: the tracking number put
where an address goes, in a tool that has no place for one. The number has the shape that
other tools' identifier parameters show ("Tracking number, like PX-482913"), and the called
tool has no parameter of that shape: the model chose the wrong tool. Such a call is sent back
(`Redo`): the decode core (serve/decode.py, `Row.redo`) decodes the reply again from just
before it, that tool excluded for this call by the guide (chat/guide.py, `RedoGuide`), and the
model's next choice takes its place:

    deliver PX-482913 on 20 August 2027 instead, evening
        schedule_pickup(address="PX-482913", …)  →  reschedule_delivery(tracking_number="PX-482913", …)

"Another tool's identifier": a word the conversation states that has the shape (chat/mentions.py
`identifiers`) of the example an identifier parameter's description shows (chat/kinds.py
`example_of`; the parameter is one whose values can only be copied, chat/ground.py), letters
and digits both (an all-letter example, "AAPL", would make every word an identifier). A call
sent back is one with such a value at the top of its arguments, in a parameter that is not an
identifier parameter of that shape, to a tool that has none.

The other way round too (`unshaped`): asked "Pick up from Calle Mayor 5, Madrid on 2027-07-14",
the model may answer `reschedule_delivery(tracking_number="calle mayor 5, Madrid", …)`, a phrase
of several words with letters and digits where an identifier like "PX-482913" goes, while the
conversation states no identifier of that shape at all. The tool needs what the user never
gave: the model chose the wrong tool, and the call is sent back the same way. (A value of one
word, "AB123CD", may be the user's own id in another form, and stands; one without the
example's digits, "my parcel", is asked about, chat/ground.py `unstated`.) Everything else
stands.

And a call with no place where an address goes (`unhoused`): asked "please call me when the
driver arrives" about a parcel, the model may answer `redirect_parcel(new_address="I'm not able
to call you")`, or for "give it to the neighbours" `new_address="The neighbours"`: an address
parameter's value without a digit (no house number, no postcode) or only a day ("2023-03-29"),
where the conversation states no street address, while it says a word of an option of another
tool's enum ("arrives": `call_on_arrival`, "neighbours": `leave_with_neighbor`; alike up to its
ending, chat/options.py) that the called tool does not have. The user asked for that other tool; the call is sent back.

And a call that makes a value up while the request's own values go unused (`stranded`): asked
"PX-902716: push it back to 2027-11-01", the model may answer `set_delivery_instructions(
instructions=["ring_bell", "call_on_arrival"])`, options the request does not name even loosely;
asked "change the address for px-746650 to 40 George Street, Sydney", `reschedule_delivery(
new_date="2022-04-04")`, a day from nowhere; asked for "a twenty kilo suitcase … Cheapest
option?", `find_drop_off_points(max_results=20)`, a weight counted as results. Each call makes
something up (`invented`: a value chat/ground.py would ask about, a list of an enum's options
none of which the request names, a number said only with another parameter's unit, a day where
an address goes), and the request states a day, a street address or a measure ("twenty kilo")
that the call's tool has no parameter for and that another tool requires. The call is sent back. A call that makes nothing
up stands, so a request of two intents keeps its first call ("track PX-1 and move it to
2027-11-01": `track_parcel` leaves the day to the next call).

And a call that repeats one the reply made, value for value (`repeated`), where the request says
nothing of doing a thing twice ("again", "another", "both", "each", "two"): asked "convert 250
GBP to JPY, and also tell me the current price of MSFT", a small model may write the conversion
twice; the second is sent back, and the model's next choice, `get_stock_price`, takes its place.
Or one that repeats a call of its tool but for values the reply's other calls hold, text among
them said nowhere else in the conversation (`copied`): asked to "add 'Pick up Lucia at airport'
to my calendar … and tell me what the weather's like there", the model may write
`get_weather(location="Mexico City")` and then `get_weather(location="Lucia at airport")`, a
piece of the event's title. The copy is not decoded again (off its tool the model writes a
third call from nowhere) but dropped (chat/more.py `Dropped`): the reply ends before it, or is
asked for one more call off its tool.

Only a decoder that can go back does this (the local engine, `llm-mcp chat`, `llm-mcp eval`,
with the guide on); a reply parsed whole (vLLM's, `ChatFormat.parse`) keeps such a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llm_mcp.chat import mentions
from llm_mcp.chat.kinds import example_of, kind_of
from llm_mcp.chat.stated import call_key, copied_kind, dated, no_place, own_numbers
from llm_mcp.chat.types import Resolver, ToolCall, normalize

MAX_REDOS = 2  # calls sent back per reply: each decodes the rest of the reply again


@dataclass(frozen=True)
class Redo:
    """A call sent back: decode it again without its tool."""
    call: ToolCall


def id_shapes(tools: list[dict]) -> dict[str, dict[str, str]]:
    """Per tool (normalised), its identifier parameters' example shapes: {tool: {param: shape}}."""
    shapes: dict[str, dict[str, str]] = {}
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        own = {}
        for name, spec in (resolve(schema).get("properties") or {}).items():
            spec = resolve(spec)
            example = example_of(spec) if copied_kind(name, spec) == "identifier" else None
            shape = mentions.shape(example) if example else ""
            if "a" in shape and "9" in shape:
                own[name] = shape
        shapes[tool["name"]] = own
    return shapes


def misrouted(call: ToolCall, shapes: dict[str, dict[str, str]], stated) -> bool:
    """Does `call` put a stated identifier of another tool's shape (see the module doc) where its
    own tool has no identifier parameter of that shape? `stated`: chat.stated.Stated."""
    own = shapes.get(call.name)
    if own is None:
        return False
    theirs = {s for tool, params in shapes.items() if tool != call.name for s in params.values()}
    for name, value in call.arguments.items():
        if name in own or not isinstance(value, str):
            continue
        shape = mentions.shape(value)
        if shape not in theirs or shape in own.values():
            continue
        # the stated words of that shape (a shape is its own example: "a9" for "PX-482913")
        ids = {normalize(r) for m in stated("identifier", shape) for r in m.readings}
        if normalize(value) in ids:
            return True
    return False


def unshaped(call: ToolCall, shapes: dict[str, dict[str, str]], stated) -> bool:
    """Does `call` put a phrase of several words, with letters and digits, into an identifier
    parameter of its tool ("calle mayor 5, Madrid" where "PX-482913" goes), where the conversation
    states no identifier of that parameter's shape (see the module doc)? `stated`: chat.stated.Stated."""
    for name, shape in shapes.get(call.name, {}).items():
        value = call.arguments.get(name)
        if not isinstance(value, str) or len(value.split()) < 2 or mentions.shape(value) == shape \
                or not set(shape) <= set(mentions.shape(value)):
            continue
        if not stated("identifier", shape):
            return True
    return False


def enum_options(tools: list[dict]) -> dict[str, set[str]]:
    """Per tool (normalised), the string options of its enums, an array's items' too (chat/more.py)."""
    from llm_mcp.chat.more import _options

    found: dict[str, set[str]] = {}
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        found[tool["name"]] = set(_options(None, resolve(schema).get("properties") or {}, resolve))
    return found


def unhoused(call: ToolCall, schema: dict, options: dict[str, set[str]], stated) -> bool:
    """Does `call` put words without a digit, or a day, where an address goes, where the
    conversation states no street address but names an option of another tool's enum that the
    call's tool lacks (see the module doc)? `options`: `enum_options`; `stated`: chat.stated.Stated."""
    resolve = Resolver(schema)
    homeless = [name for name, spec in (resolve(schema).get("properties") or {}).items()
                if kind_of(name, resolve(spec)) == "address" and resolve(spec).get("type") == "string"
                and isinstance(call.arguments.get(name), str) and "@" not in call.arguments[name]
                and (not any(c.isdigit() for c in call.arguments[name]) or no_place(call.arguments[name]))]
    if not homeless or stated("address"):
        return False
    own = options.get(call.name, set())
    return any(o not in own and _mentioned(o, stated) for tool, theirs in options.items() if tool != call.name
               for o in theirs)


def _mentioned(option: str, stated) -> bool:
    """Does the conversation say a word of `option` of four letters or more, but a plain verb,
    alike up to its ending ("neighbours" for `leave_with_neighbor`, "arrives" for `call_on_arrival`)?"""
    from llm_mcp.chat.options import PLAIN, _alike

    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", option).lower())
    return any(_alike(s, w) for w in words if len(w) >= 4 and w not in PLAIN for s in stated.stems)


def invented(call: ToolCall, schema: dict, schemas: dict[str, dict], stated) -> bool:
    """Does `call` make a value up beyond what chat/ground.py asks about (see the module doc): a
    list of an enum's options none of which the conversation names even loosely, or a number it
    says only with another parameter's unit ("twenty kilo" as `max_results`), or a day where an
    address goes? `schemas`: every tool's parameters by name."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        enum = resolve(spec.get("items")).get("enum") if spec.get("type") == "array" else None
        if enum and isinstance(value, list) and value \
                and not any(isinstance(v, str) and stated.names_loosely(v, enum) for v in value):
            return True
        if isinstance(value, str) and kind_of(name, spec) == "address" and no_place(value):
            return True  # a day where an address goes ("2027-11-01")
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value not in own_numbers(name, spec, stated) \
                and any(value in own_numbers(other, theirs, stated)
                        for tool, other, theirs in _numeric(schemas) if (tool, other) != (call.name, name)):
            return True
    return False


def stranded(call: ToolCall, schemas: dict[str, dict], stated, made: list[ToolCall] = ()) -> bool:
    """Does the conversation state a day, a street address or a measure that `call`'s tool has no
    parameter for (and no free text of the call holds, nor a call of `made`, the reply's earlier
    calls), while another tool requires one (see the module doc)? `schemas`: every tool's
    parameters by name."""
    resolve = Resolver(schemas.get(call.name, {}))
    props = resolve(schemas.get(call.name, {})).get("properties") or {}
    # free text may hold them ("note": "deliver on 2027-11-01"); an address, a name or an id does not
    held = " ".join(normalize(str(v)) for k, v in call.arguments.items() if kind_of(k, resolve(props.get(k))) in _FREE)
    taken = [v for c in made for v in c.arguments.values()]  # (used already: "redirect it to …, and lockers near")
    for kind in ("date", "address"):
        said = [m.readings[0] for m in stated(kind)]
        said = [r for r in said if not any(normalize(str(r)) == normalize(str(v)) for v in taken)]
        if said and kind not in _kinds(schemas.get(call.name, {})) \
                and not any(normalize(str(r)) in held for r in said) \
                and any(kind in _kinds(s, required=True) for tool, s in schemas.items() if tool != call.name):
            return True
    own = {n for tool, name, spec in _numeric(schemas) if tool == call.name for n in own_numbers(name, spec, stated)}
    own |= {v for v in taken if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return any(tool != call.name and name in (schemas[tool].get("required") or [])
               and set(own_numbers(name, spec, stated)) - own for tool, name, spec in _numeric(schemas))


_FREE = ("text", "word", "query", "subject", "title")  # kinds of free text (chat/kinds.py)


def _kinds(schema: dict, required: bool = False) -> set[str]:
    """Which of "date" and "address" a tool's parameters (its required ones) hold."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    names = [n for n in props if not required or n in (schema.get("required") or [])]
    kinds = set()
    for name in names:
        spec = resolve(props[name])
        if spec.get("type") == "string" and dated(name, spec):
            kinds.add("date")
        if spec.get("type") == "string" and kind_of(name, spec) == "address":
            kinds.add("address")
    return kinds


def _numeric(schemas: dict[str, dict]):
    """Every tool's number parameters: (tool, name, spec)."""
    for tool, schema in schemas.items():
        resolve = Resolver(schema)
        for name, spec in (resolve(schema).get("properties") or {}).items():
            if resolve(spec).get("type") in ("integer", "number"):
                yield tool, name, resolve(spec)


# words of doing a thing more than once: "two timers of 5 minutes", "the same again"
_AGAIN = re.compile(r"\b(?:again|another|twice|both|each|every|two|second|same|2)\b", re.I)


def repeated(call: ToolCall, made: list[ToolCall], stated) -> bool:
    """Does `call` repeat, value for value, a call the reply made, where the conversation says no
    word of doing a thing more than once (see the module doc)?"""
    key = call_key(call.name, call.arguments)
    return any(call_key(c.name, c.arguments) == key for c in made) and not _AGAIN.search(stated.text)


def copied(call: ToolCall, made: list[ToolCall], stated) -> bool:
    """Does `call` repeat a call of its tool the reply made but for values the reply's calls hold
    elsewhere, text among them that the conversation says nowhere else (see the module doc)?"""
    from llm_mcp.chat.more import outside

    rest = normalize(outside(made, stated).text)

    def elsewhere(value) -> bool:  # held by another argument, whole or inside free text
        if isinstance(value, str) and normalize(value) in rest:
            return False  # said outside the reply's free text too: the request's own
        return any(held == value or isinstance(value, str) and isinstance(held, str)
                   and normalize(value) in normalize(held) for c in made for held in c.arguments.values())

    for earlier in (c for c in made if c.name == call.name):
        new = [v for k, v in call.arguments.items() if earlier.arguments.get(k) != v]
        if any(isinstance(v, str) for v in new) and all(elsewhere(v) for v in new):
            return True
    return False
