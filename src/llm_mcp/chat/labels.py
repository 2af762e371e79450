"""A free-text value the request gives under its parameter's name is taken whole.

People fill a tool's form in words: "with subject 'Thank you' and body 'Thank you for your
hospitality! Best, Marco'", "subject: Boiler broken. body: Hello Mr Brennan, … Thanks, Aoife",
"a 20 minute timer labelled 'tea'". A small model copies such a value in part, or copies
another's:

    … subject 'Thank you' and body 'Thank you for your hospitality! Best, Marco'
        subject "Best, Marco", body "Thank you for your hospitality!"
            →  subject "Thank you", body "Thank you for your hospitality! Best, Marco"
    subject: Boiler broken. body: Hello Mr Brennan, … Could you send someone? Thanks, Aoife
        subject "Boiler broke", body "Hello Mr Brennan, … Could you send someone?"   →  the whole of each

A value is *labelled* (`labelled`) where the request says a word of the parameter's name, alike
up to its ending ("labelled" for `label`, "titled" for `title`; "saying" for running text: a
parameter of kind `text`, `body` or `message`, chat/kinds.py), at most one more word ("subject
line"), and then the value: in quotes, or after a colon up to the next label ("Subject: Address
change / Message: …") and, but for running text, the end of its sentence. A label or a title is
also labelled by "called" or "named": in quotes, or its next words (up to four, not a pronoun or
an article) up to a join, a number or a word of what is said of it ("a timer for 25 min called
descaling", "a timer called pasta for 10 minutes"). A free-text parameter
(a subject, a title, a label, running text, a query) labelled exactly once takes that value where
the model's is a part of it, a part of another parameter's labelled value, or said nowhere. Where
the model wrote something else that the request says (it may have rephrased, or the label may be
no label), or where the request labels the parameter never or twice, the model's value stands.

Free text unlabelled is kept to its own request (`trimmed`): cut where it runs on into another
("how to descale a nespresso machine then set timer"), and a query the model cut short taken to
the end of its request ("Pros" for "search the web for pros and cons of heat pumps and give me 10
results").
"""

from __future__ import annotations

import functools
import re

from llm_mcp.chat.kinds import kind_of
from llm_mcp.chat.stated import name_words
from llm_mcp.chat.types import Resolver, ToolCall, normalize

FREE = {"subject", "title", "text", "label", "query", "word"}  # kinds of free text (chat/kinds.py)
_SAYING = {"saying", "says", "reading", "reads"}  # words that label running text
_QUOTE = r"'([^'\n]+)'(?!\w)|\"([^\"\n]+)\"|‘([^’\n]+)’|“([^”\n]+)”"
_NAMING = {"called", "named"}  # words that name a label or title: "a timer called descaling"
# the words a label or title is named with, up to a join, a number or what is said of it ("for 10 min")
_NAMED = re.compile(r"\s+({w}(?:\s+{w}){{0,3}})(?![\w'-])".format(
    w=r"(?!(?:and|then|also|plus|for|at|on|in|to|from|by|with|about|please|pls|me|you|him|her|us|them|it|back|"
      r"the|a|an|my|your|his|our|their|this|that)\b)[^\W\d_][\w'-]*"), re.I)
_LABEL = re.compile(r"\b[a-z][a-z-]*:", re.I)  # a label before its value: "body:", "subject:"


def labelled(name: str, spec: dict, text: str) -> list[str]:
    """The values the text gives under the parameter's name (see the module doc)."""
    from llm_mcp.chat.options import _alike

    running = kind_of(name, spec) == "text"
    naming = kind_of(name, spec) in ("label", "title")
    wanted = [w for w in name_words(name) if len(w) >= 3]
    found = []
    for m in re.finditer(r"[a-z]+", text, re.I):
        word = m.group(0).lower()
        if not (any(_alike(word, w) for w in wanted) or running and word in _SAYING or naming and word in _NAMING):
            continue
        rest = text[m.end():]
        after = re.match(rf"(?:\s+[a-z]+)?\s*(?::\s*)?(?:{_QUOTE})", rest, re.I)
        if after:
            found.append(next(g for g in after.groups() if g is not None))
            continue
        after = _NAMED.match(rest) if word in _NAMING else None
        if after:  # "a timer for 25 min called descaling": the words up to a join or what follows
            found.append(after.group(1))
            continue
        after = re.match(r"(?:\s+[a-z]+)?:\s*", rest, re.I)
        if after:
            value = rest[after.end():]
            label = _LABEL.search(value)
            value = value[:label.start()] if label else value
            if not running:
                value = re.split(r"(?<=[^\s.])\.(?:\s|$)|\n", value)[0]
            value = value.strip().rstrip("/|;,-").strip()
            if value:
                found.append(value)
    return list(dict.fromkeys(v.strip() for v in found if v.strip()))


def free_texts(tools: list[dict], text: str) -> dict[str, set[str]]:
    """Per tool, the free text of three words or more that `text` labels for one of its
    parameters (`labelled`: "saying: I will be in around 10:00 on 9 April")."""
    found = {}
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        specs = {k: resolve(v) for k, v in (resolve(schema).get("properties") or {}).items()}
        found[tool["name"]] = {v for k, spec in specs.items() if spec.get("type") == "string" and "enum" not in spec
                               and kind_of(k, spec) in FREE for v in labelled(k, spec, text) if len(v.split()) >= 3}
    return found


