"""A call's two ends of a journey take the places, and the order, the request says.

A tool that moves something from one place to another (a parcel, a flight, a train) has a
parameter for each end: `origin` and `destination`, `from_city` and `to_city`. A small model
often writes the right places the wrong way round, or one end from nowhere:

    3.2 kg, sending from Ghent, ... (she is in Leuven)   origin Leuven, destination Ghent   →  swapped
    overnight quote 0.5kg dublin to belfast              origin belfast, destination London  →  dublin, belfast
    20kg Rotterdam -> Antwerp, ... and 20kg Rotterdam -> Brussels
                                     (second call) origin Brussels, destination Amsterdam  →  Rotterdam, Brussels

The ends are found by their parameters' names (`ends`): a string parameter whose name has
"origin", "from", "source" or "departure", and one with "destination", "to", "dest" or
"arrival", of no kind read by rule (not currencies, languages, dates: chat/kinds.py). The request
states a journey (`journeys`) as "from A to B", "A -> B" (or "→"), or "A to B" where both places
are capitalised or one of them is a place the call holds ("dublin to belfast" for a call with
"belfast"; not "a parcel to belfast", "2 kg to Ghent", "send it to Paris"); a place is one to
three words, all but one end's capitalised ("New York City").

A call whose pair of places is no journey the request states, nor said as "from" its origin and
"to" its destination, takes the one journey that shares a place with it, and that no earlier call
of the reply holds. Where the request states no such journey, a call whose destination is said
after "from" (and never after "to"), or whose origin is said after "to" (and never after
"from"), has its two places swapped. Else the call stands.
"""

from __future__ import annotations

import re

from llm_mcp.chat.kinds import kind_of
from llm_mcp.chat.stated import name_words
from llm_mcp.chat.types import Resolver, ToolCall, normalize

FROM = {"origin", "from", "source", "departure", "src"}
TO = {"destination", "to", "dest", "arrival"}
_PLACE_KINDS = {"city", "address", "country", "word", "company"}  # kinds a place may be read as
_DETERMINERS = {"a", "an", "the", "my", "your", "our", "his", "her", "their", "this", "that", "some", "any"}
_NOT_PLACES = _DETERMINERS | {"it", "them", "me", "us", "him", "one", "something", "everything"}
_WORD = r"[^\W\d_][\w'.-]*"
_LAST = rf"(?<![\w'.-])((?:[A-Z][\w'.-]*\s){{0,2}}{_WORD})"  # a place ending where a pattern goes on
_NEXT = rf"({_WORD}(?:\s[A-Z][\w'.-]*){{0,2}})"  # a place starting where a pattern stops
_JOURNEYS = [re.compile(rf"\b[Ff]rom {_LAST} to {_NEXT}"),
             re.compile(rf"{_LAST}\s*(?:->|→|=>)\s*{_NEXT}"),
             re.compile(rf"{_LAST} to {_NEXT}")]


def ends(schema: dict) -> tuple[str, str] | None:
    """The tool's (origin, destination) parameters, or None where it has not exactly one of each."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    places = {n for n, s in props.items() if resolve(s).get("type") == "string" and "enum" not in resolve(s)
              and kind_of(n, resolve(s)) in _PLACE_KINDS}
    starts = [n for n in places if set(name_words(n)) & FROM]
    stops = [n for n in places if set(name_words(n)) & TO]
    return (starts[0], stops[0]) if len(starts) == 1 and len(stops) == 1 and starts != stops else None


def journeys(text: str, held: list[str]) -> list[tuple[str, str]]:
    """The (from, to) places the text states (see the module doc); "A to B" only where both are
    capitalised or one of them is among `held`."""
    found: list[tuple[str, str]] = []
    held_said = {normalize(h) for h in held}
    for k, pattern in enumerate(_JOURNEYS):
        for m in pattern.finditer(text):
            a, b = m.group(1).strip(" .'-"), m.group(2).strip(" .'-")
            capitals = all(w[0].isupper() for w in f"{a} {b}".split())
            before = (text[:m.start(1)].split() or [""])[-1].lower()
            if k == 2 and (not capitals and not {normalize(a), normalize(b)} & held_said
                           or before in _DETERMINERS or before.isdigit() or a.lower() in _NOT_PLACES):
                continue  # not "a parcel to belfast", "2 kg to Ghent", "send it to Paris"
            if (normalize(a), normalize(b)) not in {(normalize(x), normalize(y)) for x, y in found}:
                found.append((a, b))
    return found


def journey(call: ToolCall, schema: dict, text: str, made: list[ToolCall]) -> ToolCall:
    """`call` with its two ends as the request says them (see the module doc)."""
    pair = ends(schema)
    if not pair or not all(isinstance(call.arguments.get(p), str) for p in pair):
        return call
    start, stop = pair
    a, b = call.arguments[start], call.arguments[stop]
    stated = journeys(text, [a, b])
    taken = {(normalize(c.arguments.get(start, "")), normalize(c.arguments.get(stop, "")))
             for c in made if c.name == call.name}
    if (normalize(a), normalize(b)) in {(normalize(x), normalize(y)) for x, y in stated} \
            or _after("from", a, text) and _after("to", b, text):
        return call
    fits = [(x, y) for x, y in stated if {normalize(x), normalize(y)} & {normalize(a), normalize(b)}
            and (normalize(x), normalize(y)) not in taken]
    if len(fits) == 1:
        return ToolCall(call.name, {**call.arguments, start: fits[0][0], stop: fits[0][1]}, call.id)
    if not fits and (_after("to", a, text) or _after("from", b, text)) \
            and not _after("from", a, text) and not _after("to", b, text):
        return ToolCall(call.name, {**call.arguments, start: b, stop: a}, call.id)
    return call


def _after(word: str, place: str, text: str) -> bool:
    """Does the text say `place` right after `word` ("from Ghent")?"""
    return bool(place.strip()) and re.search(rf"\b{word}\s+(?:the\s+)?{re.escape(place.strip())}\b", text, re.I) is not None
