"""The values a conversation states, and which of them fit a parameter.

`Stated` reads a conversation's values by kind (chat/mentions.py) once each, and its words and
parts; `fitting` says which stated values could replace a value the model wrote for a parameter
(chat/ground.py takes one where exactly one fits). The helpers that say what a parameter holds
(`copied_kind`, `dated`, `clock`, `time_unit`, `own_numbers`, `limiting`) and what two calls share
(`call_key`) are shared by the grounder's rules: chat/ground.py, clauses.py, more.py, ends.py,
labels.py and route.py.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from typing import Any

from llm_mcp.chat import mentions
from llm_mcp.chat.kinds import example_of, kind_of, name_words  # noqa: F401 (name_words: shared from here)
from llm_mcp.chat.options import Words, stem  # noqa: F401 (stem: shared by the rules that import it from here)
from llm_mcp.chat.types import Message, normalize

COPIED = ("identifier", "email", "phone", "url", "uuid")  # kinds a value can only be copied as


ID_WORDS = {"id", "ids", "code", "number", "num", "no", "ref", "reference", "tracking", "sku", "serial",
            "uuid", "guid", "key", "pnr", "iban"}


def copied_kind(name: str, spec: dict) -> str | None:
    """The kind of a parameter whose values can only be copied, or None. An identifier is named
    so in so many words (`order_id`, `trackingNumber`) or shown by an example in its description:
    `kind_of` finds "id" inside "provider" too, which is fine for drawing a value, not for this."""
    kind = kind_of(name, spec)
    if kind not in COPIED:
        return None
    if kind == "identifier" and not (set(name_words(name)) & ID_WORDS or example_of(spec)):
        return None
    return kind


def looks(kind: str, value: str, spec: dict | None = None) -> bool:
    """Does `value` have the shape of its kind? (An `email_body` is an "email" parameter by its
    name; what the model writes there is not an address, and is not checked; a parameter whose
    schema says it holds an address, `format: email` or "address" in its description, is checked
    whatever the model wrote: "my boss" is no address.) A short all-letter code ("CDG", "USD") can
    be known from a name, so it is not checked either."""
    value = value.strip()
    if kind == "email":
        spec = spec or {}
        return "@" in value or spec.get("format") in ("email", "idn-email") \
            or "address" in str(spec.get("description", "")).lower()
    if kind == "phone":
        return sum(c.isdigit() for c in value) >= 5
    if kind == "url":
        return " " not in value and ("." in value or "/" in value)
    if kind == "uuid":
        return len(normalize(value)) >= 8
    return bool(normalize(value)) and not any(c.isspace() for c in value) and not (value.isalpha() and len(value) <= 4)


class Stated:
    """The values a conversation states (chat/mentions.py), read once per kind when first asked."""

    def __init__(self, messages: list) -> None:
        self.text = "\n".join(Message.from_any(m).content for m in messages)
        self._read: dict = {}
        self._words = " " + " ".join(re.findall(r"[a-z0-9]+", self.text.lower())) + " "

    @functools.cached_property
    def stems(self) -> set[str]:
        """The conversation's words, each by its stem (`stem`); a weekday's short form ("sat") in full too."""
        words = re.findall(r"[a-z]+", self.text.lower())
        return {stem(w) for w in words} | {mentions.SHORT_DAYS[w] for w in words if w in mentions.SHORT_DAYS}

    @functools.cached_property
    def loose(self) -> Words:
        """The conversation's words, to find enum options named loosely in (chat/options.py)."""
        return Words(self.text)

    @functools.cached_property
    def parts(self) -> list[Stated]:
        """The conversation cut where people join requests (chat/clauses.py), each part read alone."""
        from llm_mcp.chat import clauses  # clauses.py reads parts with this module's helpers

        return [Stated([{"role": "user", "content": p}]) for p in clauses.parts(self.text)]

    def names_loosely(self, option: str, options: list = ()) -> bool:
        """Does the conversation name an enum's option at all: loosely (chat/options.py `Words`:
        "mornings" for `morning`, "arrive" for `call_on_arrival`; not after a negation; or its
        words but plain verbs in one sentence, "give it to the neighbours"), with a
        word misspelt ("celcius"), or by its initial in capitals where no other of `options`
        shares it ("degrees C", "°F")?"""
        if self.loose.named(option) or self.loose.mentioned(option):
            return True
        initial = option[:1].upper()
        if initial.isalpha() and initial not in "AI" and [str(o)[:1].upper() for o in options].count(initial) == 1 \
                and re.search(rf"(?<![\w'’-])°?{initial}(?![\w'’-])", self.text):
            return True
        words = self.loose
        want = [w for w in re.findall(r"[a-z]+", option.lower()) if len(w) >= 5]
        return bool(want) and all(any(difflib.SequenceMatcher(None, w, said).ratio() >= 0.85
                                      and not words.negated(k) for k, said in enumerate(words.words))
                                  for w in want)

    def names(self, option: str) -> bool:
        """Does the conversation name an enum's option in its own words ("leave_at_door": "leave at
        door")? Not in a greeting: "Good morning" names no time of day."""
        words = " ".join(re.findall(r"[a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", option).lower()))
        return bool(words) and any(not self._words[:m.start()].endswith(" good")
                                   for m in re.finditer(re.escape(f" {words} "), self._words))

    def __call__(self, kind: str, example: str | None = None) -> list[mentions.Mention]:
        if (kind, example) not in self._read:
            readers = {"email": mentions.emails, "phone": mentions.phones, "url": mentions.urls,
                       "uuid": mentions.uuids, "address": mentions.addresses, "date": mentions.dates,
                       "time": mentions.clock_times,
                       "duration": mentions.durations, "currency": mentions.currencies,
                       "amount": mentions.amounts,
                       "language": mentions.languages, "number": mentions.numbers,
                       "quantity": mentions.quantities, "count": mentions.counts,
                       "limit": mentions.limits, "person": mentions.people, "list": mentions.lists,
                       "language-code": lambda text: mentions.languages(text, codes=True)}
            read = (lambda text: mentions.identifiers(text, example)) if kind == "identifier" else readers[kind]
            self._read[kind, example] = read(self.text)
        return self._read[kind, example]


