"""One more call where a reply of calls ends, one more argument where a call closes: kept only if new.

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
that no call of the reply holds or contains (as a value, or as digits inside one: "10am" is held
by "10:00", "14" by "14 Rue Oberkampf"), said outside the free text the reply's calls hold
(`outside`: "translate 'a table for two by the window'" asks for no two-minute timer); or the
call holds an option of one of its enums that the conversation names in the option's own words
and no call holds ("standard vs express" answered with express alone; "… and tell the driver to
call on arrival", `call_on_arrival`, after a redirect), or a list of an enum's options each
named even loosely, one no call holds ("… the driver should ring the bell", `ring_bell`, after
a `track_parcel`); or the call is to a tool the conversation names that no call is to (`names`:
"… and show me the nearest drop-off points in Stockholm too" after a pickup); or it holds an
item of a list of names the conversation says that no call holds, where a call holds another
("weather in Berlin, Vienna and Prague" answered for Berlin and Prague: Vienna); or, for a tool
with the two ends of a journey (chat/ends.py), a journey the conversation states that no call
holds ("quote: 20kg Rotterdam -> Antwerp, overnight. and 20kg Rotterdam -> Brussels"); a call that
repeats one made, on a tool with such an option, takes it first (`another_option`: asked again
after express, the model writes express again), and one that copies an identifier (an email …)
a call to its tool holds takes the one stated that no call holds, where there is one
(`another_id`: "same instructions for both PX-120987 and PX-120988"). A required value
that is said nowhere (the model making up a city, a ticker, an amount), that is another
parameter's option ("economy" as an origin) or an identifier not of its example's shape, a value
that misses its parameter's `pattern` (a booking's "BK-5104" as a patient id the schema holds to
PT- and five digits), a call that repeats one already made, one whose required values are all
taken ("hour" as a second timer's label, its minutes those of the first), one that is new only in
free words: dropped.
Free words alone are no sign of another request: in a chatty message any phrase can fill a city,
a query or a title ("I'm European, so celsius" → `get_weather(location="European")`), so a second
city or query is left to the model unless a named tool or a list says so. One is
asked for only where the conversation states such a value, names such an option or tool, or says
such a list, that no call holds yet (`takers`: else nothing could be kept, and the decoding would
be spent for nothing), and the guide holds it to the tools that could take such a value (those
`takers` gives). A call asked for and dropped is asked for again in its place (serve/decode.py
`Row.ask_again`: the reply goes back to before it), the guide holding it off the dropped call's
tool, where another tool could take what is left:

    quote for ORCL and IBM, and lockers in Leeds          (could take what is left: get_quote, find_lockers)
        get_quote(ORCL)                                + get_quote(ORCL)                dropped (a repeat)
                                                       + find_lockers(city="Leeds")     kept (asked off get_quote)

A kept call is followed by the model's own choice to stop or go on; a reply asks for at most
`MAX_MORE` (asked again counts).

The same goes for an argument. Where the model closes a call's arguments leaving out an optional
parameter the conversation may fill (`wanted`: a number it states that no argument of the reply
holds, within the parameter's range; a yes/no it says a word about, "history" for
`include_history`, "every scan" for its description "Return every scan event …" (`flag_words`:
words of the name, and of the description that neither the tool nor another parameter uses);
a person's name it states that no string of the reply holds, for a parameter of people's
names; an option of its enum the conversation names and no value holds, not in a greeting; for
a list of an enum's options, one it names even loosely that no value holds, "call me when the
driver arrives" for `call_on_arrival`; for free text, a value it labels once with a word of the
parameter's name that no value holds, "a 20 minute timer labelled 'tea'", chat/labels.py),
the decoder writes `, "` in place of the closing brace and the model names
one more argument (the guide holds it to the parameters still open) and writes its value. The
argument is kept only if the conversation grounds it (`kept`): a number it states that no other
argument holds, a yes/no it says a word about, an option it names, a list of options each
named loosely, such a name (two words or more, word for word), the labelled value or a part of it
(taken whole by chat/labels.py); else the call is made without it (the raw text keeps what the model
wrote):

    find 3 drop-off points in Leeds
        find_drop_off_points(city="Leeds")             + max_results=3                 kept
    track PX-319055 with the full history
        track_parcel(tracking_number="PX-319055")      + include_history=true          kept
    send PX-401187 to 7 Elm Row, Bath instead, it's for Amira Haddad
        redirect_parcel(…, new_address="7 Elm Row, Bath")  + recipient_name="Amira Haddad"   kept
    book a pickup at 9 Castle Street for tomorrow
        schedule_pickup(address="9 Castle Street", …)  (9 is held by the address: not asked)

Once per call block, at most `MAX_ARGS` per reply.

Only a decoder that can write into the reply does this (the local engine, `llm-mcp chat`,
`llm-mcp eval`, with the guide and the grounding on); vLLM's replies are taken as vLLM ends them.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import Any

from llm_mcp.chat.kinds import kind_of
from llm_mcp.chat.options import NOT, Words, _alike
from llm_mcp.chat.stated import Stated, call_key, clock, copied_kind, dated, leaves, looks, name_words, own_numbers, stem
from llm_mcp.chat.types import Resolver, ToolCall, normalize

MAX_MORE = 2  # calls asked for per reply beyond the model's own
ROOM = 32  # reply tokens left, at least, to ask for one (one that runs out is dropped)
OPENING = '\n<tool_call>{"name": "'  # the built-in format's call block, up to the tool's name
MAX_ARGS = 2  # arguments asked for per reply beyond the model's own
ARG_OPENING = ', "'  # one more argument of an open call, up to its name


@dataclass(frozen=True)
class Dropped:
    """A call asked for that asks for nothing new: the reply ends before it."""
    call: ToolCall


def fits(call: ToolCall, schema: dict, made: list[ToolCall], stated: Any, named: bool = False,
         others: set[str] = frozenset()) -> bool:
    """Is `call`, asked for after the reply's calls `made`, one to keep (see the module doc)?
    `stated`: chat.stated.Stated, the conversation's values; `named`: does the conversation name
    the call's tool (`names`)? `others`: the enum options of the other tools, no free value either
    ("Celsius" as a language)."""
    resolve = Resolver(schema)
    top = resolve(schema)
    props = top.get("properties") or {}
    if call_key(call.name, call.arguments) in {call_key(m.name, m.arguments) for m in made}:
        return False
    held, rest = _held(made), outside(made, stated)
    new = _named_free(_options(call.arguments, props, resolve), held, rest) \
        or _loose_free(props, resolve, held, rest, call.arguments) \
        or named and all(m.name != call.name for m in made) \
        or any(_words(v) in _unheld(made, stated) for v in call.arguments.values() if isinstance(v, str)) \
        or _journey_of(call) in _free_journeys(schema, made, rest)
    if any(_breaks(resolve(props.get(name)), value) for name, value in call.arguments.items()):
        return False  # "BK-5104" as a patient id of pattern ^PT-\d{5}$
    options = {_words(option) for option in [*_options(None, props, resolve), *others]}
    for name in top.get("required") or []:
        spec = resolve(props.get(name))
        value = call.arguments.get(name)
        if isinstance(value, list) and not _said_items(name, spec, value, stated, options, resolve):
            return False  # a list of free words: each said, none another's option (["referral"] as medications)
        if value is None or isinstance(value, (bool, dict, list)) or "enum" in spec or "const" in spec:
            continue
        if not said(name, spec, value, stated) or _words(str(value)) in options or _unlike(name, spec, value):
            return False  # said nowhere, another parameter's option ("economy" as an origin), no id
        new = new or (typed(name, spec, value) and not any(_holds(h, value) for h in held)
                      and said(name, spec, value, rest))
    return new


def _breaks(spec: dict, value: Any) -> bool:
    """Does a string `value` miss its parameter's `pattern` (case aside: the guide leaves patterns
    to be checked after parsing, and a written "pt-48213" is the same patient)?"""
    pattern = spec.get("pattern")
    if not isinstance(value, str) or not isinstance(pattern, str):
        return False
    try:
        return re.search(pattern, value.strip(), re.IGNORECASE) is None
    except re.error:
        return False  # a pattern Python cannot read (an ECMA-only construct) judges nothing


def _said_items(name: str, spec: dict, value: list, stated: Any, options: set[str], resolve: Resolver) -> bool:
    """Is each free string of a required list (items with no enum) said in the conversation, and
    none an option of another parameter or tool? Lists of options are read by `_loose_free`."""
    items = resolve(spec.get("items"))
    if "enum" in items or "const" in items:
        return True
    return all(said(name, items, v, stated) and _words(v) not in options for v in value if isinstance(v, str))


def another_option(call: ToolCall, schema: dict, made: list[ToolCall], stated: Any) -> ToolCall:
    """`call`, asked for, where it repeats a call of the reply and its tool has an enum option the
    conversation names that no call holds, with that option: "standard vs express" answered with
    express, then asked again, writes express again; it becomes the standard quote. Else `call`."""
    if call_key(call.name, call.arguments) not in {call_key(m.name, m.arguments) for m in made}:
        return call
    resolve = Resolver(schema)
    held = _held(made)
    for name, spec in (resolve(schema).get("properties") or {}).items():
        free = [o for o in resolve(spec).get("enum") or [] if isinstance(o, str) and _named_free([o], held, stated)]
        if free:
            return ToolCall(call.name, {**call.arguments, name: free[0]}, call.id)
    return call


def another_id(call: ToolCall, schema: dict, made: list[ToolCall], stated: Any) -> ToolCall:
    """`call`, asked for, with a value that can only be copied (an identifier, an email …:
    chat/stated.py `copied_kind`) that a call of the reply to the same tool holds already, where
    the conversation states exactly one value of its kind (of its example's shape) that no call
    holds, with that one: "same instructions for both PX-120987 and PX-120988" answered for
    PX-120988, then asked again, writes PX-120988 again; it becomes PX-120987. Else `call`."""
    from llm_mcp.chat.kinds import example_of

    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    theirs = [v for m in made if m.name == call.name for v in m.arguments.values()]
    held = _held(made)
    arguments = dict(call.arguments)
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        kind = copied_kind(name, spec) if spec.get("type") == "string" and isinstance(value, str) else None
        if not kind or not any(_words(value) == _words(str(v)) for v in theirs):
            continue
        free = [m.readings[0] for m in stated(kind, example_of(spec) if kind == "identifier" else None)
                if not any(_holds(h, m.readings[0]) for h in held)]
        if len(free) == 1:
            arguments[name] = free[0]
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


def _unlike(name: str, spec: dict, value: Any) -> bool:
    """Is `value`, for an identifier parameter whose description shows an example, not of that
    example's shape ("Unit 4, Riverside Trading Estate" where it shows "PX-482913")?"""
    from llm_mcp.chat import mentions
    from llm_mcp.chat.kinds import example_of

    example = example_of(spec) if copied_kind(name, spec) == "identifier" else None
    return example is not None and mentions.shape(str(value)) != mentions.shape(example)


def takers(tools: list[dict], made: list[ToolCall], stated: Any, named: set[str] = frozenset()) -> set[str]:
    """The tools that could take what the conversation states and no call of the reply holds: a
    value of a kind with a form of its own that one of the tool's required parameters takes, an
    option of one of its enums named in its own words ("express", "call on arrival"), or of a list
    of an enum's options named loosely ("ring the bell", `_loose_free`), the tool itself named and
    no call to it (`named`: `names`), an item of a list a call's value is an item of (that call's
    tool), a journey no call holds (`_free_journeys`, for a tool with two ends). Where there is
    none, no call asked for could be kept (`fits`), and none is asked for; where there are, the
    guide holds a call asked for to them."""
    from llm_mcp.chat.kinds import example_of

    found = set(named) - {m.name for m in made}
    if unheld := _unheld(made, stated):
        lists = [items for items in ({_words(r) for r in m.readings} for m in stated("list")) if items & unheld]
        found |= {m.name for m in made for v in leaves(m.arguments)
                  if isinstance(v, str) and any(_words(v) in items for items in lists)}
    held, stated = _held(made), outside(made, stated)
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        top = resolve(schema)
        props = top.get("properties") or {}
        if _named_free(_options(None, props, resolve), held, stated) or _loose_free(props, resolve, held, stated) \
                or _free_journeys(schema, made, stated):
            found.add(tool["name"])
        for name in top.get("required") or []:
            spec = resolve((top.get("properties") or {}).get(name))
            if spec.get("type") in ("integer", "number"):
                values = [m.readings for m in stated("number")]
            elif (kind := kind_of(name, spec)) == "ticker":  # a word in capitals
                values = [(w,) for w in re.findall(r"\b[A-Z]{2,5}\b", stated.text)]
            elif kind in TYPED and kind != "date-time":
                values = [m.readings for m in stated(kind, example_of(spec) if kind == "identifier" else None)]
            else:
                continue
            if any(not any(_holds(h, r) for h in held for r in readings) for readings in values):
                found.add(tool["name"])
    return found


# verbs of tools' names that say little of what a tool is for
_VERBS = {"get", "set", "find", "make", "create", "add", "list", "show", "check", "update", "fetch", "send", "look",
          "lookup", "run", "start", "book", "do", "new"}


def names(tools: list[dict], stated: Any) -> set[str]:
    """The tools the conversation names: a word of the tool's name (but a verb that says little,
    "get", "find", "set") or of the name of one of its yes/no parameters (but `_FLAG_WORDS`, as
    "include"), four letters or more, that no other tool's name, nor the name of another tool's
    yes/no parameter, has ("drop" and "points" of `find_drop_off_points`, "signature" of its
    `signature_required`; not "parcel", which several parcel tools' names have), alike up to its
    ending ("park" for `book_parking`: chat/options.py), where what follows the part they share
    is an ending in both (`_ENDINGS`: "week" is no word of `open_weekends`)."""
    def words(tool: dict) -> set[str]:
        props = (tool.get("parameters") or {}).get("properties") or {}
        flags = [n for n, spec in props.items() if isinstance(spec, dict) and spec.get("type") == "boolean"]
        return {stem(w) for n in [str(tool.get("name") or ""), *flags] for w in name_words(n)
                if len(w) >= 4 and w not in _VERBS and w not in _FLAG_WORDS}

    every = [words(t) for t in tools]
    return {t["name"] for k, t in enumerate(tools)
            if any(_inflected(w, s) for w in every[k] - set().union(*every[:k], *every[k + 1:]) for s in stated.stems)}


# what may follow the part two forms of a word share ("park", "parking"; "arrive", "arrival")
_ENDINGS = {"", "s", "es", "e", "ed", "d", "ing", "er", "ers", "al", "ly", "y", "ies", "ied", "ion", "ions", "ation",
            "ment", "able"}


def _inflected(word: str, want: str) -> bool:
    """Are `word` and `want` alike up to an ending (`_alike`), what follows their shared part an
    ending in both, or "our" and "or" ("neighbour", "neighbor"; not "week", "weekend", nor "time",
    "timer")?"""
    common = os.path.commonprefix([word, want])
    ends = {word[len(common):], want[len(common):]}
    return _alike(word, want) and (ends <= _ENDINGS or ends == {"ur", "r"})


def _compound(word: str, want: str) -> bool:
    """Is one of `word` and `want` the other and a common English word after it (Faker's list of
    them; a plural's "s" aside): "week" and "weekends", not "hist" and "history"?"""
    short, long = sorted((word, want), key=len)
    rest = long[len(short):]
    rest = rest[:-1] if rest.endswith("s") and len(rest) > 3 else rest
    return long.startswith(short) and len(rest) >= 3 and rest in _common()


@functools.cache
def _common() -> frozenset[str]:
    """About a thousand common English words (Faker's lorem list for en_US)."""
    from faker.providers.lorem.en_US import Provider

    return frozenset(Provider.word_list)


def _unheld(made: list[ToolCall], stated: Any) -> set[str]:
    """The items of a list of names the conversation says ("Berlin, Vienna and Prague") that no
    call's value is, of a list some call's value is an item of (its `_words`)."""
    held = {_words(v) for v in _held(made) if isinstance(v, str)}
    return {item for m in stated("list") for item in map(_words, m.readings)
            if item not in held and held & set(map(_words, m.readings))}


def _options(arguments: dict | None, props: dict, resolve: Resolver) -> list[str]:
    """The options of the enums of a tool's parameters `props` (an array's items' too): all of
    them, or those `arguments` hold."""
    found = []
    for name, spec in props.items():
        spec = resolve(spec)
        enum = spec.get("enum") or resolve(spec.get("items")).get("enum") or []
        held = set(map(str, leaves(arguments.get(name)))) if arguments is not None else None
        found += [o for o in enum if isinstance(o, str) and (held is None or o in held)]
    return found


def _named_free(options: list[str], held: list, stated: Any) -> bool:
    """Does the conversation name one of `options` in its own words that no value of `held` holds?"""
    return any(stated.names(option) and not any(_holds(h, option) for h in held) for option in options)


def outside(made: list[ToolCall], stated: Any) -> Any:
    """The conversation without the free text the reply's calls hold (a value of three words or
    more, as said: the text to translate, an email's body): what is said only there belongs to
    that request ("translate 'a table for two by the window'" asks for no timer of two minutes)."""
    text = stated.text
    for value in _held(made):
        if isinstance(value, str) and len(value.split()) >= 3:
            text = re.sub(re.escape(value.strip()), " ", text, flags=re.IGNORECASE)
    return stated if text == stated.text else Stated([{"role": "user", "content": text}])


def _loose_free(props: dict, resolve: Resolver, held: list, stated: Any, arguments: dict | None = None) -> bool:
    """Does a parameter of `props` that is a list of an enum's options have an option the
    conversation names even loosely ("ring the bell first" for `ring_bell`) that no value of
    `held` holds: any, or (with `arguments`) one of the list they hold, each of which it names so?"""
    for name, spec in props.items():
        options = _loose_list(resolve(spec), resolve)
        chosen = options if arguments is None else arguments.get(name)
        if options and isinstance(chosen, list) and chosen \
                and (arguments is None or all(o in options and stated.names_loosely(o, options) for o in chosen)) \
                and any(stated.names_loosely(o, options) and not any(_holds(h, o) for h in held) for o in chosen):
            return True
    return False


def _free_journeys(schema: dict, made: list[ToolCall], stated: Any) -> set[tuple[str, str]]:
    """The journeys the conversation states (chat/ends.py `journeys`: "20kg Rotterdam -> Brussels")
    that no call of the reply holds, end for end, for a tool of `schema` with the two ends."""
    from llm_mcp.chat.ends import ends, journeys

    if not ends(schema):
        return set()
    strings = [v for v in _held(made) if isinstance(v, str)]
    held = {pair for pair in map(_journey_of, made) if pair}
    return {(normalize(a), normalize(b)) for a, b in journeys(stated.text, strings)} - held


def _journey_of(call: ToolCall) -> tuple[str, str] | None:
    """The (origin, destination) a call holds, by its parameters' names (chat/ends.py `ends`)."""
    from llm_mcp.chat.ends import FROM, TO

    start = [v for k, v in call.arguments.items() if isinstance(v, str) and set(name_words(k)) & FROM]
    stop = [v for k, v in call.arguments.items() if isinstance(v, str) and set(name_words(k)) & TO]
    return (normalize(start[0]), normalize(stop[0])) if len(start) == 1 and len(stop) == 1 else None


def _held(made: list[ToolCall], arguments: dict | None = None) -> list:
    """The values the reply's calls hold, and the `arguments` of the call being written (yes/no aside)."""
    return [v for held in [*(m.arguments for m in made), arguments or {}] for v in leaves(held)
            if not isinstance(v, bool)]


# kinds whose values the conversation states in a form of their own (chat/kinds.py)
TYPED = {"email", "phone", "url", "uuid", "identifier", "date", "time", "date-time", "currency", "language",
         "ticker"}


def typed(name: str, spec: dict, value: Any) -> bool:
    """Is `value` one of a kind with a form of its own: a number, an address, an identifier or a
    ticker as such, a day, a time, a currency, a language? Free words (a city, a query, a title)
    are not: any phrase of a chatty message can fill them."""
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
        return looks(kind, value, spec)
    return True  # a day, a time, a currency or a language: `said` read it as one


def said(name: str, spec: dict, value: Any, stated: Any) -> bool:
    """Does the conversation state `value` for this parameter: word for word, or as one of its
    readings (a currency's code for its name, a day or a time in the tool's form, a number in
    words or a length of time in the parameter's unit)?"""
    if isinstance(value, (int, float)):
        return value in {m.readings[0] for m in stated("number")} or value in own_numbers(name, spec, stated)
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
    """Does an earlier call's value `held` hold `value` (a number: equal, or digits of it inside
    words, "14 Rue Oberkampf", "10:00"; words: one inside the other)?"""
    if isinstance(value, (int, float)) and isinstance(held, str):
        return value in {float(d) for d in re.findall(r"\d+(?:\.\d+)?", held)}
    if isinstance(value, (int, float)) or isinstance(held, (int, float)):
        return isinstance(value, (int, float)) and isinstance(held, (int, float)) and held == value
    a, b = _words(str(held)), _words(str(value))
    return b.strip() != "" and (b in a or a in b)


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[^\W_]+", text.lower())) + " "


# words of a yes/no parameter's name or description that say nothing of what it is about
_FLAG_WORDS = {"include", "includes", "is", "has", "have", "with", "without", "enable", "enabled", "disable",
               "required", "require", "only", "allow", "allowed", "show", "use", "open", "send", "all", "full",
               "default", "true", "false", "whether", "return", "returns",
               # and words of any sentence
               "just", "must", "since", "every", "also", "when", "that", "this", "than", "from", "into", "some",
               "they", "them", "their", "there", "where", "here", "were", "been", "does", "each", "more", "like",
               "will", "would", "should", "could", "what", "which", "your"}


def flag_words(tool: dict) -> dict[str, set[str]]:
    """For each yes/no parameter of `tool` (name, description, parameters), the words (stems)
    that say what it is about: those of its name ("history" of `include_history`), and those of
    its description that neither the tool's name and description nor another parameter's use
    ("saturday", "sunday" of `open_weekends`: "Only show points open on Saturday or Sunday")."""
    def words(text: str) -> set[str]:
        return {stem(w) for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in _FLAG_WORDS}

    schema = tool.get("parameters") or {}
    resolve = Resolver(schema)
    specs = {name: resolve(spec) for name, spec in (resolve(schema).get("properties") or {}).items()}
    about = {name: words(" ".join(name_words(name)) + " " + str(spec.get("description") or ""))
             for name, spec in specs.items()}
    tool_words = words(" ".join(name_words(str(tool.get("name") or ""))) + " " + str(tool.get("description") or ""))
    return {name: words(" ".join(name_words(name)))
            | (about[name] - tool_words).difference(*(w for other, w in about.items() if other != name))
            for name, spec in specs.items() if spec.get("type") == "boolean"}


def flag_said(name: str, flags: dict[str, set[str]], stated: Any) -> bool:
    """Does the conversation say a word about what the yes/no parameter `name` is (`flag_words`)?"""
    return bool(flags.get(name, set()) & stated.stems)


def flag_told(name: str, arguments: dict, stated: Any) -> bool | None:
    """What the conversation tells the yes/no parameter `name` to be, by a word of its name (but
    `_FLAG_WORDS`; alike up to its ending, chat/options.py: "sign" for `signature_required`,
    "hist" for `include_history`, but not the first word of a compound, `_compound`: "week" for
    `open_weekends`): yes
    where every such word is said plainly ("someone has to sign for it"), no where every one is
    denied ("no signature needed", "I don't need the whole history": a "not", "don't", "never",
    "without" up to five words before it or three after, a "no" just before); None where it says
    none, or both.
    Where the conversation states several identifiers, only the parts (chat/clauses.py) that hold
    one of the call's `arguments` count: "track PX-1 with its history and PX-2" tells PX-2 nothing."""
    want = [w for w in name_words(name) if len(w) >= 4 and w not in _FLAG_WORDS]
    if not want:
        return None
    texts = [stated.text]
    if len(stated("identifier")) > 1:
        held = [normalize(v) for v in arguments.values() if isinstance(v, str) and normalize(v)]
        texts = [p.text for p in stated.parts if any(h in normalize(p.text) for h in held)]
    told = set()
    for text in texts:
        words = Words(text)
        for at, word in enumerate(words.words):
            if any(_alike(word, w) and not _compound(word, w) for w in want):
                near = [words.words[k] for k in range(max(0, at - 5), min(at + 4, len(words.words)))
                        if k != at and words.sentence[k] == words.sentence[at]]
                told.add(not (NOT & set(near) or "no" in words.words[max(0, at - 2):at]))
    return told.pop() if len(told) == 1 else None


def wanted(schema: dict, arguments: dict, made: list[ToolCall], stated: Any, flags: dict | None = None) -> bool:
    """Where a call to a tool of `schema` closes with `arguments`: is there an optional parameter
    it leaves out, one the grammar still allows (after the last argument written, in the schema's
    order), that the conversation may fill (see the module doc)? `flags`: the tool's `flag_words`."""
    flags = flag_words({"parameters": schema}) if flags is None else flags
    resolve = Resolver(schema)
    top = resolve(schema)
    names = list(top.get("properties") or {})
    last = max((names.index(k) for k in arguments if k in names), default=-1)
    required = set(top.get("required") or [])
    for name in names[last + 1:]:
        spec = resolve(top["properties"][name])
        if name in required or "const" in spec:
            continue
        if "enum" in spec:  # an option it names that no value holds: "…: economy, standard and express"
            if _named_free([o for o in spec["enum"] if isinstance(o, str)], _held(made, arguments), stated):
                return True
            continue
        if spec.get("type") in ("integer", "number") and _free_numbers(name, schema, arguments, made, stated):
            return True
        options = _loose_list(spec, resolve)
        if options and any(stated.names_loosely(o, options) for o in set(options) - set(_held(made, arguments))):
            return True  # a list of options, one named loosely ("call me when the driver arrives")
        if spec.get("type") == "boolean" and flag_said(name, flags, stated):
            return True
        if spec.get("type") == "string" and kind_of(name, spec) == "person" and _free_names(arguments, made, stated):
            return True
        if spec.get("type") == "string" and _free_label(name, spec, _held(made, arguments), stated):
            return True  # a value the request labels that no value holds: "a 20 minute timer labelled 'tea'"
    return False


def kept(name: str, schema: dict, arguments: dict, made: list[ToolCall], stated: Any,
         flags: dict | None = None) -> bool:
    """Is the argument `name` that a call was asked for (and wrote into `arguments`) one the
    conversation grounds: a number it states that no other argument holds (or says in the
    parameter's own terms), a yes/no it says a word about (`flag_words`), an option it names, a
    list of options it names each loosely (`Stated.names_loosely`), a clock time or day it states
    ("starts at 10 in the morning", asked for by the number 10)?"""
    resolve = Resolver(schema)
    spec = resolve((resolve(schema).get("properties") or {}).get(name))
    value = arguments.get(name)
    others = {k: v for k, v in arguments.items() if k != name}
    if isinstance(value, bool):
        flags = flag_words({"parameters": schema}) if flags is None else flags
        return spec.get("type") == "boolean" and flag_said(name, flags, stated)
    if isinstance(value, (int, float)):
        return value in _free_numbers(name, schema, others, made, stated) or value in own_numbers(name, spec, stated)
    if isinstance(value, str) and "enum" in spec:
        return stated.names(value.strip())
    if isinstance(value, list) and (options := _loose_list(spec, resolve)):
        return bool(value) and all(v in options and stated.names_loosely(v, options) for v in value)
    if isinstance(value, str) and (clock(name, spec) or dated(name, spec)):
        return said(name, spec, value, stated) and not any(v == value for v in _held(made, others))
    if isinstance(value, str) and kind_of(name, spec) == "person":
        return len(value.split()) >= 2 and any(_words(value) in _words(n) for n in _free_names(others, made, stated))
    if isinstance(value, str) and (label := _free_label(name, spec, _held(made, others), stated)):
        return bool(_words(value).strip()) and _words(value) in _words(label)  # a part: taken whole (labels.whole)
    return False


def _free_label(name: str, spec: dict, held: list, stated: Any) -> str | None:
    """The value the conversation labels once with a word of the free-text parameter's name
    (chat/labels.py: "labelled 'tea'", "subject: Boiler broken") where no value of `held` holds it."""
    from llm_mcp.chat.labels import FREE, labelled

    if "enum" in spec or kind_of(name, spec) not in FREE:
        return None
    values = labelled(name, spec, stated.text)
    return values[0] if len(values) == 1 and not any(_holds(h, values[0]) for h in held) else None


def _loose_list(spec: dict, resolve: Resolver) -> list[str]:
    """The options of a parameter that is a list of an enum's options, else []."""
    items = resolve(spec.get("items")) if spec.get("type") == "array" else {}
    return [o for o in items.get("enum") or [] if isinstance(o, str)]


def _free_numbers(name: str, schema: dict, arguments: dict, made: list[ToolCall], stated: Any) -> list:
    """The numbers the conversation states that parameter `name` could take: within its range,
    held by no argument of the call or of the reply's calls (as a number, or as digits inside a
    value: "9 Castle Street"), and not said in another parameter's own terms ("10km" is
    `radius_km`'s, not `max_results`')."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    spec = resolve(props.get(name))
    theirs = {n for other, s in props.items() if other != name for n in own_numbers(other, resolve(s), stated)}
    values = _held(made, arguments)
    low, high = spec.get("minimum", float("-inf")), spec.get("maximum", float("inf"))
    return [n for n in (m.readings[0] for m in stated("number"))
            if n not in theirs and not any(_holds(v, n) for v in values) and low <= n <= high
            and (spec.get("type") == "number" or float(n).is_integer())]


def _free_names(arguments: dict, made: list[ToolCall], stated: Any) -> list[str]:
    """The people's names the conversation states (chat/mentions.py `people`) that no string of
    the call or of the reply's calls holds: "Birch Lane" is the address's in "3 Birch Lane, York"."""
    held = [_words(v) for v in _held(made, arguments) if isinstance(v, str)]
    return [m.readings[0] for m in stated("person") if not any(_words(m.readings[0]) in h for h in held)]
