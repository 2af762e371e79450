"""The values a conversation states, read by rule: email addresses, phone numbers, URLs, UUIDs,
identifiers, street addresses, dates, clock times, durations, currencies, languages, numbers,
people's names and words in quotes, each as a call would hold it.

A 135M model picks the right parameter more often than it copies the right value: it writes
`dubois@gmail.com` for "mark.dubois@gmail.com", `3` for "3,000", `15` for "fifteen thousand",
`19:00` for "9am". chat/ground.py compares a call's values with what is read here and, where the
model's value is none of them and exactly one fits, takes that one.

Each reader returns `Mention`s: the readings of one stated value. A clock time said without
am/pm ("7:30") has two readings (07:30 and 19:30), a currency name several currencies share
("dollars") all their codes; everything else has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from llm_mcp.chat.types import normalize

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'`]+", re.I)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_PHONE = re.compile(r"\+?\(?\d[\d ().-]{5,}\d")
_TRIM = ".,;:!?()[]{}<>\"'`"
# a date, a clock time, a number with a unit or an ordinal ("2027-06-26", "10am", "5kg", "3rd"): not an id
_NOT_ID = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{1,2}:\d{2}(?:[ap]m)?|\d+(?:[.,]\d+)*[a-z%]{0,3}", re.I)

# clock times: "9am", "9:30 p.m.", "21:00", "noon"; "half past seven", "quarter to 8"
_HOURS = {w: i for i, w in enumerate("twelve one two three four five six seven eight nine ten eleven".split())}
_HOUR = r"(\d{1,2}|" + "|".join(_HOURS) + r")"
_MERIDIEM = r"\s*([ap])\.?\s?m\b\.?"
_CLOCKS = [
    (re.compile(r"\b(?:half|quarter) (?:past|to) " + _HOUR + r"\b(?:" + _MERIDIEM + r")?", re.I), "words"),
    (re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?" + _MERIDIEM, re.I), "meridiem"),  # "7:30pm", "7.30pm"
    (re.compile(r"(?<![\d:.])(\d{1,2}):(\d{2})(?![\d:]|\s*[ap]\.?\s?m\b)", re.I), "clock"),
    (re.compile(r"\b" + _HOUR + r" o'?clock\b", re.I), "oclock"),
    (re.compile(r"(?:" + "|".join(rf"(?<=\b{w} )" for w in ("at", "from", "after", "by", "before", "until", "till"))
                + ")" + _HOUR + r"(?= (?:in the (?:morning|afternoon|evening)|at night|tonight)\b)", re.I),
     "oclock"),  # "at 7 in the evening", "from 8 in the morning" (not "for 2 in the evening")
]
# the part of the day said after a time without am/pm: "half past six in the morning"
_DAYPART = re.compile(r" (?:in the (morning)|in the (?:afternoon|evening)|at (night)|tonight)\b", re.I)
_NAMED = {"noon": "12:00", "midday": "12:00", "midnight": "00:00"}

# numbers: "3,000", "1.5", "3k", "2.5 million" (number words are first written as digits, text2num)
# (a unit may follow: "5kg"; a number inside a word, an id or a date is not one: "PX-4829", "2027-06-26")
_NUMBER = re.compile(r"(?<![\w.,:/-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s?(k|thousand|million|bn|billion)\b)?"
                     r"(?![\d:/-]|[.,]\d)", re.I)
MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?")
WEEKDAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
SHORT_DAYS = {"mon": "monday", "tue": "tuesday", "tues": "tuesday", "wed": "wednesday", "thu": "thursday",
              "thur": "thursday", "thurs": "thursday", "fri": "friday", "sat": "saturday", "sun": "sunday"}
_ORD = r"(?:st|nd|rd|th)?"
# dates: "3 May 2027", "the 3rd of May", "May 3, 2027", "2027-05-03"
_DATES = [
    re.compile(rf"\b(?P<d>\d{{1,2}}){_ORD}(?: of)? (?P<m>{MONTH})(?:,? (?P<y>\d{{4}})\b)?", re.I),
    re.compile(rf"\b(?P<m>{MONTH}) (?:the )?(?P<d>\d{{1,2}}){_ORD}\b(?:,? (?P<y>\d{{4}})\b)?", re.I),
    re.compile(r"\b(?P<y>\d{4})-(?P<mm>\d{1,2})-(?P<d>\d{1,2})\b"),
]
_SUM = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:k|thousand|million|bn|billion)\b)?", re.I)
_SCALE = {"k": 1_000, "thousand": 1_000, "million": 1_000_000, "bn": 10**9, "billion": 10**9}


@dataclass(frozen=True)
class Mention:
    """One stated value: its readings, as a call holds them (a string, or an int or float)."""

    readings: tuple
    pieces: bool = False  # a number written in more than one piece: "3,000", "2.5k", "fifteen thousand"
    noun: str = ""  # the word a number counts or measures: "results" in "5 results", "km" in "10km"


def emails(text: str) -> list[Mention]:
    return _unique(m.group(0).strip(_TRIM) for m in _EMAIL.finditer(text))


def urls(text: str) -> list[Mention]:
    return _unique(m.group(0).rstrip(_TRIM) for m in _URL.finditer(text))


def uuids(text: str) -> list[Mention]:
    return _unique(m.group(0) for m in _UUID.finditer(text))


def phones(text: str) -> list[Mention]:
    found = (m.group(0).strip() for m in _PHONE.finditer(_EMAIL.sub(" ", text)))
    return _unique(p for p in found if sum(c.isdigit() for c in p) >= 7)


def identifiers(text: str, example: str | None = None) -> list[Mention]:
    """Words of the text that look like ids: a digit and a letter in one word ("PX-482913",
    "1Z999AA1"), or, when the parameter's description shows an `example`, the example's shape
    (letters and digits in the same order: "PX-nnnnnn" admits "px482913", and "48213" for an
    all-digit example)."""
    text = _URL.sub(" ", _EMAIL.sub(" ", text))
    words = (w.strip(_TRIM) for w in text.split())
    if example:
        want = shape(example)
        return _unique(w for w in words if normalize(w) and shape(w) == want)
    return _unique(w for w in words if len(normalize(w)) >= 4 and any(c.isdigit() for c in w)
                   and any(c.isalpha() for c in w) and not _NOT_ID.fullmatch(w))


def clock_times(text: str) -> list[Mention]:
    """Clock times as HH:MM. "7:30" and "half past seven" have two readings; "7:30pm",
    "19:30" and "noon" one."""
    found: list[tuple[int, tuple]] = []
    taken: list[range] = []
    for pattern, how in _CLOCKS:
        for m in pattern.finditer(text):
            if _free(m, taken) and (readings := _clock(m, how)):
                found.append((m.start(), _in_daypart(readings, _DAYPART.match(text, m.end()))))
    for word, value in _NAMED.items():
        found += [(m.start(), (value,)) for m in re.finditer(rf"\b{word}\b", text, re.I)]
    return _unique_readings(r for _, r in sorted(found))


def _in_daypart(readings: tuple, part: re.Match | None) -> tuple:
    """Of a time's two readings (07:30 and 19:30), the one in the part of the day said after it:
    the morning's, or the afternoon's, evening's or night's ("eleven at night"; "two at night" is
    02:00)."""
    if len(readings) != 2 or not part:
        return readings
    morning = part.group(1) or (part.group(2) and int(readings[0][:2]) < 6)
    return (readings[0],) if morning else (readings[1],)


def dates(text: str) -> list[Mention]:
    """Days as YYYY-MM-DD; a day said without its year as "--MM-DD" (the year is the model's)."""
    found: list[tuple[int, str]] = []
    taken: list[range] = []
    for pattern in _DATES:
        for m in pattern.finditer(text):
            if not _free(m, taken):
                continue
            month = int(m.group("mm")) if "mm" in pattern.groupindex else _month(m.group("m"))
            day, year = int(m.group("d")), m.group("y")
            try:
                date(int(year or 2000), month, day)  # (2000: a leap year, so 29 February is a day)
            except ValueError:
                continue
            found.append((m.start(), f"{year or '-'}-{month:02d}-{day:02d}"))
    return _unique(d for _, d in sorted(found))


def _month(name: str) -> int:
    return [m[:3] for m in ("jan feb mar apr may jun jul aug sep oct nov dec".split())].index(name[:3].lower()) + 1


def currencies(text: str) -> list[Mention]:
    """Currencies as ISO 4217 codes, from their English names in CLDR (Babel): "Swiss francs",
    "yen", "euro", a code in capitals ("USD"), a one-character symbol ("€"). A name several
    currencies share ("dollars", "pesos") has them all as readings, the one whose symbol is the
    bare sign first ("dollars": USD, for "$")."""
    return _unique_readings(codes for _, _, codes in _currency_spans(text))


def amounts(text: str) -> list[Mention]:
    """Sums of money: a number with a currency named right after it ("60 euros", "100 usd") or
    its sign right before it ("$20", "€5"); the currency's codes as readings (as `currencies`
    gives them), the number as `noun` ("60", "2500" for "2.5k"). A code before a number is not
    read as its currency: in "EUR to GBP 75.50" the sum is in euros."""
    found = []
    sums = [(m, [v for v, _ in _numbers(m.group(0))]) for m in _SUM.finditer(text)]
    for start, end, codes in _currency_spans(text, lower=True):
        sign = end - start == 1 and not text[start].isalnum()
        for m, values in sums:
            if values and ((m.end() <= start and re.fullmatch(r"\s*", text[m.end():start]))
                           or (sign and end <= m.start() and re.fullmatch(r"\s?", text[end:m.start()]))):
                found.append(Mention(codes, noun=str(values[0])))
    return list(dict.fromkeys(found))


def _currency_spans(text: str, lower: bool = False) -> list[tuple[int, int, tuple]]:
    """(start, end, codes) of each currency the text names, in order (see `currencies`); `lower`:
    a code in lower case too, right after a number ("100 usd": "top", "all", "try" are codes)."""
    names, symbols = _currency_names()
    found: list[tuple[int, int, tuple]] = []
    lowered = text.lower()
    taken: list[range] = []
    for phrase in sorted(names, key=len, reverse=True):
        for m in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered):
            if _free(m, taken):
                found.append((m.start(), m.end(), names[phrase]))
    codes = {c for r in names.values() for c in r}
    found += [(m.start(), m.end(), (m.group(0),)) for m in re.finditer(r"\b[A-Z]{3}\b", text) if m.group(0) in codes]
    found += [(m.start(1), m.end(1), (m.group(1).upper(),)) for m in re.finditer(r"\d ?([a-z]{3})\b", text)
              if lower and m.group(1).upper() in codes]
    for sign, code in symbols.items():
        found += [(m.start(), m.end(), (code,)) for m in re.finditer(re.escape(sign), text)]
    return sorted(found)