_GENERIC = {"max", "min", "count", "number", "num", "total", "of", "to", "in", "per", "n"}
# a unit's other names, as people say it ("12 kilos" for `weight_kg`, "5 kilometres" for `radius_km`)
_UNITS = {"kg": ("kilo", "kilogram", "kgs", "kilogramme"), "km": ("kilometre", "kilometer", "kms"),
          "lb": ("pound", "lbs"), "g": ("gram", "gramme"), "m": ("metre", "meter"), "mi": ("mile",),
          "l": ("litre", "liter"), "ml": ("millilitre", "milliliter")}


def own_numbers(name: str, spec: dict, stated: Stated) -> list:
    """The numbers the conversation says in the parameter's own terms: lengths of time in its unit
    ("1 hour 15 min" → 75 for `duration_minutes`), else numbers said with a word of its name, what
    they count or measure ("5 results" for `max_results`, "10km" for `radius_km`, "12 kilos" for
    `weight_kg`)."""
    if unit := time_unit(name, spec):
        found = [m.readings[0] / unit for m in stated("duration")]
    else:
        words = {stem(w) for w in name_words(name) if w not in _GENERIC}
        words |= {stem(other) for w in words for other in _UNITS.get(w, ())}
        found = [m.readings[0] for m in stated("quantity") if stem(m.noun) in words]
        if limiting(name, spec):  # "the 3 closest", "top 5", "(just 2)" for `max_results`
            found += [m.readings[0] for m in stated("limit")]
    return [int(n) if float(n).is_integer() else n for n in found
            if spec.get("type") == "number" or float(n).is_integer()]


