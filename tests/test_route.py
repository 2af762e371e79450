"""A call that puts another tool's identifier where no identifier goes is decoded again without
its tool (chat/route.py): which calls are sent back, where the stream stops, and a real decode
that goes back, on a tiny model taught to make that mistake."""

from __future__ import annotations

from llm_mcp.chat import ChatFormat, ToolCall
from llm_mcp.chat.stated import Stated
from llm_mcp.chat.route import (Redo, copied, enum_options, id_shapes, invented, misrouted, repeated, stranded, unhoused,
                               unshaped)
from llm_mcp.chat.toolcalls import CallEvent


def _tool(name: str, **params: dict) -> dict:
    return {"name": name, "description": name.replace("_", " "),
            "parameters": {"type": "object", "properties": params, "required": list(params)[:1]}}


ORDERS = _tool("cancel_order", order_id={"type": "string", "description": "Order number, like QX-20931"},
               reason={"type": "string", "description": "Why it is cancelled"})
STORES = _tool("find_store", city={"type": "string", "description": "City to search in"},
               radius_km={"type": "integer", "description": "How far to look"})
QUOTES = _tool("get_quote", symbol={"type": "string", "description": "Ticker, like AAPL"})
TOOLS = [ORDERS, STORES, QUOTES]
ASKED = [{"role": "user", "content": "cancel QX-20931 please, it was for the Paris store"}]


def test_a_call_carrying_another_tools_identifier_is_sent_back():
    shapes = id_shapes(TOOLS)
    # an identifier's shape has letters and digits: the all-letter ticker example is none
    assert shapes == {"cancel_order": {"order_id": "a9"}, "find_store": {}, "get_quote": {}}
    stated = Stated(ASKED)
    assert misrouted(ToolCall("find_store", {"city": "QX-20931"}), shapes, stated)
    assert misrouted(ToolCall("get_quote", {"symbol": "qx20931"}), shapes, stated)
    assert not misrouted(ToolCall("find_store", {"city": "Paris"}), shapes, stated)
    assert not misrouted(ToolCall("find_store", {"city": "QX-55555"}), shapes, stated)  # not stated
    # the tool that takes it, even in another parameter; a tool the tools do not have
    assert not misrouted(ToolCall("cancel_order", {"order_id": "QX-20931", "reason": "QX-20931"}), shapes, stated)
    assert not misrouted(ToolCall("book_taxi", {"to": "QX-20931"}), shapes, stated)


def test_a_phrase_where_an_identifier_goes_is_sent_back_where_none_is_stated():
    shapes = id_shapes(TOOLS)
    pickup = Stated([{"role": "user", "content": "Pick up from Calle Mayor 5, Madrid, on 14 July"}])
    assert unshaped(ToolCall("cancel_order", {"order_id": "calle mayor 5, Madrid"}), shapes, pickup)
    assert unshaped(ToolCall("cancel_order", {"order_id": "20kg Rotterdam"}), shapes, pickup)
    # an identifier of the shape, spaced or not; one word (the user's own id in another form);
    # words without digits (asked about instead, chat/ground.py); another parameter; another tool
    for order_id in ("QX 20931", "QX-20931", "AB123CD", "my parcel"):
        assert not unshaped(ToolCall("cancel_order", {"order_id": order_id}), shapes, pickup)
    assert not unshaped(ToolCall("cancel_order", {"order_id": "QX-1", "reason": "calle mayor 5"}), shapes, pickup)
    assert not unshaped(ToolCall("find_store", {"city": "calle mayor 5, Madrid"}), shapes, pickup)
    # the conversation states an identifier of that shape: the tool is right, the value miscopied
    stated = Stated([{"role": "user", "content": "cancel QX-20931, it was for Calle Mayor 5"}])
    assert not unshaped(ToolCall("cancel_order", {"order_id": "calle mayor 5"}), shapes, stated)


REDIRECT = _tool("redirect", tracking_number={"type": "string", "description": "Tracking number, like PX-118840"},
                 new_address={"type": "string", "description": "Full new delivery address"})
INSTRUCT = _tool("instruct", tracking_number={"type": "string", "description": "Tracking number, like PX-118840"},
                 instructions={"type": "array", "items": {"type": "string", "enum": [
                     "leave_at_door", "call_on_arrival", "leave_with_neighbor"]}})


