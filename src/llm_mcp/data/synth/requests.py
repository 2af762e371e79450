"""The words of a request: a tool's intent, each argument's phrase, a frame, and typing habits.

From a tool's description ("Get the current weather for a city.") comes its intent: the action
`do` ("get the current weather", the verb varied: "check the current weather"), its object `what`
("the current weather") and the object's head `topic` ("weather"). Each argument is introduced by
a phrase that suits its role ("in Lisbon", "at 8pm", "for 25 minutes", "into German"), found from
its name, type and description, or by a generic one that names the parameter ("priority high");
arguments come in any order. Frames put them together as a command, a question or a fragment.
The phrase data is in phrases.yaml.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm_mcp.data.synth.values import Said, data, humanize, kind_of, unit_of


@dataclass
class Intent:
    do: str      # "get the current weather"
    what: str    # "the current weather"
    topic: str   # "weather"
    verb: str    # "get"

    @property
    def reads(self) -> bool:
        return self.verb in data("phrases")["reading_verbs"]


PREPOSITIONS = {"for", "of", "in", "into", "to", "from", "between", "on", "at", "by", "with",
                "within", "using", "via", "across", "inside", "that", "which", "who", "whose",
                "where", "when", "so", "if", "optionally", "-"}
WH_WORDS = {"how", "what", "where", "when", "whether", "which", "who"}
NOT_VERBS = {"the", "a", "an", "this", "tool", "function", "endpoint", "api", "method", "returns:"}


def _short(words: list[str]) -> list[str]:
    """The action without its complement: "get the current weather [for a city]"."""
    for i in range(2, len(words)):
        if words[i].lower() == "to" and words[i - 1].lower() in WH_WORDS:
            continue  # "tell the driver how to hand over a parcel" is one action
        if words[i].lower() in PREPOSITIONS:
            return words[:i]
    return words


def intent_of(tool: dict, rng: random.Random | None = None) -> Intent:
    """The action a tool performs, from the first sentence of its description (or its name)."""
    verbs = data("phrases")["verbs"]
    first = re.split(r"(?<=[.!?])\s", (tool.get("description") or "").strip())[0].strip().rstrip(".!")
    words = [w.strip(",;:") for w in first.split() if w.strip(",;:")]
    if words:  # "Gets the weather" → "get the weather"
        head = words[0].lower()
        if head not in verbs and head.endswith("s") and not head.endswith("ss") and head[:-1] in verbs:
            words[0] = head[:-1]
    if not words or words[0].lower() in NOT_VERBS:
        named = humanize(tool["name"]).split()
        words = (named if named and named[0] in verbs else ["use", *named]) if not words or len(words) < 2 \
            else ["use", *named]
    if len(words) > 1 and words[0].lower() == "look" and words[1].lower() in ("up", "for"):
        words = ["look"] + words[2:]  # "look up" is one verb: vary_verb says it again
    whole = re.sub(r"\s*\(.*?\)", "", " ".join(words))
    short = " ".join(_short(whole.split()))
    core = short if rng is None or rng.random() < 0.75 else whole
    verb, *rest = core.split()
    verb = verb.lower()
    what = " ".join(rest) or humanize(tool["name"])
    what = what[0].lower() + what[1:] if what[:2] != what[:2].upper() else what
    topic = re.sub(r"^(?:the|a|an|some)\s+", "", what).split()[-1] if what.split() else what
    said = verbs.get(verb, [verb])[0]  # "look" is said "look up"
    return Intent(f"{said} {what}", what, topic, verb)


def vary_verb(rng: random.Random, intent: Intent) -> str:
    options = data("phrases")["verbs"].get(intent.verb, [intent.verb])
    return f"{rng.choice(options)} {intent.what}"


LIMIT_WORDS = ("max", "limit", "results", "top", "size")
# role → words in the parameter's name that say it; checked in order after type and kind
ROLE_WORDS = [
    ("origin", ("origin", "from", "source", "start", "pickup", "departure")),
    ("destination", ("destination", "dest", "dropoff", "arrival", "to_")),
    ("duration", ("duration", "minutes", "seconds", "hours", "length", "nights", "days")),
    ("count", ("count", "max", "limit", "number", "num_", "results", "size", "quantity", "people",
               "guests", "seats", "passengers", "parcel")),
    ("level", ("volume", "level", "brightness", "percent", "temperature", "stars", "rating")),
    ("amount", ("amount", "price", "value", "weight", "cost", "total", "distance")),
]


def role_of(name: str, spec: dict, said: Said) -> str:
    """How a request introduces this argument."""
    lowered = name.lower()
    value = said.value
    if isinstance(value, bool):
        return "flag_on" if value else "flag_off"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "generic"
    if "enum" in spec:
        return "language" if "language" in lowered else "choice"
    kind = kind_of(name, spec) if isinstance(value, str) else "number"
    if kind == "currency":
        return ("currency_from" if any(w in lowered for w in ("from", "source", "base")) else
                "currency_to" if any(w in lowered for w in ("to", "target", "into")) else "choice")
    if kind in ("city", "address", "country"):
        for role, words in ROLE_WORDS[:2]:
            if any(w in lowered for w in words):
                return role
        return "place"
    if kind in ("email", "phone") and lowered in ("to", "recipient", "recipients", "phone", "number", "email"):
        return "recipient"
    simple = {"person": "person", "date": "date", "date-time": "date", "time": "time",
              "language": "language", "text": "text", "title": "title", "subject": "subject",
              "query": "query", "identifier": "identifier", "ticker": "identifier"}
    if kind in simple:
        return simple[kind]
    if kind == "number":
        for role, words in ROLE_WORDS[2:]:
            if any(w in lowered for w in words):
                if role == "duration":
                    return "duration" if unit_of(name, spec) else "count"
                if role == "count" and any(w in lowered for w in LIMIT_WORDS):
                    return "limit"  # "top 5", "max 5 results"; a parcel count is "3 parcels"
                return role
    return "generic"


def _count_noun(name: str, said: Said) -> str:
    words = humanize(name).split()
    words = [w for w in words if w not in ("max", "min", "number", "num", "of", "count", "total", "limit")]
    noun = words[-1] if words and words[-1] not in ("size", "quantity", "amount") else "items"
    if str(said.text).strip() in ("1", "one"):
        return {"people": "person", "children": "child"}.get(noun, noun.rstrip("s"))
    if noun.endswith("s") or noun in ("people", "children"):
        return noun
    return noun[:-1] + "ies" if re.search(r"[^aeiou]y$", noun) else noun + "s"  # "4 parcels"


def quote(rng: random.Random, text: str, role: str) -> str:
    if role in ("text", "title", "subject", "query") and " " in text and rng.random() < 0.5:
        return rng.choice(['"{}"', "'{}'", "“{}”"]).format(text)
    return text


def argument_phrase(rng: random.Random, name: str, spec: dict, said: Said, generic_share: float = 0.25) -> str:
    """'in Lisbon', 'at 8pm', 'priority high' ..."""
    phrases = data("phrases")["arguments"]
    role = role_of(name, spec, said)
    label = humanize(name)
    if role.startswith("flag"):
        label = re.sub(r"^(?:is|include|enable|with|use|allow|has|only|show)\s+", "", label)
        if rng.random() < generic_share:
            return rng.choice(["{name}: {v}", "{name} {v}", "{name} = {v}"]).format(
                name=label, v=rng.choice(["yes", "true"] if said.value else ["no", "false"]))
        return rng.choice(phrases[role]).format(name=label)
    pool = phrases["generic"] if role == "generic" or rng.random() < generic_share else phrases[role]
    template = rng.choice(pool)
    text = said.text if '"' in template else quote(rng, said.text, role)
    noun = _count_noun(name, said) if "{noun}" in template else ""
    if noun and said.text.rsplit(" ", 1)[-1].rstrip("s") == noun.rstrip("s"):  # said "1 result" already
        template = template.replace(" {noun}", "")
    return template.format(v=text, name=label, noun=noun)


def join_phrases(rng: random.Random, phrases: list[str]) -> str:
    if len(phrases) < 2:
        return "".join(phrases)
    glue = rng.choice([" ", ", ", " ", "; "])
    last = rng.choice([glue, " and ", ", and "]) if glue != "; " else glue
    return glue.join(phrases[:-1]) + last + phrases[-1]


def fill(frame: str, do: str, intent: Intent, args: str) -> str:
    def cap(s: str) -> str:
        return s[:1].upper() + s[1:]

    text = (frame.replace("{Do}", cap(do)).replace("{do}", do).replace("{what}", intent.what)
            .replace("{Topic}", cap(intent.topic)).replace("{topic}", intent.topic)
            .replace("{args}", args))
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    text = re.sub(r"\s+([.,?!;:])(?=\s|$)", r"\1", text)
    return re.sub(r"^[-:;,]\s*|\s*[-:;,]$", "", text).strip()


def one_request(rng: random.Random, intent: Intent, args: str, kind: str | None = None) -> str:
    frames = data("phrases")["frames"]
    if kind is None:
        roll = rng.random()
        asks_for_thing = intent.what.split()[0].lower() in ("the", "a", "an", "your", "my", "current", "latest")
        kind = ("question" if intent.reads and asks_for_thing and roll < 0.3 else
                "fragment" if args and roll > 0.82 else
                "bare" if args and roll > 0.64 else "ask")
    do = vary_verb(rng, intent)
    verb = do[: len(do) - len(intent.what)].strip() or intent.verb
    frame = rng.choice(frames[kind]).replace("{Verb}", verb[:1].upper() + verb[1:]).replace("{verb}", verb)
    return fill(frame, do, intent, args)


def continuation(rng: random.Random, intent: Intent, args: str) -> str:
    return fill(rng.choice(data("phrases")["continuations"]), vary_verb(rng, intent), intent, args)


def again(rng: random.Random, args: str) -> str:
    return rng.choice(data("phrases")["again"]).format(args=args)


def same(rng: random.Random, args: str) -> str:
    return rng.choice(data("phrases")["same"]).format(args=args)


def join_requests(rng: random.Random, parts: list[str], protected: Sequence[str] = ()) -> str:
    text = parts[0]
    for part in parts[1:]:
        joiner = rng.choice(data("phrases")["joiners"])
        if joiner.rstrip().endswith((".", "\n")) or joiner == "\n":
            part = part[:1].upper() + part[1:]
            text = rstrip_outside(text, ".!?, ", protected)
            if joiner.startswith("."):
                text += "" if text.endswith((".", "!", "?")) else "."
                joiner = joiner.lstrip(".")
        else:
            text = rstrip_outside(text, ".!?", protected)
        text += joiner + part
    return text


def roughen(rng: random.Random, text: str, protected: Sequence[str], rate: float) -> tuple[str, bool]:
    """Typing habits at `rate` each: lower case, no final punctuation, shorthand, one typo. Only
    the case reaches the copied values. Returns the text and whether it was lower-cased (copied
    values follow it)."""
    lowered = False
    if rng.random() < rate:
        text, lowered = text.lower(), True
        protected = [p.lower() for p in protected]
    if rng.random() < rate * 1.5:
        text = rstrip_outside(text, ".!?", protected)
    if rng.random() < rate * 0.5:
        for word, short in data("phrases")["shorthand"].items():
            spans = _spans(text, protected)
            text = re.sub(rf"\b{re.escape(word)}\b", lambda m: m.group() if _within(m, spans) else short,
                          text, flags=re.I)
    if rng.random() < rate * 0.6:
        text = _typo(rng, text, protected)
    return text, lowered


def _spans(text: str, protected: Sequence[str]) -> list[tuple[int, int]]:
    """Where the copied values stand in `text`."""
    return [(m.start(), m.end()) for p in protected if p for m in re.finditer(re.escape(p), text)]


def _within(m: re.Match, spans: list[tuple[int, int]]) -> bool:
    return any(a < m.end() and m.start() < b for a, b in spans)


def rstrip_outside(text: str, chars: str, protected: Sequence[str]) -> str:
    """`text` without its trailing `chars`, stopping where a copied value ends ("… Thursday?")."""
    keep = max((b for _, b in _spans(text, protected)), default=0)
    stripped = text.rstrip(chars)
    return stripped if len(stripped) >= keep else text[:keep]


def _typo(rng: random.Random, text: str, protected: Sequence[str]) -> str:
    spans = _spans(text, protected)
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text) if not _within(m, spans)]
    if not words:
        return text
    m = rng.choice(words)
    w = m.group()
    i = rng.randrange(1, len(w) - 2)
    w = w[:i] + w[i + 1] + w[i] + w[i + 2:] if rng.random() < 0.5 else w[:i] + w[i + 1:]
    return text[:m.start()] + w + text[m.end():]
