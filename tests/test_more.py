"""One more call asked for where a reply of calls ends, one more argument where a call closes
(chat/more.py): which are kept, where the stream drops one, and real decodes on a tiny model
taught to stop one call, or one argument, short."""

from __future__ import annotations

from llm_mcp.chat import ChatFormat, ToolCall
from llm_mcp.chat.stated import Stated
from llm_mcp.chat.ground import grounder
from llm_mcp.chat.more import another_id, another_option, fits, kept, takers, wanted
from llm_mcp.chat.toolcalls import CallEvent


def _tool(name: str, required: list[str], **params: dict) -> dict:
    return {"name": name, "description": name.replace("_", " "),
            "parameters": {"type": "object", "properties": params, "required": required}}


QUOTES = _tool("get_quote", ["symbol"], symbol={"type": "string", "description": "Ticker, like AAPL"})
PARKING = _tool("book_parking", ["city", "hours"], city={"type": "string", "description": "City"},
                hours={"type": "integer", "description": "How long"},
                covered={"type": "boolean", "description": "Under a roof"},
                note={"type": "string", "description": "For the attendant"})
FX = _tool("exchange", ["amount", "sell_currency", "buy_currency"], amount={"type": "number", "description": "Sum"},
           sell_currency={"type": "string", "description": "ISO code"},
           buy_currency={"type": "string", "description": "ISO code"})
LOCKERS = _tool("find_lockers", ["city"], city={"type": "string", "description": "Town"},
                radius_km={"type": "integer", "description": "How far"},
                open_late={"type": "boolean", "description": "After 8pm too"},
                max_results={"type": "integer", "minimum": 1, "maximum": 20, "description": "How many"})
TOOLS = [QUOTES, PARKING, FX, LOCKERS]


def _fits(call: ToolCall, made: list[ToolCall], said: str) -> bool:
    schema = next(t["parameters"] for t in TOOLS if t["name"] == call.name)
    return fits(call, schema, made, Stated([{"role": "user", "content": said}]))


def test_a_call_asked_for_is_kept_only_if_it_asks_for_something_new():
    said = "quotes for ORCL, IBM and SAP please"
    made = [ToolCall("get_quote", {"symbol": "ORCL"}), ToolCall("get_quote", {"symbol": "IBM"})]
    assert _fits(ToolCall("get_quote", {"symbol": "SAP"}), made, said)
    assert not _fits(ToolCall("get_quote", {"symbol": "IBM"}), made, said)  # made already
    assert not _fits(ToolCall("get_quote", {"symbol": "HPQ"}), made, said)  # said nowhere

    # a new required value of a kind with a form of its own (a number), the others repeated: kept
    said = "park me in Lyon for 3 hours, and in Nice for 5"
    made = [ToolCall("book_parking", {"city": "Lyon", "hours": 3})]
    assert _fits(ToolCall("book_parking", {"city": "Nice", "hours": 5}), made, said)
    # new in free words alone (a city): left to the model, any phrase could fill it
    assert not _fits(ToolCall("book_parking", {"city": "Nice", "hours": 3}), made, said)
    # only an optional value is new: the required ones are all taken
    assert not _fits(ToolCall("book_parking", {"city": "Lyon", "hours": 3, "note": "hours"}), made, said)
    # a part of a value another call holds is not new
    assert not _fits(ToolCall("book_parking", {"city": "Part-Dieu", "hours": 3}),
                     [ToolCall("book_parking", {"city": "Lyon Part-Dieu", "hours": 3})], "Lyon Part-Dieu, 3 hours")
    # a number the conversation does not say
    assert not _fits(ToolCall("book_parking", {"city": "Nice", "hours": 2}), made, said)
    # a ticker as such: a phrase said in the message is none
    made = [ToolCall("get_quote", {"symbol": "ORCL"})]
    assert not _fits(ToolCall("get_quote", {"symbol": "top 5 only"}), made, "ORCL quote, top 5 only")

    # a number held as digits inside another call's words ("10am" for "10:00") is no new one
    said = "lockers near 14 Elm Road"
    assert not takers(TOOLS, [ToolCall("find_lockers", {"city": "14 Elm Road"})], Stated([{"role": "user", "content": said}]))
    assert takers(TOOLS, [ToolCall("find_lockers", {"city": "Elm Road"})], Stated([{"role": "user", "content": said}])) \
        == {"book_parking", "exchange"}  # 14 is held by no call: their required numbers could take it

    # a value said only inside free text a call holds (the text to translate) is that request's
    said = "translate 'a table for two by the window' to Portuguese"
    made = [ToolCall("translate", {"text": "a table for two by the window", "language": "Portuguese"})]
    assert not takers(TOOLS, made, Stated([{"role": "user", "content": said}]))
    assert not _fits(ToolCall("book_parking", {"city": "Lisbon", "hours": 2}), made, said + " and park in Lisbon")
    assert _fits(ToolCall("book_parking", {"city": "Lisbon", "hours": 2}), made, said + ", park 2 hours in Lisbon")

    # another tool's option is no free value ("Celsius" where a language goes, after the weather)
    said = "how warm is it in Lima? Celsius please, and say thanks in Spanish"
    weather = ToolCall("weather", {"city": "Lima", "unit": "celsius"})
    translate = {"type": "object", "required": ["text", "language"], "properties": {
        "text": {"type": "string"}, "language": {"type": "string", "description": "Target language"}}}
    for value, kept in [("Celsius", False), ("Spanish", True)]:
        call = ToolCall("translate", {"text": "thanks", "language": value})
        assert fits(call, translate, [weather], Stated([{"role": "user", "content": said}]),
                    others={"celsius", "fahrenheit"}) is kept

    # readings count as said: a currency's code for its name, a number in words
    said = "change forty pounds into yen, and forty into euros"
    made = [ToolCall("exchange", {"amount": 40, "sell_currency": "GBP", "buy_currency": "JPY"})]
    assert _fits(ToolCall("exchange", {"amount": 40, "sell_currency": "GBP", "buy_currency": "EUR"}), made, said)
    assert not _fits(ToolCall("exchange", {"amount": 40, "sell_currency": "GBP", "buy_currency": "CHF"}), made, said)