# the words of a parameter that says how many results to give: `max_results`, `limit`, `top_k`
_LIMITS = {"max", "maximum", "limit", "top", "k", "n", "num", "number", "count", "results", "result", "items",
           "hits", "page", "size"}


def limiting(name: str, spec: dict) -> bool:
    """Does the parameter say how many results to give (an integer whose name has no word but
    `_LIMITS`': `max_results`, `limit`, `top_k`; not `parcel_count`, which counts parcels)?"""
    return spec.get("type") == "integer" and set(name_words(name)) <= _LIMITS


def call_key(name: str, arguments: dict) -> tuple:
    """What two calls that do the same share: the tool, and each value as `llm-mcp eval` compares
    strings (lower case, no spaces or punctuation), a whole number written 40 or 40.0 alike."""
    def plain(value: Any) -> Any:
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return name, tuple(sorted((k, normalize(json.dumps(plain(v), sort_keys=True))) for k, v in arguments.items()))


def fitting(name: str, spec: dict, value: Any, stated: Stated) -> list[tuple]:
    """The readings of the stated values that could replace `value`; [] where it stands."""
    kinds = spec.get("type")
    if kinds == "string" and isinstance(value, str):
        if clock(name, spec):
            times = [m.readings for m in stated("time")]
            return [] if any(value in r for r in times) else times
        if dated(name, spec):
            # a day said without its year takes the model's year, if the model wrote a date
            year = value[:4] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
            days = [year + m.readings[0][1:] if m.readings[0].startswith("--") else m.readings[0]
                    for m in stated("date") if year or not m.readings[0].startswith("--")]
            return [] if value in days else [(d,) for d in days]
        if kind_of(name, spec) == "currency" and re.fullmatch(r"[A-Za-z]{3}", value.strip()):
            found = [m.readings for m in stated("currency")]  # codes, as the model wrote one
            return [] if any(value.strip().upper() in r for r in found) else found
        if kind_of(name, spec) == "language" and re.fullmatch(r"[^\W\d_]+(?: [^\W\d_]+)?", value.strip()):
            codes = len(value.strip()) == 2  # a code ("ko"), as the model wrote one, or a name
            found = [m.readings for m in stated("language-code" if codes else "language")]
            return [] if any(normalize(value) == normalize(r[0]) for r in found) else found
        if kind_of(name, spec) in ("city", "address") and (code := _LABELLED.fullmatch(value.strip())):
            return [(code.group(1),)]  # "postcode 10115": the code without its label
        if kind_of(name, spec) == "address" and "@" not in value:
            # an address cut short ("1016 BR Amsterdam") takes the whole one it is part of
            found = [m.readings for m in stated("address")]
            if any(normalize(value) == normalize(r[0]) for r in found):
                return []
            if no_place(value):  # a day or a time where the address goes: any stated address
                return found
            # a stated address with a day or a time after it ("501 Market Street, San Francisco, 2027-06-30")
            return [r for r in found if normalize(value) and normalize(value) in normalize(r[0])
                    or value.strip().startswith(r[0]) and no_place(value.strip()[len(r[0]):])]
        kind = copied_kind(name, spec)
        if kind and looks(kind, value, spec):
            # a part of a stated value is not that value: "dubois@gmail.com" for mark.dubois@…
            found = [m.readings for m in stated(kind, example_of(spec) if kind == "identifier" else None)]
            return [] if any(normalize(value) == normalize(r[0]) for r in found) else found
    if kinds in ("integer", "number") and isinstance(value, (int, float)) and not isinstance(value, bool):
        own = own_numbers(name, spec, stated)
        if own:
            return [] if value in own else [(n,) for n in own]
        numbers = stated("number")
        if value < 0 or any(value == m.readings[0] for m in numbers):
            return []
        untimed = re.sub(r"\bhalf (?:past|an? hour)\b", " ", stated.text, flags=re.I)  # "half past one" is no count
        if kinds == "integer" and counting(name, spec) and not VAGUE.search(untimed) \
                and not _ADDED.search(stated.text):  # a count said nowhere: the one the request says
            return [m.readings for m in stated("count")]
        return [m.readings for m in numbers if m.pieces and _extends(m.readings[0], value)
                and (kinds == "number" or float(m.readings[0]).is_integer())]
    return []


