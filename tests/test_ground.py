"""Calls whose identifiers are nowhere in the conversation are withheld and asked about, and
values the model miscopied are taken from the conversation (chat/ground.py, chat/mentions.py),
in every place a reply is parsed: `ChatFormat.parse`, the stream the server and `llm-mcp chat`
decode through, eval's judge, and the engine's requests."""

from __future__ import annotations

import json

from llm_mcp.chat import ToolCall
from llm_mcp.chat import mentions
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
    # where the schema says a parameter holds an address, a value without "@" is none, said or not;
    # and the one address the conversation gives is taken for it
    mail = {"name": "mail", "parameters": {"type": "object", "properties": {
        "to": {"type": "string", "format": "email"}, "cc": {"type": "string", "description": "Email address to copy"}}}}
    assert ungrounded(ToolCall("mail", {"to": "my boss", "cc": "my team"}), mail["parameters"],
                      said("email my boss and my team")) == {"to": "email", "cc": "email"}
    check = grounder([mail], [{"role": "user", "content": "mail accounting@lumen.io the receipts"}])
    assert check(ToolCall("mail", {"to": "lumen.io"})).arguments == {"to": "accounting@lumen.io"}


def test_an_id_from_an_earlier_call_or_a_tool_result_grounds_a_call():
    messages = [{"role": "user", "content": "cancel my last order"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"name": "list_orders", "arguments": {"customer": "C-77812"}}]},
                {"role": "tool", "name": "list_orders", "tool_call_id": "call_0",
                 "content": json.dumps([{"id": "QX-20931", "status": "paid"}])},
                {"role": "user", "content": "and the one before for C-77812 too"}]
    check = grounder([ORDERS], messages)
    for stands in (ToolCall("cancel_order", {"order_id": "QX-20931"}), ToolCall("cancel_order", {"order_id": "C-77812"}),
                   ToolCall("unknown_tool", {"order_id": "QX-11111"})):  # (an unknown tool: the guide's to refuse)
        assert check(stands) == stands
    # two ids were said, so which one the model meant is not known: it is asked
    assert check(ToolCall("cancel_order", {"order_id": "QX-11111"})) == \
        "To call cancel_order I need the order id: what is it?"
    assert check(ToolCall("cancel_order", {"order_id": "QX-1", "notify": ["x@y.org"]})) == \
        "To call cancel_order I need the order id and email address: what are they?"
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