def test_a_tool_the_request_names_that_no_call_is_to_is_something_new():
    from llm_mcp.chat.more import names

    def named(said: str) -> set[str]:
        return names(TOOLS, Stated([{"role": "user", "content": said}]))

    # a word of a tool's name or of its yes/no's name that no other tool's has; not a verb
    assert named("park in Lyon for 3 hours, then find me lockers there") == {"book_parking", "find_lockers"}
    assert named("anything open late near me?") == {"find_lockers"}
    assert named("can you book something or find something?") == set()
    assert named("where can I park this week") == {"book_parking"}  # alike up to an ending
    shops = _tool("find_shops", ["city"], city={"type": "string"}, open_weekends={"type": "boolean"})
    assert names([shops, QUOTES], Stated([{"role": "user", "content": "any open at weekends?"}])) == {"find_shops"}
    assert names([shops, QUOTES], Stated([{"role": "user", "content": "I moved last week"}])) == set()  # no weekend
    timer = _tool("start_timer", ["minutes"], minutes={"type": "integer"})
    assert names([timer, QUOTES], Stated([{"role": "user", "content": "same time tomorrow"}])) == set()  # no timer
    said = "park in Lyon for 3 hours, and show me lockers in Lyon too"
    stated = Stated([{"role": "user", "content": said}])
    made = [ToolCall("book_parking", {"city": "Lyon", "hours": 3})]
    assert takers(TOOLS, made, stated, named(said)) == {"find_lockers"}  # named, no call is to them
    locker = ToolCall("find_lockers", {"city": "Lyon"})
    assert fits(locker, LOCKERS["parameters"], made, stated, named=True)
    assert not fits(locker, LOCKERS["parameters"], made, stated)  # not named: a city alone is free words
    assert not fits(ToolCall("find_lockers", {"city": "Paris"}), LOCKERS["parameters"], made, stated, named=True)
    assert not fits(locker, LOCKERS["parameters"], [*made, locker], stated, named=True)  # a call is to them
    assert not takers(TOOLS, [*made, locker], stated, named(said))


def test_an_asked_call_with_a_list_of_words_said_nowhere_or_of_another_tools_options_is_dropped():
    """A refill asked for after a message to the care team, its tool named by "non-urgent"
    (`urgent` is its yes/no): its medications must be said, and not the message's topic option."""
    refill = _tool("request_refill", ["patient_id", "medications"], patient_id={"type": "string"},
                   medications={"type": "array", "items": {"type": "string"}}, urgent={"type": "boolean"})
    topics = {"referral", "other", "test results"}
    said = "send a non-urgent message for PT-34481, topic referral: the physio never called back. Also refill metformin"
    stated = Stated([{"role": "user", "content": said}])
    made = [ToolCall("message_care_team", {"patient_id": "PT-34481", "topic": "referral",
                                           "message": "the physio never called back"})]
    asked = {"patient_id": "PT-34481", "urgent": True}
    schema = refill["parameters"]
    for medications in (["referral", "other"], ["aspirin"]):  # another tool's options; said nowhere
        call = ToolCall("request_refill", {**asked, "medications": medications})
        assert not fits(call, schema, made, stated, named=True, others=topics)
    assert fits(ToolCall("request_refill", {**asked, "medications": ["metformin"]}), schema, made, stated,
                named=True, others=topics)


