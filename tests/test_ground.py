"""Calls whose identifiers are nowhere in the conversation are withheld and asked about
(chat/ground.py), in every place a reply is parsed: `ChatFormat.parse`, the stream the server and
`llm-mcp chat` decode through, eval's judge, and the engine's requests."""

from __future__ import annotations

import json

from llm_mcp.chat import ToolCall
from llm_mcp.chat.ground import conversation_text, grounder, ungrounded

ORDERS = {
    "name": "cancel_order",
    "description": "Cancel an order and tell the customer",
    "parameters": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": "Order number, like QX-20931"},
            "notify": {"$ref": "#/$defs/emails"},
            "city": {"type": "string", "description": "City the order ships to"},
            "reason": {"type": "string", "description": "Why it is cancelled"},
            "airport_code": {"type": "string", "description": "Airport of the flight"},
            "store": {"type": "string", "enum": ["web", "shop"], "description": "Store id"},
            "page": {"type": "integer", "description": "Page number"},
        },
        "required": ["order_id"],
        "$defs": {"emails": {"type": "array", "items": {"type": "string", "format": "email"}}},
    },
}
SCHEMA = ORDERS["parameters"]


def said(*texts: str) -> str:
    return conversation_text([{"role": "user", "content": t} for t in texts])


def test_identifiers_and_addresses_must_be_in_the_conversation_the_rest_may_be_inferred():
    call = ToolCall("cancel_order", {"order_id": "QX-20931", "notify": ["ann@example.com"],
                                     "city": "Lisbon", "reason": "arrived too late", "airport_code": "LIS",
                                     "store": "web", "page": 7})
    # written otherwise ("qx 20931", "Ann@Example.com") it is the same value
    assert ungrounded(call, SCHEMA, said("cancel qx 20931 and tell Ann@Example.com")) == {}
    # the city, the reason, a short code, an enum and a number are the model's to infer
    assert ungrounded(call, SCHEMA, said("cancel it")) == {"order_id": "identifier", "notify": "email"}
    # a parameter that is only called an email or an id by a word inside its name, and a value
    # without the shape of its kind, is not checked
    loose = {"type": "object", "properties": {"email_body": {"type": "string"}, "provider": {"type": "string"},
                                                  "trackingNumber": {"type": "string"}}}
    assert ungrounded(ToolCall("x", {"email_body": "running late, sorry", "provider": "Royal-Mail",
                                     "trackingNumber": "PX-1"}), loose, said("hi")) == {"trackingNumber": "identifier"}
    invented = ToolCall("cancel_order", {"order_id": "QX-nnnnn", "airport_code": "LPPT-1"})
    assert ungrounded(invented, SCHEMA, said("cancel my order QX-20931")) == {"order_id": "identifier",
                                                                             "airport_code": "identifier"}


def test_an_id_from_an_earlier_call_or_a_tool_result_grounds_a_call():
    messages = [{"role": "user", "content": "cancel my last order"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"name": "list_orders", "arguments": {"customer": "C-77812"}}]},
                {"role": "tool", "name": "list_orders", "tool_call_id": "call_0",
                 "content": json.dumps([{"id": "QX-20931", "status": "paid"}])},
                {"role": "user", "content": "and the one before for C-77812 too"}]
    check = grounder([ORDERS], messages)
    assert check(ToolCall("cancel_order", {"order_id": "QX-20931"})) is None
    assert check(ToolCall("cancel_order", {"order_id": "C-77812"})) is None
    assert check(ToolCall("cancel_order", {"order_id": "QX-11111"})) == \
        "To call cancel_order I need the order id: what is it?"
    assert check(ToolCall("cancel_order", {"order_id": "QX-1", "notify": ["x@y.org"]})) == \
        "To call cancel_order I need the order id and email address: what are they?"
    assert check(ToolCall("unknown_tool", {"order_id": "QX-11111"})) is None  # the guide's to refuse
    assert grounder([ORDERS], None) is None and grounder(None, messages) is None


def test_a_withheld_call_is_asked_about_where_replies_are_parsed(smol_tokenizer):
    from llm_mcp.chat import CallEvent, ChatFormat, TextDelta
    from llm_mcp.eval.cases import Case
    from llm_mcp.eval.run import judge
    from llm_mcp.serve.generate import ReplyStream

    fmt = ChatFormat(smol_tokenizer)
    messages = [{"role": "user", "content": "please cancel my order, order QX-20931"}]
    raw = ("Sure.<tool_call>" + json.dumps({"name": "cancel_order", "arguments": {"order_id": "QX-20931"}})
           + "</tool_call><tool_call>" + json.dumps({"name": "cancel_order", "arguments": {"order_id": "QX-99999"}})
           + "</tool_call>")
    question = "To call cancel_order I need the order id: what is it?"
    kept, asked = ToolCall("cancel_order", {"order_id": "QX-20931"}), ToolCall("cancel_order", {"order_id": "QX-99999"})

    parsed = fmt.parse(raw, [ORDERS], messages)
    assert (parsed.calls, parsed.withheld, parsed.content) == ([kept], [asked], f"Sure.\n{question}")
    assert fmt.parse(raw, [ORDERS]).calls == [kept, asked]  # without the conversation: no check

    events = []
    stream = ReplyStream(fmt, events.append, tools=[ORDERS], messages=messages)
    stream.add(smol_tokenizer(raw, add_special_tokens=False)["input_ids"])
    streamed = stream.finish()
    assert [e.call for e in events if isinstance(e, CallEvent)] == [kept]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == parsed.content
    assert (streamed.calls, streamed.withheld, streamed.content) == (parsed.calls, parsed.withheld, parsed.content)

    # a no-call request answered with an invented order number: the server asks, eval counts it as no call
    case = Case([{"role": "user", "content": "I want to cancel an order"}], [ORDERS], [])
    made_up = '<tool_call>{"name": "cancel_order", "arguments": {"order_id": "QX-nnnnn"}}</tool_call>'
    prediction = judge(fmt, case, 0, made_up, 20, 0.1)
    assert prediction.ast.ok and not prediction.calls and len(prediction.withheld) == 1
    assert not judge(fmt, case, 0, made_up, 20, 0.1, grounded=False).ast.ok


def test_the_engine_checks_calls_against_the_request_conversation(tiny_llama):
    from llm_mcp.serve.engine import Engine, Request

    messages = [{"role": "user", "content": "cancel QX-20931"}]
    for grounded in (True, False):
        engine = Engine(str(tiny_llama), grounded=grounded)
        try:
            req = engine.prepare(Request(messages, [ORDERS], max_new_tokens=2))
            assert ([m.content for m in req.ground] if grounded else req.ground) == \
                (["cancel QX-20931"] if grounded else None)
            assert engine.generate(req).completion_tokens <= 2  # decoded with the check in place
            forced = engine.prepare(Request(messages, [ORDERS], tool_choice="required", max_new_tokens=2))
            assert forced.ground is None  # a call the client forces is the client's to check
        finally:
            engine.close()