def test_values_are_read_from_text_as_a_call_holds_them():
    def read(reader, text, *args):
        return [m.readings for m in reader(text, *args)]

    assert read(mentions.emails, "mail Mark.Dubois@gmail.com, or ann@x.org.") == [("Mark.Dubois@gmail.com",), ("ann@x.org",)]
    assert read(mentions.phones, "ring +44 20 7946 0958 or 555-1234; room 12") == [("+44 20 7946 0958",), ("555-1234",)]
    assert read(mentions.urls, "see https://example.com/a?b=1. or www.x.org") == [("https://example.com/a?b=1",), ("www.x.org",)]
    # ids: a letter and a digit in one word, not a date, a time or an amount; or the example's shape
    assert read(mentions.identifiers, "where is PX-482913? sent 2027-06-26 at 10am, 5kg, A1B2") == [("PX-482913",), ("A1B2",)]
    assert read(mentions.identifiers, "is it px482913 or order 48213?", "PX-777777") == [("px482913",)]
    assert read(mentions.identifiers, "is it px482913 or order 48213?", "55555") == [("48213",)]
    # street addresses in capitals with a house number, the parts after it; not a day
    assert read(mentions.addresses, "from Unit 4, Riverside Trading Estate, Reading on 3 May, then to "
                                    "Herengracht 180, 1016 BR Amsterdam. At 9 Castle Street, York, Monday") == \
        [("Unit 4, Riverside Trading Estate, Reading",), ("Herengracht 180, 1016 BR Amsterdam",), ("9 Castle Street, York",)]
    # a British postcode whole; a time is no house number
    assert read(mentions.addresses, "to my work: Baker Street 221, London NW1 6XE. From 9:15 on, or 9:15 Main Street") == \
        [("Baker Street 221, London NW1 6XE",)]
    # clock times as HH:MM; without am/pm, both readings
    assert read(mentions.clock_times, "9am, 7:30, noon, half past seven pm, quarter to 8, 21:00, 10 o'clock") == \
        [("09:00",), ("07:30", "19:30"), ("12:00",), ("19:30",), ("07:45", "19:45"), ("21:00",), ("10:00", "22:00")]
    # words in quotes, not an apostrophe's
    assert read(mentions.quoted, "I'm late: add 'Pick up Lucia' and \"Q3 budget\", it's Lucia's") == \
        [("Pick up Lucia",), ("Q3 budget",)]
    # the part of the day said after a time settles it ("at 7" alone is no time)
    assert read(mentions.clock_times, "quarter past six in the morning, at 7 in the evening, 2 in the evening, "
                "10:30 tonight, at 2 at night") == [("06:15",), ("19:00",), ("22:30",), ("02:00",)]
    assert read(mentions.clock_times, "from 8 in the morning until 6 in the evening") == [("08:00",), ("18:00",)]
    # days as YYYY-MM-DD, "--MM-DD" when the year is not said; only real days
    assert read(mentions.dates, "on 3 May 2027, the 5th of june, May 7th, 2027, 2026-11-2, 31 feb, 29 Feb") == \
        [("2027-05-03",), ("--06-05",), ("2027-05-07",), ("2026-11-02",), ("--02-29",)]
    # currencies as ISO codes from CLDR's names; a name several share has them all, the bare sign's first
    found = [m.readings for m in mentions.currencies("200 Swiss francs or 50 USD in yen, €, dollars; we won")]
    assert found[:4] == [("CHF",), ("USD",), ("JPY",), ("EUR",)] and found[4][0] == "USD" and "CAD" in found[4]
    assert len(found) == 5  # "won" alone is the verb
    assert read(mentions.currencies, "40 AUD in kiwi dollars, or 20 quid") == [("AUD",), ("NZD",), ("GBP",)]
    # languages by CLDR's English names (or their ISO 639-1 codes)
    assert read(mentions.languages, "put it in Scottish Gaelic, norwegian or KOREAN") == \
        [("Scottish Gaelic",), ("Norwegian",), ("Korean",)]
    assert read(mentions.languages, "in korean", True) == [("ko",)]
    assert read(mentions.languages, "how many korean won for 100 swiss francs, in japanese yen?") == []  # money
    # lengths of time, in seconds
    assert read(mentions.durations, "1 hour 15 minutes, half an hour, an hour and a half, 90 min, 1h15, "
                "two and a half hours, 45 sec; 5 m of cable") == [(4500,), (1800,), (5400,), (9000,), (45,)]
    # numbers with the word they count or measure (not lengths of time, not clock times)
    assert [(m.readings[0], m.noun) for m in mentions.quantities(
        "3 drop-off points within 10km, three parcels of 2.5 kg, at 9am, for 45 min on 3 May")] == \
        [(3, "drop"), (10, "km"), (3, "parcels"), (2.5, "kg")]
    # numbers said as how many to show; not with what they count after them
    assert read(mentions.limits, "the 3 closest shops, top five, (just 2), at most 10; just 4 parcels, "
                "up to 9 km, only 7km, 2 guests") == [(3,), (5,), (2,), (10,)]
    # numbers, spelled or grouped ("pieces": the model may copy the first piece only); dates are not numbers
    found = [(m.readings[0], m.pieces) for m in mentions.numbers(
        "fifteen thousand euros, 3,000 usd, 2.5k, 5kg and 35 min on 3 May 2027 (or May 5th) 2026-12-01")]
    assert found == [(15000, True), (3000, True), (2500, True), (5, False), (35, False)]
    # "one" as a pronoun and ordinals in words count nothing; one hour is one hour
    assert read(mentions.numbers, "I'm the one picking her up; ring the bell first, then the third door; "
                "one hour and 2 bags") == [(1,), (2,)]
    # halves of a unit of weight or length ("half an hour" is a length of time, `durations`)
    assert read(mentions.numbers, "half a kilo, two and a half kg, a mile and a half, half an hour") == \
        [(0.5,), (2.5,), (1.5,)]
    # counts: not the numbers of days, ordinals, clock times or street addresses
    assert read(mentions.counts, "The 18th of February 2025, a second collection at 9 Albert Street, York "
                "at 8pm, twelve boxes") == [(12,)]


EVENTS = {
    "name": "book",
    "description": "Book a table and send the confirmation",
    "parameters": {"type": "object", "properties": {
        "day": {"type": "string", "format": "date"},
        "time": {"type": "string", "description": "Start, HH:MM 24-hour"},
        "until": {"type": "string", "description": "End, HH:MM"},
        "budget": {"type": "number", "description": "Most to spend"},
        "guests": {"type": "integer", "description": "How many people"},
        "length_minutes": {"type": "integer", "description": "How long"},
        "currency": {"type": "string", "description": "ISO 4217 code of the budget"},
        "note": {"type": "string", "description": "A note for the staff"},
        "guest_name": {"type": "string", "description": "Whose table it is"},
        "language": {"type": "string", "description": "Language the staff should speak"},
        "to": {"type": "string", "format": "email"},
        "ref": {"type": "string", "description": "Booking reference, like BK-2931"},
        "address": {"type": "string", "description": "Street address of the restaurant"}}},
}


