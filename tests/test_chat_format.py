"""ChatFormat on both paths: which path is chosen, what is rendered, the assistant mask, and the
round trip parse(render(calls)) == calls that train/serve parity rests on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llm_mcp.chat import ChatFormat, Message, ToolCall
from llm_mcp.errors import LLMMCPError

from test_toolcalls import calls as call_strategy

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["location"]}}}
TIME_TOOL = {"name": "get_time", "description": "Current time in a timezone.",
             "inputSchema": {"type": "object", "properties": {"tz": {"type": "string"}}}}
CALL = ToolCall("get_weather", {"location": "Tokyo", "unit": "celsius"}, "call_0")
CONVO = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What's the weather in Tokyo?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL.to_openai()]},
    {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 °C in Tokyo."},
]


@pytest.fixture(scope="module")
def hermes(smol_tokenizer):
    return ChatFormat(smol_tokenizer)


@pytest.fixture(scope="module")
def native(native_tokenizer):
    return ChatFormat(native_tokenizer)


def masked_text(fmt, rendered) -> str:
    return fmt.tokenizer.decode([i for i, m in zip(rendered.input_ids, rendered.assistant_mask) if m])


def test_smollm2_template_is_not_tool_aware_so_hermes_is_chosen(hermes):
    assert hermes.kind == "hermes"
    assert "ignores the tools" in hermes.reason
    assert hermes.end_of_turn == "<|im_end|>"
    assert hermes.stop_token_ids == [hermes.tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_tool_aware_template_is_used_natively(native):
    assert native.kind == "native", native.reason
    assert native.args_as_string is False


def test_hermes_render(hermes):
    r = hermes.render(CONVO, [WEATHER_TOOL, TIME_TOOL])
    text = r.text
    assert text.startswith("<|im_start|>system\nBe brief.\n\nYou can call functions")
    assert '<tools>\n{"name":"get_weather"' in text and '{"name":"get_time"' in text
    # "Tokyo" follows a space in the request, so the call writes it as " Tokyo" (one token, the
    # request's own); "celsius" is not in the request and is written as is
    assert ('<|im_start|>assistant\n<tool_call>{"name": "get_weather", "arguments": '
            '{"location": " Tokyo", "unit": "celsius"}}</tool_call><|im_end|>') in text
    assert '<|im_start|>tool\n<tool_response>\n{"temp_c": 21}\n</tool_response><|im_end|>' in text
    assert r.input_ids == hermes.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_mask_covers_exactly_the_assistant_turns(hermes, native):
    for fmt in (hermes, native):
        r = fmt.render(CONVO, [WEATHER_TOOL])
        got = masked_text(fmt, r)
        assert "get_weather" in got and "Tokyo" in got and "It is 21 °C in Tokyo." in got
        assert got.count("<|im_end|>") == 2  # each assistant turn's end-of-turn token
        for never in ("Be brief", "What's the weather", "temp_c", "<tools>", "<|im_start|>"):
            assert never not in got, (fmt.kind, never)
        # everything masked, in order, is the assistant turns' text
        spans = "".join(r.text[s:e] for s, e in r.spans)
        assert got == spans


def test_generation_prompt_and_parse_of_a_reply(hermes, native):
    for fmt in (hermes, native):
        prompt = fmt.render(CONVO[:2], [WEATHER_TOOL], add_generation_prompt=True)
        full = fmt.render(CONVO[:3], [WEATHER_TOOL])
        assert full.text.startswith(prompt.text)
        reply = full.text[len(prompt.text):]
        assert fmt.parse(reply).calls == [CALL]
        assert fmt.parse(reply).content == ""


def test_prompts_with_two_tools_in_each_path(hermes, native):
    msgs = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    h = hermes.render(msgs, [WEATHER_TOOL, TIME_TOOL], add_generation_prompt=True).text
    n = native.render(msgs, [WEATHER_TOOL, TIME_TOOL], add_generation_prompt=True).text
    assert h.endswith("<|im_start|>assistant\n") and n.endswith("<|im_start|>assistant\n")
    assert "# Tools" in n and "# Tools" not in h
    assert "<tools>" in h and "<tools>" in n


def test_no_template_falls_back_to_chatml(bare_tokenizer):
    fmt = ChatFormat(bare_tokenizer)
    assert fmt.kind == "hermes" and "no chat template" in fmt.reason
    r = fmt.render(CONVO, [WEATHER_TOOL])
    assert r.text.startswith("<|im_start|>system\nBe brief.")
    assert fmt.parse(r.text[slice(*r.spans[0])]).calls == [CALL]


def test_strict_template_gets_system_and_tool_turns_as_user_turns(strict_tokenizer):
    fmt = ChatFormat(strict_tokenizer)
    assert fmt.kind == "hermes" and not fmt.system_ok and fmt.tool_role == "user"
    r = fmt.render(CONVO, [WEATHER_TOOL])
    assert r.text.startswith("<|im_start|>user\nBe brief.\n\nYou can call functions")
    assert "<|im_start|>user\n<tool_response>" in r.text
    assert fmt.parse(r.text[slice(*r.spans[0])]).calls == [CALL]
    assert "It is 21" in masked_text(fmt, r)


def test_forcing_native_on_a_template_without_tools_is_a_clear_error(smol_tokenizer):
    with pytest.raises(LLMMCPError, match="cannot be used for tools"):
        ChatFormat(smol_tokenizer, force="native")
    assert ChatFormat(smol_tokenizer, force="hermes").kind == "hermes"


def test_reply_text_cuts_at_end_of_turn(hermes):
    ids = hermes.tokenizer("Paris.<|im_end|>\nextra", add_special_tokens=False)["input_ids"]
    assert hermes.reply_text(ids) == "Paris."


def test_hermes_calls_repeat_the_requests_tokens_for_copied_values(hermes):
    """A value the request writes after a space is written with that space in the call, so the
    call's tokens for it are the request's; one it writes after a quote, as is. The reply parses
    back to the values without the space."""
    tok = hermes.tokenizer
    request = 'Weather in Zurich, and the price of SBUX. Email "frank@example.net" please.'
    call_a = ToolCall("get_weather", {"location": "Zurich", "unit": "celsius"})
    call_b = ToolCall("get_stock_price", {"symbol": "SBUX"})
    call_c = ToolCall("send_email", {"to": "frank@example.net", "subject": " padded"})
    msgs = [Message("user", request), Message("assistant", "", [call_a, call_b, call_c])]
    r = hermes.render(msgs, [WEATHER_TOOL])
    reply = r.text[slice(*r.spans[0])]
    assert '{"location": " Zurich", "unit": "celsius"}' in reply
    assert '{"symbol": " SBUX"}' in reply
    assert '{"to": "frank@example.net", "subject": "  padded"}' in reply  # own space kept
    masked = [i for i, m in zip(r.input_ids, r.assistant_mask) if m]
    for word in (" Zurich", " SBUX", "frank@example.net"):
        ids = tok(word, add_special_tokens=False)["input_ids"]
        request_ids = tok(request, add_special_tokens=False)["input_ids"]
        assert _contains(request_ids, ids) and _contains(masked, ids), word
    assert hermes.parse(reply).calls == [call_a, call_b, call_c]


def _contains(seq: list[int], part: list[int]) -> bool:
    return any(seq[i:i + len(part)] == part for i in range(len(seq) - len(part) + 1))


def test_bad_messages_are_clear_errors(hermes):
    with pytest.raises(LLMMCPError, match="unknown role"):
        hermes.render([{"role": "robot", "content": "x"}])
    with pytest.raises(LLMMCPError, match="not JSON"):
        hermes.render([{"role": "assistant", "tool_calls": [
            {"function": {"name": "f", "arguments": "{bad"}}]}])


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for v in items for s in _strings(v)]


def _round_trip(fmt, cs, text_before: str):
    # the request repeats the values, after a space or a quote, so that some are written spaced
    request = "Do it:" + "".join(f' {v} "{v}"' for c in cs for v in _strings(c.arguments)[::2])
    msgs = [Message("user", request), Message("assistant", text_before, cs)]
    r = fmt.render(msgs, [WEATHER_TOOL])
    reply = r.text[slice(*r.spans[0])]
    parsed = fmt.parse(reply)
    assert parsed.calls == cs
    assert parsed.errors == []
    # The tokens under the mask decode to the same reply: the mask covers every call token.
    # (Only where the tokenizer can spell the reply at all: SmolLM2's byte-level vocabulary has no
    # token for some lead bytes, e.g. of U+40000, and drops them.)
    tok = fmt.tokenizer
    if tok.decode(tok(reply, add_special_tokens=False)["input_ids"]) == reply:
        assert fmt.parse(masked_text(fmt, r)).calls == cs


prose = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=15).filter(
    lambda s: "<" not in s and not s.lstrip().startswith(("{", "[")))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(call_strategy, min_size=1, max_size=3), prose)
def test_round_trip_hermes(hermes, cs, text_before):
    _round_trip(hermes, cs, text_before.strip())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(call_strategy, min_size=1, max_size=3), prose)
def test_round_trip_native(native, cs, text_before):
    # The template writes arguments with its own tojson, which does not escape "</": an argument
    # holding the closing tag cannot round-trip through any template of this style.
    assume(all("</tool_call>" not in str(c.arguments) for c in cs))
    _round_trip(native, cs, text_before.strip())