def test_an_asked_call_with_a_value_that_misses_its_pattern_is_dropped():
    """A booking's reference is no patient id: the schema holds patient ids to PT- and five digits."""
    listing = _tool("list_appointments", ["patient_id"], patient_id={"type": "string", "pattern": r"^PT-\d{5}$"})
    said = "cancel booking BK-2234 on 10 february 2027, and list the appointments of pt-88211"
    stated = Stated([{"role": "user", "content": said}])
    made = [ToolCall("change_appointment", {"booking_ref": "BK-2234", "action": "cancel"})]
    schema = listing["parameters"]
    assert not fits(ToolCall("list_appointments", {"patient_id": "BK-2234"}), schema, made, stated, named=True)
    assert fits(ToolCall("list_appointments", {"patient_id": "PT-88211"}), schema, made, stated, named=True)
    assert fits(ToolCall("list_appointments", {"patient_id": "pt-88211"}), schema, made, stated, named=True)


def test_an_item_of_a_list_of_names_that_no_call_holds_is_something_new():
    from llm_mcp.chat import mentions

    assert [m.readings for m in mentions.lists("lockers in Berlin, Vienna and Prague, or in new york or boston")] \
        == [("Berlin", "Vienna", "Prague")]
    assert mentions.lists("Is 'Danke' German or Dutch?") == []  # alternatives, not requests
    assert [m.readings for m in mentions.lists("lockers in lyon, nice and paris")] == [("lyon", "nice", "paris")]
    said = "find lockers in Berlin, Vienna and Prague"
    stated = Stated([{"role": "user", "content": said}])
    made = [ToolCall("find_lockers", {"city": "Berlin"}), ToolCall("find_lockers", {"city": "Prague"})]
    assert takers(TOOLS, made, stated) == {"find_lockers"}  # the tool of the calls that hold the list's items
    assert fits(ToolCall("find_lockers", {"city": "Vienna"}), LOCKERS["parameters"], made, stated)
    assert not fits(ToolCall("find_lockers", {"city": "Paris"}), LOCKERS["parameters"], made, stated)
    done = [*made, ToolCall("find_lockers", {"city": "Vienna"})]
    assert not takers(TOOLS, done, stated)
    # a list no call holds an item of is no list of this reply's
    assert not takers(TOOLS, [ToolCall("book_parking", {"city": "Lyon", "hours": 2})],
                      Stated([{"role": "user", "content": "park in Lyon for 2 hours, with Ann and Bob"}]))


def test_a_journey_the_request_states_that_no_call_holds_is_something_new():
    ship = _tool("quote", ["origin", "destination", "weight_kg"], origin={"type": "string", "description": "From"},
                 destination={"type": "string", "description": "To"},
                 weight_kg={"type": "number", "description": "Weight"})
    said = "quote: 20kg Rotterdam -> Antwerp, overnight. and 20kg Rotterdam -> Brussels"
    stated = Stated([{"role": "user", "content": said}])
    first = ToolCall("quote", {"origin": "Rotterdam", "destination": "Antwerp", "weight_kg": 20})
    assert takers([*TOOLS, ship], [first], stated) == {"quote"}
    assert fits(ToolCall("quote", {"origin": "Rotterdam", "destination": "Brussels", "weight_kg": 20}),
                ship["parameters"], [first], stated)
    assert not fits(ToolCall("quote", {"origin": "Antwerp", "destination": "Rotterdam", "weight_kg": 20}),
                    ship["parameters"], [first], stated)  # no journey said
    both = [first, ToolCall("quote", {"origin": "Rotterdam", "destination": "Brussels", "weight_kg": 20})]
    assert not takers([*TOOLS, ship], both, stated)


