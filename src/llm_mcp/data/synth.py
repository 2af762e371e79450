"""Training examples from tool schemas alone.

For each request: a tool (or two, for parallel calls), argument values drawn from each parameter's
enum, type, range, format and description (e.g. "City name, e.g. Tokyo" draws cities), optional
arguments present about half the time, and one of several phrasings that mention every value; a
share of requests need no tool and are answered in plain text. Deterministic per seed. With
`values="train"` or `"test"` the two draw from disjoint halves of every value pool (even vs odd
numbers), so a test split never repeats a training value.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from typing import Any

POOLS: dict[str, list[str]] = {
    "city": ["Tokyo", "Paris", "Berlin", "Madrid", "Toronto", "Sydney", "Cairo", "Lima", "Oslo",
             "Seoul", "Nairobi", "Dublin", "Austin", "Lisbon", "Mumbai", "Zurich", "Denver", "Hanoi",
             "Prague", "Boston", "Vienna", "Bangkok", "Chicago", "Athens"],
    "language": ["French", "German", "Spanish", "Italian", "Japanese", "Korean", "Portuguese",
                 "Dutch", "Swedish", "Polish", "Turkish", "Greek", "Hindi", "Arabic"],
    "currency": ["USD", "EUR", "JPY", "GBP", "CHF", "CAD", "AUD", "SEK", "NOK", "INR", "BRL", "MXN"],
    "symbol": ["AAPL", "MSFT", "GOOGL", "AMZN", "NVDA", "TSLA", "META", "NFLX", "IBM", "INTC",
               "ORCL", "AMD", "SAP", "ADBE"],
    "email": ["alice@example.com", "bob@example.org", "carol@example.net", "dan@example.com",
              "erin@example.org", "frank@example.net", "grace@example.com", "heidi@example.org",
              "ivan@example.net", "judy@example.com", "mallory@example.org", "oscar@example.net"],
    "query": ["best hiking trails near me", "how to repot a cactus", "python list comprehension",
              "history of the printing press", "cheap flights to Rome", "vegan lasagna recipe",
              "how do solar panels work", "latest football scores", "symptoms of the flu",
              "tips for better sleep", "how to tie a bowline knot", "origin of the word robot"],
    "title": ["Team standup", "Dentist appointment", "Lunch with Sam", "Project review",
              "Yoga class", "Budget meeting", "Birthday party", "Car service", "Book club",
              "Interview with Lee", "Parent-teacher meeting", "Quarterly planning"],
    "label": ["pasta", "laundry", "tea", "workout", "meeting", "oven", "nap", "break", "eggs",
              "call mom", "parking", "study"],
    "subject": ["Meeting notes", "Invoice", "Weekend plans", "Quick question", "Report draft",
                "Thank you", "Schedule change", "Trip photos", "Lunch tomorrow", "Contract"],
    "text": ["Good morning", "Where is the train station?", "Thank you very much",
             "I would like a coffee", "See you tomorrow", "How much does this cost?",
             "The meeting is at noon", "Happy birthday", "I am learning to cook",
             "Please call me back", "The weather is lovely", "Where can I buy tickets?"],
    "name": ["Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"],
    "word": ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima"],
}
# Which pool a parameter draws from, by words in its name or description (first match wins).
KEYWORDS = [("email", "email"), ("e-mail", "email"), ("recipient", "email"), ("city", "city"),
            ("location", "city"), ("place", "city"), ("language", "language"),
            ("currency", "currency"), ("ticker", "symbol"), ("symbol", "symbol"), ("stock", "symbol"),
            ("query", "query"), ("search", "query"), ("title", "title"), ("event", "title"),
            ("label", "label"), ("subject", "subject"), ("body", "text"), ("text", "text"),
            ("message", "text"), ("name", "name")]

NO_TOOL = [
    ("What is 2 plus 2?", "2 plus 2 is 4."),
    ("Say hello!", "Hello! How can I help you today?"),
    ("What color do you get by mixing blue and yellow?", "Mixing blue and yellow gives green."),
    ("How many days are in a week?", "A week has 7 days."),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by William Shakespeare."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Thanks for your help!", "You're welcome! Let me know if you need anything else."),
    ("What is the opposite of hot?", "The opposite of hot is cold."),
    ("How many legs does a spider have?", "A spider has 8 legs."),
    ("What is the boiling point of water in Celsius?", "Water boils at 100 degrees Celsius at sea level."),
    ("Can you tell me a fun fact?", "Honey never spoils: edible honey has been found in ancient tombs."),
    ("What is 10 divided by 2?", "10 divided by 2 is 5."),
    ("Which planet is known as the red planet?", "Mars is known as the red planet."),
    ("Good night!", "Good night! Sleep well."),
    ("What do bees make?", "Bees make honey and beeswax."),
    ("How many minutes are in an hour?", "An hour has 60 minutes."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."),
    ("Spell the word cat backwards.", "Cat spelled backwards is tac."),
    ("What is the freezing point of water in Fahrenheit?", "Water freezes at 32 degrees Fahrenheit."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("What language is spoken in Brazil?", "Portuguese is the main language of Brazil."),
    ("How are you today?", "I'm doing well, thank you! How can I help?"),
    ("What gas do plants absorb?", "Plants absorb carbon dioxide from the air."),
    ("Name a primary color.", "Red is a primary color."),
    ("What is the tallest animal?", "The giraffe is the tallest animal."),
    ("How many sides does a hexagon have?", "A hexagon has six sides."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("Can you explain what a noun is?", "A noun is a word that names a person, place, thing or idea."),
    ("What is 7 times 6?", "7 times 6 is 42."),
    ("Which is heavier, a kilo of feathers or a kilo of steel?", "They weigh the same: one kilogram each."),
    ("What do you call a baby cat?", "A baby cat is called a kitten."),
    ("Who was the first person on the Moon?", "Neil Armstrong was the first person on the Moon."),
    ("How many hours are in a day?", "A day has 24 hours."),
    ("What is the main ingredient of guacamole?", "Avocado is the main ingredient of guacamole."),
    ("Tell me something nice.", "You're doing great, and it's good to hear from you!"),
    ("What is H2O?", "H2O is the chemical formula for water."),
    ("What season comes after winter?", "Spring comes after winter."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
]

SINGLE = [
    "{Ask}",
    "Please {ask}",
    "Can you {ask}",
    "I need you to {ask}",
    "Could you {ask}",
    "{Ask} Thanks!",
]


def _half(items: list, values: str | None) -> list:
    if values == "train":
        return items[0::2]
    if values == "test":
        return items[1::2]
    return items


def _pool_for(name: str, spec: dict) -> str | None:
    hay = f"{name} {spec.get('description', '')}".lower()
    for word, pool in KEYWORDS:
        if word in name.lower():
            return pool
    for word, pool in KEYWORDS:
        if word in hay:
            return pool
    return None


def _value(rng: random.Random, name: str, spec: dict, values: str | None) -> Any:
    if "enum" in spec and spec["enum"]:
        return rng.choice(spec["enum"])
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        lo = int(spec.get("minimum", 1))
        hi = int(spec.get("maximum", max(lo + 1, 100 if kind == "integer" else 1000)))
        choices = [v for v in range(lo, hi + 1) if values is None or v % 2 == (values == "test")]
        number = rng.choice(choices or [lo])
        if kind == "number" and rng.random() < 0.3:
            return number + rng.choice([0.25, 0.5, 0.75])
        return number
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        item = spec.get("items", {"type": "string"})
        return [_value(rng, name, item, values) for _ in range(rng.randint(1, 3))]
    fmt = spec.get("format", "")
    if fmt == "date" or "yyyy-mm-dd" in spec.get("description", "").lower():
        day = date(2027, 1, 1) + timedelta(days=rng.randrange(0, 365))
        if values and day.day % 2 != (values == "test"):
            day += timedelta(days=1)
        return day.isoformat()
    if "hh:mm" in spec.get("description", "").lower() or name.lower() in ("time", "start_time"):
        hours = _half(list(range(7, 21)), values)
        return f"{rng.choice(hours):02d}:{rng.choice(['00', '15', '30', '45'])}"
    if fmt == "email":
        return rng.choice(_half(POOLS["email"], values))
    pool = _pool_for(name, spec) or "word"
    return rng.choice(_half(POOLS[pool], values))


def _humanize(name: str) -> str:
    return re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)).strip().lower()


def _say(value: Any) -> str:
    """A value as written in a request: multi-word strings quoted so their extent is clear."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and " " in value:
        return f'"{value}"'
    if isinstance(value, list):
        return ", ".join(_say(v) for v in value)
    return str(value)


