"""Argument values from a parameter's JSON Schema: what the call holds and how a person writes it.

A `Said` pairs the value the schema asks for (`value`: `6`, `"20:00"`, `"EUR"`, `"2027-03-05"`)
with the words of the request (`text`: "six", "8pm", "euros", "March 5, 2027"). What kind of
value a string is comes from the parameter's format, name and description (chat/kinds.py); realistic
values come from Faker (people, places, companies, emails, phone numbers, languages, currencies),
the rest from `pools.yaml` or from the shape of an example the description gives ("like
PX-482913" → "PX-" and six random digits). Any JSON Schema is followed: nested objects, arrays of
objects, `anyOf`/`oneOf`/`allOf`, `$ref` into `$defs`, enums, consts, ranges, lengths, patterns.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from llm_mcp.chat.kinds import example_of, kind_of, quoted_example
from llm_mcp.chat.types import Resolver

HERE = Path(__file__).parent
LOCALES = ["en_US", "en_GB", "en_AU", "en_CA", "de_DE", "fr_FR", "es_ES", "nl_NL", "pt_BR",
           "en_IE", "en_NZ"]


@lru_cache(maxsize=None)
def data(name: str) -> dict:
    return yaml.safe_load((HERE / f"{name}.yaml").read_text())


@dataclass
class Said:
    value: Any        # in the call, as the schema asks
    text: str         # in the request
    copied: bool = False  # the call's string is the request's own text (a case change follows it)


class Fakes:
    """One seeded Faker per locale; the locale is drawn with the synthesizer's own generator."""

    def __init__(self, rng: random.Random, seed: int):
        from faker import Faker

        self.rng = rng
        self.by_locale = {}
        for k, loc in enumerate(LOCALES):
            fake = Faker(loc)
            fake.seed_instance(seed * 101 + k)
            self.by_locale[loc] = fake

    def any(self, locales: list[str] | None = None):
        return self._seeded(self.rng.choice(locales or LOCALES))

    @property
    def en(self):
        return self._seeded("en_US")

    def _seeded(self, locale: str):
        # reseeded from our generator before every use: each value depends on the seed alone,
        # not on how many draws some provider made before (a few vary between processes)
        fake = self.by_locale[locale]
        fake.seed_instance(self.rng.getrandbits(32))
        return fake




def _reshape(rng: random.Random, example: str) -> str:
    """A new value of the example's shape: its letters kept where it has digits, digits new."""
    if any(c.isdigit() for c in example):
        return "".join(str(rng.randrange(10)) if c.isdigit() else c for c in example)
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") if c.isupper() else
                   rng.choice("abcdefghijkmnopqrstuvwxyz") if c.islower() else c for c in example)


def _in_form_of(rng: random.Random, example: str) -> str:
    """A made-up value in the form of a quoted example: its long words made up anew in their case,
    its numbers new, its short words (units: "mg", "ml") kept: "lisinopril 10 mg" → "dorasil 25 mg"."""
    words = []
    for word in example.split():
        if any(c.isdigit() for c in word):
            word = re.sub(r"^0(?=\d)", lambda _: str(rng.randrange(1, 10)), _reshape(rng, word))  # no "06 mg"
        elif word.isalpha() and len(word) > 3:
            made = _syllables(rng, 2, 4)
            word = made.upper() if word.isupper() else made.capitalize() if word[0].isupper() else made
        words.append(word)
    return " ".join(words)


def _person(rng: random.Random, fake, spec: dict) -> str:
    """A person's name, or the part of it the description asks for ("Provider last name")."""
    desc = str(spec.get("description", "")).lower()
    if any(w in desc for w in ("last name", "surname", "family name")):
        return fake.last_name()
    if any(w in desc for w in ("first name", "given name")):
        return fake.first_name()
    return fake.name() if rng.random() < 0.6 else fake.first_name()


def _syllables(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(data("pools")["syllables"]) for _ in range(rng.randint(low, high)))