def test_an_option_the_request_names_that_no_call_holds_is_something_new():
    quote = _tool("ship_quote", ["origin", "kg"], origin={"type": "string", "description": "From"},
                  kg={"type": "number", "description": "Weight"},
                  speed={"type": "string", "enum": ["standard", "express", "overnight"], "description": "Level"})
    handover = _tool("handover", ["parcel_id"],
                     parcel_id={"type": "string", "description": "Parcel id, like PX-482913"},
                     steps={"type": "array", "items": {"type": "string", "enum": ["ring_bell", "call_on_arrival"]}})
    tools = [quote, handover]

    def new(call: ToolCall, made: list[ToolCall], said: str) -> bool:
        schema = next(t["parameters"] for t in tools if t["name"] == call.name)
        return fits(call, schema, made, Stated([{"role": "user", "content": said}]))

    def asks(made: list[ToolCall], said: str) -> bool:
        return bool(takers(tools, made, Stated([{"role": "user", "content": said}])))

    said = "4 kg from Leeds, standard vs express?"
    made = [ToolCall("ship_quote", {"origin": "Leeds", "kg": 4, "speed": "express"})]
    assert asks(made, said)  # "standard" is named, no call holds it
    assert new(ToolCall("ship_quote", {"origin": "Leeds", "kg": 4, "speed": "standard"}), made, said)
    assert not new(ToolCall("ship_quote", {"origin": "Leeds", "kg": 4, "speed": "overnight"}), made, said)  # unnamed
    assert not new(ToolCall("ship_quote", {"origin": "standard", "kg": 4, "speed": "standard"}), made, said)  # a place?
    both = [*made, ToolCall("ship_quote", {"origin": "Leeds", "kg": 4, "speed": "standard"})]
    assert not asks(both, said)
    # an array's options, named in their own words; the call's required values must still be said
    said = "send PX-550913 to my office, and the driver should call on arrival"
    made = [ToolCall("handover", {"parcel_id": "PX-550913", "steps": ["ring_bell"]})]
    assert asks(made, said)
    assert new(ToolCall("handover", {"parcel_id": "PX-550913", "steps": ["call_on_arrival"]}), made, said)
    assert not new(ToolCall("handover", {"parcel_id": "PX-550914", "steps": ["call_on_arrival"]}), made, said)
    # an identifier not of its example's shape is none, though said ("my office" is no parcel id)
    assert not new(ToolCall("handover", {"parcel_id": "my office", "steps": ["call_on_arrival"]}), made, said)
    assert not asks([ToolCall("handover", {"parcel_id": "PX-550913", "steps": ["call_on_arrival"]})], said)
    # a list's options named loosely ("ring the bell") after a call that holds the id: the
    # tool with that list is the one to ask; its call is new for the options each named so
    track = _tool("track", ["parcel_id"], parcel_id={"type": "string", "description": "Parcel id, like PX-482913"})
    tools.append(track)
    said = "track PX-550913, and the driver should ring the bell"
    made = [ToolCall("track", {"parcel_id": "PX-550913"})]
    assert takers(tools, made, Stated([{"role": "user", "content": said}])) == {"handover"}
    assert new(ToolCall("handover", {"parcel_id": "PX-550913", "steps": ["ring_bell"]}), made, said)
    assert not new(ToolCall("handover", {"parcel_id": "PX-550913", "steps": ["ring_bell", "call_on_arrival"]}),
                   made, said)  # "call on arrival" is said nowhere
    assert not asks(made, "track PX-550913, and the driver should not ring the bell")


def test_an_asked_call_that_copies_its_tools_identifier_takes_the_one_no_call_holds():
    """ "same instructions for both PX-120987 and PX-120988" answered for PX-120988, then asked
    again, writes PX-120988 again: it becomes PX-120987, the one stated that no call holds."""
    instruct = _tool("instruct", ["tracking_number", "note"],
                     tracking_number={"type": "string", "description": "Tracking number, like PX-482913"},
                     note={"type": "string", "description": "What to tell the driver"})
    schema = instruct["parameters"]
    first = ToolCall("instruct", {"tracking_number": "PX-120988", "note": "leave at door"})
    again = ToolCall("instruct", {"tracking_number": "PX-120988", "note": "no knocking"})
    said = Stated([{"role": "user", "content": "same for both PX-120987 and PX-120988: leave at door, no knocking"}])
    assert another_id(again, schema, [first], said).arguments["tracking_number"] == "PX-120987"
    assert another_id(again, schema, [], said) == again  # no call holds it: the model's own
    # another tool's call holding it, or two stated that no call holds: it stands
    tracked = ToolCall("track", {"tracking_number": "PX-120988"})
    assert another_id(again, schema, [tracked], said) == again
    said = Stated([{"role": "user", "content": "PX-120987, PX-120988 and PX-120989: leave at door"}])
    assert another_id(again, schema, [first], said) == again
    # through the grounder, only for a call asked for
    check = grounder([instruct], [{"role": "user", "content": "same for both PX-120987 and PX-120988: leave at "
                                                              "door, no knocking"}])
    assert check(first).arguments["tracking_number"] == "PX-120988"
    assert check(again, asked=True).arguments["tracking_number"] == "PX-120987"