def test_words_where_an_address_goes_are_sent_back_where_another_tools_option_is_said():
    options = enum_options([REDIRECT, INSTRUCT])
    assert options == {"redirect": set(), "instruct": {"leave_at_door", "call_on_arrival", "leave_with_neighbor"}}

    def sent_back(text: str, address: str) -> bool:
        call = ToolCall("redirect", {"tracking_number": "PX-205566", "new_address": address})
        return unhoused(call, REDIRECT["parameters"], options, Stated([{"role": "user", "content": text}]))

    assert sent_back("if I'm out, give PX-205566 to the neighbours", "The neighbours")
    assert sent_back("PX-205566: please call me when the driver arrives", "I'm not able to call you")
    assert sent_back("PX-205566: leave it at the door and call me when you arrive", "2023-03-29")  # a day
    # an address with a number, a stated street address, no other tool's option said: it stands
    assert not sent_back("PX-205566 to the neighbours at 5 Elm Row, Bath", "Elm Row, Bath")
    assert not sent_back("PX-205566 to 5 Elm Row, Bath", "5 Elm Row, Bath")
    assert not sent_back("send PX-205566 to my office instead", "my office")


BOOKING = {"name": "book_table", "description": "Book a table",
           "parameters": {"type": "object", "required": ["restaurant", "date"], "properties": {
               "restaurant": {"type": "string", "description": "Restaurant name"},
               "date": {"type": "string", "description": "Day, YYYY-MM-DD"},
               "seating": {"type": "array", "items": {"type": "string", "enum": ["window", "terrace", "quiet_corner"]}}}}}
VAN = {"name": "rent_van", "description": "Rent a van",
       "parameters": {"type": "object", "required": ["pickup_address", "load_kg"], "properties": {
           "pickup_address": {"type": "string", "description": "Street address to collect the van from"},
           "load_kg": {"type": "number", "description": "Weight of the load"}}}}
BRANCHES = {"name": "find_branch", "description": "Find branches",
            "parameters": {"type": "object", "required": ["city"], "properties": {
                "city": {"type": "string", "description": "City"},
                "max_results": {"type": "integer", "description": "How many to list"},
                "note": {"type": "string", "description": "Anything to pass on"},
                "services": {"type": "array", "items": {"type": "string", "enum": ["vans", "trucks", "storage"]}}}}}
SCHEMAS = {t["name"]: t["parameters"] for t in (BOOKING, VAN, BRANCHES)}


def test_a_call_that_makes_a_value_up_while_the_requests_own_go_unused_is_sent_back():
    def both(text: str, name: str, arguments: dict) -> tuple[bool, bool]:
        stated, call = Stated([{"role": "user", "content": text}]), ToolCall(name, arguments)
        return invented(call, SCHEMAS[name], SCHEMAS, stated), stranded(call, SCHEMAS, stated)

    # a day another tool requires, options none of which the request names
    assert both("Luigi's for 2027-03-14 please", "find_branch", {"city": "Luigi's", "services": ["vans"]}) == (True, True)
    # a street address another tool requires, a day where an address goes (the call's own: no other needs it)
    assert both("a van from 12 Mill Lane, Leeds", "book_table", {"restaurant": "Mill", "date": "2027-01-01"}) \
        == (False, True)
    assert both("a van from 12 Mill Lane, Leeds", "rent_van", {"pickup_address": "2027-01-01", "load_kg": 5}) \
        == (True, False)
    # a weight counted as results: the number is said only with another parameter's unit
    assert both("I have a 300 kilo load to move in York", "find_branch", {"city": "York", "max_results": 300}) \
        == (True, True)
    assert both("the 3 nearest branches in York, for a 300 kilo load", "find_branch",
                {"city": "York", "max_results": 3}) == (False, True)
    # options named, loosely; free text that holds the day; the tool that takes the value
    assert both("vans in York on 2027-03-14", "find_branch", {"city": "York", "services": ["vans"]}) == (False, True)
    assert both("York, 2027-03-14", "find_branch", {"city": "York", "note": "on 2027-03-14"})[1] is False
    assert both("a table at Luigi's on 2027-03-14, by the window", "book_table",
                {"restaurant": "Luigi's", "date": "2027-03-14", "seating": ["window"]}) == (False, False)


