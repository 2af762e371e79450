"""Schema-constrained decoding (chat/guide.py, xgrammar) on SmolLM2's real vocabulary: which
tokens a call allows, free text left free, and greedy decoding from random logits held to the
schemas, which can only end in a call that parses and validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from jsonschema import Draft202012Validator

from llm_mcp.chat import ChatFormat
from llm_mcp.chat.guide import apply_guide, loosen
from llm_mcp.chat.toolcalls import parse
from llm_mcp.chat.types import normalize_tools

TOOLS = json.loads((Path(__file__).parent.parent / "examples" / "tools.json").read_text())
OBJECT_TOOL = {"name": "file_report", "description": "File a report.", "parameters": {
    "type": "object", "properties": {
        "body": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["bug", "ui", "docs"]}},
        "owner": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
    "required": ["body", "owner"]}}


@pytest.fixture(scope="module")
def fmt(smol_tokenizer):
    return ChatFormat(smol_tokenizer)


def _texts(fmt, tok, text, tools=TOOLS) -> set[str] | None:
    """The texts of the tokens allowed after `text`; None when every token is."""
    logits = torch.zeros(len(tok))
    apply_guide(logits, fmt.guide(tools), text)
    ids = (logits > float("-inf")).nonzero().flatten().tolist()
    return None if len(ids) == len(tok) else {tok.decode([i]) for i in ids}


def test_calls_allow_only_what_the_schemas_name(fmt, smol_tokenizer):
    call = '<tool_call>{"name": "'
    names = _texts(fmt, smol_tokenizer, call)
    assert {"get", "send", "set", "web"} <= names and not {"foo", "hello", '"'} & names
    assert _texts(fmt, smol_tokenizer, call + "get_w") <= {"e", "ea", "eat", "eath", "weather"[1:]}
    weather = call + 'get_weather", "arguments": {"'
    keys = _texts(fmt, smol_tokenizer, weather)
    assert "location" in keys and not keys & {"minutes", "symbol", "query"}
    # an enum of strings: its values, as is or spaced (the built-in format's copies)
    unit = _texts(fmt, smol_tokenizer, weather + 'location": " Oslo", "unit": "')
    assert {"c", "f", " c", " f"} <= unit and not {"k", " k", "Oslo"} & unit
    # a string is a string: no object or number where the schema asks for text
    body = _texts(fmt, smol_tokenizer, call + 'send_email", "arguments": {"to": "a@b.io", "subject": "x", "body": ')
    assert '"' in body and all(t.startswith('"') for t in body)  # compact JSON: a string opens
    # an integer is an integer
    minutes = _texts(fmt, smol_tokenizer, call + 'set_timer", "arguments": {"minutes": ')
    assert "5" in minutes and not minutes & {'"', "{", "true"}


def test_free_text_and_after_a_call_are_not_limited(fmt, smol_tokenizer):
    assert _texts(fmt, smol_tokenizer, "Just text, no call.") is None
    done = '<tool_call>{"name": "get_weather", "arguments": {"location": "x"}}</tool_call>\nDone'
    assert _texts(fmt, smol_tokenizer, done) is None
    # text the grammar refuses (written unguided): the guide lets go rather than stop the reply
    assert _texts(fmt, smol_tokenizer, '<tool_call>{"name": "nope", "arguments": {"') is None


def test_schemas_that_do_not_compile_are_not_guided(fmt):
    bad = [{"name": "broken", "description": "", "parameters": {"type": "object", "properties": 5}}]
    assert fmt.guide(bad) is None and fmt.guide([]) is None


def test_loosen_allows_the_spaced_copies_only_where_the_format_writes_them():
    schema = {"type": "object", "properties": {
        "unit": {"type": "string", "enum": ["c", "f"]}, "day": {"type": "string", "format": "date"},
        "kind": {"const": "a"}, "n": {"type": "integer", "minimum": 1}}}
    loose = loosen(schema)
    assert loose["properties"]["unit"]["enum"] == ["c", " c", "f", " f"]
    assert "format" not in loose["properties"]["day"] and loose["properties"]["kind"]["enum"] == ["a", " a"]
    assert loose["properties"]["n"] == {"type": "integer", "minimum": 1}


@pytest.mark.parametrize("seed", range(6))
def test_greedy_decoding_of_random_logits_writes_a_valid_call(fmt, smol_tokenizer, seed):
    """Random logits stand in for a model that knows nothing: once it opens a call, the guide
    alone brings it to a call that parses and validates against the tool's schema."""
    gen = torch.Generator().manual_seed(seed)
    tools = normalize_tools(TOOLS) + [OBJECT_TOOL]
    guide = fmt.guide(tools)
    text = "<tool_call>"
    for _ in range(400):
        logits = torch.randn(len(smol_tokenizer), generator=gen)
        for closing in ('"', "}"):  # a nudge to end strings and objects within 200 tokens
            logits[smol_tokenizer.convert_tokens_to_ids(closing)] += 4
        apply_guide(logits, guide, text)
        text += smol_tokenizer.decode([int(logits.argmax())])
        if text.endswith("</tool_call>"):
            break
    reply = parse(text, unspace=True)
    calls = reply.calls
    assert not reply.errors and len(calls) == 1, text
    schema = {t["name"]: t["parameters"] for t in tools}[calls[0].name]
    assert not list(Draft202012Validator(schema).iter_errors(calls[0].arguments)), text


def test_the_structural_tag_starts_after_a_forced_prefix(smol_tokenizer):
    """What serve/vllm.py hands vLLM for a forced tool_choice: the grammar compiled after the
    prefix accepts the rest of a call to that tool (a non-ASCII name written as the format writes
    it, not \\u-escaped) and then free text, and refuses another tool's rest."""
    import xgrammar as xgr

    from llm_mcp.chat.guide import structural_tag

    tools = normalize_tools(TOOLS) + [{"name": "météo", "description": "Weather.", "parameters": {
        "type": "object", "properties": {"ville": {"type": "string"}}, "required": ["ville"]}}]
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(smol_tokenizer, vocab_size=len(smol_tokenizer)))

    def accepts(forced: str, rest: str) -> bool:
        matcher = xgr.GrammarMatcher(compiler.compile_structural_tag(structural_tag(tools, forced)))
        return matcher.accept_string(rest)

    named = '<tool_call>{"name": "météo", "arguments": '
    assert accepts(named, '{"ville": "Lyon"}}</tool_call> voilà')
    assert not accepts(named, '{"location": "Lyon"}}</tool_call>')
    required = '<tool_call>{"name": "'
    assert accepts(required, 'get_weather", "arguments": {"location": "Oslo"}}</tool_call>')
    assert not accepts(required, 'no_such_tool", "arguments": {}}</tool_call>')
    assert accepts("", "just text, no call")