def test_an_asked_call_that_repeats_one_takes_the_option_named_that_no_call_holds():
    """ "standard vs express" answered with express, then asked again, writes express again: the
    repeat becomes the standard quote. An optional enum left out is asked for where the request
    names one of its options that no value holds; a greeting names no time of day."""
    quote = _tool("ship_quote", ["origin", "kg"], origin={"type": "string", "description": "From"},
                  kg={"type": "number", "description": "Weight"},
                  speed={"type": "string", "enum": ["standard", "express", "overnight"], "description": "Level"},
                  slot={"type": "string", "enum": ["morning", "evening"], "description": "When"})
    schema = quote["parameters"]
    express = ToolCall("ship_quote", {"origin": "Leeds", "kg": 4, "speed": "express"})

    def stated(text: str) -> Stated:
        return Stated([{"role": "user", "content": text}])

    said = stated("4 kg from Leeds, standard vs express?")
    assert another_option(express, schema, [express], said).arguments["speed"] == "standard"
    assert another_option(express, schema, [], said) == express  # no repeat: the model's own
    other = ToolCall("ship_quote", {"origin": "Leeds", "kg": 5, "speed": "express"})
    assert another_option(other, schema, [express], said) == other  # new in another value
    assert another_option(express, schema, [express], stated("4 kg from Leeds, express")) == express
    # the first call leaves the level out: it is asked for, and the repeats take the others
    bare = {"origin": "Madrid", "kg": 6}
    said = stated("6 kg from Madrid: economy, standard and express")
    assert wanted(schema, bare, [], said)
    assert not wanted(schema, {**bare, "speed": "express"}, [], stated("6 kg from Madrid, express"))
    assert not wanted(schema, bare, [], stated("6 kg from Madrid please"))
    first = ToolCall("ship_quote", {**bare, "speed": "standard"})
    assert another_option(first, schema, [first], said).arguments["speed"] == "express"
    assert not wanted(schema, bare, [], stated("Good morning! 6 kg from Madrid"))
    assert wanted(schema, bare, [], stated("Good morning! 6 kg from Madrid, in the morning"))


def test_the_stream_drops_a_call_asked_for_that_asks_for_nothing_new(smol_tokenizer):
    fmt = ChatFormat(smol_tokenizer, "hermes")
    asked = [{"role": "user", "content": "quote for ORCL and IBM"}]
    first = '<tool_call>{"name": "get_quote", "arguments": {"symbol": "ORCL"}}</tool_call>'
    again = '\n<tool_call>{"name": "get_quote", "arguments": {"symbol": "ORCL"}}</tool_call>'
    other = '\n<tool_call>{"name": "get_quote", "arguments": {"symbol": "IBM"}}</tool_call>'

    parser = fmt.stream_parser(TOOLS, asked)
    parser.feed(first)
    assert parser.only_calls
    parser.asked_from = len(first)
    events = [e for k in range(0, len(again), 5) for e in parser.feed(again[k:k + 5])]
    assert parser.dropped == len(first) + 1  # where its block began
    assert not any(isinstance(e, CallEvent) for e in events)
    assert parser.feed(other) == [] and not parser.only_calls
    parser.finish()
    assert [c.arguments["symbol"] for c in parser.result().calls] == ["ORCL"]

    kept = fmt.stream_parser(TOOLS, asked)
    kept.feed(first)
    kept.asked_from = len(first)
    events = kept.feed(other)
    assert [e.call.arguments["symbol"] for e in events if isinstance(e, CallEvent)] == ["IBM"]
    assert kept.added == 1 and kept.dropped is None and kept.only_calls

    # a block asked for that the reply never closes (out of tokens) is dropped too
    cut = fmt.stream_parser(TOOLS, asked)
    cut.feed(first + other[:30])
    cut.asked_from = len(first)
    assert cut.drop_open() and cut.dropped == len(first) + 1
    # the model's own blocks are never dropped
    own = fmt.stream_parser(TOOLS, asked)
    own.feed(first + other[:30])
    assert not own.drop_open()


def test_a_model_that_stops_one_call_short_is_asked_for_one_more(tiny_llama, tmp_path):
    from conftest import served, taught
    from transformers import AutoTokenizer

    from llm_mcp.serve.engine import Request
    from llm_mcp.serve.generate import generate_reply

    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama), "hermes")
    messages = [{"role": "user", "content": "quotes for ORCL and IBM"}]
    tools = [QUOTES, PARKING]
    orcl = {"name": "get_quote", "arguments": {"symbol": "ORCL"}}
    ibm = {"name": "get_quote", "arguments": {"symbol": "IBM"}}
    # two answers in three stop after ORCL: greedy stops there, but it knows what a second call holds
    model = taught(tiny_llama, fmt, messages, tools, [[orcl], [orcl, ibm], [orcl]], steps=300)
    plain = generate_reply(model, fmt, messages, tools, max_new_tokens=100, grounded=False)
    assert [c.arguments["symbol"] for c in plain.parsed.calls] == ["ORCL"] and plain.added == 0  # learnt

    events: list = []
    more = generate_reply(model, fmt, messages, tools, max_new_tokens=100, on_event=events.append)
    assert [c.arguments["symbol"] for c in more.parsed.calls] == ["ORCL", "IBM"] and more.added == 1
    assert [e.call.arguments["symbol"] for e in events if isinstance(e, CallEvent)] == ["ORCL", "IBM"]
    # no third is asked for: every ticker said is taken
    assert more.raw.endswith("</tool_call>") and more.raw.count("<tool_call>") == 2
    assert fmt.parse(more.raw, tools, messages).calls == more.parsed.calls

    # the server's engine makes the same reply
    with served(model, fmt, tmp_path / "taught") as engine:
        streamed: list = []
        result = engine.generate(Request(messages, tools, max_new_tokens=100, on_event=streamed.append))
        assert result.raw == more.raw and result.completion_tokens == more.completion_tokens
        assert [e.call.arguments["symbol"] for e in streamed if isinstance(e, CallEvent)] == ["ORCL", "IBM"]