def _email(rng: random.Random, fakes: Fakes) -> str:
    # mostly on a first name: " Sara" is one token and the request's " sara" two, a copy a small
    # model gets wrong unless it has seen it
    fake = fakes.any()
    local = rng.choice(data("pools")["first_names"]) if rng.random() < 0.5 else fake.user_name()
    if rng.random() < 0.4:
        local += rng.choice([".", "_", ""]) + fake.last_name().lower().replace(" ", "")
    domain = fake.free_email_domain() if rng.random() < 0.4 else fake.domain_name()
    return re.sub(r"[^a-z0-9._@-]", "", f"{local}@{domain}".lower())


def _ticker(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(data("pools")["pools"]["symbol"])
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(2, 5)))


def _from_pool_or_fake(rng: random.Random, pool: str, fake_value, share: float = 0.75) -> str:
    return rng.choice(data("pools")["pools"][pool]) if rng.random() < share else fake_value()


def string_value(rng: random.Random, fakes: Fakes, kind: str, spec: dict) -> Said:
    """A string of `kind` and how it is written."""
    example = example_of(spec)
    fake = fakes.any()
    if kind == "date":
        return _date(rng)
    if kind == "date-time":
        day, clock = _date(rng), _time(rng)
        return Said(f"{day.value}T{clock.value}:00", f"{day.text} at {clock.text}")
    if kind == "time":
        said = _time(rng)
        if spec.get("format") == "time" and "hh:mm" not in str(spec.get("description", "")).lower():
            said.value += ":00"
        return said
    if kind == "currency":
        common = data("pools")["colloquial_currency"]
        code, name = (rng.choice(list(common)), "") if rng.random() < 0.6 else fakes.en.currency()
        names = common.get(code) or [name]
        roll = rng.random()
        text = code if roll < 0.5 else rng.choice(names) if roll < 0.9 else code.lower()
        return Said(code, text)
    if kind in ("identifier", "word") and example and any(c.isdigit() for c in example):
        return Said(_reshape(rng, example), "", True)
    if kind == "word" and (phrase := quoted_example(spec)) and len(phrase.split()) <= 4:  # "lisinopril 10 mg"
        value = _in_form_of(rng, phrase)
        return Said(value, value, True)
    makers = {
        "email": lambda: _email(rng, fakes),
        "phone": fake.phone_number,
        "url": fake.url,
        "uuid": fakes.en.uuid4,
        "ticker": lambda: _ticker(rng),
        "language": lambda: rng.choice(data("pools")["languages"]) if rng.random() < 0.7
        else fakes.en.language_name(),
        "country": fake.country,
        "address": lambda: fake.street_address().replace("\n", ", ")
        + (f", {fake.city()}" if rng.random() < 0.4 else ""),
        "city": lambda: fake.city() if rng.random() < 0.8 else _syllables(rng, 2, 3).capitalize(),
        "person": lambda: _person(rng, fake, spec),
        "company": fake.company,
        "identifier": lambda: _reshape(rng, rng.choice(["A-10482", "10482913", "XK-2291",
                                                        "ab12-cd34", "R123456"])),
        "query": lambda: _from_pool_or_fake(rng, "query", lambda: fakes.en.catch_phrase().lower()),
        "title": lambda: _from_pool_or_fake(rng, "title", fakes.en.catch_phrase),
        "subject": lambda: _from_pool_or_fake(rng, "subject", fakes.en.catch_phrase, 0.85),
        "text": lambda: rng.choice(data("pools")["pools"]["text"] + data("pools")["more_text"]),
        "label": lambda: _from_pool_or_fake(rng, "label", fakes.en.word),
    }
    # Faker's values can end in a space or hold two ('Ronda Lucila Andres 837 Puerta 3 '): the
    # request's text is tidied of such spaces, so the call's value must be too, or they differ
    value = re.sub(r"\s+([,;:])", r"\1", " ".join(makers.get(kind, fakes.en.word)().split()))
    if kind == "ticker":
        return Said(value, value if rng.random() < 0.85 else value.lower(), True)
    return Said(value, value, True)


