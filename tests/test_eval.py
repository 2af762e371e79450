"""BFCL-style call matching, and batched prefix-sharing prediction equal to plain generate()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_mcp.chat.types import ToolCall, read_tools_file
from llm_mcp.errors import LLMMCPError
from llm_mcp.eval.match import Expected, calls_match, match_calls

REPO = Path(__file__).parent.parent


WEATHER = {"name": "get_weather", "parameters": {
    "type": "object", "required": ["location"],
    "properties": {"location": {"type": "string"}, "days": {"type": "integer"},
                   "threshold": {"type": "number"}, "alerts": {"type": "boolean"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "hours": {"type": "array", "items": {"type": "integer"}},
                   "where": {"type": "object", "properties": {"lat": {"type": "number"}}}}}}
TOOLS = [WEATHER, {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}]


def ast(calls, expected, tools=TOOLS):
    return match_calls(calls, expected, tools)


def test_exact_match_by_name_and_value_in_any_order():
    a = ToolCall("get_weather", {"location": "Tokyo", "days": 3})
    b = ToolCall("get_time", {"tz": "UTC"})
    assert calls_match([b, a], [a, b])
    assert calls_match([ToolCall("get_weather", {"location": "Tokyo", "days": 3.0})], [a])
    assert not calls_match([ToolCall("get_weather", {"location": "Tokyo", "days": "3"})], [a])
    assert not calls_match([ToolCall("get_weather", {"location": "tokyo", "days": 3})], [a])
    assert not calls_match([a, a], [a, b]) and not calls_match([a], [a, b]) and not calls_match([], [a])
    assert calls_match([], [])
    assert not calls_match([ToolCall("f", {"x": True})], [ToolCall("f", {"x": 1})])


def test_ast_types_int_is_a_number_but_not_the_reverse_and_bool_is_neither():
    want = [Expected("get_weather", {"location": ["Tokyo"], "threshold": [2.0], "days": [3]})]
    ok = ToolCall("get_weather", {"location": "Tokyo", "threshold": 2, "days": 3})
    assert ast([ok], want).ok  # int where a number is expected
    float_for_int = ToolCall("get_weather", {"location": "Tokyo", "threshold": 2.0, "days": 3.0})
    verdict = ast([float_for_int], want)
    assert not verdict.ok and verdict.kind == "wrong-arguments" and "integer" in verdict.detail
    assert not ast([ToolCall("get_weather", {"location": "Tokyo", "threshold": 2.0, "days": True})], want).ok
    bools = [Expected("get_weather", {"location": ["Tokyo"], "alerts": [True]})]
    assert ast([ToolCall("get_weather", {"location": "Tokyo", "alerts": True})], bools).ok
    assert not ast([ToolCall("get_weather", {"location": "Tokyo", "alerts": 1})], bools).ok
    assert not ast([ToolCall("get_weather", {"location": "Tokyo", "alerts": "true"})], bools).ok
    # without a schema numbers compare by value, bools stay apart
    assert ast([ToolCall("f", {"x": 3.0})], [Expected("f", {"x": [3]})], tools=[]).ok
    assert not ast([ToolCall("f", {"x": True})], [Expected("f", {"x": [1]})], tools=[]).ok


def test_ast_strings_ignore_case_spaces_and_punctuation_but_exact_does_not():
    gold = ToolCall("get_weather", {"location": "New York, NY"})
    loose = ToolCall("get_weather", {"location": "new york ny"})
    assert ast([loose], [Expected.from_call(gold)]).ok
    assert not calls_match([loose], [gold])
    assert not ast([ToolCall("get_weather", {"location": "New Jersey"})], [Expected.from_call(gold)]).ok


def test_ast_any_of_the_acceptable_values():
    want = [Expected("get_weather", {"location": ["Tokyo", "Tokyo, Japan"], "unit": ["celsius", "fahrenheit"]})]
    for location in ("Tokyo", "tokyo japan"):
        for unit in ("celsius", "Fahrenheit"):
            assert ast([ToolCall("get_weather", {"location": location, "unit": unit})], want).ok
    verdict = ast([ToolCall("get_weather", {"location": "Kyoto", "unit": "celsius"})], want)
    assert not verdict.ok and "'Tokyo' or 'Tokyo, Japan'" in verdict.detail


def test_ast_optional_parameters():
    # "" among the values: may be left out
    want = [Expected("get_weather", {"location": ["Tokyo"], "unit": ["celsius", ""]})]
    assert ast([ToolCall("get_weather", {"location": "Tokyo"})], want).ok
    assert ast([ToolCall("get_weather", {"location": "Tokyo", "unit": "celsius"})], want).ok
    # no "": must be given
    strict = [Expected("get_weather", {"location": ["Tokyo"], "unit": ["celsius"]})]
    verdict = ast([ToolCall("get_weather", {"location": "Tokyo"})], strict)
    assert not verdict.ok and "missing parameter 'unit'" in verdict.detail
    # gold data: an optional parameter the gold call omits may be omitted, not added
    gold = Expected.from_call(ToolCall("get_weather", {"location": "Tokyo"}))
    assert ast([ToolCall("get_weather", {"location": "Tokyo"})], [gold]).ok
    verdict = ast([ToolCall("get_weather", {"location": "Tokyo", "days": 2})], [gold])
    assert not verdict.ok and "unexpected parameter 'days'" in verdict.detail
    # required by the schema: never optional; unknown to the schema: never accepted
    no_location = [Expected("get_weather", {"location": ["Tokyo", ""]})]
    verdict = ast([ToolCall("get_weather", {})], no_location)
    assert not verdict.ok and "missing required parameter 'location'" in verdict.detail
    loose = [Expected("get_weather", {"location": ["Tokyo"], "city": ["Tokyo"]})]
    verdict = ast([ToolCall("get_weather", {"location": "Tokyo", "city": "Tokyo"})], loose)
    assert not verdict.ok and "unknown parameter 'city'" in verdict.detail


def test_ast_nested_lists_and_objects_element_by_element():
    want = [Expected("get_weather", {"location": ["Oslo"], "hours": [[6, 12]], "where": [{"lat": 59.9}]})]
    assert ast([ToolCall("get_weather", {"location": "Oslo", "hours": [6, 12], "where": {"lat": 59.9}})], want).ok
    assert not ast([ToolCall("get_weather", {"location": "Oslo", "hours": [12, 6], "where": {"lat": 59.9}})], want).ok
    assert not ast([ToolCall("get_weather", {"location": "Oslo", "hours": [6], "where": {"lat": 59.9}})], want).ok
    assert not ast([ToolCall("get_weather", {"location": "Oslo", "hours": [6.5, 12], "where": {"lat": 59.9}})],
                   want).ok  # a float among integers
    assert not ast([ToolCall("get_weather", {"location": "Oslo", "hours": [6, 12], "where": {"lat": 60}})], want).ok
    assert not ast([ToolCall("get_weather", {"location": "Oslo", "hours": [6, 12],
                                             "where": {"lat": 59.9, "lon": 10.7}})], want).ok


def test_ast_parallel_calls_any_order_best_pairing():
    oslo = ToolCall("get_weather", {"location": "Oslo"})
    bergen = ToolCall("get_weather", {"location": "Bergen"})
    utc = ToolCall("get_time", {"tz": "UTC"})
    # the first expected call accepts either city; a greedy pairing would take Oslo for it and
    # leave Bergen without a partner
    want = [Expected("get_weather", {"location": ["Oslo", "Bergen"]}),
            Expected("get_weather", {"location": ["Oslo"]}), Expected.from_call(utc)]
    assert ast([utc, oslo, bergen], want).ok
    assert ast([bergen, utc, oslo], want).ok
    assert not ast([bergen, utc, bergen], want).ok
    verdict = ast([oslo, utc], want)
    assert verdict.kind == "wrong-count"
    verdict = ast([oslo, bergen, ToolCall("get_tide", {})], want)
    assert not verdict.ok and verdict.kind == "wrong-name" and "get_time" in verdict.detail


def test_ast_irrelevance_and_missed_calls():
    assert ast([], []).ok
    verdict = ast([ToolCall("get_time", {"tz": "UTC"})], [])
    assert not verdict.ok and verdict.kind == "false-call"
    verdict = ast([], [Expected("get_time", {"tz": ["UTC"]})])
    assert not verdict.ok and verdict.kind == "missed-call"


def test_expected_calls_are_read_in_both_shapes_and_bad_ones_refused():
    assert Expected.parse({"name": "f", "arguments": {"x": [1, 2]}}) == Expected("f", {"x": [1, 2]})
    assert Expected.parse({"f": {"x": [1]}}) == Expected("f", {"x": [1]})
    for bad in ({"name": "f", "arguments": {"x": 1}}, {"name": ""}, ["f"], {"name": "f", "arguments": {"x": []}}):
        with pytest.raises(LLMMCPError):
            Expected.parse(bad)


def test_eval_cases_from_every_format_and_bfcl_records(tmp_path):
    from llm_mcp.eval.cases import read_cases

    tool = {"type": "function", "function": WEATHER}
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"input": "Weather in Oslo?", "output": "", "tool_calls": [{"name": "get_weather", "arguments": {"location": "Oslo"}}],
         "tools": [tool]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "user", "content": "Weather in Tokyo?"}], "tools": [tool],
         "expected": [{"name": "get_weather", "arguments": {"location": ["Tokyo", "tokyo, japan"]}}]},
        {"messages": [{"role": "user", "content": "Thanks"}], "tools": [tool], "expected": []},
    ]) + "\n")
    cases = read_cases(path)
    assert [c.line for c in cases] == [1, 2, 3, 4]
    assert cases[0].expected == [Expected("get_weather", {"location": ["Oslo"]})]
    assert [m.role for m in cases[0].prompt] == ["user"] and cases[1].expected == []
    assert cases[1].gold_text == "Hello!"
    assert cases[2].expected[0].arguments["location"] == ["Tokyo", "tokyo, japan"]
    assert cases[3].expected == [] and cases[3].prompt[-1].content == "Thanks"

    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps(r) for r in [
        {"messages": [{"role": "user", "content": "x"}], "expected": [{"name": "f", "arguments": {"a": 1}}]},
        {"messages": [{"role": "user", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "expected": []},
        "not json",
    ]) + "\n")
    with pytest.raises(LLMMCPError) as err:
        read_cases(bad)
    text = str(err.value.message)
    assert "4 errors" in text and "bad.jsonl:1" in text and "bad.jsonl:2" in text and "bad.jsonl:3" in text
    assert "bad.jsonl:4" in text

    bare = tmp_path / "no_tools.jsonl"  # scored without its tool, no call could be right
    bare.write_text(json.dumps({"messages": [{"role": "user", "content": "Weather in Oslo?"}],
                                "expected": [{"name": "get_weather", "arguments": {"location": ["Oslo"]}}]}) + "\n")
    with pytest.raises(LLMMCPError, match=r"no_tools.jsonl:1: error: \[unknown-tool\] expects a call to "
                                          r"'get_weather', which the record's tools do not list \(it has none\)"):
        read_cases(bare)
    assert read_cases(bare, [WEATHER])[0].tools[0]["name"] == "get_weather"


def test_batched_prediction_equals_plain_greedy_generate(tiny_llama, smol_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from llm_mcp.chat import ChatFormat
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.eval.run import predict

    tools = read_tools_file(REPO / "examples" / "tools.json")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    fmt = ChatFormat(smol_tokenizer)
    examples = (read_dataset(REPO / "examples" / "test.jsonl", tools=tools).examples[:5]
                + read_dataset(REPO / "examples" / "test.jsonl", tools=tools[:3]).examples[5:8])
    batched = predict(model, fmt, examples, max_new_tokens=12, batch_size=4)
    single = predict(model, fmt, examples, max_new_tokens=12, batch_size=1)
    for ex, a, b in zip(examples, batched.predictions, single.predictions):
        prompt = fmt.prompt_ids(ex.messages[:-1], ex.tools)
        out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                             eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id)
        want = fmt.reply_text([t for t in out[0, len(prompt):].tolist() if t not in fmt.stop_token_ids])
        assert a.raw == b.raw == want
    assert batched.examples == 8 and batched.call_examples + batched.no_call_examples == 8


def test_score_counts_each_kind_of_failure():
    from llm_mcp.eval.cases import Case
    from llm_mcp.eval.run import Prediction, Score

    tools = TOOLS
    oslo = ToolCall("get_weather", {"location": "Oslo"})

    def pred(expected, calls, errors=(), raw=""):
        case = Case([], tools, [Expected.from_call(c) for c in expected])
        verdict = match_calls(calls, case.expected, tools)
        exact = match_calls(calls, case.expected, tools, strict=True).ok
        return Prediction(case, 0, raw, calls, list(errors), verdict, exact, 10, 0.5)

    score = Score([
        pred([oslo], [oslo]),                                              # ok
        pred([oslo], [ToolCall("get_weather", {"location": "oslo"})]),    # AST yes, exact no
        pred([oslo], [ToolCall("get_time", {"tz": "CET"})]),              # wrong name
        pred([oslo], []),                                                 # missed
        pred([], []),                                                     # no call, right
        pred([], [oslo]),                                                 # false call
    ])
    s = score.summary()
    assert (s["examples"], s["call_examples"], s["no_call_examples"]) == (6, 4, 2)
    assert s["ast"] == 0.5 and s["exact"] == 0.25 and s["tool_name"] == 0.5 and s["well_formed"] == 0.75
    assert s["no_call"] == 0.5 and s["missed_calls"] == 1 and s["false_calls"] == 1
    assert s["mean_latency_s"] == 0.5 and s["mean_new_tokens"] == 10
    assert score.per_tool() == {"get_weather": {"examples": 4, "ast": 0.5, "exact": 0.25}}
    assert set(score.failures()) == {"wrong-name", "missed-call", "false-call"}


def test_eval_command_runs_base_and_adapter_side_by_side(tiny_llama, tmp_path):
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    adapter = tmp_path / "adapters" / "tiny-tools"
    train(load_config("default", None, {"model": str(tiny_llama), "data": str(REPO / "examples" / "train.jsonl"),
                                        "output": str(adapter)}, ["max_steps=2", "precision=fp32"]))
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "eval", "--data", str(REPO / "examples" / "test.jsonl"),
                           "--adapter", str(adapter), "--base", "--limit", "6", "--max-new-tokens", "6",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[0].split()
    assert head == ["metric", "base", "tiny-tools"]
    assert "AST match (BFCL)" in proc.stdout and f"report: {out / 'report.md'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["base", "tiny-tools"]
    assert report["model"] == str(tiny_llama)  # the base comes from the adapter card
    for m in report["models"].values():
        assert m["summary"]["examples"] == 6
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 12 and {json.loads(x)["model"] for x in lines} == {"base", "tiny-tools"}
    assert "| metric | base | tiny-tools |" in (out / "report.md").read_text()

    # an adapter by name from $LLM_MCP_HOME/adapters; an unknown one is a clear error
    env = {**os.environ, "LLM_MCP_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "eval", "--data", str(REPO / "examples" / "test.jsonl"),
                           "--adapter", "tiny-tools", "--limit", "2", "--max-new-tokens", "2", "--json"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert list(json.loads(proc.stdout)["models"]) == ["tiny-tools"]
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "eval", "--data", str(REPO / "examples" / "test.jsonl"),
                           "--adapter", "nope"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2 and "no adapter 'nope'" in proc.stderr and "tiny-tools" in proc.stderr