def test_a_call_asked_for_that_repeats_one_is_dropped_and_the_reply_stands(tiny_llama):
    from conftest import taught
    from transformers import AutoTokenizer

    from llm_mcp.serve.decode import Decoder, Row, decode_all
    from llm_mcp.serve.generate import generate_reply

    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama), "hermes")
    messages = [{"role": "user", "content": "quote for ORCL, IBM later"}]
    tools = [QUOTES, PARKING]
    model = taught(tiny_llama, fmt, messages, tools, [[{"name": "get_quote", "arguments": {"symbol": "ORCL"}}]],
                    steps=200)
    plain = generate_reply(model, fmt, messages, tools, max_new_tokens=100, grounded=False)
    assert [c.arguments["symbol"] for c in plain.parsed.calls] == ["ORCL"]
    events: list = []
    row = Row(fmt.prompt_ids(messages, tools), fmt, max_new_tokens=100, guide=fmt.guide(tools),
              on_event=events.append, tools=tools, messages=messages)
    decode_all(Decoder(lambda: model), [row], batch=1)
    assert row.asked == 1 and row.stream.dropped is not None  # asked for (IBM is untaken), dropped
    more = row.stream.finish()
    assert more.calls == plain.parsed.calls and row.finish_reason == "stop"
    assert row.stream.text().rstrip() == plain.raw.rstrip() and row.tokens <= plain.completion_tokens
    assert sum(isinstance(e, CallEvent) for e in events) == 1


def test_a_call_asked_for_and_dropped_is_asked_for_again_off_its_tool(tiny_llama):
    """Taught to answer with the ORCL quote (twice as often) or the lockers call, the model stops
    after the quote; asked for one more, held to the tools that could take what is left (IBM, the
    lockers named), it repeats the quote. The decoder goes back and asks again, the guide holding
    the call off the quote tool, and the model's call to the lockers is kept."""
    from conftest import taught
    from transformers import AutoTokenizer

    from llm_mcp.serve.decode import Decoder, Row, decode_all
    from llm_mcp.serve.generate import generate_reply

    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama), "hermes")
    messages = [{"role": "user", "content": "quote for ORCL and IBM, and lockers in Leeds"}]
    tools = [QUOTES, LOCKERS]
    orcl = {"name": "get_quote", "arguments": {"symbol": "ORCL"}}
    model = taught(tiny_llama, fmt, messages, tools,
                   [[orcl], [orcl], [{"name": "find_lockers", "arguments": {"city": "Leeds"}}]], steps=240)
    plain = generate_reply(model, fmt, messages, tools, max_new_tokens=120, grounded=False)
    assert [c.name for c in plain.parsed.calls] == ["get_quote"]
    row = Row(fmt.prompt_ids(messages, tools), fmt, max_new_tokens=120, guide=fmt.guide(tools),
              tools=tools, messages=messages)
    decode_all(Decoder(lambda: model), [row], batch=1)
    assert row.asked == 2 and row.unasked == ("get_quote",)  # ORCL again: dropped, then asked off get_quote
    reply = row.stream.finish()
    assert [(c.name, c.arguments) for c in reply.calls] == [("get_quote", {"symbol": "ORCL"}),
                                                           ("find_lockers", {"city": "Leeds"})]
    assert row.stream.parser.added == 1 and fmt.parse(row.stream.text(), tools, messages).calls == reply.calls


def test_a_value_the_request_labels_that_no_value_holds_is_asked_for():
    timer = _tool("start_timer", ["minutes"], minutes={"type": "integer", "description": "How long"},
                  label={"type": "string", "description": "What it is for"})["parameters"]

    def ask(said: str, made: list | None = None, **arguments) -> bool:
        return wanted(timer, arguments, made or [], Stated([{"role": "user", "content": said}]))

    def keep(said: str, label: str) -> bool:
        return kept("label", timer, {"minutes": 20, "label": label}, [], Stated([{"role": "user", "content": said}]))

    said = "weather in Oslo, and a 20 minute timer labelled 'green tea'"
    assert ask(said, minutes=20)
    assert keep(said, "green tea") and keep(said, "tea")  # a part is taken whole (chat/labels.py)
    assert not keep(said, "coffee")
    assert not ask("weather in Oslo, and a 20 minute timer", minutes=20)  # nothing labelled
    assert not ask(said, [ToolCall("start_timer", {"minutes": 5, "label": "green tea"})], minutes=20)  # held
    assert not ask("a 20 minute timer labelled 'tea', no, labelled 'coffee'", minutes=20)  # labelled twice