def _date(rng: random.Random) -> Said:
    day = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 3 * 365))
    nth = _ordinal(day.day)
    forms = [f"{day:%B} {day.day}, {day.year}", f"{day.day} {day:%B} {day.year}", day.isoformat(),
             f"{day:%b} {day.day} {day.year}", f"the {nth} of {day:%B} {day.year}",
             f"{day:%B} {nth} {day.year}", f"{day:%A}, {day:%B} {day.day}, {day.year}",
             f"{day.day} {day:%b} {day.year}"]
    text = rng.choice(forms)
    return Said(day.isoformat(), text.lower() if rng.random() < 0.15 else text)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _time(rng: random.Random) -> Said:
    hour = rng.choice(list(range(6, 23)) + [9, 10, 12, 14, 18, 19, 20])
    minute = rng.choice([0, 0, 0, 15, 30, 30, 45, rng.randrange(60)])
    value = f"{hour:02d}:{minute:02d}"
    twelve = hour % 12 or 12
    half = "am" if hour < 12 else "pm"
    forms = [value, f"{twelve}:{minute:02d} {half}", f"{twelve}:{minute:02d}{half}"]
    if minute == 0:
        forms += [f"{twelve}{half}", f"{twelve} {half}", f"{twelve} o'clock" if 8 <= hour <= 11 else value,
                  f"{twelve} in the {'morning' if hour < 12 else 'afternoon' if hour < 18 else 'evening'}"]
        if hour == 12:
            forms.append("noon")
    if minute == 30:
        forms.append(f"half past {twelve} {half}")
    if minute == 15:
        forms.append(f"quarter past {twelve} {half}")
    text = rng.choice(forms)
    return Said(value, text.upper() if rng.random() < 0.1 else text)