def test_the_grounder_sends_back_such_a_call_and_keeps_a_first_call_of_two_intents():
    from llm_mcp.chat.ground import grounder

    tools = [BOOKING, VAN, BRANCHES]

    def answer(text: str, name: str, arguments: dict):
        return grounder(tools, [{"role": "user", "content": text}], redo=True)(ToolCall(name, arguments))

    assert isinstance(answer("Luigi's for 2027-03-14 please", "find_branch",
                             {"city": "Luigi's", "services": ["storage"]}), Redo)
    # a day from nowhere (a street number is no day), an address the call's tool cannot take
    assert isinstance(answer("a van from 12 Mill Lane, Leeds", "book_table",
                             {"restaurant": "Mill Lane", "date": "2027-01-01"}), Redo)
    # nothing made up: the day is left to the next call
    kept = answer("branches in York, and a table at Luigi's on 2027-03-14", "find_branch", {"city": "York"})
    assert kept == ToolCall("find_branch", {"city": "York"})
    # nothing stranded: a day from nowhere is asked about, as before
    assert answer("book Luigi's please", "book_table", {"restaurant": "Luigi's", "date": "2027-01-01"}) \
        == "To call book_table I need the date: what is it?"
    # without a decoder that can go back, the call stands or is asked about
    plain = grounder(tools, [{"role": "user", "content": "Rome, 2027-03-14"}])
    assert plain(ToolCall("find_branch", {"city": "Rome", "services": ["storage"]})).name == "find_branch"


def test_a_call_that_repeats_one_of_the_reply_is_sent_back_unless_the_request_says_twice():
    quote = ToolCall("get_quote", {"symbol": "MSFT"})
    made = [ToolCall("find_store", {"city": "Leeds"}), quote]
    said = Stated([{"role": "user", "content": "price of MSFT, and also find a store in Leeds"}])
    assert repeated(ToolCall("get_quote", {"symbol": "msft"}), made, said)  # values as eval compares them
    assert repeated(quote, made, said) and repeated(ToolCall("find_store", {"city": "Leeds"}), made, said)
    assert not repeated(ToolCall("find_store", {"city": "York"}), made, said)
    for text in ("price of MSFT, and again in an hour", "two stores in Leeds", "check both"):
        assert not repeated(quote, made, Stated([{"role": "user", "content": text}])), text


def test_a_call_that_repeats_one_but_for_text_another_call_holds_is_a_copy():
    event = ToolCall("create_event", {"title": "Pick up Lucia at airport", "date": "2027-05-03"})
    weather = ToolCall("get_weather", {"location": "Mexico City"})
    said = Stated([{"role": "user", "content": "add 'Pick up Lucia at airport' on 3 May 2027, and the weather "
                                               "in Mexico City there"}])
    assert copied(ToolCall("get_weather", {"location": "Lucia at airport"}), [event, weather], said)
    # said outside the title too, or not held by another call: a second request of its own
    both = Stated([{"role": "user", "content": "add 'Lunch in Paris' on 3 May 2027, and the weather in Rome "
                                               "and in Paris"}])
    lunch = ToolCall("create_event", {"title": "Lunch in Paris", "date": "2027-05-03"})
    rome = ToolCall("get_weather", {"location": "Rome"})
    assert not copied(ToolCall("get_weather", {"location": "Paris"}), [lunch, rome], both)
    assert not copied(ToolCall("get_weather", {"location": "Lima"}), [event, weather], said)
    # no earlier call to its tool: nothing to be a copy of
    assert not copied(ToolCall("get_weather", {"location": "Lucia at airport"}), [event], said)
    # an address held whole by another call, as a city, a number held by another parameter
    moving = Stated([{"role": "user", "content": "PX-390058 should go to Via Nizza 88, 10126 Torino instead. "
                                                 "And lockers in Torino within 3 km?"}])
    made = [ToolCall("redirect_parcel", {"tracking_number": "PX-390058", "new_address": "Via Nizza 88, 10126 Torino"}),
            ToolCall("find_points", {"city": "Torino", "radius_km": 3})]
    assert copied(ToolCall("find_points", {"city": "Via Nizza 88, 10126 Torino", "max_results": 3}), made, moving)


def test_the_grounder_drops_a_copy_where_it_can_go_back():
    from llm_mcp.chat.ground import grounder
    from llm_mcp.chat.more import Dropped

    weather = _tool("get_weather", location={"type": "string", "description": "City"})
    event = _tool("create_event", title={"type": "string", "description": "Title of the event"})
    asked = [{"role": "user", "content": "add 'Pick up Lucia at airport', and the weather in Mexico City"}]
    for redo in (True, False):
        check = grounder([weather, event], asked, redo=redo)
        check(ToolCall("create_event", {"title": "Pick up Lucia at airport"}))
        check(ToolCall("get_weather", {"location": "Mexico City"}))
        copy = check(ToolCall("get_weather", {"location": "Lucia at airport"}))
        assert isinstance(copy, Dropped) if redo else copy.name == "get_weather"  # a reply parsed whole keeps it


