"""The request synthesizer: valid for any schema, varied, deterministic, grouped by prompt."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from conftest import REPO
from llm_mcp.data import check_examples, read_dataset, read_tools_file
from llm_mcp.data.synth import Options, bank_tools, synthesize
from llm_mcp.data.synth.requests import intent_of
from llm_mcp.data.synth.values import data, number_words
from llm_mcp.errors import LLMMCPError

TOOLS = read_tools_file(REPO / "examples" / "tools.json")


def _valid(records: list[dict]) -> None:
    """Every call names a tool of its record's prompt and validates against that tool's schema."""
    for r in records:
        schemas = {t["name"]: t["parameters"] for t in r["tools"]}
        for call in r["tool_calls"]:
            assert call["name"] in schemas, (r["input"], call)
            errors = list(Draft202012Validator(schemas[call["name"]]).iter_errors(call["arguments"]))
            assert not errors, (r["input"], call, errors[0].message)


def test_deterministic_valid_and_readable_by_the_dataset_reader(tmp_path):
    a = synthesize(TOOLS, 200, seed=7).records
    assert a == synthesize(TOOLS, 200, seed=7).records
    assert a != synthesize(TOOLS, 200, seed=8).records
    assert len(a) == 200 and len({r["input"] for r in a}) == 200
    _valid(a)
    f = tmp_path / "s.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in a))
    ds = read_dataset(f)
    assert ds.format == "flat" and not ds.issues and check_examples(ds.examples) == []


def test_groups_share_a_prompt_with_distractors_in_varied_order():
    records = synthesize(TOOLS, 640, seed=3).records  # 40 groups: some masked at any seed (0.88^40)
    prompts = [json.dumps(r["tools"]) for r in records]
    groups = [prompts[k:k + 16] for k in range(0, 640, 16)]
    assert all(len(set(g)) == 1 for g in groups)  # 16 examples share each prompt
    assert len(set(prompts)) > 10
    own = {t["name"] for t in TOOLS}
    bank = {t["name"] for t in bank_tools()}
    firsts = Counter(r["tools"][0]["name"] for r in records[::16])
    assert len(firsts) > 4  # the order varies
    unmasked = [r for r in records if own & {t["name"] for t in r["tools"]}]
    assert any({t["name"] for t in r["tools"]} & bank for r in unmasked)  # distractors
    masked = [r for r in records if not own & {t["name"] for t in r["tools"]}]
    assert masked and len(masked) < len(records) / 3  # a share with masked names
    for r in masked:  # descriptions kept, names replaced
        assert {t["description"] for t in TOOLS} & {t["description"] for t in r["tools"]}
    called = Counter(c["name"] for r in unmasked for c in r["tool_calls"])
    assert all(called[name] > 10 for name in own)
    assert 0 < sum(called[b] for b in bank) < sum(called[o] for o in own) / 4
    # a small prompt keeps its size: distractors only where they fit (they once took 4 of 4 places
    # and the tool to call came on top)
    for seed in range(4):
        small = synthesize(TOOLS, 64, seed=seed, options=Options(max_tools=3, distractors=4)).records
        assert max(len(r["tools"]) for r in small) == 3
    for bad in (Options(max_tools=0), Options(group=0)):
        with pytest.raises(LLMMCPError, match="at least one tool"):
            synthesize(TOOLS, 8, options=bad)


def test_requests_vary_and_rarely_name_the_parameters():
    records = synthesize(TOOLS, 600, seed=5).records
    calls = [r for r in records if r["tool_calls"]]
    no_call = [r for r in records if not r["tool_calls"]]
    assert 0.12 < len(no_call) / len(records) < 0.3
    multi = [r for r in calls if len(r["tool_calls"]) > 1]
    assert 0.15 < len(multi) / len(calls) and any(len(r["tool_calls"]) == 3 for r in multi)
    assert any(len({c["name"] for c in r["tool_calls"]}) == 1 for r in multi)  # the same tool twice
    # the old single pattern "<description> with <parameter> <value>" is gone
    weather = [r["input"] for r in calls if r["tool_calls"][0]["name"] == "get_weather"]
    # (a quarter of the arguments are introduced by the parameter's name, by design)
    assert sum("location" in w.lower() for w in weather) < len(weather) / 2
    assert len({w.split()[0].lower() for w in weather}) > 8
    # lower case, no final punctuation and questions all occur
    inputs = [r["input"] for r in records]
    assert sum(i == i.lower() for i in inputs) > 30
    assert sum(i.endswith("?") for i in inputs) > 30 and sum(i[-1].isalnum() for i in inputs) > 60
    # no-call kinds: small talk or near misses, and asks that no listed tool serves
    refusals = [r for r in no_call if "tool" in r["output"]]
    assert refusals and len(refusals) < len(no_call)
    for r in refusals:  # the tool asked for is not in the prompt
        listed = {t["name"] for t in r["tools"]}
        assert not any(b["name"] in listed and intent_of(b).do in r["output"] for b in bank_tools())


def test_the_same_tool_again_often_keeps_every_value_but_one():
    """"weather in Lisbon and Porto", "standard vs express", "..., then the same for Sopot": the
    calls differ in one argument, each of its values is in the request, and the words shared are
    said once."""
    options = Options(parallel_share=0.8, same_tool_share=0.8)
    records = synthesize(TOOLS, 300, seed=4, options=options).records
    _valid(records)
    runs = [r for r in records if len(r["tool_calls"]) > 1 and len({c["name"] for c in r["tool_calls"]}) == 1]

    def varied(r):
        args = [c["arguments"] for c in r["tool_calls"]]
        keys = set().union(*args)
        return [k for k in keys if len({json.dumps(a.get(k)) for a in args}) > 1]

    shared = [r for r in runs if len(varied(r)) == 1]
    assert len(shared) > len(runs) / 3 and any(len(r["tool_calls"]) == 3 for r in shared)
    said_once, with_kept = 0, 0
    for r in shared:
        key, text = varied(r)[0], r["input"].lower()
        for c in r["tool_calls"]:
            value = c["arguments"][key]
            if isinstance(value, str) and key in ("location", "to", "recipient", "target_language"):
                assert value.lower() in text, (r["input"], key, value)
        kept = [v for k, v in r["tool_calls"][0]["arguments"].items() if k != key and isinstance(v, str)]
        with_kept += bool(kept)
        said_once += bool(kept) and all(text.count(v.lower()) <= 1 for v in kept)
    assert said_once > with_kept * 0.7 > 10  # the values the calls share are not said again
    fewer = synthesize(TOOLS, 300, seed=4, options=replace(options, shared_share=0.0)).records
    alike = [r for r in fewer if len(r["tool_calls"]) > 1 and len({c["name"] for c in r["tool_calls"]}) == 1
             and len(varied(r)) == 1 and len(r["tool_calls"][0]["arguments"]) > 1]
    assert len(alike) < with_kept / 4  # without it, only where a value repeats by chance (max_results 5)


def test_another_tool_asked_for_next_often_takes_over_the_identifier_said_before():
    """"where is QX-20931, and cancel it": a tool asked for after another takes over the earlier
    call's identifier (same name, or an example of the same shape) and the request says it once."""
    def tool(name: str, **params: dict) -> dict:
        return {"name": name, "description": name.replace("_", " ").capitalize() + ".",
                "parameters": {"type": "object", "properties": params, "required": list(params)[:1]}}

    order = {"type": "string", "description": "Order number, like QX-20931"}
    tools = [tool("order_status", order_id=order),
             tool("cancel_order", order_ref=order, reason={"type": "string", "description": "Why"}),
             tool("find_store", city={"type": "string", "description": "City to search in"})]
    options = Options(parallel_share=0.9, same_tool_share=0.0, no_tool_share=0.0, distractors=0)

    def pairs(share: float) -> tuple[list, list]:
        records = synthesize(tools, 300, seed=3, options=replace(options, linked_share=share)).records
        _valid(records)
        both = [r for r in records if {"order_status", "cancel_order"} <= {c["name"] for c in r["tool_calls"]}]
        ids = [[v for c in r["tool_calls"] for k, v in c["arguments"].items() if k.startswith("order")] for r in both]
        return both, [(r, i[0]) for r, i in zip(both, ids) if len(set(i)) == 1]

    both, linked = pairs(1.0)
    assert len(linked) > len(both) * 0.6 > 10
    assert all(r["input"].lower().count(value.lower()) == 1 for r, value in linked)
    assert not pairs(0.0)[1]  # without it, two calls never share a drawn id