COMMON = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 60, 75, 90, 100, 120]
NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0-999 in English words ("forty-two")."""
    if n < 20:
        return NUMBER_WORDS[n]
    if n < 100:
        return TENS[n // 10 - 2] + ("" if n % 10 == 0 else "-" + NUMBER_WORDS[n % 10])
    rest = n % 100
    return f"{NUMBER_WORDS[n // 100]} hundred" + ("" if not rest else f" and {number_words(rest)}")


UNITS = [("minute", "minutes"), ("min", "minutes"), ("second", "seconds"), ("hour", "hours"),
         ("day", "days"), ("night", "nights"), ("week", "weeks"), ("_km", "km"), ("kilomet", "km"),
         ("_kg", "kg"), ("kilogram", "kg"), ("percent", "%"), ("degree", "degrees"),
         ("people", "people"), ("guests", "guests"), ("passenger", "passengers"),
         ("results", "results"), ("seats", "seats")]


def unit_of(name: str, spec: dict) -> str | None:
    hay = f"{name.lower()} {str(spec.get('description', '')).lower()}"
    return next((unit for word, unit in UNITS if word in hay), None)


def _number_range(name: str, spec: dict, integer: bool) -> tuple[float, float]:
    lo = spec.get("minimum", spec.get("exclusiveMinimum"))
    hi = spec.get("maximum", spec.get("exclusiveMaximum"))
    lowered = name.lower()
    if lo is None:
        lo = 0 if any(w in lowered for w in ("volume", "level", "brightness", "percent")) else 1
    if hi is None:
        hi = (2030 if "year" in lowered else 20 if any(w in lowered for w in ("count", "max", "limit", "results", "num"))
              else 180 if "minute" in lowered else 100 if integer else 1000)
        hi = max(hi, lo + 1)
    if "exclusiveMinimum" in spec and "minimum" not in spec:
        lo += 1 if integer else 0.01
    if "exclusiveMaximum" in spec and "maximum" not in spec:
        hi -= 1 if integer else 0.01
    return lo, hi


def number_value(rng: random.Random, name: str, spec: dict, integer: bool) -> Said:
    lo, hi = _number_range(name, spec, integer)
    unit = unit_of(name, spec)
    span = hi - lo
    if integer:
        lo_i, hi_i = int(-(-lo // 1)), int(hi // 1)
        pool = list(range(lo_i, hi_i + 1)) if hi_i - lo_i < 2000 else None
        common = [v for v in COMMON if lo_i <= v <= hi_i]
        if common and rng.random() < 0.6:  # the numbers people say most
            n = rng.choice(common)
        elif pool and len(pool) > 12 and rng.random() < 0.4:
            n = rng.choice(pool[:12])
        else:
            n = rng.randint(lo_i, max(lo_i, hi_i)) if pool is None else rng.choice(pool)
        step = spec.get("multipleOf")
        if isinstance(step, int) and step > 0:
            n = max(lo_i, n - n % step) if (n - n % step) >= lo_i else n + (step - n % step)
        value: Any = n
        if "year" in name.lower():
            return Said(n, str(n))
        text = number_words(n) if 0 <= n < 1000 and rng.random() < 0.3 else f"{n:,}" if n >= 1000 and rng.random() < 0.5 else str(n)
        if unit == "minutes":
            words = data("phrases")["hours_words"].get(n)
            if words and rng.random() < 0.6:
                return Said(n, rng.choice(words))
            if n % 60 == 0 and n >= 60 and rng.random() < 0.5:  # "2 hours", "three hrs"
                hours = n // 60
                count = number_words(hours) if rng.random() < 0.4 else str(hours)
                return Said(n, f"{count} {rng.choice(['hours', 'hrs', 'hr', 'hours'])}" if hours > 1 else "an hour")
    else:
        roll = rng.random()
        common = [v for v in COMMON + [150, 200, 250, 300, 500, 1000, 1500, 2000, 5000] if lo <= v <= hi]
        if common and roll < 0.5:
            n = rng.choice(common)
        else:
            n = round(lo + rng.random() * min(span, 500 if roll < 0.8 else span), rng.choice([0, 1, 2, 2]))
            n = min(max(n, lo), hi)
        value = int(n) if float(n).is_integer() else n
        text = f"{value:,}" if value >= 1000 and rng.random() < 0.5 else str(value)
    if unit:
        short = {"minutes": rng.choice(["minutes", "min", "mins", "minutes"]), "%": "%",
                 "hours": rng.choice(["hours", "hrs", "hours"]), "seconds": rng.choice(["seconds", "secs", "s"])}
        shown = short.get(unit, unit)
        if value == 1 and shown.endswith("s") and len(shown) > 2:
            shown = shown[:-1]
        tight = shown in ("%", "kg", "km") and text[-1:].isdigit() and rng.random() < 0.5
        text = f"{text}{shown}" if tight else f"{text} {shown}"
    return Said(value, text)


def merge_all_of(spec: dict, resolve: Resolver) -> dict:
    merged = {k: v for k, v in spec.items() if k != "allOf"}
    for part in spec.get("allOf", []):
        part = resolve(part)
        for key, val in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **val}
            elif key == "required":
                merged["required"] = sorted(set(merged.get("required", [])) | set(val))
            else:
                merged.setdefault(key, val)
    return merged


def value_for(rng: random.Random, fakes: Fakes, name: str, spec: Any, resolve: Resolver,
              depth: int = 0) -> Said:
    """A value for `spec` and its words; the value always has the schema's type."""
    spec = resolve(spec)
    if "allOf" in spec:
        spec = merge_all_of(spec, resolve)
    for key in ("oneOf", "anyOf"):
        if spec.get(key):
            options = [resolve(o) for o in spec[key]]
            real = [o for o in options if o.get("type") != "null"] or options
            branch = rng.choice(real)
            rest = {k: v for k, v in spec.items() if k != key}
            return value_for(rng, fakes, name, {**rest, **branch}, resolve, depth)
    if "const" in spec:
        return Said(spec["const"], _plain(spec["const"]))
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        choice = rng.choice(spec["enum"])
        return Said(choice, _plain(choice).replace("_", " ") if isinstance(choice, str) else _plain(choice))
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = rng.choice([k for k in kind if k != "null"] or ["null"])
    if kind is None:
        kind = ("object" if "properties" in spec else "array" if "items" in spec else "string")
    if kind == "null":
        return Said(None, "none")
    if kind == "boolean":
        flag = rng.random() < 0.6
        return Said(flag, "yes" if flag else "no")
    if kind in ("integer", "number"):
        return number_value(rng, name, spec, kind == "integer")
    if kind == "array":
        return _array(rng, fakes, name, spec, resolve, depth)
    if kind == "object":
        return object_value(rng, fakes, spec, resolve, depth + 1)
    return _string(rng, fakes, name, spec)