def languages(text: str, codes: bool = False) -> list[Mention]:
    """Languages named in the text ("korean", "Brazilian Portuguese" → "Portuguese"), as CLDR's
    English names of the ISO 639-1 languages (Babel), or as their codes ("ko") with `codes`; not
    a word of a currency's name ("korean won", "japanese yen")."""
    names = _language_names()
    money = [range(start, end) for start, end, _ in _currency_spans(text)]
    words = [m.group(0) for m in re.finditer(r"[^\W\d_]+", text.lower())
             if not any(m.start() in span for span in money)]
    found, i = [], 0
    while i < len(words):
        pair = " ".join(words[i:i + 2])
        phrase = pair if pair in names else words[i]
        if phrase in names:
            found.append(names[phrase][1 if codes else 0])
        i += 2 if phrase == pair and " " in pair else 1
    return _unique(found)


@lru_cache(maxsize=1)
def _language_names() -> dict[str, tuple[str, str]]:
    """lower-case English name → (name, ISO 639-1 code); names under four letters and "Afar"
    (also English words: "ewe", "afar") left out."""
    from babel import Locale

    return {name.lower(): (name, code) for code, name in Locale("en").languages.items()
            if len(code) == 2 and len(name) >= 4 and name.lower() != "afar"}


_NOT_NAMES = {"real", "won", "rand", "dong", "mark", "marks", "pound", "dollar", "franc", "peso", "rupee"}