def test_a_miscopied_value_is_taken_from_the_conversation_when_exactly_one_fits():
    def checked(text: str, **arguments):
        call = grounder([EVENTS], [{"role": "user", "content": text}])(ToolCall("book", arguments))
        return call if isinstance(call, str) else call.arguments

    # a part of the address said, an id the model made up, the first piece of a grouped number
    assert checked("confirm to mark.dubois@gmail.com", to="dubois@gmail.com") == {"to": "mark.dubois@gmail.com"}
    assert checked("change booking BK-4471 please", ref="BK-2931") == {"ref": "BK-4471"}
    assert checked("spend up to 3,000", budget=3) == {"budget": 3000}
    assert checked("fifteen thousand tops", budget=15) == {"budget": 15000}
    assert checked("table for 12 at 8pm", guests=1, time="08:00") == {"guests": 12, "time": "20:00"}
    assert checked("budget in Swiss francs", currency="SZF") == {"currency": "CHF"}
    assert checked("budget in Canadian dollars", currency="CAD") == {"currency": "CAD"}
    assert checked("note 'French menu please', staff speaking german", note="French menu please",
                   language="Germa") == {"note": "French menu please", "language": "German"}
    assert checked("staff speaking german", language="fr") == {"language": "de"}
    # an address cut short takes the whole one it is part of; one of two, or said whole, stands
    assert checked("at Herengracht 180, 1016 BR Amsterdam.", address="1016 BR Amsterdam") == \
        {"address": "Herengracht 180, 1016 BR Amsterdam"}
    assert checked("at Unit 4, Riverside Trading Estate, Reading on 3 May", address="Unit 4, Riverside Trading Estate") \
        == {"address": "Unit 4, Riverside Trading Estate, Reading"}
    assert checked("at 9 Elm Row, Bath or 2 High Street, Bath", address="Bath") == {"address": "Bath"}
    assert checked("at 9 Elm Row, Bath", address="9 elm row, bath") == {"address": "9 elm row, bath"}
    # a length of time in the parameter's unit, where the model wrote another number
    assert checked("for an hour and a half", length_minutes=1) == {"length_minutes": 90}
    assert checked("table for 4, 2 hours", guests=4, length_minutes=2) == {"guests": 4, "length_minutes": 120}
    assert checked("table for 4, 2 hours or 3 hours", length_minutes=2) == {"length_minutes": 2}
    # a parameter left out is added where the conversation gives it in terms only it can mean
    sized = dict(EVENTS, parameters={**EVENTS["parameters"], "properties": {
        **EVENTS["parameters"]["properties"], "seating": {"type": "string", "enum": ["indoor", "outdoor_terrace"]}}})

    def added(text: str, **arguments):
        return grounder([sized], [{"role": "user", "content": text}])(ToolCall("book", arguments)).arguments

    assert added("for 4, 90 minutes on the outdoor terrace", guests=4) == \
        {"guests": 4, "length_minutes": 90, "seating": "outdoor_terrace"}
    assert added("for 4, 90 minutes or 2 hours, indoor or outdoor terrace", guests=4) == {"guests": 4}
    assert added("for 4 at 8pm", guests=4) == {"guests": 4}
    # a number said with a word of the parameter's name: "4 guests" for `guests`, replacing or added
    assert added("table for 4 guests", guests=2) == {"guests": 4}
    assert added("just 4 guests, 2 hours") == {"guests": 4, "length_minutes": 120}
    assert added("4 guests, maybe 6 guests") == {}
    # a day said without its year takes the model's
    assert checked("on 20 November", day="2026-02-20") == {"day": "2026-11-20"}
    assert checked("on Nov 20, 2027", day="2026-11-20") == {"day": "2027-11-20"}
    assert checked("tomorrow at 20:00", day="2026-02-20") == {"day": "2026-02-20"}
    # a time without am/pm: the waking-hours reading, else the one nearest the model's
    assert checked("at 10:30", time="19:00") == {"time": "10:30"}
    assert checked("dinner 7:30", time="19:00") == {"time": "19:30"}
    assert checked("breakfast 7:30", time="08:00") == {"time": "07:30"}
    # what stands: a value said, one held by another argument, one of several that could fit,
    # a number that may have been inferred (2 for "a couple"; 3 beside "35"), a value nothing fits
    assert checked("8pm to 10pm", time="20:00", until="19:00") == {"time": "20:00", "until": "22:00"}
    assert checked("9am, till 10am", time="10:00", until="12:00") == {"time": "10:00", "until": "09:00"}
    assert checked("at 9am or 10am", time="11:00") == {"time": "11:00"}
    assert checked("a couple of us, room 35", guests=2, budget=3) == {"guests": 2, "budget": 3}
    assert checked("spend 3,000 or 3,500", budget=3) == {"budget": 3}
    assert checked("book BK-4471 and BK-5555", ref="BK-2931") == "To call book I need the ref: what is it?"
    assert checked("confirm to ann@x.org and bo@x.org", to="dubois@x.org") == \
        "To call book I need the email address: what is it?"

    # nor is a value taken that would repeat a call the reply already made
    check = grounder([EVENTS], [{"role": "user", "content": "move BK-4471 to 9pm, and BK-5555 too"}])
    assert check(ToolCall("book", {"ref": "BK-4471", "time": "21:00"})).arguments == {"ref": "BK-4471", "time": "21:00"}
    assert check(ToolCall("book", {"ref": "BK-2931", "time": "21:00"})).arguments == {"ref": "BK-5555", "time": "21:00"}
    assert check(ToolCall("book", {"ref": "BK-1111", "time": "21:00"})) == \
        "To call book I need the ref: what is it?"


