"""Calls whose identifiers come from nowhere are withheld, and the user is asked for them.

A small model asked "reschedule my delivery please" may answer
`reschedule_delivery(tracking_number="PX-nnnn")`: the tool's own example, or a number it saw in
training. Some values can only be copied, never inferred: an order or tracking number, an email
address, a phone number, a URL, a UUID. When such a value of a call is nowhere in the
conversation (any turn's text, an earlier call's arguments, a tool's result), the call is not
made; the reply asks for what is missing instead:

    reschedule my delivery please   →   To call reschedule_delivery I need the tracking number: what is it?

More values come from nowhere (`unstated`): an identifier without the digits or letters
its description's example has ("can I ship lithium batteries?" → `track_parcel(tracking_number=
"lithium batteries")`, said but no tracking number); a value of the shape of a tool's identifier
example ("PX-482913") in a parameter of another kind that no turn states ("my parcel arrived
damaged" → `get_shipping_quote(origin="PX-nnnn")`), and a date where the conversation names no
day at all: no date, weekday, month, "today", "tomorrow" or "next week", and no digit but those
of identifiers and street addresses ("what's the difference between express and overnight?" →
`schedule_pickup(pickup_date="2023-01-01")`; "move PX-746650 please" → `new_date` asked for),
a place that is no place (chat/places.py: "how long does express take compared to
standard?" → `get_shipping_quote(origin="compared", destination="standard")`); and for a
required parameter, a currency where the conversation names none ("How many minutes are in 3.5
hours?" → `convert_currency(from_currency="USD", …)`), and a number where it says none at all
(`amount: 12.99` for "what does the currency code CHF stand for").

Which parameters hold such values is read from their schema (chat/kinds.py: the format, the
name, the description): strings without an enum whose kind is `identifier`, `email`, `phone`,
`url` or `uuid`, at the top of the arguments or as the items of a string array, and whose value
has that kind's shape (an address has an "@", an identifier no spaces; a parameter whose schema
says it holds an address, `format: email` or "address" in its description, needs an "@" whatever
the model wrote, so `to: "my boss"` is asked about). Values are
compared as `llm-mcp eval` compares strings (lower case, no spaces or punctuation), so "px 482913"
grounds "PX-482913". A short all-letter code (an airport's "CDG", a currency's "USD") can be
known from a name, so it is never withheld. Everything else (cities, names, dates, free text) is
the model's to infer or rephrase and is left alone.

Before that check, a value the model wrote that the conversation does not state is taken from
the conversation when exactly one stated value fits (chat/mentions.py reads them by rule):

    confirm to mark.dubois@gmail.com       to: dubois@gmail.com   →  mark.dubois@gmail.com
    where is PX-319055?                    tracking: PX-482913    →  PX-319055
    convert 3,000 / fifteen thousand ...   amount: 3 / 15         →  3000 / 15000
    ... Swiss francs to euros              from_currency: SZF     →  CHF
    a timer for 1 hour 15 minutes          minutes: 15            →  75
    say it in korean                       target_language: KORE  →  Korean
    dentist at 9am on 20 November          19:00, 2026-02-20      →  09:00, 2026-11-20
    to Herengracht 180, 1016 BR Amsterdam  1016 BR Amsterdam      →  Herengracht 180, 1016 BR Amsterdam

"Fits": a value of the parameter's kind, read from the parameter's schema as above (an
identifier, email, phone number, URL or UUID; a date for `format: date` or YYYY-MM-DD; a clock
time for HH:MM; a currency, where the model wrote a three-letter code; a language, by name or
two-letter code as the model wrote it; a length of time, for a number whose name or description
gives its unit, "minutes"; an integer or number), and
- an identifier of the shape of the description's example, when it gives one;
- for an address parameter, the street address (chat/mentions.py `addresses`: a street with its
  number and the parts after it in capitals) that the model's value is a part of: it cut it short;
  or any stated one, where the model wrote a day or a time there, alone or after it ("3 March
  2027", "501 Market Street, San Francisco, 2027-06-30");
- for a place or an address, a code the model wrote with its label ("postcode 10115", "zip
  90210") without it;
- for a count ("Number of parcels", `parcel_count`) said nowhere, the one count the request says
  ("4 boxes"; not the hours of times, house numbers or days), but where it may be added up ("me
  and my two kids") or is vague ("a couple");
- a number written in pieces ("3,000", "2.5k", "fifteen thousand") whose digits begin with the
  model's: the model copied its first piece. A number the model may have worked out ("half an
  hour" → 30) is never replaced;
- of a currency name several share ("dollars"), the one with the bare sign ("$": USD);
- a day said without its year takes the model's year; a time said without am/pm ("7:30") is read
  in waking hours (07:00–21:59) where only one reading is, else as the reading nearest the
  model's;
- not a value another argument of the call holds or contains ("French" inside the text to
  translate), nor one that would repeat a call the reply already made.
A yes/no the model wrote against what the request says of it, by a word of the parameter's name
(chat/more.py `flag_told`: "someone has to sign for it" → `signature_required: true`; "no
signature needed" → false), takes the request's.
A number said with a word of the parameter's name ("5 results" for `max_results`, "10km" for
`radius_km`, "12 kilos" for `weight_kg`: a unit by its other names), or said as how many to show
("the 3 closest", "top 5", "(just 2)": chat/mentions.py `limits`) for a parameter that says how
many results (`max_results`, `limit`, `top_k`: chat/stated.py `limiting`), fits that parameter
alone. The source currency of a conversion (a currency parameter named `from_…`, `source_…`,
`base_…`) is the currency of the sum the request states with the call's amount ("60 euros",
"$20"), the amount being in it ("convert 60 euros to francs" and "I need 60 euros: how many
francs?" are both from EUR); and of two currency arguments that hold the same code, the other
takes the request's other currency. These two are applied again (`converted`) where
chat/clauses.py gave a currency back from the call's own part ("whats 80 CHF in GBP. also … 80
CHF in INR" written `GBP → INR` twice: the second becomes `GBP → CHF`, then `CHF → GBP`). And an
optional yes/no, enum
option, number, person's name or HH:MM time the conversation gives no ground for is left out, to
its default (`_made_up`): an option it does not name even loosely ("weather in Reykjavik" →
`unit: celsius`; "mornings are best", "celcius" and "degrees C" name theirs); a yes/no it says no
word about, of its name or of the words of its description that
only it uses ("track PX-305127 and PX-609884" → `include_history: true` left out; "every scan" or
"the full history" keeps it; chat/more.py `flag_words`); a number none of its numbers is, where
every number it says is held by another argument and no word says how many another way ("a
couple"); a name with a digit in it (an address's words: `recipient_name: "5 Rue des Lilas"`); a
time where it says no time and no part of the day ("Add 'Lunch with Priya' on 2027-05-04" →
`duration_minutes: 120` left out); so is an optional label or title that is only the tool's own
thing ("set a timer for half an hour" → `label: "a timer"` left out). And a parameter
the call leaves out is added where the conversation gives it in terms that can only be meant for
it, exactly once: a length of time for a parameter in minutes, seconds or hours ("a 45 min
call" → `duration_minutes: 45`), an enum's
option named in its own words ("in fahrenheit" → `unit: fahrenheit`; "leave it at the door"
does not name `leave_at_door`), a number with a word of its name ("3 parcels" →
`parcel_count: 3`), a list of an enum's options named loosely (chat/options.py `Words`, in the
order said: "ring the bell for PX-830014" → `instructions: ["ring_bell"]`). A list of an enum's
options the model began is finished the same way (chat/options.py: "leave it at the door and
call me when you arrive").
Where none or several fit, the model's value stands (and a call with a copied kind's value that
is nowhere in the conversation is withheld, as above). Relative days ("tomorrow") and names
are not read: those stay the model's. Enums and consts are left to the grammar.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from llm_mcp.chat import mentions
from llm_mcp.chat.clauses import elsewhere, from_own_part
from llm_mcp.chat.ends import journey
from llm_mcp.chat.kinds import example_of, kind_of
from llm_mcp.chat.labels import free_texts, trimmed, whole, without_theirs
from llm_mcp.chat.more import (Dropped, another_id, another_option, fits, flag_said, flag_told, flag_words, kept,
                               names, takers, wanted)
from llm_mcp.chat.options import completed
from llm_mcp.chat.places import place
from llm_mcp.chat.route import (Redo, copied, enum_options, id_shapes, invented, misrouted, repeated, stranded, unhoused,
                                unshaped)
from llm_mcp.chat.stated import (VAGUE, Stated, call_key, clock, copied_kind, counting, dated, fitting, leaves,
                                 looks, name_words, nearest, own_numbers, stem)
from llm_mcp.chat.types import Message, Resolver, ToolCall, normalize


def conversation_text(messages: list) -> str:
    """Everything the conversation says, flattened for `ungrounded`: every turn's text and the
    arguments of the calls made so far (an id a tool returned may be used in the next call)."""
    parts = []
    for m in messages:
        m = Message.from_any(m)
        parts.append(m.content)
        parts += [str(v) for c in m.tool_calls for v in leaves(c.arguments)]
    return normalize(" ".join(parts))


def ungrounded(call: ToolCall, schema: dict, said: str) -> dict[str, str]:
    """The parameters of `call` whose value must have been copied (see the module doc) but is not
    in `said` (a `conversation_text`), each with its kind."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    missing = {}
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        if spec.get("type") == "array" and isinstance(value, list):
            spec, values = resolve(spec.get("items")), value
        else:
            values = [value]
        if spec.get("type") != "string" or "enum" in spec or "const" in spec:
            continue
        kind = copied_kind(name, spec)
        # an address needs its "@": "my boss" is said, but is not where an email can go
        if kind and any(isinstance(v, str) and looks(kind, v, spec)
                        and (normalize(v) not in said or (kind == "email" and "@" not in v)) for v in values):
            missing[name] = kind
    return missing


