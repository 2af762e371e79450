"""A list of options the model cut short takes the options its sentence names.

Told "PX-293871: leave it at the door and call me when you arrive", a small model writes
`instructions: ["call_on_arrival"]` and closes the list: it read the sentence, and stopped one
option early. Where a call's argument is a list of an enum's options (an array whose items have
an `enum`), and the sentence that names an option the list holds also names others of that enum
that it does not, those join the list, in the order the sentence says them:

    leave it at the door and call me when you arrive
        ["call_on_arrival"]              →  ["leave_at_door", "call_on_arrival"]
    ring the bell, and if there's no answer leave it with the neighbour
        ["ring_bell"]                    →  ["ring_bell", "leave_with_neighbor"]

"Names" is looser here than elsewhere (chat/stated.py `Stated.names` wants the option's words as
they are): the option's words but its small ones ("at", "with", "the"), in order, at most three
other words between two of them, each word alike up to its ending ("arrive" for "arrival",
"knocking" for "knock", "neighbour" for "neighbor"), and not after a "not", "never", "don't",
"without" or "no need to" ("don't leave it at the door" names no `leave_at_door`; "DON'T knock"
names `no_knock`, an option that says no, by its other word denied). The same
names add a list the model left out (chat/ground.py `_left_out`: "ring the bell for PX-830014"
→ `["ring_bell"]`), and finish a list the model began. Looser
still (`Words.mentioned`, for a list the model left out, and `Stated.names_loosely`): the
option's words but small words and plain verbs ("leave", "call", "give"), in one sentence, in any
order, none of its words denied, a plain verb said where the option has one, six letters at
least ("call me when the driver arrives": `call_on_arrival`; "give it to the neighbours":
`leave_with_neighbor`; "door" alone names nothing). An
option named in another sentence than the list's own options ("PX-1: leave at door. PX-2: ring the
bell"), or with an identifier between them ("PX-1 no knock, PX-2 leave at door": another parcel's
words), is left to its own call; so is every list where the model's options are not named this
way (it may have read "phone me" as `call_on_arrival`).
"""

from __future__ import annotations

import os
import re
from typing import Any

from llm_mcp.chat import mentions
from llm_mcp.chat.types import Resolver, ToolCall, normalize

GAP = 3  # other words, at most, between two words of an option
SMALL = {"a", "an", "the", "at", "on", "in", "of", "to", "for", "by", "with", "and", "or", "from"}
NOT = {"not", "never", "dont", "t", "without", "cannot"}  # "t": of "don't", "won't", "can't"
SAYS_NO = ("no", "dont", "never", "without")  # an option's first word that makes it a "no" ("no_knock")
# verbs that say little of which option is meant: "leave" it with, "call" me, "give" it to
PLAIN = {"leave", "call", "give", "send", "take", "make", "keep", "have", "with", "from", "into", "only"}