def test_an_identifiers_shape_in_another_parameter_or_a_date_when_no_day_is_named_is_asked_for():
    def check(text: str, **arguments):
        out = grounder([ORDERS, EVENTS], [{"role": "user", "content": text}])(ToolCall("book", arguments))
        return out if isinstance(out, str) else out.arguments

    # the order number's shape ("like QX-20931") in a note, said nowhere: made up
    assert check("can I get my money back?", note="QX-20931") == "To call book I need the note: what is it?"
    assert check("book it, note QX-55501 on it", note="QX-55501") == {"note": "QX-55501"}
    assert check("can I get my money back?", note="refund") == {"note": "refund"}
    # an identifier without the digits (or letters) its example has is no identifier, said or not
    cancel = grounder([ORDERS, EVENTS], [{"role": "user", "content": "cancel my order of lithium batteries"}])
    assert cancel(ToolCall("cancel_order", {"order_id": "lithium batteries"})) == \
        "To call cancel_order I need the order id: what is it?"
    # a date where the conversation names no day at all; a weekday, "tomorrow", a month or any
    # digit and the model's date stands (relative days are the model's to work out)
    assert check("could you book us a table?", day="2023-01-01") == "To call book I need the day: what is it?"
    for said in ("a table tomorrow", "on sundays", "sometime in March", "a table for 4"):
        assert check(said, day="2026-12-07") == {"day": "2026-12-07"}, said

