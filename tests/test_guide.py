"""Schema-guided decoding (chat/guide.py) on SmolLM2's real vocabulary: which tokens each slot of
a call allows, and greedy decoding from random logits held to the schemas, which can only end
in names, parameters and enum values the tools have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm_mcp.chat import ChatFormat
from llm_mcp.chat.guide import apply_guide
from llm_mcp.chat.types import normalize_tools

TOOLS = json.loads((Path(__file__).parent.parent / "examples" / "tools.json").read_text())


@pytest.fixture(scope="module")
def guide(smol_tokenizer):
    return ChatFormat(smol_tokenizer).guide(TOOLS)


def test_slots_allow_only_what_the_schemas_name(guide, smol_tokenizer):
    def _texts(guide, text):
        allowed = guide.allowed(text)
        return None if allowed is None else {smol_tokenizer.decode([i]) for i in allowed}

    call = '<tool_call>{"name": "'
    names = _texts(guide, call)
    assert {"get", "send", "set", "web"} <= names and "foo" not in names and "" not in names
    assert _texts(guide, call + "get_w") == {"e", "ea", "eat"}  # get_weather only
    weather = call + 'get_weather", "arguments": {"'
    assert {"location", "unit", "u", "l"} <= _texts(guide, weather)
    assert not _texts(guide, weather) & {"minutes", "symbol", "query"}
    # a parameter already written is not offered again
    rest = _texts(guide, weather + 'location": " Oslo", "')
    assert {"u", "unit"} <= rest and not any(t.startswith("l") for t in rest)
    # an enum of strings: its values, written as is or spaced (the built-in format's copies)
    unit = _texts(guide, weather + 'location": " Oslo", "unit": "')
    assert {"c", "f", " c", " f"} <= unit and not {"k", " k", "Oslo"} & unit


def test_free_places_are_not_limited(guide):
    weather = '<tool_call>{"name": "get_weather", "arguments": {"'
    assert guide.allowed("Just text, no call.") is None
    assert guide.allowed(weather + 'location": " Os') is None  # a free string value
    assert guide.allowed('<tool_call>{"name": "set_timer", "arguments": {"minutes": 4') is None
    assert guide.allowed(weather + 'location": "x"}}</tool_call>\nDone') is None  # after the call
    # every parameter written: nothing left to offer, so nothing is limited
    assert guide.allowed(weather + 'location": "x", "unit": "celsius", "') is None
    # a tool the schemas do not have (the model wrote it unguided): its keys are not limited
    assert guide.allowed('<tool_call>{"name": "nope", "arguments": {"') is None


@pytest.mark.parametrize("seed", range(6))
def test_greedy_decoding_of_random_logits_ends_in_schema_words(guide, smol_tokenizer, seed):
    """Random logits stand in for a model that knows nothing: held to the schemas, the name, the
    first parameter and the unit still come out as the tools define them."""
    gen = torch.Generator().manual_seed(seed)
    vocab = len(smol_tokenizer)

    def fill(text: str, stop: str) -> str:
        """Greedy tokens under the guide until `stop` follows what they wrote."""
        start = len(text)
        for _ in range(40):
            logits = torch.randn(vocab, generator=gen)
            apply_guide(logits, guide, text)
            text += smol_tokenizer.decode([int(logits.argmax())])
            if stop in text[start:]:
                return text[start:text.index(stop, start)]
        raise AssertionError(f"no {stop!r} after {text[start:]!r}")

    text = '<tool_call>{"name": "'
    name = fill(text, '"')
    tools = {t["name"]: t for t in normalize_tools(TOOLS)}
    assert name in tools
    text += name + '", "arguments": {"'
    assert fill(text, '"') in tools[name]["parameters"]["properties"]
    text = '<tool_call>{"name": "get_weather", "arguments": {"location": "Oslo", "unit": "'
    assert fill(text, '"').lstrip(" ") in ("celsius", "fahrenheit")