def test_the_refusal_share_sets_the_refused_asks_among_the_no_call_requests():
    """--refusal-share: of the no-call requests, the asks for a tool the prompt lacks (refused in
    text); 0 leaves small talk and near misses only; the default's data stays as it was."""
    def refusals(share: float) -> tuple[int, int]:
        records = synthesize(TOOLS, 400, seed=4, options=Options(refusal_share=share)).records
        no_call = [r for r in records if not r["tool_calls"]]
        starts = [s.split("{do}")[0] for s in data("phrases")["refusals"]]  # the refusal templates
        refused = [r for r in no_call if any(r["output"].startswith(s) for s in starts)]
        return len(refused), len(no_call)

    assert refusals(0.0)[0] == 0 and refusals(0.0)[1] > 50
    few, many = refusals(0.35), refusals(0.8)
    assert 0 < few[0] < many[0] and many[0] > many[1] / 2
    assert synthesize(TOOLS, 64, seed=4).records == synthesize(
        TOOLS, 64, seed=4, options=Options(refusal_share=0.35)).records

def test_values_are_normalised_for_the_schema():
    records = synthesize(TOOLS, 800, seed=11).records
    events = [(r["input"], c["arguments"]) for r in records for c in r["tool_calls"]
              if c["name"] == "create_event"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", a["date"]) for _, a in events)
    assert all(re.fullmatch(r"\d\d:\d\d", a["time"]) for _, a in events if "time" in a)
    # "8pm"-style times and written dates occur in the requests; the call holds HH:MM / ISO
    assert any(re.search(r"\d ?(am|pm)\b", i, re.I) for i, _ in events)
    assert any(re.search(r"(January|February|March|April|May|June|July|August|September|October|"
                         r"November|December)", i, re.I) for i, _ in events)
    timers = [(r["input"], c["arguments"]["minutes"]) for r in records for c in r["tool_calls"]
              if c["name"] == "set_timer"]
    assert any(number_words(m) in i.lower() and str(m) not in i for i, m in timers)  # "twenty"
    money = [(r["input"], c["arguments"]) for r in records for c in r["tool_calls"]
             if c["name"] == "convert_currency"]
    assert all(re.fullmatch(r"[A-Z]{3}", a["from_currency"]) for _, a in money)
    assert any(a["from_currency"] not in i and a["from_currency"].lower() not in i.lower() for i, a in money)


# JSON Schemas of the kinds tools carry: nested objects, arrays of objects, anyOf/oneOf, $ref into
# $defs, formats, enums, ranges, additionalProperties
NAMES = st.sampled_from(["city", "to", "count", "when", "user", "tags", "mode", "note", "id", "limit",
                         "address", "items", "price", "email", "start_time", "flag", "level", "x"])
LEAVES = st.one_of(
    st.just({"type": "string"}),
    st.just({"type": "string", "format": "date"}),
    st.just({"type": "string", "format": "date-time"}),
    st.just({"type": "string", "format": "email"}),
    st.just({"type": "string", "format": "uuid"}),
    st.just({"type": "string", "description": "Order id, like AB-1234"}),
    st.just({"type": "string", "pattern": "^AB-\\d{4}$", "description": "Order id, like AB-1234"}),
    st.just({"type": "string", "minLength": 3, "maxLength": 8}),
    st.just({"type": "boolean"}),
    st.just({"type": ["string", "null"]}),
    st.just({"$ref": "#/$defs/point"}),
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
              st.integers(-50, 50), st.integers(0, 500)),
    st.builds(lambda lo: {"type": "number", "exclusiveMinimum": lo}, st.integers(-5, 5)),
    st.lists(st.text("abcxyz_", min_size=1, max_size=6), min_size=1, max_size=4, unique=True)
    .map(lambda e: {"type": "string", "enum": e}),
)