# what people call some currencies that CLDR does not name
_NICKNAMES = {"kiwi dollar": "NZD", "kiwi dollars": "NZD", "aussie dollar": "AUD", "aussie dollars": "AUD",
              "loonie": "CAD", "loonies": "CAD", "quid": "GBP", "bucks": "USD", "greenbacks": "USD",
              "rmb": "CNY", "renminbi": "CNY"}


@lru_cache(maxsize=1)
def _currency_names() -> tuple[dict[str, tuple], dict[str, str]]:
    """(lower-case name or name ending → codes, preferred first; one-character symbol → code),
    for the currencies some territory uses today. Single words that are also English words
    ("real", "won") and singular generic nouns are not names on their own."""
    from babel import Locale
    from babel.numbers import get_currency_name, get_currency_symbol, get_territory_currencies

    english = Locale("en")
    codes: set[str] = set()
    for territory in english.territories:
        try:
            codes.update(get_territory_currencies(territory, tender=True))
        except Exception:  # noqa: BLE001 - a territory CLDR has no currency data for
            continue
    symbols = {get_currency_symbol(c, "en"): c for c in sorted(codes)}
    symbols = {s: c for s, c in symbols.items() if len(s) == 1 and not s.isalnum()}
    by_phrase: dict[str, set[str]] = {}
    for code in codes:
        for name in {english.currencies.get(code, ""), get_currency_name(code, count=2, locale="en")}:
            words = name.lower().split()
            for i in range(len(words)):
                phrase = " ".join(words[i:])
                if phrase and not (i == len(words) - 1 and phrase in _NOT_NAMES):
                    by_phrase.setdefault(phrase, set()).add(code)
    for phrase, code in _NICKNAMES.items():
        by_phrase.setdefault(phrase, set()).add(code)
    bare = set(symbols.values())
    return ({p: tuple(sorted(cs, key=lambda c: (c not in bare, c))) for p, cs in by_phrase.items()}, symbols)


