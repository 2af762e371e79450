"""Training examples from tool schemas alone, phrased the many ways people ask.

`synthesize(tools, n)` writes flat records ({"input", "output", "tool_calls", "tools"}) in groups
that share one prompt: the user's tools (or a subset of a large set) with a few distractor tools
from `bank.yaml`, in a varied order, so the model has to pick among tools it was not asked for
and shared-prefix packing still computes each group's prompt once. In each group:

- requests for one, two or three intents (the same tool twice among them, often with all values
  but one kept: "weather in Lisbon and Porto", "..., then the same in Sopot"), each a command, a
  question or a fragment, arguments through phrases that suit them ("in Lisbon", "at 8pm",
  "for 4 people"), optional ones often left out, a value of the call before taken over by
  another tool's call and pointed back to or left unsaid ("where is PX-1, and move its delivery
  to Friday"), the case, punctuation, shorthand and a typo
  varied at a rate (`requests.py`);
- values that look real (Faker: people, places, companies, emails, phone numbers, dates) or take
  the shape the description shows ("like PX-482913"); the call holds the normalised value
  ("six" → 6, "8pm" → "20:00", "euros" → "EUR") (`values.py`);
- a share of groups with masked names (tool and parameter names replaced, descriptions kept), so
  the model reads descriptions rather than names;
- calls to the distractors at a small share, so that reading any tool's description is learned;
- requests that need no tool: small talk, near misses (a topic without its need) and asks for a
  bank tool that is not in the prompt, answered in text.

Every call is validated against the schema it came from (jsonschema); an intent whose arguments
cannot be made valid is drawn again, and `Synthesis.skipped` counts the tools that never gave a
valid call. Deterministic per seed.

The user's own examples (`own`: requests they wrote, with their calls) can ride along: each is
repeated `repeat` times, every time in another group, so under another tool list (subset, order,
distractors, masked names), its words left as written. Enough of them (75 for 8 tools did, 25
did not) teach how the user's people ask, which no template does (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for

from llm_mcp.chat.kinds import example_of, kind_of
from llm_mcp.data.synth import requests as rq
from llm_mcp.errors import LLMMCPError
from llm_mcp.data.synth.values import Fakes, Resolver, Said, data, humanize, merge_all_of, value_for


# Requests written the way people type make an adapter call more readily, where it should not
# too: with them, more no-call examples keep its no-call accuracy (docs/benchmarks.md).
NO_TOOL_SHARE, OWN_NO_TOOL_SHARE = 0.2, 0.3


@dataclass
class Options:
    """How the examples vary (all shares are of examples unless said otherwise)."""

    no_tool_share: float | None = None  # requests that need no tool: NO_TOOL_SHARE, or OWN_NO_TOOL_SHARE with your requests
    refusal_share: float = 0.35      # of those: asks for a bank tool absent from the prompt, refused
    parallel_share: float = 0.25     # requests with two intents (a fifth of them three)
    same_tool_share: float = 0.3     # of multi-intent requests: the same tool again
    shared_share: float = 0.6        # of those runs of one tool: all values kept but one
    linked_share: float = 0.8        # of intents after another tool's: its parcel, order… taken over
    group: int = 16                  # examples that share one prompt (tool list)
    distractors: int = 4             # at most this many bank tools in a prompt
    max_tools: int = 12              # tools in a prompt, distractors included
    shuffle_share: float = 0.7       # of groups: the tools listed in a shuffled order
    mask_share: float = 0.12         # of groups: tool and parameter names replaced
    bank_call_share: float = 0.12    # of intents: a call to a distractor in the prompt
    optional_share: float = 0.45     # each optional argument present
    rough_rate: float = 0.25         # typing habits (lower case, punctuation, shorthand, typo)
    generic_share: float = 0.25      # an argument introduced by its parameter's name


@dataclass
class Synthesis:
    records: list[dict]
    skipped: dict[str, int] = field(default_factory=dict)  # tool → intents that never validated


def bank_tools() -> list[dict]:
    return [dict(t, description=t.get("description", "")) for t in data("bank")]


def _words(tool: dict) -> set[str]:
    return {w for w in re.split(r"[^a-z]+", humanize(tool["name"])) if len(w) > 3}


def _validator(tool: dict, cache: dict):
    key = tool["name"]
    if key not in cache:
        schema = tool["parameters"]
        cls = validator_for(schema, default=Draft202012Validator)
        cache[key] = cls(schema)
    return cache[key]


class Synthesizer:
    def __init__(self, tools: list[dict], seed: int, options: Options):
        if not tools:
            raise ValueError("synthesis needs at least one tool")
        self.tools = tools
        self.rng = random.Random(seed)
        self.fakes = Fakes(self.rng, seed)
        self.o = options
        names = {t["name"] for t in tools}
        own_words = set().union(*(_words(t) for t in tools))
        # bank tools that could serve a request for one of the user's tools are left out
        self.bank = [t for t in bank_tools() if t["name"] not in names and not (_words(t) & own_words)]
        self.validators: dict = {}
        self.skipped: dict[str, int] = {}
        self.seen: set[str] = set()
        self.own_queue: list[dict] = []  # the user's own examples still to place (see synthesize)

    # one argument set, valid against the schema, and the phrases that say it
    def arguments(self, tool: dict, linked: dict | None = None) -> tuple[dict, list[str], list[str]] | None:
        """`linked`: values of the request's previous call this one takes over (`linked`), said
        by a word that points back ("for it", or nothing: "track PX-1 and move the delivery to
        Friday"); where the drawn branch has no place for them, or they do not validate, None."""
        drawn = self.draw(tool)
        if drawn is None:
            return None
        said, top, resolve = drawn
        props = top.get("properties") or {}
        if linked:
            if not set(linked) <= set(props):
                return None
            said.update({key: Said(value, "") for key, value in linked.items()})
            if not _validator(tool, self.validators).is_valid({key: s.value for key, s in said.items()}):
                return None
        keys = list(said)
        if self.rng.random() < 0.5:
            self.rng.shuffle(keys)
        phrases = [self.rng.choice(data("phrases")["linked"]) if key in (linked or {})
                   else self.phrase(key, props, resolve, said[key]) for key in keys]
        return ({key: s.value for key, s in said.items()}, [p for p in phrases if p],
                [s.text for s in said.values() if s.copied])

    def linked(self, tool: dict, before: dict, before_tool: dict) -> dict:
        """The values of the call `before` (to `before_tool`) that `tool` takes too, as a person
        asks several things about one parcel, order or account: "where is PX-1, and move its
        delivery to Friday". An identifier parameter (a string, no enum) of the same name, or
        whose description's example has the same shape ("PX-482913")."""
        from llm_mcp.chat import mentions
        from llm_mcp.chat.stated import copied_kind

        def ids(t: dict) -> dict[str, str | None]:
            """Its identifier parameters, each with its example's shape (None without one)."""
            resolve = Resolver(t["parameters"])
            found = {}
            for name, spec in (resolve(t["parameters"]).get("properties") or {}).items():
                spec = resolve(spec)
                if spec.get("type") == "string" and "enum" not in spec and kind_of(name, spec) == "identifier":
                    example = example_of(spec) if copied_kind(name, spec) == "identifier" else None
                    found[name] = mentions.shape(example) if example else None
            return found

        theirs = ids(before_tool)
        taken = {}
        for name, shape in ids(tool).items():
            for other, their_shape in theirs.items():
                value = before["arguments"].get(other)
                if isinstance(value, str) and (name == other or (shape and shape == their_shape)):
                    taken[name] = value
                    break
        return taken

    def draw(self, tool: dict) -> tuple[dict[str, Said], dict, Resolver] | None:
        """A valid argument set as `Said` values, the schema branch it fills and its resolver."""
        rng, schema = self.rng, tool["parameters"]
        resolve = Resolver(schema)
        validator = _validator(tool, self.validators)
        for _ in range(5):
            top = _branch(rng, resolve(schema), resolve)
            props = top.get("properties") or {}
            required = set(top.get("required", []))
            said = {key: value_for(rng, self.fakes, key, spec, resolve) for key, spec in props.items()
                    if key in required or rng.random() < self.o.optional_share}
            for key in sorted(required - set(props)):  # required but not described: any word
                word = self.fakes.en.word()
                said[key] = Said(word, word, True)
            if validator.is_valid({key: s.value for key, s in said.items()}):
                return said, top, resolve
        self.skipped[tool["name"]] = self.skipped.get(tool["name"], 0) + 1
        return None

    def phrase(self, key: str, props: dict, resolve: Resolver, said: Said) -> str:
        return rq.argument_phrase(self.rng, key, resolve(props.get(key, {})), said, self.o.generic_share)

    def shared(self, tool: dict, n: int) -> tuple[list[dict], list[str], list[str]] | None:
        """`n` calls of one tool that differ in one value, asked for the way people do: the value
        said once for each ("weather in Lisbon and Porto", "standard vs express") or the first call
        said whole and the others by their new value ("..., then the same in Sopot"). Returns the
        argument sets, the request's parts (one, or `n`: the first and what each other adds) and
        the copied texts; None where no argument takes `n` different values."""
        rng = self.rng
        drawn = self.draw(tool)
        if drawn is None:
            return None
        said, top, resolve = drawn
        props, required = top.get("properties") or {}, set(top.get("required", []))
        validator = _validator(tool, self.validators)
        base = {k: s.value for k, s in said.items()}
        keys = [k for k, s in said.items() if not isinstance(s.value, (bool, list, dict)) and s.value is not None]
        rng.shuffle(keys)
        if rng.random() < 0.7:
            keys.sort(key=lambda k: k not in required)  # mostly a required value: the city, the parcel
        for key in keys:
            spec = resolve(props.get(key, {}))
            variants = [said[key]]
            for _ in range(8 * n):
                if len(variants) == n:
                    break
                other = value_for(rng, self.fakes, key, spec, resolve)
                if (other.value in [v.value for v in variants] or other.text in [v.text for v in variants]
                        or not validator.is_valid({**base, key: other.value})):
                    continue
                variants.append(other)
            if len(variants) == n:
                break
        else:
            return None
        rest = [k for k in said if k != key]
        if rng.random() < 0.5:
            rng.shuffle(rest)
        phrases = [self.phrase(k, props, resolve, said[k]) for k in rest]
        role = rq.role_of(key, spec, said[key])
        commas = any("," in v.text for v in variants)  # "Leeds, UK, York, UK" would not split back
        joins = [j for j in data("phrases")["both"].get(n, []) if not (commas and "," in j)]
        if joins and role not in ("text", "title", "subject", "query") and rng.random() < 0.5:
            joined = rng.choice(joins).format(**dict(zip("abc", (v.text for v in variants))))
            phrases.insert(rng.randint(0, len(phrases)), self.phrase(key, props, resolve, replace(said[key], text=joined)))
            parts = [rq.join_phrases(rng, phrases)]
        else:
            phrases.insert(rng.randint(0, len(phrases)), self.phrase(key, props, resolve, said[key]))
            parts = [rq.join_phrases(rng, phrases)] + [self.phrase(key, props, resolve, v) for v in variants[1:]]
        values = [{**base, key: v.value} for v in variants]
        copied = [s.text for s in said.values() if s.copied] + [v.text for v in variants[1:] if v.copied]
        return values, parts, copied

    def prompt(self, need: list[dict] = ()) -> tuple[list[dict], list[dict]]:
        """A group's prompt tools and the user's tools among them (`need` always among them)."""
        o = self.o
        # distractors only where they fit beside the tools this group must show
        k = self.rng.randint(0, max(0, min(o.distractors, len(self.bank), o.max_tools - max(1, len(need)))))
        room = o.max_tools - k  # ≥ max(1, len(need)), by the bound on k
        if len(self.tools) <= room:
            own = list(self.tools)
        else:
            others = [t for t in self.tools if t not in need]
            own = list(need) + self.rng.sample(others, max(0, min(len(others), room - len(need))))
        extra = self.rng.sample(self.bank, k)
        listed = own + extra
        if self.rng.random() < self.o.shuffle_share:
            self.rng.shuffle(listed)
        return listed, own

    def group(self, size: int, riders: int = 0) -> tuple[list[dict], list[dict]]:
        """`size` drawn examples and up to `riders` of the user's own, under one prompt."""
        queue = self.own_queue
        called = {c["name"] for c in queue[0]["tool_calls"]} if riders and queue else set()
        need = [t for t in self.tools if t["name"] in called]  # the next one's tools, each once
        listed, own = self.prompt(need)
        extra = [t for t in listed if t not in own]
        absent = [t for t in self.bank if t not in extra]
        names, params = self.masks(listed) if self.rng.random() < self.o.mask_share else ({}, {})
        shown = [_renamed(t, names, params) for t in listed]
        out = []
        for _ in range(size * 5):
            if len(out) == size:
                break
            record = self.record(own, extra, absent)
            if record is None or record["input"] in self.seen:
                continue
            self.seen.add(record["input"])
            out.append(record)
        held, fit = {t["name"] for t in own}, []
        for record in queue:
            if len(fit) < riders and record not in fit and {c["name"] for c in record["tool_calls"]} <= held:
                fit.append(record)
        for record in fit:
            queue.remove(record)
        placed = [dict(r) for r in fit]
        for record in out + placed:
            record["tool_calls"] = [{"name": names.get(c["name"], c["name"]),
                                     "arguments": {params.get((c["name"], k), k): v for k, v in c["arguments"].items()}}
                                    for c in record["tool_calls"]]
            record["tools"] = shown
        return out, placed

    def masks(self, listed: list[dict]) -> tuple[dict, dict]:
        def word() -> str:
            return "".join(self.rng.choice("bcdfghjklmnprstvz") + self.rng.choice("aeiou")
                           for _ in range(self.rng.randint(2, 3)))
        names, params, used = {}, {}, set()
        for t in listed:
            while (new := f"{word()}_{word()}") in used:
                pass
            used.add(new)
            names[t["name"]] = new
            taken: set[str] = set()
            for p in (t["parameters"].get("properties") or {}):
                while (masked := word() + self.rng.choice(["", "_" + word()])) in taken:
                    pass  # two parameters of one tool never share a name
                taken.add(masked)
                params[(t["name"], p)] = masked
        return names, params

    def record(self, own: list[dict], extra: list[dict], absent: list[dict]) -> dict | None:
        o, rng = self.o, self.rng
        roll = rng.random()
        if roll < o.no_tool_share:
            return self.no_call(absent)
        count = 1
        if roll < o.no_tool_share + o.parallel_share:
            count = 3 if rng.random() < 0.2 else 2
        chosen: list[dict] = []
        for _ in range(count):
            if chosen and rng.random() < o.same_tool_share:
                chosen.append(chosen[-1])
            elif extra and rng.random() < o.bank_call_share:
                chosen.append(rng.choice(extra))
            else:
                chosen.append(rng.choice(own))
        calls, parts, protected = [], [], []
        k = 0
        while k < len(chosen):
            tool, intent = chosen[k], rq.intent_of(chosen[k], rng)
            run = 1
            while k + run < len(chosen) and chosen[k + run] is tool:
                run += 1
            starts = k == 0 or chosen[k - 1] is not tool  # a run of one tool is rolled for once
            made = self.shared(tool, run) if run > 1 and starts and rng.random() < o.shared_share else None
            if made is not None:  # one value differs: "in Lisbon and Porto", "..., then the same in Sopot"
                sets, said_parts, said = made
                calls += [{"name": tool["name"], "arguments": v} for v in sets]
                protected += said
                first, *more = said_parts
                parts.append(rq.one_request(rng, intent, first) if k == 0 else rq.continuation(rng, intent, first))
                for args in more:
                    parts[-1] = rq.rstrip_outside(parts[-1], ".!?", protected) + rq.same(rng, args)
                k += run
                continue
            linked = (self.linked(tool, calls[-1], chosen[k - 1])
                      if k and tool is not chosen[k - 1] and rng.random() < o.linked_share else {})
            made = (linked and self.arguments(tool, linked)) or self.arguments(tool)
            if made is None:
                return None
            values, phrases, said = made
            calls.append({"name": tool["name"], "arguments": values})
            protected += said
            args = rq.join_phrases(rng, phrases)
            if k == 0:
                parts.append(rq.one_request(rng, intent, args))
            elif tool is chosen[k - 1] and args and rng.random() < 0.5:
                parts[-1] = rq.rstrip_outside(parts[-1], ".!?", protected) + rq.again(rng, args)
            else:
                parts.append(rq.continuation(rng, intent, args))
            k += 1
        text = rq.join_requests(rng, parts, protected)
        text, lowered = rq.roughen(rng, text, protected, o.rough_rate)
        if lowered:  # a value whose schema asks for its case ("^PT-\\d{5}$") keeps it: "pt-48213" → "PT-48213"
            by_name = {t["name"]: _validator(t, self.validators) for t in chosen}
            calls = [_lowered(c, protected, by_name[c["name"]]) for c in calls]
        return {"input": text, "output": "", "tool_calls": calls}

    def no_call(self, absent: list[dict]) -> dict:
        rng = self.rng
        roll = rng.random()
        if roll < self.o.refusal_share and absent:
            tool = rng.choice(absent)
            made = self.arguments(tool)
            if made is not None:
                intent = rq.intent_of(tool, rng)
                text = rq.one_request(rng, intent, rq.join_phrases(rng, made[1]))
                text, _ = rq.roughen(rng, text, made[2], self.o.rough_rate)
                answer = rng.choice(data("phrases")["refusals"]).format(do=intent.do)
                return {"input": text, "output": answer, "tool_calls": []}
        # the rest: near misses and small talk, 5 to 8 as at the default refusal share
        near = self.o.refusal_share + (1 - self.o.refusal_share) * 5 / 13
        source = data("phrases")["near_misses"] if roll < near else data("pools")["small_talk"]
        question, answer = rng.choice(source)
        opener = rng.choice(data("phrases")["openers"])
        if opener:
            question = opener + question[0].lower() + question[1:]
        question, _ = rq.roughen(rng, question, [], self.o.rough_rate)
        return {"input": question, "output": answer, "tool_calls": []}


def _branch(rng: random.Random, top: dict, resolve: Resolver) -> dict:
    """The object schema to fill: `allOf` merged, one branch of a top-level `anyOf`/`oneOf`."""
    if "allOf" in top:
        top = merge_all_of(top, resolve)
    for key in ("oneOf", "anyOf"):
        if top.get(key) and not top.get("properties"):
            branch = resolve(rng.choice(top[key]))
            top = {**{k: v for k, v in top.items() if k != key}, **branch}
    return top


def _lowered(call: dict, protected: list[str], validator) -> dict:
    """`call` with each copied value lower-cased as the request now writes it, but where the
    schema then refuses it."""
    arguments = dict(call["arguments"])
    for key, value in call["arguments"].items():
        if isinstance(value, str) and value in protected and value.lower() != value:
            if validator.is_valid({**arguments, key: value.lower()}):
                arguments[key] = value.lower()
    return {"name": call["name"], "arguments": arguments}


def _renamed(tool: dict, names: dict, params: dict) -> dict:
    if not names:
        return tool
    schema = dict(tool["parameters"])
    props = schema.get("properties") or {}
    schema["properties"] = {params.get((tool["name"], k), k): v for k, v in props.items()}
    if "required" in schema:
        schema["required"] = [params.get((tool["name"], k), k) for k in schema["required"]]
    return {"name": names[tool["name"]], "description": tool.get("description", ""), "parameters": schema}


def synthesize(tools: list[dict], n: int, seed: int = 0, options: Options | None = None,
               own: list[dict] = (), repeat: int = 1) -> Synthesis:
    """`n` records from normalised tool schemas, in groups of `options.group` that share a prompt,
    and `repeat` copies of each of the user's `own` flat records ({"input", "output",
    "tool_calls"}, calls valid against `tools`) spread over the groups, no two copies of one in a
    group. Where the tools fit in one prompt, the drawn records are those drawn without `own` at the
    same no-call share (by default it is higher with `own`: OWN_NO_TOOL_SHARE)."""
    if own and repeat < 1:
        raise LLMMCPError(f"repeat {repeat}: each of your own examples must appear at least once",
                          "--repeat 4 (measured in docs/benchmarks.md)")
    options = options or Options()
    if options.max_tools < 1 or options.group < 1:
        raise LLMMCPError(f"max_tools {options.max_tools}, group {options.group}: a prompt holds at least "
                          "one tool and a group at least one example", "--max-tools 12 --group 16 (the defaults)")
    if options.no_tool_share is None:
        options = replace(options, no_tool_share=OWN_NO_TOOL_SHARE if own else NO_TOOL_SHARE)
    synth = Synthesizer(tools, seed, options)
    order = random.Random(f"{seed}-own")  # its own stream: the drawn records stay as they were
    for _ in range(repeat):
        round_ = list(own)
        order.shuffle(round_)
        synth.own_queue += round_
    groups = max(1, math.ceil(n / synth.o.group))
    riders = min(len(own), math.ceil(len(synth.own_queue) / groups)) if own else 0
    records: list[dict] = []
    drawn = stalls = 0
    while (drawn < n or synth.own_queue) and stalls < 20:
        got, placed = synth.group(min(synth.o.group, n - drawn), riders)
        stalls = stalls + 1 if not got and not placed else 0
        drawn += len(got)
        records += got + placed
    return Synthesis(records, synth.skipped)


def read_own(path: str, tools: list[dict], outcome: str = "nothing written") -> list[dict]:
    """The user's own single requests (any dataset format), checked against `tools`, as flat
    records {"input", "output", "tool_calls"}; every problem reported at file:line at once. A
    record's own tools and system message are not kept: each copy gets its group's prompt."""
    from llm_mcp.data.example import Issue, issues_error
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.data.validate import check_example

    ds = read_dataset(path, tools=tools)
    problems, out, cache = list(ds.errors), [], {}
    for ex in ds.examples:
        ex.tools = tools  # shown under the synthesized prompts: checked against the tools given
        talk = [m for m in ex.messages if m.role != "system"]
        if [m.role for m in talk] != ["user", "assistant"]:
            problems.append(Issue(ex.source, ex.line, "not-a-single-request",
                                  f"turns {'/'.join(m.role for m in talk)}: only one user request and "
                                  "its answer can be shown under other tool lists", "split the conversation"))
            continue
        errors = [i for i in check_example(ex, cache) if i.level == "error"]
        problems += errors
        if not errors:
            user, reply = talk
            out.append({"input": user.content, "output": reply.content,
                        "tool_calls": [{"name": c.name, "arguments": c.arguments} for c in reply.tool_calls]})
    if problems or not out:
        raise issues_error(path, problems, outcome)
    return out


def own_summary(own: list[dict], tools: list[dict]) -> str:
    """What the user's requests cover, per tool: measured on the sample tools, ~9 requests per
    tool (×4) lifted natural-request accuracy and 2–3 per tool did not (docs/benchmarks.md)."""
    called = Counter(c["name"] for r in own for c in r["tool_calls"])
    per_tool = ", ".join(f"{t['name']} {called[t['name']]}" for t in tools if called[t["name"]])
    line = f"{len(own)} requests you wrote: calls to {per_tool}; {sum(not r['tool_calls'] for r in own)} without a call"
    few = [t["name"] for t in tools if called[t["name"]] < 5]
    if few:
        line += (f"\nnote: {len(few)} tools have fewer than 5 of your requests ({', '.join(few[:8])}"
                 f"{', …' if len(few) > 8 else ''}); ~9 per tool helped in our measurements, 2–3 did not")
    return line