def test_an_argument_is_asked_for_and_kept_only_where_the_request_grounds_it():
    schema = LOCKERS["parameters"]

    def ask(said: str, **arguments) -> bool:
        return wanted(schema, arguments, [], Stated([{"role": "user", "content": said}]))

    def keep(said: str, name: str, made: list | None = None, **arguments) -> bool:
        return kept(name, schema, arguments, made or [], Stated([{"role": "user", "content": said}]))

    # a number no argument holds: asked for, and kept where the model writes that number
    assert ask("find 3 lockers in Leeds", city="Leeds")
    assert keep("find 3 lockers in Leeds", "max_results", city="Leeds", max_results=3)
    assert not keep("find 3 lockers in Leeds", "max_results", city="Leeds", max_results=5)
    assert not ask("lockers in Leeds", city="Leeds")  # no number at all
    assert not ask("lockers at 9 Park Lane", city="9 Park Lane")  # the one number is held
    assert not keep("find 50 lockers in Leeds", "max_results", city="Leeds", max_results=50)  # out of its range
    # held by an earlier call of the reply, as a number or as digits inside a value
    assert not keep("park 3 hours in Leeds and find lockers there", "max_results",
                    [ToolCall("book_parking", {"city": "Leeds", "hours": 3})], city="Leeds", max_results=3)
    assert not keep("lockers near 3 Elm Road", "max_results", [ToolCall("find_lockers", {"city": "3 Elm Road"})],
                    city="Leeds", max_results=3)
    # a time or a day the request states, written where a number was asked for
    event = {"type": "object", "required": ["title"], "properties": {
        "title": {"type": "string"}, "time": {"type": "string", "description": "Start, HH:MM"},
        "day": {"type": "string", "format": "date"}}}
    said = "Quarterly review on December 1, 2026, it starts at 10 in the morning"
    assert kept("time", event, {"title": "Quarterly review", "time": "10:00"}, [], Stated([{"role": "user", "content": said}]))
    assert kept("day", event, {"title": "Quarterly review", "day": "2026-12-01"}, [], Stated([{"role": "user", "content": said}]))
    assert not kept("time", event, {"title": "Quarterly review", "time": "11:00"}, [],
                    Stated([{"role": "user", "content": said}]))
    # a number said in another parameter's own terms is that one's ("10km": radius_km)
    assert not keep("lockers in Leeds within 10km", "max_results", city="Leeds", max_results=10)
    # only parameters after the last one written can be asked for (the grammar keeps the schema's order)
    assert not ask("lockers in Leeds, 3 of them", city="Leeds", max_results=3)
    assert ask("lockers in Leeds open late, 3 of them", city="Leeds", open_late=True)
    # a yes/no whose name's word is said ("open" says nothing: any locker is open)
    assert ask("lockers in Leeds open late", city="Leeds")
    assert keep("lockers in Leeds open late", "open_late", city="Leeds", open_late=True)
    assert not ask("lockers in Leeds that are open", city="Leeds")
    assert not keep("lockers in Leeds that are open", "open_late", city="Leeds", open_late=True)
    assert not keep("lockers in Leeds", "city", city="Leeds")  # free words are never asked-for keeps
    # a person's name no string of the reply holds, word for word ("Elm Row" is the address's)
    send = _tool("redirect", ["address"], address={"type": "string", "description": "Street address"},
                 recipient_name={"type": "string", "description": "Who receives it"})["parameters"]
    said = [{"role": "user", "content": "send it to 7 Elm Row, Bath, it is for Amira Haddad"}]
    at = {"address": "7 Elm Row, Bath"}
    assert wanted(send, at, [], Stated(said))
    assert kept("recipient_name", send, {**at, "recipient_name": "Amira Haddad"}, [], Stated(said))
    assert not kept("recipient_name", send, {**at, "recipient_name": "Elm Row"}, [], Stated(said))
    assert not kept("recipient_name", send, {**at, "recipient_name": "Amira"}, [], Stated(said))  # part of a name
    assert not wanted(send, {"address": "7 Elm Row, Bath, for Amira Haddad"}, [], Stated(said))
    assert not wanted(send, at, [], Stated([{"role": "user", "content": "send it to 7 Elm Row, Bath on Monday May 3"}]))
    # a list of an enum's options, one named loosely: asked for, kept where every option written is named
    handover = _tool("instruct", ["parcel"], parcel={"type": "string"}, how={"type": "array", "items": {
        "type": "string", "enum": ["leave_at_door", "call_on_arrival", "ring_bell"]}})["parameters"]
    said = [{"role": "user", "content": "PX-612207 - please call me when the driver arrives"}]
    assert wanted(handover, {"parcel": "PX-612207"}, [], Stated(said))
    assert kept("how", handover, {"parcel": "PX-612207", "how": ["call_on_arrival"]}, [], Stated(said))
    assert not kept("how", handover, {"parcel": "PX-612207", "how": ["call_on_arrival", "ring_bell"]}, [], Stated(said))
    assert not wanted(handover, {"parcel": "PX-612207"}, [], Stated([{"role": "user", "content": "where is PX-612207"}]))
    assert not wanted(handover, {"parcel": "PX-612207"}, [ToolCall("instruct", {"parcel": "PX-1", "how": ["call_on_arrival"]})],
                      Stated(said))  # held by an earlier call