# a postcode with its label, as people write one and a model copies it
_LABELLED = re.compile(r"(?:post(?:al)? ?code|zip(?: ?code)?)[: ]+(?=[\w -]*\d)(\w[\w -]{1,9}\w)", re.I)

# words a number may be worked out from: "a couple of us" is 2
VAGUE = re.compile(r"\b(?:couple|pair|few|several|both|some|many|handful|half|single|double|twice|once)\b", re.I)
# words of a count made by adding up: "me and my two kids", "us plus 3"
_ADDED = re.compile(r"\b(?:me|us|we|myself|plus|including|and I)\b", re.I)


def no_place(text: str) -> bool:
    """Is `text` no place at all, only a day or a clock time: digits, months, weekdays, am/pm and
    punctuation ("3 March 2027", ", 2027-06-30")?"""
    rest = re.sub(rf"{mentions.MONTH}|{mentions.WEEKDAY}|\d+(?:st|nd|rd|th)?|[ap]\.?m\b|[^\w]", " ", text, flags=re.I)
    return not rest.strip() and bool(re.search(r"\d", text))


def counting(name: str, spec: dict) -> bool:
    """Does an integer parameter count things ("parcel_count", "Number of guests", "How many …")?"""
    desc = str(spec.get("description", "")).lower()
    return bool({"count", "quantity", "qty"} & set(name_words(name))) or \
        bool(re.match(r"(?:the )?(?:number of|how many)\b", desc))

def dated(name: str, spec: dict) -> bool:
    """Does the parameter hold a day alone (`format: date`, or YYYY-MM-DD without a time)?"""
    return kind_of(name, spec) == "date"


def clock(name: str, spec: dict) -> bool:
    """Does the parameter hold a time of day as HH:MM alone (not HH:MM:SS, not with a date)?"""
    desc = str(spec.get("description", "")).lower()
    return kind_of(name, spec) == "time" and "hh:mm" in desc and "hh:mm:ss" not in desc and "yyyy" not in desc


def time_unit(name: str, spec: dict) -> int | None:
    """Seconds per unit of a parameter that holds a length of time, by its name or description
    ("duration_minutes", "Length in minutes"), or None."""
    words = set(re.findall(r"[a-z]+", (name + " " + str(spec.get("description", ""))).replace("_", " ").lower()))
    units = {s for w, s in (("minutes", 60), ("minute", 60), ("mins", 60), ("seconds", 1), ("second", 1),
                            ("secs", 1), ("hours", 3600), ("hour", 3600), ("hrs", 3600)) if w in words}
    return units.pop() if len(units) == 1 else None


def _extends(stated: int | float, written: int | float) -> bool:
    """Does the stated number begin with the written one's digits ("3,000" and 3; 15000 and 15)?"""
    digits = str(written).rstrip("0").rstrip(".") if isinstance(written, float) else str(written)
    return stated != written and str(stated).startswith(digits)


def nearest(readings: tuple, value: Any) -> Any:
    """Of a stated value's readings (07:30 and 19:30 for "7:30"), the one in waking hours
    (07:00–21:59: "10:30" is 10:30, "half past two" 14:30), else the one nearest the model's."""
    awake = [r for r in readings if isinstance(r, str) and re.fullmatch(r"\d\d:\d\d", r) and "07:00" <= r <= "21:59"]
    if len(awake) == 1 or len(readings) == 1:
        return (awake or readings)[0]
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value):
        return readings[0]
    minutes = int(value.split(":")[0]) * 60 + int(value.split(":")[1])

    def gap(reading: str) -> int:
        d = abs(int(reading[:2]) * 60 + int(reading[3:]) - minutes)
        return min(d, 24 * 60 - d)

    return min(readings, key=gap)


def leaves(value: Any):
    """The scalars inside a JSON value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value
