"""Short dates and times in parsed calls, padded to their schemas' form (chat/conform.py), in every
place a reply is parsed: the stream the server and `llm-mcp chat` decode through, and eval's judge."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from llm_mcp.chat import ToolCall
from llm_mcp.chat.conform import conform, padded

EVENT = {
    "name": "create_event",
    "description": "Put an event in the calendar",
    "parameters": {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "date": {"type": "string", "format": "date", "description": "Day"},
            "time": {"type": "string", "description": "Start time, HH:MM"},
            "pickup": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
            "days": {"type": "array", "items": {"$ref": "#/$defs/day"}},
            "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "integer"}]},
        },
        "$defs": {"day": {"type": "string", "description": "A day, YYYY-MM-DD"}},
    },
}


def test_short_dates_and_times_are_padded_and_everything_else_is_left_as_written():
    call = ToolCall("create_event", {"title": "9:00 standup on 2026-1-2", "date": "2026-12-1", "time": "9:05",
                                     "pickup": "7:30", "days": ["2027-4-2", "2027-04-03"], "when": "2026-1-1"},
                    id="call_7")
    [fixed] = conform([call], [EVENT])
    assert fixed.arguments == {"title": "9:00 standup on 2026-1-2", "date": "2026-12-01", "time": "09:05",
                               "pickup": "07:30", "days": ["2027-04-02", "2027-04-03"], "when": "2026-1-1"}
    assert fixed.id == "call_7" and call.arguments["date"] == "2026-12-1"  # a new call; the parsed one kept
    assert conform([ToolCall("other_tool", {"date": "2026-12-1"})], [EVENT])[0].arguments == {"date": "2026-12-1"}


def test_only_padding_that_names_a_real_day_or_time_is_done():
    date = {"type": "string", "format": "date"}
    clock = {"type": "string", "description": "HH:MM"}
    assert padded("2026-2-30", date) == "2026-2-30"        # no such day: the tool's to refuse
    assert padded("2026-12-01", date) == "2026-12-01"
    assert padded("Dec 1", date) == "Dec 1"
    assert padded("25:00", clock) == "25:00" and padded("9:60", clock) == "9:60"
    assert padded("9:00 pm", clock) == "9:00 pm"             # a repair that means something: not made
    assert padded("9:00", {"type": "string", "description": "HH:MM:SS"}) == "9:00"
    assert padded("9:00", {"type": "string"}) == "9:00"      # nothing asks for HH:MM
    # a pattern that takes the short form as it is wins over the description
    assert padded("9:00", {"type": "string", "description": "HH:MM", "pattern": "^[0-9]{1,2}:[0-9]{2}$"}) == "9:00"


SCHEMAS = [{"type": "string", "format": "date"}, {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
           {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}, {"type": "string", "description": "HH:MM"}]


@given(st.sampled_from(SCHEMAS), st.from_regex(r"\A[0-9]{1,4}[-:][0-9]{1,2}(-[0-9]{1,3})?\Z"))
@example(SCHEMAS[3], "0:00")
def test_a_padded_value_is_valid_where_the_written_one_was_not(schema, value):
    # a form said only in the description is checked as the description says it (HH:MM, 24h)
    said = {**schema, "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"} if "description" in schema else schema
    valid = Draft202012Validator(said, format_checker=FormatChecker()).is_valid
    fixed = padded(value, schema)
    if valid(value):
        assert fixed == value
    if fixed != value:  # the same numbers, now in the form the schema asks for
        assert valid(fixed)
        assert [int(p) for p in fixed.replace(":", "-").split("-")] == [int(p) for p in value.replace(":", "-").split("-")]


def test_the_stream_the_server_decodes_through_conforms_its_calls(smol_tokenizer):
    from llm_mcp.chat import CallEvent, ChatFormat
    from llm_mcp.serve.generate import ReplyStream

    fmt = ChatFormat(smol_tokenizer)
    text = ('<tool_call>{"name": "create_event", "arguments": {"title": " lunch", "date": "2026-12-1", '
            '"time": " 9:00"}}</tool_call>')
    ids = smol_tokenizer(text, add_special_tokens=False)["input_ids"]
    for tools, want in (([EVENT], {"title": "lunch", "date": "2026-12-01", "time": "09:00"}),
                        (None, {"title": "lunch", "date": "2026-12-1", "time": "9:00"})):
        events = []
        stream = ReplyStream(fmt, events.append, tools=tools)
        stream.add(ids)
        parsed = stream.finish()
        assert [e.call.arguments for e in events if isinstance(e, CallEvent)] == [want]
        assert parsed.calls[0].arguments == want == fmt.parse(text, tools).calls[0].arguments


def test_eval_judges_the_conformed_call(smol_tokenizer):
    from llm_mcp.chat import ChatFormat
    from llm_mcp.eval.cases import Case
    from llm_mcp.eval.match import Expected
    from llm_mcp.eval.run import judge

    fmt = ChatFormat(smol_tokenizer)
    want = ToolCall("create_event", {"title": "lunch", "date": "2026-12-01", "time": "09:00"})
    case = Case([], [EVENT], [Expected.from_call(want)])
    raw = '<tool_call>' + json.dumps({"name": "create_event", "arguments": {
        "title": "lunch", "date": "2026-12-1", "time": "9:00"}}) + '</tool_call>'
    prediction = judge(fmt, case, 0, raw, 20, 0.1)
    assert prediction.ast.ok and prediction.calls == [want]
