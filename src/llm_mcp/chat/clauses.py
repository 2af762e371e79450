"""A value a call took from another part of the request takes the one its own part states.

Asked for several things in one message, a small model keeps each call's words apart better than
its values: it copies one time, one day or one number into every call, or into the wrong one.

    dentist 2025-12-01 at 08:00 and haircut 2025-12-03 at 17:30
        create_event(Dentist, 2025-12-01, 17:30)    →  time 08:00
    three timers: 5 minutes for the eggs, 10 for the toast, 30 for the laundry
        set_timer(5, "toast"), set_timer(5, "laundry")    →  10, 30
    'team offsite' on 2027-06-17 at 09:00, 480 minutes long, and 'offsite dinner' at 19:30 for 2 hours
        create_event(offsite dinner, 19:30, duration_minutes 20)    →  120

The request is cut into parts where people join requests: sentence ends, colons, semicolons,
commas (not those inside an address or a list of names), "and", "then", "also", "plus"
(`parts`). The call's other values place it: the part it
belongs to is the one that states most of them (its `home`; a tie keeps them all), leaving out
values an earlier call to the same tool holds too (the model may have copied them with the rest). A value of a
kind read by rule (a clock time, a day, a number, a currency, a street address, a copied kind
such as an email or an identifier; chat/ground.py) that is stated only outside the home, in parts that belong to
another request, takes the value of its kind the home states, where that is exactly one; where
the home states none, the parts after it up to one that belongs to another request ("... a second
collection at 9 Albert Street on 2027-02-16, driver can come from 09:00"). A part
belongs to another request where it states a value an earlier call of the reply holds and this
one does not ("eggs", of `set_timer(5, "eggs")`), or a value of the kind of one of this call's
that differs from it (another day: "haircut 2025-12-03 at 17:30" for the dentist's call). A value
stated nowhere that several stated values would fit (chat/stated.py `fitting`: "2 hours" and
"480 minutes" for `duration_minutes: 20`) takes the one the home states, if it states one; and
free text said in quotes takes the words in quotes of the home ('team offsite' for the title
'offsite dinner' of the next request).

A part also belongs to another request where it names another tool and not the call's (chat/more.py
`names`: "show me the nearest drop-off points in Stockholm too (just 2)" is not the pickup's). An
optional value that only such parts state, where the call's own parts state none of its kind, is
left out, to the tool's default: `parcel_count: 2` for the pickup of that message. (Not one an
earlier call to the same tool holds too: "move BK-4471 to 9pm, and BK-5555 too".)

An optional enum's option that only parts of other requests name, none of the call's own
("PX-873310 to 2027-08-02 in the morning, and PX-873311 to 2027-08-03, any time is ok": the second
call's `time_slot`, morning or another), is left out, to the tool's default.

Where the home states no value of the kind, or several, or the model's value is in it, or the
part the value came from belongs to no other request ("100 dollars in euros and also in pounds":
"in pounds" shares the amount of the part before it), the model's value stands: a request's values
often come in parts of their own ("on 2027-01-05, at 09:15"), and those are left alone. A value
another argument of the call holds is never taken, nor one that would repeat an earlier call.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from llm_mcp.chat import mentions
from llm_mcp.chat.kinds import example_of, kind_of
from llm_mcp.chat.stated import call_key, clock, copied_kind, dated, fitting, nearest, own_numbers
from llm_mcp.chat.types import Resolver, ToolCall, normalize

# (a comma before a capital, or a number and a capital, is an address's or a list's: "Unit 4,
# Riverside Trading Estate, Reading", "Herengracht 180, 1016 BR Amsterdam")
CUT = re.compile(r"(?<=[.;:!?])\s+|\n+|,\s+(?![A-Z]|\d+ [A-Z])|\s+(?:and then|and|then|also|plus)\s+")


def parts(text: str) -> list[str]:
    """The text cut where people join requests (see the module doc)."""
    return [p for p in CUT.split(text) if p.strip()]


def from_own_part(call: ToolCall, schema: dict, stated, made: list[ToolCall], theirs: set[int] = frozenset()) \
        -> ToolCall:
    """`call` with each value it took from another request's part of the message replaced by the
    one its own part states, or an optional one left out where its own parts state none (see the
    module doc); `stated`: chat/stated.py `Stated`; `made`: the reply's earlier calls; `theirs`:
    the parts (by index) that name other tools and not the call's (chat/more.py `names`)."""
    pieces = stated.parts
    if len(pieces) < 2 or len(call.arguments) < 2:
        return call
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    specs = {k: resolve(props.get(k)) for k in call.arguments}
    arguments = dict(call.arguments)
    before = {call_key(c.name, c.arguments) for c in made}
    shared = _shared(call, made)
    quotes = {normalize(r[0]) for m in mentions.quoted(stated.text) for r in [m.readings]}
    required = set(resolve(schema).get("required") or [])
    for name, value in call.arguments.items():
        spec = specs[name]
        if "enum" in spec and name not in required and _elsewhere(call, specs, name, pieces, shared, made):
            del arguments[name]  # an option only another request names: the tool's default
        if "enum" in spec or isinstance(value, bool):
            continue
        read = functools.partial(readings, name, spec, value)
        if read(pieces[0]) is None:  # free text: words in quotes may take another's words in quotes
            if not (isinstance(value, str) and normalize(value) in quotes):
                continue
            read = _quoted
        skip = shared | {name}
        home = _home(call, specs, skip, pieces)
        here = [holds(name, spec, value, p) for p in pieces]

        def claimed(i: int) -> bool:
            return (i in theirs and i not in home) or _claimed(pieces[i], call, specs, skip, made)

        if not home or any(here[i] for i in home) or not all(claimed(i) for i, h in enumerate(here) if h):
            continue
        found = {r for i in home for r in read(pieces[i]) or []}
        for i in [] if found else range(home[-1] + 1, len(pieces)):  # a request goes on till another begins
            if claimed(i) or (found := set(read(pieces[i]) or [])):
                break
        if not found and any(here) and read is not _quoted and name not in required | shared:
            del arguments[name]  # said only in other requests: "…, and the nearest drop-off points (just 2)"
            continue
        if not any(here):  # stated nowhere: only what fits it as a whole (a miscopy) may replace it
            whole = {tuple(r) for r in fitting(name, spec, value, stated)}
            found = {r for r in found if r in whole}
        others = [v for k, v in arguments.items() if k != name]
        found = {r for r in found if not any(_same(x, o) for x in r for o in others)
                 and call_key(call.name, {**arguments, name: nearest(r, value)}) not in before}
        if len(found) == 1:
            arguments[name] = nearest(found.pop(), value)
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