# a person's name: two or three capitalised words ("Hannah Okoye", "Jean-Luc Picard", "Siobhan O'Neill")
_CAPITAL = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]*(?:['’-][A-ZÀ-ÖØ-Þ]?[a-zß-öø-ÿ]+)?[a-zß-öø-ÿ]"  # "Tomás", "O'Neill"
_PERSON = re.compile(rf"(?<![\w'’-]){_CAPITAL}(?: {_CAPITAL}){{1,2}}(?![\w'’-])")
_CALENDAR = re.compile(rf"{MONTH}|{WEEKDAY}\b", re.I)


# lists of names: "Berlin, Vienna and Prague", "New York & Boston"; in lower case, three or more
# single words ("berlin, vienna and prague"); not alternatives ("German or Dutch?")
_ITEM = r"[A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,2}"
_LISTS = [re.compile(rf"(?<![\w'.-]){_ITEM}(?:, {_ITEM})*,? (?:and|&) {_ITEM}(?![\w'-])"),
          re.compile(r"(?<![\w'.-])[a-z][\w'-]*(?:, [a-z][\w'-]*)+,? and [a-z][\w'-]*(?![\w'-])")]


def lists(text: str) -> list[Mention]:
    """Lists of names the text says, each as one `Mention` whose readings are its items."""
    found = []
    for pattern in _LISTS:
        for m in pattern.finditer(text):
            items = [i.strip().rstrip(".") for i in re.split(r",\s*(?:and |& )?|\s+(?:and|&)\s+", m.group(0)) if i.strip()]
            if len(items) >= 2:
                found.append(Mention(tuple(items)))
    return found


_QUOTED = re.compile(r"(?<!\w)(['\"‘“])([^'\"‘’“”\n]{2,120}?)(?:\1|[’”])(?!\w)")


def quoted(text: str) -> list[Mention]:
    """The words said in quotes: 'team offsite', "Q3 budget", ‘tea’ (not the apostrophe of "I'm")."""
    return _unique(m.group(2).strip() for m in _QUOTED.finditer(text))


def people(text: str) -> list[Mention]:
    """Runs of two or three capitalised words, no month or weekday among them: a person's name
    ("for Jonas Richter"), or a place's ("3 Birch Lane"). Which, the caller tells from what the
    calls hold: a run inside an address it holds is the address's."""
    return _unique(m.group(0) for m in _PERSON.finditer(text)
                   if not any(_CALENDAR.fullmatch(w.rstrip(".")) for w in m.group(0).split()))


# addresses: a street with its number ("9 Albert Street", "Herengracht 180", "Unit 4"), then
# comma-separated parts in capitals or postcodes (", 1016 BR Amsterdam", ", Reading", ", UK")
_WORD = r"[A-ZÀ-Þ][\w'’-]*"
# ("From 9:15" is a time; a British postcode's second half ends a part: "London NW1 6XE")
_STREET = rf"(?:\d+[A-Za-z]?(?: {_WORD})+|{_WORD}(?: {_WORD})* \d+[A-Za-z]?\b(?! [A-ZÀ-Þ]|[:.]\d))"
_PART = rf"(?:{_STREET}|(?:\d{{4,5}}(?: [A-Z]{{2}})? )?{_WORD}(?: {_WORD})*(?: \d[A-Z]{{2}}\b)?)"
_ADDRESS = re.compile(rf"(?<![\w'’:-]){_STREET}(?:, {_PART})*")


def addresses(text: str) -> list[Mention]:
    """Street addresses written in capitals, with a house number: "Herengracht 180, 1016 BR
    Amsterdam", "Unit 4, Riverside Trading Estate, Reading"; the parts after a month or weekday
    left off ("3 May" is a day, not a street)."""
    found = []
    for m in _ADDRESS.finditer(text):
        parts = m.group(0).split(", ")
        keep = next((k for k, part in enumerate(parts)
                     if any(_CALENDAR.fullmatch(w.rstrip(".")) for w in part.split())), len(parts))
        if keep:
            found.append(", ".join(parts[:keep]).rstrip("."))
    return _unique(found)


def durations(text: str) -> list[Mention]:
    """Lengths of time, in seconds: "90 minutes", "1h15", "2 hrs and 20 min", "half an hour",
    "an hour and a half", "two and a half hours", "a quarter of an hour"."""
    text = _spelled(text.lower())
    found: list[tuple[int, float]] = []
    taken: list[range] = []
    for pattern, seconds in _DURATIONS:
        for m in pattern.finditer(text):
            if _free(m, taken):
                found.append((m.start(), seconds(m)))
    return _unique(int(s) if float(s).is_integer() else s for _, s in sorted(found))


_N = r"(\d+(?:\.\d+)?)"
_H, _M, _S = r"(?:h|hrs?|hours?)", r"(?:mins?|minutes?)", r"(?:secs?|seconds?)"
_DURATIONS = [
    (re.compile(rf"\b(?:an?|1) (?:hour|hr) and a half\b"), lambda m: 5400),
    (re.compile(rf"\b{_N} and a half {_H}\b"), lambda m: (float(m.group(1)) + 0.5) * 3600),
    (re.compile(rf"\bhalf (?:an? )?{_H}\b"), lambda m: 1800),
    (re.compile(rf"\b(?:an? )?quarter (?:of an? )?{_H}\b"), lambda m: 900),
    (re.compile(rf"\b{_N} ?{_H}\b(?:,? ?(?:and )?{_N} ?(?:m\b|{_M}\b))?"),
     lambda m: float(m.group(1)) * 3600 + float(m.group(2) or 0) * 60),
    (re.compile(r"\b(\d+)h(\d{1,2})\b"), lambda m: int(m.group(1)) * 3600 + int(m.group(2)) * 60),
    (re.compile(rf"\b{_N} ?{_M}\b(?:,? ?(?:and )?{_N} ?{_S}\b)?"),
     lambda m: float(m.group(1)) * 60 + float(m.group(2) or 0)),
    (re.compile(rf"\b{_N} ?{_S}\b"), lambda m: float(m.group(1))),
    (re.compile(rf"\ban? (?:hour|hr)\b"), lambda m: 3600),
    (re.compile(rf"\ba (?:minute|min)\b"), lambda m: 60),
]


def numbers(text: str) -> list[Mention]:
    """The numbers said, number words included ("fifteen thousand" → 15000, "3,000" → 3000,
    "2.5k" → 2500); not the days and years of dates ("3 May 2027")."""
    text = _undated(text)
    as_digits = {value for value, _ in _numbers(text)}
    found = [(value, pieces or value not in as_digits) for value, pieces in _numbers(_spelled(text))]
    seen, out = set(), []
    for value, pieces in found:
        if value not in seen:
            seen.add(value)
            out.append(Mention((value,), pieces))
    return out


def quantities(text: str) -> list[Mention]:
    """Numbers with the word right after them, what they count or measure ("5 results", "10km",
    "three parcels" → (3, "parcels")); not lengths of time, nor the days of dates."""
    found = []
    for m in re.finditer(r"(?<![\w.,:/-])(\d+(?:\.\d+)?) ?([^\W\d_]+)", _spelled(_undated(text))):
        noun = m.group(2).lower()
        if not re.fullmatch(rf"{_H}|{_M}|{_S}|m|s|am|pm|st|nd|rd|th", noun):
            value = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
            found.append(Mention((value,), noun=noun))
    return list(dict.fromkeys(found))


# how many to show: "top 5", "the 3 closest" (a superlative after the number), "just 2" and "at
# most 10" with no word after the number (a word is what it counts: "just 2 parcels")
_LIMIT = re.compile(r"\btop (\d+)\b|(?<![\w.,:/-])(\d+) (?:best|[a-z]{3,}est)\b|"
                    r"\b(?:just|only|at most|no more than|max(?:imum)?|limit(?: it)? to) (\d+)\b"
                    r"(?![.,:/-]?\w| ?[^\W\d_])", re.I)


def limits(text: str) -> list[Mention]:
    """The numbers said as how many results to give: "top 5", "the 3 closest drop-off shops",
    "(just 2)", "at most 10"; not with what they count after them ("just 2 parcels", "up to 10 km")."""
    text = _spelled(_undated(text))
    return _unique(int(next(g for g in m.groups() if g)) for m in _LIMIT.finditer(text))


def _free(m: re.Match, taken: list[range]) -> bool:
    """Is match `m` clear of the spans already read (`taken`: a longer reading came first)? If so
    its span is taken."""
    if any(m.start() in r or m.end() - 1 in r for r in taken):
        return False
    taken.append(range(m.start(), m.end()))
    return True


def _spelled(text: str) -> str:
    """Number words written as digits ("fifteen thousand" → "15000", "two" → "2"; text2num;
    "a dozen" → "12", "half a dozen" → "6")."""
    from text_to_num import alpha2digit

    text = re.sub(r"\bhalf a dozen\b", "6", text, flags=re.I)
    text = re.sub(r"\b(?:a|one) dozen\b", "12", text, flags=re.I)
    text = re.sub(rf"\bhalf an? (?={_MEASURE})", "0.5 ", text, flags=re.I)  # "half a kilo"
    text = _NO_AMOUNT.sub(lambda m: m.group(1) or "", text)
    try:
        text = alpha2digit(text, "en", threshold=0)
    except Exception:  # noqa: BLE001 - text2num cannot read it: the digits as written
        pass
    # "2 and a half kilos", "a kilo and a half" (lengths of time: `durations`)
    text = re.sub(rf"\b(\d+) and a half (?={_MEASURE})", lambda m: f"{m.group(1)}.5 ", text, flags=re.I)
    return re.sub(rf"\b(?:a|1) ({_MEASURE}) and a half\b", r"1.5 \1", text, flags=re.I)


# number words that count nothing: "one" as a pronoun ("I'm the one picking her up"), ordinals
# said in words ("ring the bell first"; text2num reads "1st"). ("second" is also a unit of time.)
_NO_AMOUNT = re.compile(r"\b(the|this|that|which|no|any|every|each) one\b(?!-)|"
                        r"\b(?:(?:twenty|thirty)[- ])?(?:first|third|fourth|fifth|sixth|seventh|eighth|ninth)\b|"
                        r"\b(?:tenth|eleventh|twelfth|\w+teenth|twentieth|thirtieth)\b", re.I)

# units of weight, length and volume said with "half": "half a kilo", "1 and a half miles"
_MEASURE = r"(?:kilo(?:gram)?s?|kgs?|grams?|pounds?|lbs?|litres?|liters?|miles?|km|kilomet(?:re|er)s?|met(?:re|er)s?)\b"


def _undated(text: str) -> str:
    """The text without its dates, whose days and years are not amounts ("3 May 2027")."""
    for pattern in _DATES:
        text = pattern.sub(" ", text)
    return text


def counts(text: str) -> list[Mention]:
    """The numbers said (`numbers`), but the hours of clock times, the house numbers of street
    addresses and ordinals ("at 8pm", "9 Albert Street", "a second collection")."""
    for pattern, _ in _CLOCKS:
        text = pattern.sub(" ", text)
    for address in addresses(text):
        text = text.replace(address.readings[0], " ")
    return numbers(re.sub(r"\b\d+(?:st|nd|rd|th)\b", " ", _spelled(_undated(text)), flags=re.I))


def _numbers(text: str):
    for m in _NUMBER.finditer(text):
        whole, frac, scale = m.group(1).replace(",", ""), m.group(2), (m.group(3) or "").lower()
        value = float(f"{whole}.{frac}") if frac else int(whole)
        if scale:
            value = value * _SCALE[scale]
            value = int(value) if float(value).is_integer() else value
        yield value, bool(scale) or "," in m.group(1) or bool(frac)


def _clock(m: re.Match, how: str) -> tuple:
    def hour_of(word: str) -> int | None:
        return _HOURS[word.lower()] if word.lower() in _HOURS else int(word)

    if how == "words":
        phrase = m.group(0).lower()
        hour = hour_of(m.group(1))
        minute = 30 if phrase.startswith("half") else 15 if "past" in phrase else 45
        if "to" in phrase.split()[1:2]:
            hour -= 1
        meridiem = m.group(2)
    elif how == "oclock":
        hour, minute, meridiem = hour_of(m.group(1)), 0, None
    elif how == "meridiem":
        hour, minute, meridiem = int(m.group(1)), int(m.group(2) or 0), m.group(3)
        if not 1 <= hour <= 12:
            return ()
    else:
        hour, minute, meridiem = int(m.group(1)), int(m.group(2)), None
        if m.group(1).startswith("0") or hour == 0 or hour > 12:
            return (f"{hour:02d}:{minute:02d}",) if hour < 24 and minute < 60 else ()
    hour %= 12
    if minute > 59 or hour > 12:
        return ()
    if meridiem:
        return (f"{hour + (12 if meridiem.lower() == 'p' else 0):02d}:{minute:02d}",)
    return (f"{hour:02d}:{minute:02d}", f"{hour + 12:02d}:{minute:02d}")


def shape(value: str) -> str:
    """Letters as "a", digits as "9", runs collapsed, punctuation dropped: "PX-482913" → "a9"."""
    return re.sub(r"(.)\1+", r"\1", re.sub(r"[0-9]", "9", re.sub(r"[a-z]", "a", normalize(value))))


def _unique(values) -> list[Mention]:
    return _unique_readings((v,) for v in values)


def _unique_readings(readings) -> list[Mention]:
    seen, out = set(), []
    for r in readings:
        key = tuple(normalize(str(v)) for v in r)
        if r and key not in seen:
            seen.add(key)
            out.append(Mention(tuple(r)))
    return out