def completed(call: ToolCall, schema: dict, text: str) -> ToolCall:
    """`call` with each list of enum options its sentence names in part finished (see the module doc)."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    arguments = dict(call.arguments)
    words = None
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        enum = resolve(spec.get("items")).get("enum") if spec.get("type") == "array" else None
        if not enum or not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            continue
        words = words or Words(text)
        named = {o: words.named(o) for o in enum if isinstance(o, str)}
        held = [place for v in value for place in named.get(v, [])]
        more = {o: [at for at, s in places if any(words.together(at, a) for a, _ in held)]
                for o, places in named.items() if o not in value}
        more = {o: min(at) for o, at in more.items() if at}
        if not more or len(value) + len(more) > spec.get("maxItems", len(enum)):
            continue
        if all(named.get(v) for v in value):  # every option named: the order the sentence says them
            at = {**{v: min(a for a, _ in named[v]) for v in value}, **more}
            arguments[name] = sorted(at, key=at.get)
        else:
            arguments[name] = [*value, *sorted(more, key=more.get)]
    return call if arguments == call.arguments else ToolCall(call.name, arguments, call.id)


class Words:
    """A text's words, each with the number of its sentence."""

    def __init__(self, text: str) -> None:
        self.words: list[str] = []
        self.sentence: list[int] = []
        self.ids: list[int] = []  # where an identifier's words are ("PX-100201", chat/mentions.py)
        ids = {normalize(r) for m in mentions.identifiers(text) for r in m.readings}
        for k, sentence in enumerate(re.split(r"[.!?;\n]+(?:\s|$)", text.lower())):
            for token in sentence.split():
                found = re.findall(r"[a-z0-9]+", token)
                if normalize(token) in ids:
                    self.ids += range(len(self.words), len(self.words) + len(found))
                self.words += found
                self.sentence += [k] * len(found)

    def together(self, a: int, b: int) -> bool:
        """Are the words at `a` and `b` in one sentence, with no identifier between them?"""
        a, b = min(a, b), max(a, b)
        return self.sentence[a] == self.sentence[b] and not any(a < k < b for k in self.ids)

    def named(self, option: Any) -> list[tuple[int, int]]:
        """Where the text names `option` ("leave_at_door", "callOnArrival") loosely (see the
        module doc): (word position, sentence) of each place."""
        split = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(option)).lower()
        want = [w for w in re.findall(r"[a-z0-9]+", split) if w not in SMALL]
        if not want:
            return []
        # an option that says no ("no_knock") is named by its own words, or by the rest denied ("don't knock")
        denied = want[1:] if want[0] in SAYS_NO and len(want) > 1 else None
        found = []
        for start, word in enumerate(self.words):
            if denied and _alike(word, denied[0]) and self.negated(start):
                if len(denied) == 1:
                    found.append((start, self.sentence[start]))
                continue
            if not _alike(word, want[0]) or self.negated(start):
                continue
            at = start
            for w in want[1:]:
                at = next((k for k in range(at + 1, min(at + 2 + GAP, len(self.words)))
                           if _alike(self.words[k], w) and self.sentence[k] == self.sentence[start]), None)
                if at is None:
                    break
            if at is not None:
                found.append((start, self.sentence[start]))
        return found

    def mentioned(self, option: Any) -> list[tuple[int, int]]:
        """Where a sentence says every word of `option` but its small words and plain verbs, each
        alike up to its ending, and denies none of its words ("call me when the driver arrives"
        for `call_on_arrival`, "give it to the neighbours" for `leave_with_neighbor`; not "don't
        leave it at the door"), and a plain verb where the option has one ("the driver arrives at
        noon" asks for no call): (word position of the first, sentence) of each. Words of six
        letters at least ("door" alone says too little: "knock on the door"); an option that says
        no ("no_knock") is left to `named`."""
        split = re.sub(r"([a-z])([A-Z])", r"\1 \2", str(option)).lower()
        words = re.findall(r"[a-z0-9]+", split)
        want = [w for w in words if len(w) >= 4 and w not in SMALL and w not in PLAIN]
        if sum(map(len, want)) < 6 or words[0] in SAYS_NO:
            return []  # "door" alone says too little ("knock on the door")

        def alike(word: str, ws: list[str]) -> bool:
            return any(_alike(word, w) or _alike(stem(word), w) for w in ws)

        spots: dict[int, list[int]] = {}
        denied = set()  # sentences that deny a word of the option, its verb too ("don't leave it …")
        for at, word in enumerate(self.words):
            if alike(word, words):
                spots.setdefault(self.sentence[at], []).append(at)
                if self.negated(at):
                    denied.add(self.sentence[at])
        verb = any(w in PLAIN for w in words)  # the option has one: the sentence says one too, any
        return [(places[0], sentence) for sentence, places in spots.items() if sentence not in denied
                and all(any(alike(self.words[at], [w]) for at in places) for w in want)
                and (not verb or any(w in PLAIN for k, w in enumerate(self.words) if self.sentence[k] == sentence))]

    def negated(self, at: int) -> bool:
        """Does a "not", "never", "don't", "without" or "no need to" come at most three words
        before the word at `at`, in its sentence?"""
        before = [self.words[k] for k in range(max(0, at - 3), at) if self.sentence[k] == self.sentence[at]]
        return bool(NOT & set(before)) or before[-3:] == ["no", "need", "to"]


def stem(word: str) -> str:
    """A word without its plural's ending ("parcels" → "parcel", "boxes" → "box", "arrives" → "arriv")."""
    return re.sub(r"(?<=[a-z]{3})e?s$", "", word)


def _alike(word: str, want: str) -> bool:
    """The same word, or alike up to an ending of a letter or more: "arrive", "arrival"; "knock",
    "knocking"; "neighbour", "neighbor". Short words must be equal."""
    if word == want:
        return True
    common = len(os.path.commonprefix([word, want]))
    return common >= 4 and common >= min(len(word), len(want)) - 1