def test_a_value_another_call_of_the_reply_holds_strands_nothing():
    made = [ToolCall("rent_van", {"pickup_address": "12 Mill Lane, Leeds", "load_kg": 300})]
    stated = Stated([{"role": "user", "content": "a van from 12 Mill Lane, Leeds for a 300 kilo load, and the "
                                                 "branches in Leeds"}])
    call = ToolCall("find_branch", {"city": "Leeds"})
    assert stranded(call, SCHEMAS, stated) and not stranded(call, SCHEMAS, stated, made)


def test_a_reply_decoded_again_keeps_the_tool_sent_back_out_where_the_kept_text_calls_it(smol_tokenizer):
    import torch

    from llm_mcp.chat.guide import RedoGuide

    fmt = ChatFormat(smol_tokenizer, "hermes")
    kept = '<tool_call>{"name": "get_quote", "arguments": {"symbol": "MSFT"}}</tool_call>\n'
    guide = RedoGuide(fmt.guide(TOOLS, ("get_quote",)), fmt.guide(TOOLS), len(kept))
    logits = torch.zeros(len(smol_tokenizer))
    guide.apply(logits, kept + '<tool_call>{"name": "')
    # the guide without get_quote is not released by the kept call to it: it still holds the name
    assert not guide.first.released
    allowed = {smol_tokenizer.decode([i]) for i in torch.nonzero(logits == 0).flatten().tolist()}
    assert allowed and not any(t and "get_quote".startswith(t) for t in allowed)
    assert any(t and "find_store".startswith(t) for t in allowed)


def test_the_stream_stops_at_a_call_sent_back_and_a_whole_reply_keeps_it(smol_tokenizer):
    fmt = ChatFormat(smol_tokenizer, "hermes")
    reply = ('Sure.\n<tool_call>{"name": "cancel_order", "arguments": {"order_id": "QX-20931"}}</tool_call>\n'
             '<tool_call>{"name": "find_store", "arguments": {"city": "QX-20931"}}</tool_call>')
    at = reply.index('<tool_call>{"name": "find_store"')
    parser = fmt.stream_parser(TOOLS, ASKED, redo_from=0)
    events = [e for k in range(0, len(reply), 7) for e in parser.feed(reply[k:k + 7])]
    assert parser.redo == (at, "find_store")
    assert [e.call.name for e in events if isinstance(e, CallEvent)] == ["cancel_order"]
    assert parser.feed("more") == [] and parser.finish() == []
    # a call before `redo_from` (text the reply was forced to begin with), or a reply parsed whole
    later = fmt.stream_parser(TOOLS, ASKED, redo_from=at + 1)
    later.feed(reply)
    later.finish()
    assert later.redo is None and [c.name for c in later.result().calls] == ["cancel_order", "find_store"]
    assert [c.name for c in fmt.parse(reply, TOOLS, ASKED).calls] == ["cancel_order", "find_store"]


def test_a_reply_goes_back_and_its_next_choice_of_tool_takes_the_place(tiny_llama, tmp_path):
    from conftest import served, taught
    from transformers import AutoTokenizer

    from llm_mcp.serve.engine import Request
    from llm_mcp.serve.generate import generate_reply

    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama), "hermes")
    messages = [{"role": "user", "content": "cancel QX-20931"}]
    tools = [STORES, ORDERS]
    model = taught(tiny_llama, fmt, messages, tools, [[{"name": "find_store", "arguments": {"city": "QX-20931"}}]], steps=80)
    plain = generate_reply(model, fmt, messages, tools, max_new_tokens=40, grounded=False)
    assert [c.name for c in plain.parsed.calls] == ["find_store"] and plain.redone == 0  # the mistake, learnt

    events: list = []
    again = generate_reply(model, fmt, messages, tools, max_new_tokens=40, on_event=events.append)
    assert again.redone == 1
    assert again.raw.startswith('<tool_call>{"name": "cancel_order"')  # the only other tool, by the guide
    assert "find_store" not in again.raw
    assert not any(isinstance(e, CallEvent) and e.call.name == "find_store" for e in events)
    assert again.completion_tokens <= 40

    # the server's engine: the row goes back, joins its batch again, and streams no call it took back
    with served(model, fmt, tmp_path / "taught") as engine:
        streamed: list = []
        result = engine.generate(Request(messages, tools, max_new_tokens=40, on_event=streamed.append))
        assert result.raw == again.raw and result.completion_tokens == again.completion_tokens
        assert not any(isinstance(e, CallEvent) and e.call.name == "find_store" for e in streamed)