def _string(rng: random.Random, fakes: Fakes, name: str, spec: dict) -> Said:
    lo, hi = spec.get("minLength", 0), spec.get("maxLength")
    pattern = spec.get("pattern")
    said = Said("", "")
    example = example_of(spec) if pattern else None
    shaped = example is not None and _matches(pattern, example)  # "like AB-1234" for "^AB-\\d{4}$"
    for attempt in range(6):
        if shaped and attempt >= 3:  # the kind's values miss the pattern: the example's shape meets it
            said = Said(_reshape(rng, example), "", True)
        else:
            said = string_value(rng, fakes, kind_of(name, spec), spec)
        if not said.text:
            said.text = said.value
        ok_length = lo <= len(said.value) and (hi is None or len(said.value) <= hi)
        if ok_length and (not pattern or _matches(pattern, said.value)):
            return said
    if hi is not None and len(said.value) > hi:
        said = Said(said.value[:hi], said.value[:hi], True)
    if len(said.value) < lo:
        said = Said(said.value + "x" * (lo - len(said.value)), "", True)
        said.text = said.value
    return said  # may still miss a pattern: the caller validates and draws again


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _array(rng, fakes, name, spec, resolve, depth) -> Said:
    items = resolve(spec.get("items", {"type": "string"}))
    if "description" not in items and (phrase := quoted_example(spec)):
        items = {**items, "description": f'e.g. "{phrase}"'}  # the list's example shows its items' form
    lo = spec.get("minItems", 1)
    hi = spec.get("maxItems", max(lo, 3))
    count = rng.randint(lo, max(lo, min(hi, lo + 2)))
    singular = name[:-1] if name.endswith("s") and len(name) > 3 else name
    out: list[Said] = []
    for _ in range(count * 4):
        if len(out) == count:
            break
        said = value_for(rng, fakes, singular, items, resolve, depth + 1)
        if spec.get("uniqueItems") or ("enum" in items and len(items["enum"]) >= lo):  # each option once, if enough
            if any(o.value == said.value for o in out):
                continue
        out.append(said)
    words = [o.text for o in out]
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + rng.choice([" and ", ", "]) + words[-1] if words else "none"
    return Said([o.value for o in out], text)


def object_value(rng: random.Random, fakes: Fakes, spec: dict, resolve: Resolver, depth: int = 0,
                 optional_share: float = 0.5) -> Said:
    """Every required property and each optional one at `optional_share`."""
    spec = resolve(spec)
    if "allOf" in spec:
        spec = merge_all_of(spec, resolve)
    props = spec.get("properties") or {}
    required = set(spec.get("required", []))
    value, parts = {}, []
    for key, sub in props.items():
        if key in required or (depth < 3 and rng.random() < optional_share):
            said = value_for(rng, fakes, key, sub, resolve, depth)
            value[key] = said.value
            parts.append(f"{humanize(key)} {said.text}")
    for key in sorted(required - set(props)):  # required but undeclared: any string
        value[key] = fakes.en.word()
        parts.append(f"{humanize(key)} {value[key]}")
    return Said(value, ", ".join(parts))


def humanize(name: str) -> str:
    """`max_results` / `maxResults` → "max results"."""
    return re.sub(r"[_\-.]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)).strip().lower()


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