def _ask(rng: random.Random, tool: dict, args: dict) -> str:
    """A request that names every argument value: '<description> — location Tokyo, unit celsius.'"""
    desc = (tool.get("description") or f"use {_humanize(tool['name'])}").strip().rstrip(".")
    desc = desc[0].lower() + desc[1:]
    parts = [f"{_humanize(k)} {_say(v)}" for k, v in args.items()]
    style = rng.randrange(3)
    if not parts:
        return f"{desc}."
    if style == 0:
        return f"{desc} with {', '.join(parts)}."
    if style == 1:
        return f"{desc}: {'; '.join(parts)}."
    return f"{desc} for {' and '.join(parts)}."


def _args(rng: random.Random, tool: dict, values: str | None) -> dict:
    params = tool["parameters"].get("properties", {})
    required = set(tool["parameters"].get("required", []))
    return {k: _value(rng, k, spec, values) for k, spec in params.items()
            if k in required or rng.random() < 0.5}


def _phrase(rng: random.Random, ask: str) -> str:
    template = rng.choice(SINGLE)
    return template.replace("{Ask}", ask[0].upper() + ask[1:]).replace("{ask}", ask)


def synthesize(tools: list[dict], n: int, seed: int = 0, values: str | None = None,
               no_tool_share: float = 0.15, parallel_share: float = 0.1) -> list[dict]:
    """`n` flat records ({"input", "output", "tool_calls"}) from normalised tool schemas."""
    if not tools:
        raise ValueError("synthesis needs at least one tool")
    rng = random.Random(seed)
    small_talk = _half(NO_TOOL, values)
    records: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(records) < n and attempts < 50 * n:
        attempts += 1  # duplicates are drawn again; a tiny schema may run out of variety
        record = _record(rng, tools, small_talk, values, no_tool_share, parallel_share)
        if record["input"] not in seen:
            seen.add(record["input"])
            records.append(record)
    return records


OPENERS = ["", "Hey, ", "Quick question: ", "Hi! ", "Excuse me, ", "One more thing: ",
           "Hello. ", "No tools needed: "]


def _record(rng, tools, small_talk, values, no_tool_share, parallel_share) -> dict:
    roll = rng.random()
    if roll < no_tool_share:
        question, answer = rng.choice(small_talk)
        opener = rng.choice(OPENERS)
        if opener:
            question = opener + question[0].lower() + question[1:]
        return {"input": question, "output": answer, "tool_calls": []}
    count = 2 if roll < no_tool_share + parallel_share else 1
    chosen = [rng.choice(tools) for _ in range(count)]
    calls, asks = [], []
    for tool in chosen:
        args = _args(rng, tool, values)
        calls.append({"name": tool["name"], "arguments": args})
        asks.append(_ask(rng, tool, args))
    text = _phrase(rng, asks[0])
    if count == 2:
        text += " Also, " + asks[1]
    return {"input": text, "output": "", "tool_calls": calls}