# words that name a day without a date ("tomorrow", "on sundays", "next week"), and digits: where
# the conversation has none of them, a call's date comes from nowhere
_SOME_DAY = re.compile(r"\b(?:today|tonight|tomorrow|yesterday|weekends?|weeks?|months?|years?|days?|daily|"
                       + mentions.WEEKDAY + r"s?|" + "|".join(mentions.SHORT_DAYS) + "|"
                       + mentions.MONTH + r")\b|\d", re.I)


def unstated(call: ToolCall, schema: dict, said: str, stated: Stated, shapes: set[str]) -> dict[str, str]:
    """The parameters of `call` whose value comes from nowhere, beyond `ungrounded`'s: an
    identifier without the digits or letters its example has ("lithium batteries" where the
    description shows "PX-482913"), said or not; a value of an identifier's shape (`shapes`:
    those of the tools' identifier examples, chat/route.py `id_shapes`: "PX-482913") in a
    parameter of another kind that no turn states (a small model asked "my parcel arrived
    damaged" calls `get_shipping_quote(origin="PX-nnnn")`), and a date
    where the conversation names no day at all: no date, no weekday, no "today", "next week" or
    month, no digit but an identifier's or a street address's ("what's the difference between
    express and overnight?" answered with `schedule_pickup(pickup_date="2023-01-01", …)`), and a
    place that is no place (chat/places.py), a ticker that is no code ("Domino's", "Apple": a
    name where the description shows "AAPL"); and for a required parameter, a currency where the
    conversation names none ("How many minutes are in 3.5 hours?" → `convert_currency(
    from_currency="USD", …)`), and a number where it says none at all, no digit, number word or
    "a couple" (`amount: 12.99` for "what does the currency code CHF stand for"; 0 and 1 aside:
    "a dollar"). Each with its kind."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    required = set(resolve(schema).get("required") or [])
    missing = {}
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        if name in required and spec.get("type") in ("integer", "number") and isinstance(value, (int, float)) \
                and not isinstance(value, bool) and value not in (0, 1) and not stated("number") \
                and not VAGUE.search(stated.text):
            missing[name] = "number"
        if spec.get("type") != "string" or not isinstance(value, str) or "enum" in spec:
            continue
        kind = kind_of(name, spec)
        if name in required and kind == "currency" and not stated("currency") \
                and not re.search(rf"(?<!\w){re.escape(value.strip())}(?!\w)", stated.text, re.I):
            missing[name] = "currency"  # (a code in lower case, "usd -> inr", is one)
        copied = copied_kind(name, spec)
        if not copied and mentions.shape(value) in shapes and normalize(value) not in said:
            missing[name] = "identifier"
        example = example_of(spec) if copied == "identifier" else None
        if example and not set(mentions.shape(example)) <= set(mentions.shape(value)):
            missing[name] = "identifier"  # no digit where the example has digits ("lithium batteries")
        if dated(name, spec) and not _SOME_DAY.search(_undigited(stated)):
            missing[name] = "date"
        if kind == "city" and not place(value, stated.text):
            missing[name] = "place"  # "compared", "a small town": no place (chat/places.py)
        if kind == "ticker" and not _TICKER.fullmatch(value.strip()) \
                and (re.search(r"ticker|symbol", name, re.I) or _TICKER.fullmatch(example_of(spec) or "")):
            missing[name] = "ticker"  # a name where a code goes: "Domino's", "Apple"
    return missing


# a ticker: a code in capitals (or typed all in lower case), with an exchange's or class's suffix
_TICKER = re.compile(r"[A-Z0-9]{1,6}(?:[.-][A-Z0-9]{1,4})?|[a-z0-9]{1,6}(?:[.-][a-z0-9]{1,4})?")


def _undigited(stated: Stated) -> str:
    """The conversation's text without its identifiers and street addresses, whose digits name no
    day ("change the address for px-746650 to 40 George Street")."""
    text = stated.text
    for m in [*mentions.identifiers(text), *stated("address")]:
        text = text.replace(m.readings[0], " ")
    return text


NOUNS = {"email": "email address", "phone": "phone number", "url": "web address", "uuid": "id"}


def question(call: ToolCall, missing: dict[str, str]) -> str:
    """What the reply says in place of a withheld call (`missing`: `ungrounded`'s answer)."""
    words = list(dict.fromkeys(NOUNS.get(kind) or name.replace("_", " ").strip()
                               for name, kind in missing.items()))
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"To call {call.name} I need the {said}: what {'is it' if len(words) == 1 else 'are they'}?"


def grounder(tools: list[dict], messages: list | None, redo: bool = False) -> Grounder | None:
    """A `Grounder` for the calls of a reply to `messages` with `tools` (normalised); None when
    there is nothing to check, or nothing to check against (no tools, no conversation)."""
    return Grounder(tools, messages, redo) if messages and tools else None


class Grounder:
    """The checks of one reply's calls, in the order the reply makes them. Called with a call:
    the call, with the values the model miscopied taken from the conversation (`taken_from`), or
    the question that replaces a call with an ungrounded value; with `redo` (a decoder that can
    go back), a `Redo` for a call that carries another tool's identifier, or a phrase where its
    own identifier goes (chat/route.py). A call the decoder `asked` for beyond the model's own
    (chat/more.py) is kept only if it stands all that and asks for something new, else it is
    `Dropped`; an argument `arg` the decoder asked for is left out unless the conversation
    grounds it."""

    def __init__(self, tools: list[dict], messages: list, redo: bool = False) -> None:
        self.tools, self.redo = tools, redo
        self.schemas = {t["name"]: t.get("parameters") or {} for t in tools}
        self.flags = {t["name"]: flag_words(t) for t in tools}  # the words each yes/no is about
        self.said = conversation_text(messages)
        self.stated = Stated(messages)
        self.shapes = id_shapes(tools)
        self.options = enum_options(tools)  # each tool's enum options (chat/route.py `unhoused`)
        self.foreign = {shape for params in self.shapes.values() for shape in params.values()}  # ids' shapes
        self.named = names(tools, self.stated)  # the tools the conversation names (chat/more.py)
        self.made: list[ToolCall] = []  # the reply's calls so far

    def __call__(self, call: ToolCall, asked: bool = False, arg: str | None = None) -> ToolCall | str | Redo | Dropped:
        if call.name not in self.schemas:
            return Dropped(call) if asked else call
        schema, stated, made, flags = self.schemas[call.name], self.stated, self.made, self.flags[call.name]
        if asked:  # an identifier its tool's call holds: the one stated that no call holds ("for both PX-1 and PX-2")
            call = another_id(call, schema, made, stated)
        own = self.own.get(call.name, stated)  # (what is said only in another tool's free text is not its)
        theirs = {i for i, tools in enumerate(self.part_names) if tools and call.name not in tools}
        taken = taken_from(call, schema, own, made, flags)
        call = from_own_part(taken, schema, stated, made, theirs)
        if call is not taken:  # a currency given back: "80 CHF in GBP" is still converted from CHF
            call = converted(call, schema, own, made)
        # an argument asked for stands only if grounded, once miscopied values are taken ("4 boxes" for 8)
        if arg in call.arguments and not kept(arg, schema, call.arguments, made, stated, flags):
            call = ToolCall(call.name, {k: v for k, v in call.arguments.items() if k != arg}, call.id)
        call = trimmed(whole(journey(call, schema, stated.text, made), schema, stated.text), schema, stated.text,
                       self.tools)
        call = filled(moved(completed(call, schema, stated.text), schema, stated), schema, stated, made)
        if (self.redo or asked) and (misrouted(call, self.shapes, stated) or unshaped(call, self.shapes, stated)
                                     or unhoused(call, schema, self.options, stated)):
            return Dropped(call) if asked else Redo(call)
        if self.redo and not asked and repeated(call, made, stated):
            return Redo(call)
        if self.redo and copied(call, made, stated):
            return Dropped(call)
        if asked:
            call = another_option(call, schema, made, stated)
        missing = {**ungrounded(call, schema, self.said), **unstated(call, schema, self.said, stated, self.foreign)}
        if (self.redo or asked) and (missing or invented(call, schema, self.schemas, stated)) \
                and stranded(call, self.schemas, stated, made):
            return Dropped(call) if asked else Redo(call)
        if asked and (missing or not fits(call, schema, made, stated, call.name in self.named,
                                          self.others[call.name])):
            return Dropped(call)
        if missing:
            return question(call, missing)
        made.append(call)
        return call

    @functools.cached_property
    def others(self) -> dict[str, set[str]]:
        """Per tool, the enum options of the other tools."""
        return {tool: {o for name, options in self.options.items() if name != tool for o in options}
                for tool in self.schemas}

    @functools.cached_property
    def own(self) -> dict[str, Stated]:
        """Per tool, the conversation without the free text it labels for other tools (chat/labels.py),
        where that leaves something out."""
        texts = free_texts(self.tools, self.stated.text)
        return {t: Stated([{"role": "user", "content": own}])
                for t in self.schemas if (own := without_theirs(t, texts, self.stated.text)) != self.stated.text}

    @functools.cached_property
    def part_names(self) -> list[set[str]]:
        """The tools each part of the message names (chat/clauses.py `parts`, chat/more.py `names`)."""
        return [names(self.tools, part) for part in self.stated.parts]

    def takers(self) -> set[str]:
        """The tools that could take a value stated that no call holds yet (chat/more.py)."""
        return takers(self.tools, self.made, self.stated, self.named)

    def wanted(self, call: ToolCall) -> bool:
        """Does `call`, closing with its arguments, leave out one the conversation may fill? (chat/more.py)"""
        return call.name in self.schemas and wanted(self.schemas[call.name], call.arguments, self.made, self.stated,
                                                      self.flags[call.name])


def taken_from(call: ToolCall, schema: dict, stated: Stated, made: list[ToolCall] | None = None,
               flags: dict | None = None) -> ToolCall:
    """`call` with each top-level value the conversation does not state, and that it states in
    exactly one fitting way, replaced by that (see the module doc). A value held by another
    argument does not fit, nor one that would repeat a call of `made` (the reply's earlier calls).
    `flags`: the tool's `flag_words` (chat/more.py), read from `schema` where not given."""
    flags = flag_words({"parameters": schema}) if flags is None else flags
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    arguments = dict(call.arguments)
    before = {call_key(c.name, c.arguments) for c in made or []}
    source = _sum_currency(arguments, props, resolve, stated)
    if source and call_key(call.name, {**arguments, source[0]: source[1]}) not in before:
        arguments[source[0]] = source[1]
    else:
        source = None
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        if "enum" in spec or "const" in spec or (source and name == source[0]):
            continue
        fits = _fits(call.name, name, value, arguments, props, resolve, stated, before)
        if len(fits) == 1:
            arguments[name] = nearest(fits[0], value)
    for name, value in call.arguments.items():  # a yes/no against what the request says of it
        told = flag_told(name, arguments, stated) if isinstance(value, bool) else None
        if told is not None and told != value and call_key(call.name, {**arguments, name: told}) not in before:
            arguments[name] = told
    required = set(resolve(schema).get("required") or [])
    for name in [n for n in call.arguments if n in arguments and n not in required]:
        if _made_up(name, resolve(props.get(name)), arguments[name], stated, arguments, flags) \
                or _own_noun(call.name, resolve(props.get(name)), name, arguments[name]):
            del arguments[name]  # an optional value the conversation gives no ground for: its default
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


def _fits(tool: str, name: str, value: Any, arguments: dict, props: dict, resolve: Resolver, stated: Stated,
          before: set) -> list[tuple]:
    """The stated readings that could replace the value of `name` in `arguments` (`fitting`; for
    a currency that another currency argument holds too, the stated currencies): not one another
    argument holds, nor one that would repeat a call of `before` (their `call_key`s)."""
    spec = resolve(props.get(name))
    others = " ".join(normalize(str(v)) for k, v in arguments.items() if k != name)
    # one currency on both sides converts nothing: the other side takes another stated one
    same = kind_of(name, spec) == "currency" and isinstance(value, str) and any(
        normalize(value) == normalize(str(v)) for k, v in arguments.items()
        if k != name and kind_of(k, resolve(props.get(k))) == "currency")
    return [r for r in ([m.readings for m in stated("currency")] if same else fitting(name, spec, value, stated))
            if not any(normalize(str(x)) in others for x in r)
            and call_key(tool, {**arguments, name: nearest(r, value)}) not in before]


def converted(call: ToolCall, schema: dict, stated: Stated, made: list[ToolCall]) -> ToolCall:
    """`call` converting from the currency of the sum the request states with its amount, where
    its source currency is another (`_sum_currency`), and a target currency that then repeats the
    source taking the request's other one, exactly one fitting (`_fits`): `taken_from`'s currency
    rules, again once chat/clauses.py gave a value back ("80 CHF in GBP" written `GBP → CHF`)."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    before = {call_key(c.name, c.arguments) for c in made}
    source = _sum_currency(call.arguments, props, resolve, stated)
    if not source:
        return call
    arguments = {**call.arguments, source[0]: source[1]}
    for name, value in call.arguments.items():
        if name != source[0] and normalize(str(value)) == normalize(source[1]) \
                and len(fits := _fits(call.name, name, value, arguments, props, resolve, stated, before)) == 1:
            arguments[name] = nearest(fits[0], value)
    same = any(k != source[0] and normalize(str(v)) == normalize(source[1]) for k, v in arguments.items())
    return call if same or call_key(call.name, arguments) in before else ToolCall(call.name, arguments, call.id)


def moved(call: ToolCall, schema: dict, stated: Stated) -> ToolCall:
    """`call` with an optional number it holds that the conversation says only in another
    parameter's own terms (chat/stated.py `own_numbers`: its unit, or a word of its name), where
    the call leaves that parameter out, moved there: "drop-off points in Bristol up to 10 km
    away" answered `max_results: 10` becomes `radius_km: 10`; where that parameter holds it
    already, it goes. Said in its own terms too ("10 results within 10 km"), it stands."""
    resolve = Resolver(schema)
    top = resolve(schema)
    props, required = top.get("properties") or {}, set(top.get("required") or [])
    arguments = dict(call.arguments)
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        if name in required or isinstance(value, bool) or not isinstance(value, (int, float)) \
                or value in own_numbers(name, spec, stated):
            continue
        for other, other_spec in ((k, resolve(v)) for k, v in props.items()):
            if other != name and arguments.get(other) == value and value in own_numbers(other, other_spec, stated):
                del arguments[name]  # held there already: "within 3 km" as `radius_km: 3, max_results: 3`
                break
            if other not in arguments and other_spec.get("type") in ("integer", "number") \
                    and value in own_numbers(other, other_spec, stated) \
                    and other_spec.get("minimum", value) <= value <= other_spec.get("maximum", value):
                arguments[other] = arguments.pop(name)
                break
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


def filled(call: ToolCall, schema: dict, stated: Stated, made: list[ToolCall] | None = None) -> ToolCall:
    """`call` with each parameter it leaves out (or held a made-up value for) that the conversation
    gives in terms only it can mean (`_left_out`), exactly once, added, and each yes/no it leaves
    out that the conversation says plainly by a word of its name (`flag_told`: "open on
    weekends" → `open_weekends: true`); not a value another argument
    holds, nor one that would repeat a call of `made`, nor an option only another request of the
    message names (chat/clauses.py). Run once the call's values are in place (the
    two ends of a journey too: "overnight" is no destination, and then names the service)."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    arguments = dict(call.arguments)
    before = {call_key(c.name, c.arguments) for c in made or []}
    for name, spec in props.items():
        if resolve(spec).get("type") == "boolean" and name not in arguments \
                and flag_told(name, arguments, stated) is True:  # "open on weekends": open_weekends
            arguments[name] = True
            continue
        held = " ".join(normalize(str(v)) for v in arguments.values())
        fits = [r for r in _left_out(name, resolve(spec), stated) if name not in arguments
                and normalize(str(r[0])) not in held and call_key(call.name, {**arguments, name: r[0]}) not in before]
        # (not an option only another request of the message names: chat/clauses.py)
        if len(fits) == 1 and not ("enum" in resolve(spec) and elsewhere(
                ToolCall(call.name, {**arguments, name: fits[0][0]}), schema, stated, made or [], name)):
            arguments[name] = fits[0][0]
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


# words a time of day may be worked out from: "dinner" is 19:00
_DAYTIME = re.compile(r"\b(?:morning|afternoon|evening|night|tonight|noon|midday|midnight|lunch|dinner|"
                      r"breakfast|brunch|o'?clock|past|am|pm)\b", re.I)


def _made_up(name: str, spec: dict, value: Any, stated: Stated, arguments: dict, flags: dict) -> bool:
    """Is `value` an optional yes/no, enum option, number, person's name or HH:MM time the
    conversation gives no ground for? An option it does not name even loosely
    (`Stated.names_loosely`: "weather in Reykjavik" → `unit: celsius`); a yes/no it says no word about (`flags`: chat/more.py `flag_words`; "track
    PX-305127" → `include_history: true`); a number none of its numbers is (number words, lengths
    of time in the parameter's unit), where every number it says is held by another argument and
    no word says how many some other way ("a couple"): else the model may have worked it out
    ("table for 12" → `guests: 1`); a person's name with a digit in it (an address's words,
    `recipient_name: "5 Rue des Lilas"`); a time where it says no time and no part of the day
    ("Add 'Lunch with Priya' on 2027-05-04" → `duration_minutes: 120`; a birthday on 22 August →
    `time: "08:00"`)."""
    if isinstance(value, bool):
        return spec.get("type") == "boolean" and not flag_said(name, flags, stated) \
            and flag_told(name, arguments, stated) is None
    if isinstance(value, str) and value in (spec.get("enum") or []):
        return not stated.names_loosely(value, spec["enum"])
    if spec.get("type") in ("integer", "number") and isinstance(value, (int, float)):
        # (a count: of the numbers that count, not house numbers or the hours of times)
        numbers = {m.readings[0] for m in stated("count" if counting(name, spec) else "number")}
        held = {v for v in arguments.values() if isinstance(v, (int, float))}
        return value not in numbers | set(own_numbers(name, spec, stated)) and numbers <= held \
            and not VAGUE.search(stated.text)
    if isinstance(value, str) and kind_of(name, spec) == "person":
        return bool(re.search(r"\d", value))  # some other value: `recipient_name: "5 Rue des Lilas"`
    if isinstance(value, str) and clock(name, spec):
        return not stated("time") and not _DAYTIME.search(stated.text)
    return False


def _own_noun(tool: str, spec: dict, name: str, value: Any) -> bool:
    """Is `value`, a free-text label or title, only the thing the tool itself is ("a timer" as
    the label of `set_timer`: the request gave none)?"""
    from llm_mcp.chat.labels import FREE

    if not isinstance(value, str) or spec.get("type") != "string" or kind_of(name, spec) not in FREE:
        return False
    words = [stem(w) for w in re.findall(r"[a-z]+", value.lower()) if w not in ("a", "an", "the", "my", "new")]
    return bool(words) and set(words) <= {stem(w) for w in name_words(tool)}


_SOURCE = {"from", "source", "src", "base"}  # words of a source currency parameter's name


def _sum_currency(arguments: dict, props: dict, resolve: Resolver, stated: Stated) -> tuple[str, str] | None:
    """(the source currency parameter, the currency of the sum the call converts) where the model
    wrote another code: the amount is in the source currency, so "convert 60 euros to Swiss
    francs" and "I need 60 euros: how many francs is that?" are both from EUR (the sum stated with
    the call's amount, chat/mentions.py `amounts`). None where it stands or nothing fits."""
    numbers = [v for v in arguments.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for name, value in arguments.items():
        if kind_of(name, resolve(props.get(name))) != "currency" or not set(name_words(name)) & _SOURCE \
                or not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{3}", value.strip()):
            continue
        sums = [m for m in stated("amount") if any(float(m.noun) == n for n in numbers)]
        if len(sums) == 1 and value.strip().upper() not in sums[0].readings:
            return name, sums[0].readings[0]
    return None


def _left_out(name: str, spec: dict, stated: Stated) -> list[tuple]:
    """What the conversation gives for a parameter the call leaves out: a length of time in the
    parameter's unit ("a 45 min call" → duration_minutes 45), or an enum's option named in its own
    words, not denied ("in fahrenheit", "leave at door"; not "not in the evening"), or a list of
    an enum's options named loosely, in the order said ("ring the bell, signature not needed" →
    `instructions: ["ring_bell"]`), where the conversation states one identifier at most."""
    if isinstance(spec.get("enum"), list):
        return [(e,) for e in spec["enum"] if isinstance(e, str) and stated.names(e) and stated.loose.named(e)]
    items = spec.get("items") if spec.get("type") == "array" else None
    if isinstance(items, dict) and isinstance(items.get("enum"), list) and len(stated("identifier")) <= 1:
        # (with several identifiers said, the options may be another parcel's: chat/options.py)
        named = sorted((spots[0], o) for o in items["enum"]
                       if isinstance(o, str) and (spots := stated.loose.named(o) or stated.loose.mentioned(o)))
        return [([o for _, o in named],)] if named else []
    if spec.get("type") in ("integer", "number"):
        return [(n,) for n in own_numbers(name, spec, stated)]
    return []