def test_an_optional_number_or_time_the_conversation_never_says_is_left_to_its_default():
    def checked(text: str, **arguments):
        return grounder([EVENTS], [{"role": "user", "content": text}])(ToolCall("book", arguments)).arguments

    assert checked("book a table on 2027-05-04", day="2027-05-04", length_minutes=120, time="08:00") == \
        {"day": "2027-05-04"}
    # said as words, as a length of time in the parameter's unit, as "a dozen", or "7.30pm": stands
    assert checked("a table for two, 2 hours, at 7.30pm", guests=2, length_minutes=120, time="19:30") == \
        {"guests": 2, "length_minutes": 120, "time": "19:30"}
    assert checked("a table for a dozen of us", guests=12) == {"guests": 12}
    # an optional option the request does not name, even loosely or misspelt
    weather = {"name": "get_weather", "parameters": {"type": "object", "required": ["location"], "properties": {
        "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "when": {"type": "string", "enum": ["morning", "evening"]}}}}
    for said, arguments, kept in (("weather in Reykjavik", {"unit": "celsius"}, {}),
                                  ("wether reykjavik celcius", {"unit": "celsius"}, {"unit": "celsius"}),
                                  ("Reykjavik, mornings are best", {"when": "morning"}, {"when": "morning"}),
                                  ("Reykjavik, not in the evening", {"when": "evening"}, {}),
                                  ("Reykjavik, in degrees C", {"unit": "celsius"}, {"unit": "celsius"}),
                                  ("Reykjavik, 20°F", {"unit": "fahrenheit"}, {"unit": "fahrenheit"})):
        out = grounder([weather], [{"role": "user", "content": said}])(
            ToolCall("get_weather", {"location": "Reykjavik", **arguments}))
        assert out.arguments == {"location": "Reykjavik", **kept}, said
    # a label that is only the tool's own thing: the request gave none
    timer = {"name": "set_timer", "parameters": {"type": "object", "required": ["minutes"], "properties": {
        "minutes": {"type": "integer"}, "label": {"type": "string"}}}}
    for label, kept in (("a timer", False), ("Timer", False), ("tea timer", True), ("tea", True)):
        out = grounder([timer], [{"role": "user", "content": "set a timer for half an hour"}])(
            ToolCall("set_timer", {"minutes": 30, "label": label}))
        assert ("label" in out.arguments) == kept, label
    # a person's name with a digit is some other value (an address's words)
    assert checked("book 2027-05-04 at 12 Elm Row", day="2027-05-04", guest_name="12 Elm Row") == {"day": "2027-05-04"}
    assert checked("book 2027-05-04 for Ana Lima", day="2027-05-04", guest_name="Ana Lima") == \
        {"day": "2027-05-04", "guest_name": "Ana Lima"}

def test_an_optional_yes_no_the_conversation_says_nothing_about_is_left_to_its_default():
    hotels = {"name": "find_hotels", "description": "Find hotel rooms in a city", "parameters": {
        "type": "object", "required": ["city", "breakfast"], "properties": {
            "city": {"type": "string", "description": "City to stay in"},
            "breakfast": {"type": "boolean", "description": "Whether breakfast is wanted"},
            "pets_allowed": {"type": "boolean", "description": "Only rooms where dogs or cats may stay"},
            "include_reviews": {"type": "boolean", "description": "Add what guests wrote. Default false."},
            "weekend_rate": {"type": "boolean", "description": "Price a Saturday or Sunday night"}}}}

    def checked(text: str, **arguments):
        return grounder([hotels], [{"role": "user", "content": text}])(ToolCall("find_hotels", arguments)).arguments

    made_up = {"pets_allowed": True, "include_reviews": True, "weekend_rate": False}
    # said nowhere: each optional yes/no goes; a required one is the model's to choose
    assert checked("hotels in Porto", city="Porto", breakfast=True, **made_up) == {"city": "Porto", "breakfast": True}
    # a word of its name ("reviews"), of its own description ("dog", "sat": Saturday): stands.
    # "Whether", "Default", the tool's own words ("rooms" in another's, "hotel") ground nothing
    assert checked("porto hotels with reviews, I'm bringing my dog, arriving sat", city="Porto", breakfast=False,
                   **made_up) == {"city": "Porto", "breakfast": False, **made_up}
    assert checked("a hotel room in Porto by default", city="Porto", breakfast=True, include_reviews=True,
                   pets_allowed=True) == {"city": "Porto", "breakfast": True}


def test_a_sum_is_converted_from_its_own_currency():
    exchange = {"name": "exchange", "description": "Exchange money", "parameters": {"type": "object", "properties": {
        "sum": {"type": "number"}, "source_currency": {"type": "string", "description": "code"},
        "target_currency": {"type": "string", "description": "code"}}}}

    def checked(text: str, *calls: tuple):
        check = grounder([exchange], [{"role": "user", "content": text}])
        return [check(ToolCall("exchange", dict(zip(("sum", "source_currency", "target_currency"), c)))).arguments
                for c in calls]

    assert [(m.readings[0], m.noun) for m in mentions.amounts("60 euros, $20 or 2.5k dollars; EUR to GBP 75.50")] \
        == [("EUR", "60"), ("USD", "20"), ("USD", "2500")]
    # the amount is in the source currency, however the request turns it, and a side that then
    # repeats the other takes the request's other currency
    assert checked("how many yen for 60 euros", (60, "JPY", "EUR")) == \
        [{"sum": 60, "source_currency": "EUR", "target_currency": "JPY"}]
    assert checked("I need 60 euros, how many dollars is that?", (60, "USD", "EUR")) == \
        [{"sum": 60, "source_currency": "EUR", "target_currency": "USD"}]
    assert checked("60 euros in baht", (60, "KRW", "BCH")) == [{"sum": 60, "source_currency": "EUR", "target_currency": "THB"}]
    # what stands: a right call, a sum said twice in two currencies, a change that repeats a call made
    assert checked("EUR to GBP 75.50", (75.5, "EUR", "GBP"))[0]["source_currency"] == "EUR"
    assert checked("60 euros or 60 dollars to yen", (60, "JPY", "EUR"))[0]["source_currency"] == "JPY"
    assert checked("convert 100 usd to eur and also to gbp", (100, "USD", "EUR"), (100, "GBP", "EUR"))[1] == \
        {"sum": 100, "source_currency": "GBP", "target_currency": "EUR"}

def test_a_taken_value_is_kept_beside_the_call_as_written(smol_tokenizer):
    from llm_mcp.chat import ChatFormat
    from llm_mcp.eval.cases import Case
    from llm_mcp.eval.match import Expected
    from llm_mcp.eval.run import judge

    fmt = ChatFormat(smol_tokenizer)
    messages = [{"role": "user", "content": "book it for 8pm and confirm to mark.dubois@gmail.com"}]
    raw = '<tool_call>{"name": "book", "arguments": {"time": "20:00", "to": " dubois@gmail.com"}}</tool_call>'
    parsed = fmt.parse(raw, [EVENTS], messages)
    assert parsed.calls == [ToolCall("book", {"time": "20:00", "to": "mark.dubois@gmail.com"})]
    assert parsed.taken == [ToolCall("book", {"time": "20:00", "to": "dubois@gmail.com"})]
    assert fmt.parse(raw, [EVENTS]).calls == parsed.taken and not fmt.parse(raw, [EVENTS]).taken

    case = Case(messages, [EVENTS], [Expected("book", {"time": ["20:00"], "to": ["mark.dubois@gmail.com"]})])
    assert judge(fmt, case, 0, raw, 20, 0.1).ast.ok
    assert not judge(fmt, case, 0, raw, 20, 0.1, grounded=False).ast.ok


PARCELS = [
    {"name": "pickup", "description": "Book a courier to collect parcels", "parameters": {"type": "object", "properties": {
        "address": {"type": "string", "description": "Collection address: street and number, plus town/city."},
        "day": {"type": "string", "format": "date"},
        "parcel_count": {"type": "integer", "description": "Number of parcels to collect"},
        "weight_kg": {"type": "number", "description": "Total weight"}}, "required": ["address", "day"]}},
    {"name": "instruct", "description": "Tell the driver how to hand over a parcel", "parameters": {
        "type": "object", "properties": {
            "tracking_number": {"type": "string", "description": "Tracking number, like PX-482913"},
            "instructions": {"type": "array", "items": {"type": "string", "enum": [
                "leave_at_door", "ring_bell", "call_on_arrival", "no_knock"]}}}, "required": ["tracking_number"]}},
]


def test_a_value_of_another_kind_a_count_a_unit_and_a_list_of_options_are_taken_from_the_request():
    def checked(text: str, tool: str = "pickup", **arguments):
        return grounder(PARCELS, [{"role": "user", "content": text}])(ToolCall(tool, arguments)).arguments

    # a day where the address goes, or after it: the address the request states
    assert checked("on 3 March 2027 from 88 Kingsland Road, London", address="3 March 2027", day="2027-03-03") == \
        {"address": "88 Kingsland Road, London", "day": "2027-03-03"}
    assert checked("501 Market Street, San Francisco, 2027-06-30", address="501 Market Street, San Francisco, "
                   "2027-06-30", day="2027-06-30") == {"address": "501 Market Street, San Francisco", "day": "2027-06-30"}
    assert checked("9 Elm Row, Bath on 2027-06-30", address="9 Elm Row, Bath, Somerset", day="2027-06-30") == \
        {"address": "9 Elm Row, Bath, Somerset", "day": "2027-06-30"}  # more place: the model's
    # a count said nowhere takes the one the request says; not where it may be added up
    assert checked("88 Kingsland Road, London, 2027-03-03 after half past one, 4 boxes", address="88 Kingsland Road, London",
                   day="2027-03-03", parcel_count=8)["parcel_count"] == 4
    assert checked("one from me and one each from my 2 neighbours, 9 Elm Row, Bath, 2027-03-03", address="9 Elm Row, Bath",
                   day="2027-03-03", parcel_count=3)["parcel_count"] == 3
    # a count said nowhere, where the request says none (a house number counts nothing): left out
    assert checked("501 Market Street, San Francisco, 2027-06-30", address="501 Market Street, San Francisco",
                   day="2027-06-30", parcel_count=5) == {"address": "501 Market Street, San Francisco", "day": "2027-06-30"}
    # an argument the decoder asked for is judged once its value is taken from the request
    asked = grounder(PARCELS, [{"role": "user", "content": "9 Elm Row, Bath, 2027-03-03, 4 boxes"}])(
        ToolCall("pickup", {"address": "9 Elm Row, Bath", "day": "2027-03-03", "parcel_count": 8}), False, "parcel_count")
    assert asked.arguments["parcel_count"] == 4
    # a unit by another of its names: "kilo" for `weight_kg`
    assert checked("half a kilo from 9 Elm Row, Bath on 3 March", address="9 Elm Row, Bath", day="2027-03-03", weight_kg=5) == \
        {"address": "9 Elm Row, Bath", "day": "2027-03-03", "weight_kg": 0.5}
    assert checked("twelve kilos from 9 Elm Row, Bath on 3 March", address="9 Elm Row, Bath", day="2027-03-03",
                   weight_kg=2)["weight_kg"] == 12
    # a list of options left out, named loosely in the order said; not when negated
    assert checked("ring the bell for PX-830014, and call me when you arrive", "instruct",
                   tracking_number="PX-830014") == \
        {"tracking_number": "PX-830014", "instructions": ["ring_bell", "call_on_arrival"]}
    assert checked("PX-830014: don't ring the bell", "instruct", tracking_number="PX-830014") == \
        {"tracking_number": "PX-830014"}
    assert checked("PX-830014: ring the bell. PX-830015: leave it at the door", "instruct",
                   tracking_number="PX-830014") == {"tracking_number": "PX-830014"}  # whose options?


QUOTE = {"name": "quote", "description": "Price a parcel between two places", "parameters": {"type": "object", "properties": {
    "origin": {"type": "string", "description": "City (or postcode) the parcel is sent from."},
    "destination": {"type": "string", "description": "City (or postcode) the parcel goes to."},
    "weight_kg": {"type": "number"}}, "required": ["origin", "destination", "weight_kg"]}}


def test_a_place_parameter_needs_a_place():
    def checked(text: str, origin: str, destination: str):
        call = grounder([QUOTE], [{"role": "user", "content": text}])(
            ToolCall("quote", {"origin": origin, "destination": destination, "weight_kg": 2}))
        return call if isinstance(call, str) else (call.arguments["origin"], call.arguments["destination"])

    # words of the request that are no place: asked for instead
    assert checked("how long does express take compared to standard?", "compared", "standard") == \
        "To call quote I need the origin, destination and weight kg: what are they?"  # no number said either
    assert checked("is it cheaper to send two small parcels or one big one?", "a small town", "big") == \
        "To call quote I need the origin and destination: what are they?"
    # a known place in lower case (GeoNames), one written with a capital, a postcode
    assert checked("2kg dublin to belfast", "dublin", "belfast") == ("dublin", "belfast")
    assert checked("2kg from kraków to den haag", "krakow", "den haag") == ("krakow", "den haag")
    assert checked("2kg from the hague to the uk", "the hague", "uk") == ("the hague", "uk")
    assert checked("2kg from Smallville to 10115", "Smallville", "10115") == ("Smallville", "10115")
    # a postcode the model wrote with its label: the code alone
    assert checked("2kg from postcode 10115 to zip 90210", "postcode 10115", "Zip code: 90210") == ("10115", "90210")


def test_an_option_named_in_its_own_words_is_added_once_the_values_are_in_place():
    tool = {"name": "quote", "parameters": {"type": "object", "required": ["origin", "destination"], "properties": {
        "origin": {"type": "string", "description": "City the parcel is sent from."},
        "destination": {"type": "string", "description": "City the parcel goes to."},
        "service": {"type": "string", "enum": ["economy", "express", "overnight"]}}}}

    def checked(origin: str, destination: str, **more) -> dict:
        call = ToolCall("quote", {"origin": origin, "destination": destination, **more})
        return grounder([tool], [{"role": "user", "content": "overnight quote dublin to belfast"}])(call).arguments

    want = {"origin": "dublin", "destination": "belfast", "service": "overnight"}
    assert checked("dublin", "belfast") == want
    # an option the request does not name gives way to the one it names
    assert checked("dublin", "belfast", service="express") == want
    # the option written as a place: the journey is read from the request first, then the option added
    assert checked("belfast", "overnight") == want


def test_a_yes_or_no_written_against_the_request_takes_what_it_says():
    tool = {"name": "book_room", "parameters": {"type": "object", "required": ["booking"], "properties": {
        "booking": {"type": "string", "description": "Booking reference, like HB-20931"},
        "breakfast_included": {"type": "boolean"}, "late_checkout": {"type": "boolean"}}}}

    def checked(text: str, **flags) -> dict:
        call = ToolCall("book_room", {"booking": "HB-20931", **flags})
        return grounder([tool], [{"role": "user", "content": text}])(call).arguments

    assert checked("HB-20931: we'd like breakfast every day", breakfast_included=False)["breakfast_included"] is True
    assert checked("HB-20931, no breakfast please", breakfast_included=True)["breakfast_included"] is False
    assert checked("HB-20931: we don't need breakfast", breakfast_included=True)["breakfast_included"] is False
    assert checked("HB-20931, we don't need the big breakfast", breakfast_included=True)["breakfast_included"] is False
    assert checked("HB-20931: late checkout isn't needed", late_checkout=True)["late_checkout"] is False
    # said both ways, or not at all: the model's stands (or is left out, chat/more.py `flag_said`)
    assert checked("HB-20931: breakfast, or no breakfast, you choose", breakfast_included=False)["breakfast_included"] \
        is False
    assert "late_checkout" not in checked("HB-20931 please", late_checkout=True)
    # several bookings: only the part that names this one
    call = ToolCall("book_room", {"booking": "HB-20932", "breakfast_included": False})
    said = [{"role": "user", "content": "HB-20931 with breakfast and HB-20932 room only"}]
    assert grounder([tool], said)(call).arguments["breakfast_included"] is False


def test_a_required_currency_or_number_from_nowhere_is_asked_for():
    tool = {"name": "convert", "parameters": {"type": "object", "required": ["amount", "from_currency", "to_currency"],
                                              "properties": {"amount": {"type": "number"},
                                                             "from_currency": {"type": "string"},
                                                             "to_currency": {"type": "string"},
                                                             "rounding": {"type": "integer"}}}}

    def checked(text: str, amount, source: str, target: str):
        call = ToolCall("convert", {"amount": amount, "from_currency": source, "to_currency": target})
        out = grounder([tool], [{"role": "user", "content": text}])(call)
        return out if isinstance(out, str) else out.arguments

    # no currency named at all; no number said at all
    assert checked("How many minutes are in 3.5 hours?", 3.5, "USD", "GBP") == \
        "To call convert I need the from currency and to currency: what are they?"
    assert checked("what does the code CHF stand for", 12.99, "CHF", "GBP") == \
        "To call convert I need the amount: what is it?"
    # a code in lower case; a number word, "a couple", "a dollar" (1): the model may have worked it out
    assert checked("99.99 usd -> inr?", 99.99, "USD", "INR")["from_currency"] == "USD"
    assert checked("convert ten euros to dollars", 10, "EUR", "USD")["amount"] == 10
    assert checked("convert a couple of quid to euros", 2, "GBP", "EUR")["amount"] == 2
    assert checked("what's a dollar in euros", 1, "USD", "EUR")["amount"] == 1


def test_a_ticker_that_is_no_code_is_asked_for():
    quote = {"name": "stock_price", "parameters": {"type": "object", "required": ["symbol"], "properties": {
        "symbol": {"type": "string", "description": "Ticker symbol, e.g. AAPL"}}}}
    depot = {"name": "restock", "parameters": {"type": "object", "required": ["depot"], "properties": {
        "depot": {"type": "string", "description": "Where the stock is kept"}}}}

    def checked(tool: dict, text: str, value: str):
        name = next(iter(tool["parameters"]["properties"]))
        out = grounder([tool], [{"role": "user", "content": text}])(ToolCall(tool["name"], {name: value}))
        return out if isinstance(out, str) else out.arguments[name]

    # a name where a code goes: asked for ("order a pizza from Domino's" is no stock request)
    assert checked(quote, "order me a pizza from Domino's", "Domino's") == \
        "To call stock_price I need the symbol: what is it?"
    assert checked(quote, "how is apple doing on the market?", "Apple").startswith("To call stock_price")
    # codes stand, in capitals or typed in lower case, with a class's or a market's suffix
    assert checked(quote, "how is apple doing on the market?", "AAPL") == "AAPL"
    assert checked(quote, "price of brk.b and btc-usd", "BRK.B") == "BRK.B"
    assert checked(quote, "aapl price", "aapl") == "aapl"
    # "stock" in a description alone does not make a parameter a ticker's
    assert checked(depot, "restock the Main Hall depot", "Main Hall") == "Main Hall"


def test_a_number_said_in_another_parameters_terms_moves_there():
    points = {"name": "find_points", "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "radius_km": {"type": "integer", "minimum": 1, "maximum": 50},
        "max_results": {"type": "integer", "minimum": 1, "maximum": 20}}}}

    def checked(text: str, **arguments) -> dict:
        return grounder([points], [{"role": "user", "content": text}])(ToolCall("find_points", arguments)).arguments

    assert checked("points in Bristol, up to 10 km away", city="Bristol", max_results=10) == \
        {"city": "Bristol", "radius_km": 10}
    # said in its own terms too, or the other parameter held: it stands
    assert checked("3 results in Bristol within 3 km", city="Bristol", max_results=3, radius_km=3) == \
        {"city": "Bristol", "max_results": 3, "radius_km": 3}
    assert checked("5 results in Bristol within 10 km", city="Bristol", max_results=5) == \
        {"city": "Bristol", "max_results": 5, "radius_km": 10}
    assert checked("points in Bristol, up to 80 km away", city="Bristol", max_results=80)["max_results"] == 80  # range
    # held there already: the copy goes
    assert checked("points in Bristol within 3 km", city="Bristol", max_results=3, radius_km=3) == \
        {"city": "Bristol", "radius_km": 3}
    # how many to show, said as such, is the parameter that says how many results: added, or moved there
    assert checked("the 3 closest points in Galway", city="Galway") == {"city": "Galway", "max_results": 3}
    assert checked("nearest points in Stockholm (just 2)", city="Stockholm", radius_km=2) == \
        {"city": "Stockholm", "max_results": 2}
    assert checked("points in Leeds for just 2 parcels", city="Leeds") == {"city": "Leeds"}


def test_a_yes_no_the_request_says_plainly_by_its_name_is_added():
    points = {"name": "find_points", "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "open_weekends": {"type": "boolean"}}}}

    def checked(text: str) -> dict:
        return grounder([points], [{"role": "user", "content": text}])(
            ToolCall("find_points", {"city": "Bristol"})).arguments

    assert checked("points in Bristol that are open on weekends") == {"city": "Bristol", "open_weekends": True}
    assert checked("points in Bristol, not weekends") == {"city": "Bristol"}  # denied: left to the default
    # the first word of a compound says nothing of it (a week is no weekend); a word cut short does
    assert checked("I'm moving this week; points in Bristol?") == {"city": "Bristol"}
    history = {"name": "track", "parameters": {"type": "object", "required": ["number"], "properties": {
        "number": {"type": "string"}, "include_history": {"type": "boolean"}}}}
    tracked = grounder([history], [{"role": "user", "content": "trck PX-445566 full hist"}])(
        ToolCall("track", {"number": "PX-445566"}))
    assert tracked.arguments == {"number": "PX-445566", "include_history": True}
    assert checked("points in Bristol") == {"city": "Bristol"}
