"""What sort of string a tool parameter holds (an email, a city, an identifier, free text …),
read from its format, name and description.

The request generator (data/synth) draws values by kind; the reply check (chat/ground.py) asks
which values a call can only have copied from the conversation.
"""

from __future__ import annotations

import re


# (words in the parameter's name or description, kind); the name is searched first
KINDS = [
    (("email", "e-mail"), "email"), (("phone", "mobile", "dial"), "phone"),
    (("url", "link", "website", "homepage"), "url"), (("uuid", "guid"), "uuid"),
    (("currency",), "currency"), (("ticker", "symbol", "stock"), "ticker"),
    (("language", "lang"), "language"), (("country",), "country"),
    (("address", "street", "pickup", "dropoff", "drop-off"), "address"),
    (("city", "location", "town", "place", "destination", "origin", "region", "where"), "city"),
    (("author", "recipient_name", "contact", "attendee", "assignee", "patient", "customer",
      "person", "guest_name", "full name", "first name", "last name", "username"), "person"),
    (("company", "business", "restaurant", "venue", "shop", "store", "payee", "team", "brand",
      "product", "organization", "organisation", "hotel"), "company"),
    (("tracking", "order_id", "_id", "id", "code", "reference", "sku", "serial", "number", "ref"),
     "identifier"),
    (("query", "search", "keyword", "terms", "topic", "question"), "query"),
    (("subject",), "subject"),
    (("title", "movie", "song", "album", "dish", "event", "task", "summary", "headline", "book"),
     "title"),
    (("body", "text", "message", "content", "comment", "note", "instruction", "description",
      "review", "reason"), "text"),
    (("label", "tag", "category", "channel", "folder", "room", "word"), "label"),
    (("name",), "person"),
]


# the last word of a name that makes it an identifier, whatever the words before it
ID_ENDS = {"id", "ids", "ref", "uid"}


def kind_of(name: str, spec: dict) -> str:
    """What sort of string a parameter holds, from its format, then its name, then its description."""
    fmt = spec.get("format", "")
    desc = str(spec.get("description", "")).lower()
    if fmt in ("email", "idn-email"):
        return "email"
    if fmt in ("date", "date-time", "time", "uri", "url", "uuid"):
        return {"uri": "url"}.get(fmt, fmt)
    if "yyyy-mm-dd" in desc:
        return "date-time" if "hh:mm" in desc else "date"
    if "hh:mm" in desc or name.lower() in ("time", "start_time", "end_time", "start", "end"):
        return "time"
    lowered = name.lower()
    named = name_words(name) or [""]
    if named[-1] in ID_ENDS and "mail" not in lowered:
        return "identifier"  # `patient_id`, `customerId`: whose id, not whose name
    for hay in (lowered, desc):
        for words, kind in KINDS:
            if any(_within(w, hay, named if hay is lowered else None) for w in words if len(w) > 2 or hay is lowered):
                if kind == "identifier" and hay is desc and not example_of(spec):
                    continue  # "number" in a description alone says little
                return kind
    return "word"


def name_words(name: str) -> list[str]:
    """The words of a parameter's name: `trackingNumber`, `tracking_number` → tracking, number."""
    return [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()) if w]


def _within(word: str, hay: str, named: list[str] | None) -> bool:
    """Is `word` in `hay` (a parameter's name, split into `named`, or its description)? A word of
    three letters or fewer only as a word of its own ("id" of `order_id`, "ref", "url"; not in
    `provider`, `preferred_reply`, `curl`), a longer one anywhere ("email" in `email_body`)."""
    bare = word.strip("_-")
    if len(bare) > 3 or word.startswith("_"):  # ("_id": the end of a name's word)
        return word in hay
    if named is not None:
        return bare in named or bare + "s" in named
    return re.search(rf"\b{re.escape(bare)}s?\b", hay) is not None


def example_of(spec: dict) -> str | None:
    """The example value a description gives ("like PX-482913", "e.g. kitchen-light-2")."""
    desc = str(spec.get("description", ""))
    found = re.search(r"(?:e\.g\.|eg\.|\blike|such as|for example|example:)\s*['\"`]?([^\s'\"`,;()]+)", desc, re.I)
    if found:
        return found.group(1).rstrip(".:")
    placeholder = re.search(r"\b([A-Z]{1,5}[-_/]?)(n{3,}|N{3,}|#{3,}|X{3,}|9{3,})\b", desc)
    if placeholder:  # "PX-nnnnnn"
        return placeholder.group(1) + "7" * len(placeholder.group(2))
    return None


def quoted_example(spec: dict) -> str | None:
    """A quoted example of several words the description gives ('e.g. ["lisinopril 10 mg"]'), or None."""
    desc = str(spec.get("description", ""))
    found = re.search(r"(?:e\.g\.|eg\.|\blike|such as|for example|example:)\s*\[?\s*(['\"`])([^'\"`]+)\1", desc, re.I)
    return found.group(2).strip() if found and len(found.group(2).split()) > 1 else None