def elsewhere(call: ToolCall, schema: dict, stated, made: list[ToolCall], name: str) -> bool:
    """Do only other requests' parts of the message name options of the call's enum `name`, none
    of its own (see the module doc)? For an option added to a call after `from_own_part`."""
    if len(stated.parts) < 2:
        return False
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    specs = {k: resolve(props.get(k)) for k in call.arguments}
    return _elsewhere(call, specs, name, stated.parts, _shared(call, made), made)


def _shared(call: ToolCall, made: list[ToolCall]) -> set[str]:
    """The parameters whose value an earlier call to the tool holds too: they place no call, they
    may be copies of its own."""
    return {k for c in made if c.name == call.name for k, v in c.arguments.items()
            if k in call.arguments and _same(v, call.arguments[k])}


def _elsewhere(call: ToolCall, specs: dict, name: str, pieces: list, shared: set[str], made: list[ToolCall]) -> bool:
    """Do only parts that belong to other requests name options of the enum `name`, none of the
    call's own parts (its home, and the parts after it up to another request's)?"""
    skip = shared | {name}
    home = _home(call, specs, skip, pieces)
    options = [o for o in specs[name]["enum"] if isinstance(o, str)]
    naming = [i for i, p in enumerate(pieces) if any(p.names(o) for o in options)]
    if not home or not naming:
        return False
    own = set(home)
    for i in range(home[-1] + 1, len(pieces)):
        if _claimed(pieces[i], call, specs, skip, made):
            break
        own.add(i)
    return not own & set(naming) and all(_claimed(pieces[i], call, specs, skip, made) for i in naming)


def _home(call: ToolCall, specs: dict, skip: set[str], pieces: list) -> list[int]:
    """The parts that state most of the call's values but those of `skip` (at least one)."""
    counts = [sum(holds(k, specs[k], v, p) for k, v in call.arguments.items() if k not in skip) for p in pieces]
    most = max(counts)
    return [i for i, n in enumerate(counts) if n == most] if most else []


def _claimed(part, call: ToolCall, specs: dict, skip: set[str], made: list[ToolCall]) -> bool:
    """Does `part` belong to another request than `call`'s? It states a value an earlier call
    holds and `call` does not, or a value of the kind of one of `call`'s (but those of `skip`)
    that none of `call`'s values is."""
    held = list(call.arguments.values())
    for earlier in made:
        for k, v in earlier.arguments.items():
            if k in specs and not any(_same(v, h) for h in held) and holds(k, specs[k], v, part):
                return True
    for k, v in call.arguments.items():
        found = readings(k, specs[k], v, part) if k not in skip else None
        if any(not any(_same(x, h) for x in r for h in held) for r in found or []):
            return True
    return False


def readings(name: str, spec: dict, value: Any, part) -> list[tuple] | None:
    """The readings of the values of the parameter's kind that `part` (a `Stated`) states; None
    for a parameter this does not read. A day without its year takes the model's year."""
    if spec.get("type") in ("integer", "number") and isinstance(value, (int, float)):
        found = own_numbers(name, spec, part) or [m.readings[0] for m in mentions.counts(part.text)]
        return [(n,) for n in found if spec["type"] == "number" or float(n).is_integer()]
    if spec.get("type") != "string" or not isinstance(value, str):
        return None
    if clock(name, spec):
        return [m.readings for m in part("time")]
    if dated(name, spec):
        year = value[:4] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
        return [((year + r[0][1:]) if r[0].startswith("--") else r[0],) for m in part("date")
                if (r := m.readings) and (year or not r[0].startswith("--"))]
    if kind_of(name, spec) == "currency" and re.fullmatch(r"[A-Za-z]{3}", value.strip()):
        return [m.readings for m in part("currency")]
    if kind_of(name, spec) == "address":
        return [m.readings for m in part("address")]
    kind = copied_kind(name, spec)
    if kind:
        return [m.readings for m in part(kind, example_of(spec) if kind == "identifier" else None)]
    return None


def _quoted(part) -> list[tuple]:
    return [m.readings for m in mentions.quoted(part.text)]


def holds(name: str, spec: dict, value: Any, part) -> bool:
    """Does `part` state `value`? By its readings where the parameter's kind is read by rule, by
    its option's words for an enum, or as words of the part (a string of three letters or digits
    at least)."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return False
    if isinstance(value, str) and "enum" in spec:
        return part.names(value)
    found = readings(name, spec, value, part)
    if found is not None and any(_same(x, value) for r in found for x in r):
        return True
    said = normalize(value) if isinstance(value, str) else ""
    return len(said) >= 3 and said in normalize(part.text)


def _same(a: Any, b: Any) -> bool:
    """Are two values the same as `llm-mcp eval` compares them (40 and 40.0 alike)?"""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and normalize(a) == normalize(b)
