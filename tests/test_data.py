"""Dataset readers, validation with file:line, parity check, labels, packing, convert, synth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from llm_mcp.chat import ChatFormat, Message, ToolCall
from llm_mcp.data import check_examples, check_parity, read_dataset, read_tools_file
from llm_mcp.data.convert import to_record
from llm_mcp.data.example import Example
from llm_mcp.data.synth import synthesize
from llm_mcp.data.tokenize import IGNORE, tokenize_examples

DATA = REPO / "tests" / "data"
TOOLS = read_tools_file(REPO / "examples" / "tools.json")


@pytest.fixture(scope="module")
def fmt(smol_tokenizer):
    return ChatFormat(smol_tokenizer)


def test_the_documented_flat_example(tmp_path):
    f = tmp_path / "one.jsonl"
    f.write_text('{"input": "What\'s the weather in Tokyo?", "output": "", "tool_calls": [{"name": '
                 '"get_weather", "arguments": {"location": "Tokyo", "unit": "celsius"}}]}\n')
    ds = read_dataset(f, tools=TOOLS)
    assert ds.format == "flat" and not ds.issues
    (ex,) = ds.examples
    assert [m.role for m in ex.messages] == ["user", "assistant"]
    assert ex.calls() == [ToolCall("get_weather", {"location": "Tokyo", "unit": "celsius"})]
    assert ex.line == 1 and len(ex.tools) == 8


def test_flat_without_tools_infers_schemas_and_warns():
    ds = read_dataset(DATA / "flat.jsonl")
    assert ds.inferred_tools == ["get_weather"]
    (warning,) = ds.issues
    assert warning.kind == "inferred-tools" and warning.level == "warning"
    schema = ds.examples[0].tools[0]["parameters"]
    assert schema["properties"] == {"location": {"type": "string"}, "unit": {"type": "string"}}
    assert check_examples(ds.examples) == []


def test_openai_reader_multi_turn_parallel_calls():
    ds = read_dataset(DATA / "openai.jsonl")
    assert ds.format == "openai" and not ds.issues
    (ex,) = ds.examples
    assert [m.role for m in ex.messages] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert ex.calls() == [ToolCall("get_weather", {"location": "Paris"}),
                          ToolCall("get_weather", {"location": "Rome"})]
    assert ex.messages[3].tool_call_id == "c1"
    assert check_examples(ds.examples) == []


def test_sharegpt_hermes_reader_with_line_numbers_in_a_json_array():
    ds = read_dataset(DATA / "hermes.json")
    assert ds.format == "sharegpt" and not ds.issues
    first, second = ds.examples
    assert (first.line, second.line) == (2, 11)
    assert [m.role for m in first.messages] == ["user", "assistant", "tool", "assistant"]
    assert first.tools[0]["name"] == "get_stock_price"  # from the <tools> block
    assert first.messages[2].content == '{"price": 190.5}'
    assert second.calls() == [ToolCall("get_stock_price", {"symbol": "MSFT"})]
    assert check_examples(ds.examples) == []


def test_xlam_reader_turns_python_types_into_json_schema():
    ds = read_dataset(DATA / "xlam.jsonl")
    (ex,) = ds.examples
    params = ex.tools[0]["parameters"]
    assert params["properties"]["amount"]["type"] == "number"
    assert params["required"] == ["amount", "from_currency", "to_currency"]
    assert check_examples(ds.examples) == []


def test_every_problem_of_a_broken_file_with_its_line():
    ds = read_dataset(DATA / "broken.jsonl", tools=TOOLS)
    issues = ds.issues + check_examples(ds.examples)
    got = sorted((i.line, i.kind, i.level) for i in issues)
    assert got == [
        (2, "invalid-json", "error"),
        (3, "unknown-tool", "error"),
        (4, "missing-argument", "error"),
        (5, "bad-arguments", "error"),
        (6, "empty-assistant", "error"),
        (8, "unknown-format", "error"),
        (9, "missing-field", "error"),
        (10, "duplicate", "warning"),
        (11, "bad-call", "error"),
        (12, "bad-message", "error"),
    ]
    by_line = {i.line: i for i in issues}
    assert "did you mean 'get_weather'" in str(by_line[3])
    assert "'kelvin' is not one of" in by_line[5].message
    assert str(by_line[2]).startswith(f"{DATA / 'broken.jsonl'}:2: error: [invalid-json]")


def test_a_forced_format_reports_missing_fields(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"query": "Convert 5 USD"}\n{"conversations": []}\n')
    ds = read_dataset(f, fmt="xlam")
    assert [(i.line, i.kind) for i in ds.issues] == [(1, "missing-field"), (2, "wrong-format")]
    assert "'answers'" in ds.issues[0].message


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert [i.kind for i in read_dataset(empty).issues] == ["empty-file"]
    from llm_mcp.errors import LLMMCPError

    with pytest.raises(LLMMCPError, match="does not exist"):
        read_dataset(tmp_path / "nope.jsonl")


def test_label_mask_token_by_token_on_the_real_tokenizer(fmt):
    ds = read_dataset(DATA / "openai.jsonl")
    (item,), dropped = tokenize_examples(ds.examples, fmt, 4096)
    tok = fmt.tokenizer
    pieces = tok.convert_ids_to_tokens(item.input_ids)
    labelled = [(p, t != IGNORE) for p, t in zip(pieces, item.labels)]
    # walk the turns: everything after "<|im_start|>assistant\n" up to and including <|im_end|>
    # is labelled; nothing else is
    expect, in_assistant, in_header = [], False, False
    for k, p in enumerate(pieces):
        if p == "<|im_start|>":
            in_header = True
            in_assistant = "".join(pieces[k + 1:k + 3]).startswith("assistant")
        if in_header:  # <|im_start|>, the role's tokens, the newline
            expect.append(False)
            in_header = p != "Ċ"
            continue
        expect.append(in_assistant and (p != "Ċ" or pieces[k - 1] != "<|im_end|>"))
        if p == "<|im_end|>":
            in_assistant = False
    assert [bit for _, bit in labelled] == expect
    masked = tok.decode([t for t in item.labels if t != IGNORE])
    # (the request writes Paris and Rome after a space: the calls repeat that space, see dump_call)
    assert masked == ('<tool_call>{"name": "get_weather", "arguments": {"location": " Paris"}}</tool_call>\n'
                      '<tool_call>{"name": "get_weather", "arguments": {"location": " Rome"}}</tool_call>'
                      "<|im_end|>Paris 18 °C, Rome 24 °C.<|im_end|>")


def test_parity_passes_on_good_data_and_catches_a_broken_format(smol_tokenizer, fmt):
    ds = read_dataset(DATA / "openai.jsonl")
    assert check_parity(ds.examples[0], fmt)[0] == []

    class Truncating(ChatFormat):
        """A format whose renderer cuts long calls, as a template with a length limit would."""

        def _hermes_messages(self, msgs, tools):
            chat = super()._hermes_messages(msgs, tools)
            for turn in chat:
                if turn["role"] == "assistant" and len(turn["content"]) > 60:
                    turn["content"] = turn["content"][:60]
            return chat

    broken = Truncating(smol_tokenizer)
    ds = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS)
    long_lines = {ex.line for ex in ds.examples  # the examples whose call turn gets cut
                  if any(t["role"] == "assistant" and len(t["content"]) > 60
                         for t in ChatFormat._hermes_messages(broken, ex.messages, ex.tools))}
    flagged = {i.line for ex in ds.examples for i in check_parity(ex, broken)[0] if i.kind == "parity"}
    assert flagged and flagged == long_lines

    class ShiftedMask(ChatFormat):
        def render(self, *a, **k):
            r = super().render(*a, **k)
            r.assistant_mask = r.assistant_mask[1:] + [0]
            return r

    issues, _ = check_parity(ds.examples[0], ShiftedMask(smol_tokenizer))
    assert {i.kind for i in issues} == {"mask"}


def test_parity_reports_text_the_tokenizer_cannot_spell(fmt):
    # SmolLM2's byte-level vocabulary has no token for the lead byte of U+40000
    ex = Example([Message("user", "x"), Message("assistant", "", [ToolCall("t", {"a": "\U00040000"})])],
                 [{"name": "t", "description": "", "parameters": {"type": "object"}}], "f.jsonl", 7)
    (issue,), _ = check_parity(ex, fmt)
    assert (issue.line, issue.kind) == (7, "mask") and "cannot spell" in issue.message


def test_too_long_examples_are_dropped_not_cut(fmt):
    ds = read_dataset(DATA / "flat.jsonl", tools=TOOLS)
    kept, dropped = tokenize_examples(ds.examples, fmt, 780)
    assert len(kept) == 1 and len(dropped) == 1 and dropped[0].kind == "too-long"
    assert dropped[0].line == 1
    # `data validate` warns of them before training, with what to do (check_dataset's max_length)
    from llm_mcp.data.validate import check_dataset

    _, issues, lengths = check_dataset(DATA / "flat.jsonl", fmt, tools=TOOLS, max_length=780)
    (warned,) = [i for i in issues if i.kind == "too-long"]
    assert warned.line == 1 and warned.level == "warning" and "max_length=" in warned.hint and max(lengths) > 780


example_strategy = st.builds(
    lambda q, a, cs: Example([Message("user", q), Message("assistant", a, cs)], TOOLS[:1]),
    st.text(min_size=1, max_size=20).filter(str.strip), st.text(max_size=20),
    st.lists(st.builds(ToolCall, st.just("get_weather"),
                       st.fixed_dictionaries({"location": st.text(max_size=10)})), max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(example_strategy, min_size=1, max_size=4), st.sampled_from(["openai", "flat"]))
def test_convert_round_trip(tmp_path, examples, target):
    f = tmp_path / f"rt-{target}.jsonl"
    f.write_text("".join(json.dumps(to_record(ex, target)) + "\n" for ex in examples))
    back = read_dataset(f)
    assert back.format == target and not back.errors
    assert [b.messages for b in back.examples] == [ex.messages for ex in examples]
    assert [b.tools for b in back.examples] == [ex.tools for ex in examples]


def test_the_shipped_split_is_clean_and_disjoint():
    train = read_dataset(REPO / "examples" / "train.jsonl")
    test = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS)
    assert not train.issues and not test.issues
    assert not check_examples(train.examples) and not check_examples(test.examples)
    inputs = lambda ds: {ex.messages[0].content for ex in ds.examples}  # noqa: E731
    assert not inputs(train) & inputs(test)
    # the copied values of the template split (names, emails, texts...) never occur in training
    copied = ("location", "to", "subject", "body", "query", "title", "label", "text", "symbol")
    values = lambda ds: {json.dumps(v).lower() for ex in ds.examples for m in ex.messages  # noqa: E731
                         for c in m.tool_calls for k, v in c.arguments.items() if k in copied}
    assert len(values(train) & values(test)) <= 3, values(train) & values(test)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "llm_mcp", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def test_validate_cli_on_the_sample_and_on_a_broken_file(smol_dir):
    ok = _cli("data", "validate", "examples/test.jsonl", "--tools", "examples/tools.json")
    assert ok.returncode == 0, ok.stderr
    assert "0 errors, 0 warnings" in ok.stdout and "chat format: hermes" in ok.stdout
    assert "tokens per example: min" in ok.stdout
    bad = _cli("data", "validate", "tests/data/broken.jsonl", "--tools", "examples/tools.json", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["errors"] == 9 and report["warnings"] == 1
    assert {i["line"] for i in report["issues"]} == {2, 3, 4, 5, 6, 8, 9, 10, 11, 12}


def test_convert_and_synth_cli(tmp_path):
    out = tmp_path / "conv.jsonl"
    r = _cli("data", "convert", "tests/data/hermes.json", str(out), "--to", "openai")
    assert r.returncode == 0, r.stderr
    assert read_dataset(out).format == "openai" and len(read_dataset(out).examples) == 2
    r = _cli("data", "convert", "tests/data/openai.jsonl", str(tmp_path / "x.jsonl"), "--to", "flat")
    assert r.returncode == 2 and "does not fit the flat format" in r.stderr
    r = _cli("data", "stats", "tests/data/openai.jsonl", "--chat-format", "native")
    assert r.returncode == 2 and "cannot be used for tools" in r.stderr  # the flag is honoured
    syn = tmp_path / "syn.jsonl"
    r = _cli("data", "synth", "--tools", "examples/tools.json", "--n", "20", "--seed", "3", "--out", str(syn))
    assert r.returncode == 0 and len(syn.read_text().splitlines()) == 20


def test_parquet_and_saved_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")  # a dev dependency: installed by `make test`
    rows = [json.loads(line) for line in (REPO / "examples" / "test.jsonl").read_text().splitlines()[:5]]
    for r in rows:  # parquet wants one type per column: arguments as JSON strings (allowed)
        r["tool_calls"] = [{"name": c["name"], "arguments": json.dumps(c["arguments"])}
                           for c in r["tool_calls"]]
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(tmp_path / "t.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    want = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS).examples[:5]
    for path in (tmp_path / "t.parquet", tmp_path / "saved"):
        got = read_dataset(path, tools=TOOLS)
        assert got.format == "flat" and not got.issues, path
        assert [e.messages for e in got.examples] == [e.messages for e in want]
        assert [e.line for e in got.examples] == [1, 2, 3, 4, 5]


def test_tools_from_an_mcp_tools_list_result(tmp_path):
    listing = {"tools": [{"name": t["name"], "description": t["description"],
                          "inputSchema": t["parameters"]} for t in TOOLS]}
    f = tmp_path / "tools_list.json"
    f.write_text(json.dumps(listing))
    assert read_tools_file(f) == TOOLS
    assert synthesize(read_tools_file(f), 30, seed=4) == synthesize(TOOLS, 30, seed=4)


def test_length_buckets_group_similar_lengths(fmt):
    from llm_mcp.data.tokenize import length_buckets

    ds = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS[:1])
    items, _ = tokenize_examples(ds.examples[:20], fmt, 4096)
    batches = length_buckets(items, 4)
    assert sorted(i for b in batches for i in b) == list(range(20))
    assert all(len(b) == 4 for b in batches)
    spans = [max(len(items[i]) for i in b) - min(len(items[i]) for i in b) for b in batches]
    lengths = sorted(len(it) for it in items)
    assert sum(spans) <= lengths[-1] - lengths[0]