# oneOf needs exactly one branch to match: branches of different types, as real schemas have them
ONE_OF = [{"oneOf": [{"type": "string"}, {"type": "integer"}]},
          {"oneOf": [{"$ref": "#/$defs/point"}, {"type": "string", "format": "date"}]},
          {"oneOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "string"}}]},
          {"oneOf": [{"type": "object", "properties": {"kind": {"const": "a"}}, "required": ["kind"]},
                     {"type": "null"}]}]


def _objects(children):
    return st.builds(
        lambda props, req, closed: {"type": "object", "properties": props,
                                    "required": sorted(k for k in props if k in req),
                                    **({"additionalProperties": False} if closed else {})},
        st.dictionaries(NAMES, children, min_size=1, max_size=4), st.sets(NAMES), st.booleans())


SCHEMAS = st.recursive(LEAVES, lambda children: st.one_of(
    _objects(children),
    st.builds(lambda s, lo: {"type": "array", "items": s, "minItems": lo}, children, st.integers(0, 2)),
    st.lists(children, min_size=1, max_size=3).map(lambda alts: {"anyOf": alts}),
    st.sampled_from(ONE_OF),
    st.builds(lambda s: {"type": "array", "items": {"type": "object", "properties": {"v": s},
                                                    "required": ["v"]}}, children),
), max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_objects(SCHEMAS), min_size=1, max_size=3), st.integers(0, 10_000))
def test_every_call_validates_for_any_schema(params, seed):
    defs = {"point": {"type": "object", "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                      "required": ["lat", "lon"]}}
    tools = [{"name": f"tool_{k}", "description": f"Do thing {k}.", "parameters": {**p, "$defs": defs}}
             for k, p in enumerate(params)]
    # many requests of one tool twice: the calls that keep all values but one validate too
    result = synthesize(tools, 24, seed=seed, options=Options(group=8, parallel_share=0.5, same_tool_share=0.6))
    _valid(result.records)
    assert result.records and not result.skipped


def test_a_pattern_it_cannot_meet_is_reported_not_written():
    tool = {"name": "code", "description": "Look up a code.", "parameters": {
        "type": "object", "properties": {"code": {"type": "string", "pattern": "^Q[0-9]{2}Z$"}},
        "required": ["code"]}}
    result = synthesize([tool], 20, seed=1, options=Options(no_tool_share=0.0, bank_call_share=0.0))
    _valid(result.records)
    assert result.skipped.get("code", 0) > 0


def test_an_id_typed_in_lower_case_keeps_the_case_its_schema_asks_for():
    """"pt-48213" in a lower-cased request is still PT-48213 in the call where the schema's
    pattern says so; and `patient_id`, `customerId` are identifiers, not people's names."""
    from llm_mcp.chat.kinds import kind_of

    assert [kind_of(n, {}) for n in ("patient_id", "customerId", "booking_ref", "phone_number", "email_id")] == \
        ["identifier", "identifier", "identifier", "phone", "email"]
    assert kind_of("provider", {"description": "Provider last name, e.g. Okafor"}) == "person"  # no "id" inside
    tool = {"name": "list_visits", "description": "List a patient's visits.", "parameters": {
        "type": "object", "properties": {"patient_id": {"type": "string", "pattern": "^PT-\\d{5}$",
                                                        "description": "Patient id like PT-48213"}},
        "required": ["patient_id"]}}
    result = synthesize([tool], 30, seed=3, options=Options(no_tool_share=0.0, bank_call_share=0.0, rough_rate=1.0))
    _valid(result.records)
    assert not result.skipped and len(result.records) == 30
    for r in result.records:
        ids = [c["arguments"]["patient_id"] for c in r["tool_calls"]]
        assert all(i.lower() in r["input"] for i in ids) and all(i.startswith("PT-") for i in ids), r


def test_values_take_the_form_the_description_shows():
    """A list whose description shows a quoted example ('e.g. ["lisinopril 10 mg"]') gets items
    of that form, made up anew, and a "last name" is one name, not a full one."""
    tool = {"name": "request_refill", "description": "Send a prescription refill request.", "parameters": {
        "type": "object", "properties": {
            "medications": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "description": 'Medication names, with strength if known, e.g. ["lisinopril 10 mg"]'},
            "prescriber": {"type": "string", "description": "Prescriber last name, e.g. Okafor"}},
        "required": ["medications", "prescriber"]}}
    result = synthesize([tool], 30, seed=2, options=Options(no_tool_share=0.0, bank_call_share=0.0))
    _valid(result.records)
    calls = [c["arguments"] for r in result.records for c in r["tool_calls"]]
    items = [m for a in calls for m in a["medications"]]
    assert len(calls) >= 30 and all(re.fullmatch(r"[a-z]{4,} [1-9]\d mg", m) for m in items), items
    assert len(set(items)) > len(items) // 2 and "lisinopril 10 mg" not in items
    assert sum(len(a["prescriber"].split()) == 1 for a in calls) >= 0.8 * len(calls), calls  # "van Dijk" too


def test_synth_cli_writes_and_shows(tmp_path):
    out = tmp_path / "syn.jsonl"
    r = subprocess.run([sys.executable, "-m", "llm_mcp", "data", "synth", "--tools", "examples/tools.json",
                        "--n", "40", "--seed", "3", "--out", str(out), "--show", "5"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) == 40
    assert r.stdout.count("\n    → ") == 5 and "wrote 40 examples" in r.stderr
    r = subprocess.run([sys.executable, "-m", "llm_mcp", "data", "synth", "--tools", "examples/tools.json"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2 and "--out" in r.stderr
    # the same file in another process, whatever its hash seed (Faker reseeded before each draw)
    again = tmp_path / "again.jsonl"
    subprocess.run([sys.executable, "-m", "llm_mcp", "data", "synth", "--tools", "examples/tools.json",
                    "--n", "40", "--seed", "3", "--out", str(again)], capture_output=True, cwd=REPO,
                   timeout=300, env={**os.environ, "PYTHONHASHSEED": "123"}, check=True)
    assert again.read_text() == out.read_text()


def test_your_own_examples_ride_along_under_other_tool_lists(tmp_path):
    mine = [{"input": "is it raining in buenos aires rn??", "output": "",
             "tool_calls": [{"name": "get_weather", "arguments": {"location": "Buenos Aires"}}]},
            {"input": "wake me when the pasta's done, 9 min", "output": "",
             "tool_calls": [{"name": "set_timer", "arguments": {"minutes": 9, "label": "pasta"}}]},
            {"input": "what's a good name for a cat?", "output": "Miso, Pepper or Juniper.", "tool_calls": []}]
    share = Options(no_tool_share=0.2)
    plain = synthesize(TOOLS, 160, seed=5, options=share).records
    records = synthesize(TOOLS, 160, seed=5, options=share, own=mine, repeat=3).records
    theirs = [r for r in records if r["input"] in {m["input"] for m in mine}]
    assert [r for r in records if r not in theirs] == plain  # the drawn ones are unchanged
    assert synthesize(TOOLS, 160, seed=5).records == plain  # 0.2 is the default without your requests
    # with them, more of the drawn requests need no call by default (0.3)
    said = {m["input"] for m in mine}
    drawn = [r for r in synthesize(TOOLS, 800, seed=5, own=mine, repeat=3).records if r["input"] not in said]
    assert 0.26 < sum(not r["tool_calls"] for r in drawn) / len(drawn) < 0.34
    assert Counter(r["input"] for r in theirs) == {m["input"]: 3 for m in mine}
    _valid(records)
    by_input: dict = {}
    for r in theirs:  # each copy under another prompt (masked names give renamed calls)
        by_input.setdefault(r["input"], []).append(json.dumps(r["tools"]))
        if r["tool_calls"] and r["tool_calls"][0]["name"] in {t["name"] for t in TOOLS}:
            assert r["tool_calls"] == next(m for m in mine if m["input"] == r["input"])["tool_calls"]
    assert all(len(set(prompts)) == 3 for prompts in by_input.values())
    # more tools than fit in a prompt: each copy's prompt still holds the tools it calls, once
    twice = {"input": "weather in Oslo and in Rome", "output": "", "tool_calls": [
        {"name": "get_weather", "arguments": {"location": "Oslo"}}, {"name": "get_weather", "arguments": {"location": "Rome"}}]}
    small = synthesize(TOOLS, 64, seed=1, options=Options(max_tools=4), own=[twice], repeat=3).records
    copies = [r for r in small if r["input"] == twice["input"]]
    assert len(copies) == 3 and len(small) == 67
    for r in copies:
        names = [t["name"] for t in r["tools"]]
        assert len(names) == len(set(names)) <= 4
    _valid(small)  # (a masked copy calls its tool by the masked name the prompt shows)
    # from the command line, in any dataset format, checked against the tools at file:line
    good, bad = tmp_path / "mine.jsonl", tmp_path / "bad.jsonl"
    good.write_text("".join(json.dumps(m) + "\n" for m in mine))
    bad.write_text(json.dumps(mine[0]) + "\n" + json.dumps(
        {"input": "timer for ten", "tool_calls": [{"name": "set_timer", "arguments": {"minutes": "ten"}}]}) + "\n")
    out = tmp_path / "syn.jsonl"
    cli = [sys.executable, "-m", "llm_mcp", "data", "synth", "--tools", "examples/tools.json", "--n", "40"]
    r = subprocess.run(cli + ["--examples", str(good), "--repeat", "2", "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(out.read_text().splitlines()) == 46
    assert "3 requests you wrote: calls to get_weather 1, set_timer 1; 1 without a call" in r.stderr
    assert "note: 8 tools have fewer than 5 of your requests (get_weather, " in r.stderr
    r = subprocess.run(cli + ["--examples", str(bad), "--out", str(out)], capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert r.returncode != 0 and f"{bad}:2" in r.stderr and "nothing written" in r.stderr


def test_the_natural_sets_never_feed_the_generator():
    """The held-out requests are not among the synthesizer's data, nor in the training data."""
    from llm_mcp.data.synth.values import HERE

    data_text = " ".join(p.read_text().lower() for p in HERE.glob("*.yaml"))
    train = " ".join(p.read_text().lower() for p in  # and the requests written to train with (--examples)
                     [REPO / "examples" / "train.jsonl", *(REPO / "examples" / "your_requests").glob("*.jsonl")])
    for path in (*(REPO / "examples").glob("natural*.jsonl"), *(REPO / "examples" / "unseen").glob("natural*.jsonl"),
                 REPO / "examples" / "clinic" / "natural.jsonl",
                 *(REPO / "examples" / "dev").glob("*multi_dev.jsonl"),
                 *(REPO / "examples" / "dev").glob("*single_dev.jsonl")):
        for line in path.read_text().splitlines():
            request = json.loads(line)["messages"][-1]["content"].lower()
            if len(request) > 25:
                assert request not in data_text and request not in train, request


def test_the_single_request_tuning_set_copies_no_held_out_request():
    """Tuning sets are written apart from the held-out sets: no request of the newest one is
    within a few words of a held-out request (the older tuning sets share some stock phrases)."""
    import difflib

    def requests(path):
        return [" ".join(re.findall(r"[a-z0-9]+", json.loads(line)["messages"][-1]["content"].lower()))
                for line in path.read_text().splitlines()]

    held = [r for path in (REPO / "examples" / "natural.jsonl", REPO / "examples" / "natural_b.jsonl",
                           REPO / "examples" / "unseen" / "natural.jsonl", REPO / "examples" / "unseen" / "natural_b.jsonl")
            for r in requests(path)]
    for request in requests(REPO / "examples" / "dev" / "unseen_single_dev.jsonl"):
        assert all(difflib.SequenceMatcher(None, request, h).ratio() < 0.85 for h in held), request


def test_teacher_verification_keeps_only_requests_that_carry_every_value():
    from llm_mcp.data.synth.teacher import verify

    calls = [{"name": "set_timer", "arguments": {"minutes": 25, "label": "Pasta water"}}]
    assert verify("timer for twenty-five minutes, pasta water pls", calls, []) is None
    assert verify("set a 25 min timer for the pasta water", calls, []) is None
    assert verify("set a timer for the pasta", calls, []) == "missing-value"
    assert verify("pasta water timer", calls, []) == "missing-value"  # the 25 is missing
    assert verify('<tool_call>{"name": "set_timer"}</tool_call>', calls, []) == "markup"
    assert verify("", calls, []) == "empty"
    kept = ["set a 25 min timer for the pasta water"]
    assert verify("set a 25 min timer for the pasta water!", calls, kept) == "duplicate"


def test_teacher_against_a_live_llm_mcp_server_accounts_for_every_request(tiny_llama, tmp_path, monkeypatch):
    """A random tiny model is a poor teacher: what is checked is that every request is asked of
    the real server, verified, and counted as kept or rejected with a reason; the key stays out."""
    from conftest import Server
    from llm_mcp.data.synth.teacher import rewrite

    records = synthesize(TOOLS, 4, seed=2, options=Options(no_tool_share=0.0)).records
    before = [r["input"] for r in records]
    monkeypatch.setenv("LLM_MCP_TEACHER_KEY", "sk-secret-not-to-be-logged")
    server = Server(tiny_llama, tmp_path)
    try:
        with urllib.request.urlopen(server.url + "/v1/models", timeout=30) as resp:
            model = json.loads(resp.read())["data"][0]["id"]
        report = rewrite(records, server.url + "/v1", model, seed=1)
    finally:
        server.stop()
    assert report.asked == 4 and report.kept + sum(report.rejected.values()) == 4
    assert set(report.rejected) <= {"empty", "too-long", "markup", "missing-value", "duplicate"}
    changed = sum(a != r["input"] for a, r in zip(before, records))
    assert changed == report.kept
    assert "sk-secret" not in (tmp_path / f"server-{server.port}.log").read_text()
    _valid(records)
    # a wrong address fails at once, naming what to check
    with pytest.raises(LLMMCPError, match="did not answer"):
        rewrite(records, "http://127.0.0.1:9/v1", "m")


def test_addresses_and_names_are_said_as_the_call_holds_them():
    """Faker's values can carry a trailing or doubled space (Spanish street addresses do): the
    request is tidied of such spaces, so the call's value is tidied the same way and appears in
    the request as it is."""
    pickup = {"name": "book_pickup", "description": "Book a courier to collect a parcel.",
              "parameters": {"type": "object", "required": ["address", "name"], "properties": {
                  "address": {"type": "string", "description": "Street and number, plus town."},
                  "name": {"type": "string", "description": "Full name of the sender."}}}}
    records = synthesize([pickup], 400, seed=3, options=Options(distractors=0, mask_share=0, bank_call_share=0)).records
    values = [v for r in records for c in r["tool_calls"] for v in c["arguments"].values()]
    assert len(values) > 300
    assert all(v == " ".join(v.split()) and " ," not in v for v in values), \
        [v for v in values if v != " ".join(v.split()) or " ," in v][:5]
    said = [r for r in records for c in r["tool_calls"] if c["arguments"]["address"].lower() in r["input"].lower()]
    assert len(said) > 0.9 * sum(len(r["tool_calls"]) for r in records)


def test_messages_and_titles_are_copied_whole():
    """A text the call copies stands in the request as the call holds it, case aside: typing habits
    (shorthand, a dropped final '?', typos) stay outside it (they once changed 3% of the copies:
    "see you" said "see u", "…to Thursday?" lost its "?")."""
    copied = [(r["input"], value) for seed in (1, 2) for r in synthesize(TOOLS, 600, seed=seed).records
              for c in r["tool_calls"] for key, value in c["arguments"].items()
              if key in ("body", "text", "subject", "title", "query", "label")]
    assert len(copied) > 500
    assert [(text, value) for text, value in copied if value.lower() not in text.lower()] == []


def test_counts_are_said_as_counts_and_how_to_stays_whole():
    """A parcel count is '3 parcels', never 'top 3' (that is for result limits); 'tell the driver
    how to hand over a parcel' is one action, not 'tell the driver how'."""
    import random

    from llm_mcp.data.synth.requests import argument_phrase
    from llm_mcp.data.synth.values import Said

    rng = random.Random(0)
    parcels = [argument_phrase(rng, "parcel_count", {"type": "integer"}, Said(3, "3"), 0) for _ in range(40)]
    assert all(p.startswith("3 parcels") for p in parcels), set(parcels)
    assert argument_phrase(rng, "num_people", {"type": "integer"}, Said(1, "one"), 0).startswith("one person")
    limits = {argument_phrase(rng, "max_results", {"type": "integer"}, Said(3, "3"), 0) for _ in range(40)}
    assert {"top 3", "limit 3"} <= limits
    said_with_unit = {argument_phrase(rng, "max_results", {"type": "integer"}, Said(1, "1 result"), 0)
                      for _ in range(40)}
    assert not any("result result" in p for p in said_with_unit), said_with_unit  # not "max 1 result results"
    tell = intent_of({"name": "set_delivery_instructions", "description": "Tell the driver how to hand over a parcel."})
    assert tell.do == "tell the driver how to hand over a parcel"