def without_theirs(tool: str, texts: dict[str, set[str]], text: str) -> str:
    """`text` without the free text it labels for other tools than `tool` and not for `tool`
    (`texts`: `free_texts`): what is said only there is the other request's ("add the dentist on
    2027-04-09 at 08:30, then email my boss saying: I will be in around 10:00" → the event's time
    is not 10:00)."""
    for other, values in texts.items():
        if other != tool:
            for value in values - texts.get(tool, set()):
                text = text.replace(value, " ")
    return text


def whole(call: ToolCall, schema: dict, text: str) -> ToolCall:
    """`call` with each free-text value the request labels taken whole (see the module doc)."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    specs = {k: resolve(props.get(k)) for k in call.arguments}
    free = {k: labelled(k, s, text) for k, s in specs.items() if isinstance(call.arguments[k], str)
            and s.get("type") == "string" and "enum" not in s and kind_of(k, s) in FREE}
    if not any(free.values()):
        return call
    said = normalize(text)
    arguments = dict(call.arguments)
    for name, values in free.items():
        value = normalize(call.arguments[name])
        if len(values) != 1 or not value or value == normalize(values[0]):
            continue
        others = [normalize(v) for k, vs in free.items() if k != name for v in vs]
        if value in normalize(values[0]) or any(value in o for o in others) or value not in said:
            arguments[name] = values[0]
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


def trimmed(call: ToolCall, schema: dict, text: str, tools: list[dict]) -> ToolCall:
    """`call` with a short free-text value (a query, a subject, a title, a label: not running
    text) that runs on into another request of the message cut where it joins it, and an optional
    label that is only another request's words left out. Asked "search how to descale a nespresso
    machine then set timer for 25 min", the query "how to descale a nespresso machine then set
    timer" becomes "how to descale a nespresso machine": the words after "then" name another tool
    (chat/more.py `names`: "timer", `set_timer`). Asked "5 min timer, chicago weather in
    fahrenheit", the label "Chicago weather" goes, where the request labels nothing (`labelled`).
    The other way round, a query the model cut short runs on to the end of its request
    (`_cut_short`: "search the web for pros and cons of heat pumps and give me 10 results" written
    `query: "Pros"` becomes "pros and cons of heat pumps")."""
    from llm_mcp.chat.clauses import CUT, holds
    from llm_mcp.chat.more import names
    from llm_mcp.chat.stated import Stated, own_numbers

    def another(piece: str) -> bool:  # does the piece name a tool other than the call's?
        return bool(names(tools, Stated([{"role": "user", "content": piece}])) - {call.name})

    def closes(name: str, piece: str) -> bool:  # does the piece end the request `name`'s value is in?
        said = Stated([{"role": "user", "content": piece}])
        return bool(names(tools, said)) \
            or any(holds(k, resolve(props.get(k)), v, said) for k, v in call.arguments.items() if k != name) \
            or any(own_numbers(k, resolve(v), said) for k, v in props.items() if k != name)

    resolve = Resolver(schema)
    top = resolve(schema)
    props, required = top.get("properties") or {}, set(top.get("required") or [])
    arguments = dict(call.arguments)
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        kind = kind_of(name, spec)
        if not isinstance(value, str) or spec.get("type") != "string" or "enum" in spec \
                or kind not in FREE - {"text"} or labelled(name, spec, text):
            continue
        joins = [m for m in CUT.finditer(value) if another(CUT.split(value[m.end():])[0])]
        if joins and value[:joins[0].start()].strip(" ,.;:"):
            arguments[name] = value[:joins[0].start()].strip(" ,.;:")
        elif not joins and kind == "label" and name not in required and another(value):
            del arguments[name]
        elif not joins and kind == "query" and (longer := _cut_short(value, text, functools.partial(closes, name))):
            arguments[name] = longer
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


# what may close a request without being part of what it asks for
_FILLER = re.compile(r"(?:\s*\b(?:please|pls|plz|thanks|thank you|for me|now|asap|quickly|too|as well|online|"
                     r"on the web|on google|on the internet)\b[\s,.!?]*)+$", re.I)


def _cut_short(value: str, text: str, closes) -> str | None:
    """The words `text` says from `value` on to the end of its request, where the model's query
    stops short of them ("Pros" of "search the web for pros and cons of heat pumps and give me 10
    results"; "best ramen" of "… for best ramen in Osaka (just 5 results) and …"): up to a sentence
    end, a bracket or a join (chat/clauses.py `CUT`) whose next piece `closes` the request (names
    a tool, "search the web", or states another argument's value: "give me 10 results"), filler
    words ("please", "for me") aside. None where `value` is not said once, in words, or nothing
    follows it."""
    from llm_mcp.chat.clauses import CUT

    words = re.findall(r"\w+", value)
    if not words:
        return None
    found = list(re.finditer(r"(?<!\w)" + r"\W+".join(map(re.escape, words)) + r"(?!\w)", text, re.I))
    if len(found) != 1:
        return None
    rest = re.split(r"[.?!;:](?:\s|$)|[()\[\]\"\n]", text[found[0].end():])[0]
    for join in CUT.finditer(rest):
        if closes(CUT.split(rest[join.end():])[0]):
            rest = rest[:join.start()]
            break
    rest = _FILLER.sub("", rest).rstrip(" ,;:-")
    if not re.search(r"\w", rest) or len(rest.split()) > 8:
        return None
    return text[found[0].start():found[0].end()] + rest