def test_the_stream_keeps_an_argument_asked_for_only_where_it_is_grounded(smol_tokenizer):
    fmt = ChatFormat(smol_tokenizer, "hermes")
    asked = [{"role": "user", "content": "find 3 lockers in Leeds"}]
    head = '<tool_call>{"name": "find_lockers", "arguments": {"city": " Leeds"'
    # kept where grounded, once a miscopied count is taken from the request ("3 lockers": 5 → 3);
    # dropped where nothing grounds it ("for the 3 of us" may be added up: no count is taken)
    for said, value, calls in (("find 3 lockers in Leeds", "3", {"city": "Leeds", "max_results": 3}),
                               ("find 3 lockers in Leeds", "5", {"city": "Leeds", "max_results": 3}),
                               ("find lockers in Leeds for the 3 of us", "5", {"city": "Leeds"})):
        parser = fmt.stream_parser(TOOLS, [{"role": "user", "content": said}])
        parser.feed(head)
        call = parser.wants_arg()
        assert call == parser.open_call() == ToolCall("find_lockers", {"city": "Leeds"})
        parser.ask_arg(call)
        assert parser.wants_arg() is None  # once per call
        events = parser.feed(', "max_results": ' + value + "}}</tool_call>")
        assert [e.call.arguments for e in events if isinstance(e, CallEvent)] == [calls]
        assert parser.filled == ("max_results" in calls)
    # the model's own arguments are the model's: an unsaid optional number it wrote itself
    # stands while a number of the request is free (chat/ground.py `_made_up`), but for a count
    # the request says ("3 lockers": chat/stated.py `fitting`), which is taken, not asked for
    for said, count in (("find lockers in Leeds for the 3 of us", 5), ("find 3 lockers in Leeds", 3)):
        own = fmt.stream_parser(TOOLS, [{"role": "user", "content": said}])
        own.feed(head + ', "max_results": 5}}</tool_call>')
        assert own.result().calls[0].arguments == {"city": "Leeds", "max_results": count} and own.filled == 0
    inside = fmt.stream_parser(TOOLS, asked)
    inside.feed('<tool_call>{"name": "find_lockers", "arguments": {"city": " Lee')
    assert inside.open_call() is None and inside.wants_arg() is None  # inside a value


def test_a_model_that_stops_one_argument_short_is_asked_for_it(tiny_llama):
    from conftest import taught
    from transformers import AutoTokenizer

    from llm_mcp.serve.generate import generate_reply

    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama), "hermes")
    messages = [{"role": "user", "content": "find 3 lockers in Leeds"}]
    tools = [QUOTES, LOCKERS]
    short = {"name": "find_lockers", "arguments": {"city": "Leeds"}}
    whole = {"name": "find_lockers", "arguments": {"city": "Leeds", "max_results": 3}}
    # two answers in three close after the city: greedy does, but it knows what the count holds
    model = taught(tiny_llama, fmt, messages, tools, [[short], [whole], [short]], steps=300)
    plain = generate_reply(model, fmt, messages, tools, max_new_tokens=100, grounded=False)
    assert [c.arguments for c in plain.parsed.calls] == [{"city": "Leeds"}] and plain.filled == 0  # learnt

    events: list = []
    more = generate_reply(model, fmt, messages, tools, max_new_tokens=100, on_event=events.append)
    assert [c.arguments for c in more.parsed.calls] == [{"city": "Leeds", "max_results": 3}]
    assert more.filled == 1 and more.raw.count('"max_results"') == 1
    assert [e.call.arguments for e in events if isinstance(e, CallEvent)] == [{"city": "Leeds", "max_results": 3}]
