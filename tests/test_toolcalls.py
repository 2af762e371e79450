"""The tool-call parser on clean, realistic and broken model output, whole and streamed."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_mcp.chat import CallEvent, ErrorEvent, StreamParser, TextDelta, ToolCall, parse
from llm_mcp.chat.toolcalls import dump_call

WEATHER = ToolCall("get_weather", {"location": "Tokyo", "unit": "celsius"})


def test_single_call_with_surrounding_whitespace():
    out = parse('  <tool_call>\n {"name": "get_weather", "arguments": {"location": "Tokyo", '
                '"unit": "celsius"}} \n</tool_call>\n')
    assert out.calls == [WEATHER] and out.content == "" and out.errors == []


def test_several_calls_and_text_around_them():
    out = parse('Let me check. <tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
                '<tool_call>{"name": "b", "arguments": {"x": [1, 2.5, null, true]}}</tool_call> Done.')
    assert [c.name for c in out.calls] == ["a", "b"]
    assert out.calls[1].arguments == {"x": [1, 2.5, None, True]}
    assert out.content == "Let me check. \n Done."


def test_arguments_as_json_string_and_parameters_key():
    out = parse('<tool_call>{"name": "get_weather", "arguments": "{\\"location\\": \\"Tokyo\\", '
                '\\"unit\\": \\"celsius\\"}"}</tool_call>')
    assert out.calls == [WEATHER]
    out = parse('{"name": "get_weather", "parameters": {"location": "Tokyo", "unit": "celsius"}}')
    assert out.calls == [WEATHER] and out.content == ""


def test_bare_json_replies_with_prefixes():
    assert parse('<|python_tag|>{"name": "f", "arguments": {"a": 1}}').calls == [ToolCall("f", {"a": 1})]
    out = parse('[TOOL_CALLS][{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"b": "x"}}]')
    assert [c.name for c in out.calls] == ["f", "g"]


def test_json_that_is_not_a_call_stays_text():
    text = '{"answer": 42}'
    out = parse(text)
    assert out.calls == [] and out.content == text and out.errors == []


def test_truncated_json_is_an_error_not_an_exception():
    out = parse('Sure. <tool_call>{"name": "get_weather", "arguments": {"location": "Tok')
    assert out.calls == []
    assert out.content == "Sure."
    assert len(out.errors) == 1 and "not valid JSON" in out.errors[0].reason
    assert out.errors[0].raw.startswith('{"name": "get_weather"')


def test_truncated_but_complete_json_still_counts():
    out = parse('<tool_call>{"name": "get_weather", "arguments": {"location": "Tokyo", "unit": "celsius"}}')
    assert out.calls == [WEATHER] and out.errors == []


def test_two_calls_glued_in_one_block():
    out = parse('<tool_call>{"name": "a", "arguments": {}}{"name": "b", "arguments": {"k": 1}}</tool_call>')
    assert [c.name for c in out.calls] == ["a", "b"] and out.errors == []


def test_call_inside_prose():
    out = parse('I will look that up <tool_call>{"name": "web_search", "arguments": {"query": "mcp"}}'
                '</tool_call> and report back.')
    assert out.calls == [ToolCall("web_search", {"query": "mcp"})]
    assert out.content == "I will look that up  and report back."


def test_python_style_quotes():
    out = parse("<tool_call>{'name': 'get_weather', 'arguments': {'location': 'Tokyo', "
                "'unit': 'celsius', 'days': -2, 'ok': true}}</tool_call>")
    assert out.calls == [ToolCall("get_weather", {"location": "Tokyo", "unit": "celsius",
                                                  "days": -2, "ok": True})]


def test_malformed_calls_are_errors():
    for block, reason in [("", "empty"), ('{"arguments": {}}', "name"), ('{"name": "f", "arguments": 3}',
                          "object"), ('{"name": "f", "arguments": "not json"}', "not JSON"),
                          ("__import__('os')", "not valid JSON")]:
        out = parse(f"<tool_call>{block}</tool_call>")
        assert out.calls == [], block
        assert len(out.errors) == 1 and reason in out.errors[0].reason, (block, out.errors)


def test_escaped_close_tag_inside_an_argument():
    call = ToolCall("echo", {"text": "a </tool_call> b <tool_call>"})
    assert parse(f"<tool_call>{dump_call(call)}</tool_call>").calls == [call]


def test_stream_never_leaks_a_partial_tag():
    parser = StreamParser()
    text = 'Hi <tool_call>{"name": "f", "arguments": {}}</tool_call> bye'
    deltas = []
    for ch in text:
        for event in parser.feed(ch):
            if isinstance(event, TextDelta):
                deltas.append(event.text)
                assert "<" not in event.text
    parser.finish()
    assert "".join(deltas) == "Hi  bye"
    assert parser.result().calls == [ToolCall("f", {})]


def test_stream_emits_calls_as_soon_as_they_close():
    parser = StreamParser()
    events = parser.feed('<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"na')
    assert [type(e) for e in events] == [CallEvent]
    events = parser.feed('me": "g", "arguments": {}}</tool_call>')
    assert [e.call.name for e in events if isinstance(e, CallEvent)] == ["g"]
    assert parser.finish() == []


def test_stream_truncated_call_reports_an_error_at_finish():
    parser = StreamParser()
    assert parser.feed('<tool_call>{"name": "f", "argu') == []
    events = parser.finish()
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)


def test_stream_holds_a_text_that_ends_in_a_lone_angle_bracket_until_finish():
    parser = StreamParser()
    assert [e.text for e in parser.feed("a < b <") if isinstance(e, TextDelta)] == ["a < b "]
    assert [e.text for e in parser.finish()] == ["<"]


json_leaf = st.none() | st.booleans() | st.integers(-10**12, 10**12) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) |
                          st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
calls = st.builds(ToolCall, names, st.dictionaries(st.text(max_size=8), json_value, max_size=4))
pieces = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@st.composite
def replies(draw):
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        parts.append(draw(pieces))
        parts.append("<tool_call>" + dump_call(draw(calls)) + "</tool_call>")
    parts.append(draw(pieces | st.just('<tool_call>{"name": "x", "argu') | st.just("<tool_")))
    return "".join(parts)


@settings(max_examples=200, deadline=None)
@given(calls, st.lists(st.sampled_from([" ", '"', "\n", "x"]), min_size=1, max_size=4))
def test_spaced_values_round_trip(call, separators):
    """dump_call with a context that has some values after a space, then parse with unspace,
    whole or streamed: the call comes back exactly (values with their own leading spaces too)."""
    strings = [v for v in call.arguments.values() if isinstance(v, str)]
    context = "".join(sep + v for sep, v in zip(separators * 4, strings))
    text = f"<tool_call>{dump_call(call, context)}</tool_call>"
    assert parse(text, unspace=True).calls == [call]
    parser = StreamParser(unspace=True)
    for ch in text:
        parser.feed(ch)
    parser.finish()
    assert parser.result().calls == [call]
    assert parse(f"<tool_call>{dump_call(call, '')}</tool_call>", unspace=True).calls == [call]


@settings(max_examples=300, deadline=None)
@given(replies(), st.lists(st.integers(1, 7), min_size=1, max_size=40))
def test_stream_equals_whole_parse_for_any_chunking(text, sizes):
    whole = parse(text)
    parser = StreamParser()
    events, i, k = [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        events += parser.feed(text[i:i + n])
        i, k = i + n, k + 1
    events += parser.finish()
    streamed = parser.result()
    assert streamed.calls == whole.calls
    assert streamed.content == whole.content
    assert [e.reason for e in streamed.errors] == [e.reason for e in whole.errors]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == whole.content


@settings(max_examples=200, deadline=None)
@given(st.lists(calls, min_size=1, max_size=3), pieces)
def test_dumped_calls_parse_back(cs, prefix):
    text = prefix + "".join(f"<tool_call>{dump_call(c)}</tool_call>" for c in cs)
    assert parse(text).calls == cs
    json.loads(dump_call(cs[0]))  # still valid JSON after escaping
