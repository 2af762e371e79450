"""A value a call took from another request in the same message takes the one its own part of
the message states (chat/clauses.py), through the grounder every reply is parsed with."""

from __future__ import annotations

from llm_mcp.chat import ToolCall
from llm_mcp.chat.clauses import parts
from llm_mcp.chat.ground import grounder


def _tool(name: str, **properties) -> dict:
    return {"name": name, "description": name.replace("_", " "),
            "parameters": {"type": "object", "properties": properties, "required": list(properties)[:1]}}


EVENT = _tool("create_event", title={"type": "string"}, date={"type": "string", "description": "YYYY-MM-DD"},
              time={"type": "string", "description": "Start time, HH:MM"},
              duration_minutes={"type": "integer", "description": "Length in minutes"})
TIMER = _tool("set_timer", minutes={"type": "integer"}, label={"type": "string"})
CONVERT = _tool("convert_currency", amount={"type": "number"},
                from_currency={"type": "string", "description": "ISO 4217 code"},
                to_currency={"type": "string", "description": "ISO 4217 code"})
PICKUP = _tool("schedule_pickup", address={"type": "string", "description": "Street address to collect from"},
               pickup_date={"type": "string", "format": "date"},
               earliest_time={"type": "string", "description": "HH:MM"}, parcel_count={"type": "integer"})
MOVE = _tool("reschedule_delivery", tracking_number={"type": "string", "description": "Like PX-100200"},
             new_date={"type": "string", "format": "date"},
             time_slot={"type": "string", "enum": ["morning", "afternoon", "evening"]})
POINTS = _tool("find_drop_off_points", city={"type": "string"}, radius_km={"type": "integer"},
               max_results={"type": "integer"})
EMAIL = _tool("send_email", to={"type": "string", "format": "email"}, subject={"type": "string"},
              body={"type": "string"})


def reply(text: str, *calls: tuple[str, dict]) -> list[dict]:
    """The arguments of a reply's calls, each checked in turn as a reply's are."""
    check = grounder([EVENT, TIMER, CONVERT, EMAIL, PICKUP, MOVE, POINTS], [{"role": "user", "content": text}])
    return [check(ToolCall(name, arguments)).arguments for name, arguments in calls]


def test_a_message_is_cut_where_people_join_requests():
    assert parts("dentist 2025-12-01 at 08:00 and haircut at 17:30. Then 10 for the toast, 30: done") == \
        ["dentist 2025-12-01 at 08:00", "haircut at 17:30.", "Then 10 for the toast", "30:", "done"]


def test_a_value_from_another_request_takes_the_one_its_own_part_states():
    # a time copied from the next request, whose own day says it is that one's
    assert reply("two things for the calendar: dentist 2025-12-01 at 08:00 and haircut 2025-12-03 at 17:30",
                 ("create_event", {"title": "Dentist", "date": "2025-12-01", "time": "17:30"}),
                 ("create_event", {"title": "Haircut", "date": "2025-12-03", "time": "17:30"})) == \
        [{"title": "Dentist", "date": "2025-12-01", "time": "08:00"},
         {"title": "Haircut", "date": "2025-12-03", "time": "17:30"}]
    # a number copied from the part an earlier call's label comes from
    assert reply("Could you set three timers: 5 minutes for the eggs, 10 for the toast, 30 for the laundry",
                 ("set_timer", {"minutes": 5, "label": "eggs"}), ("set_timer", {"minutes": 5, "label": "toast"}),
                 ("set_timer", {"minutes": 5, "label": "laundry"})) == \
        [{"minutes": 5, "label": "eggs"}, {"minutes": 10, "label": "toast"}, {"minutes": 30, "label": "laundry"}]
    # an address, a time and a number copied from the request before: the part with the call's own
    # day, and the part after it that belongs to no other request, say them (not "second", not "9")
    first = {"address": "Unit 4, Riverside Trading Estate, Reading", "pickup_date": "2027-02-15",
             "earliest_time": "13:30", "parcel_count": 2}
    assert reply("Need a courier to pick up 2 boxes from Unit 4, Riverside Trading Estate, Reading on 2027-02-15 "
                 "after 13:30. Also schedule a second collection at 9 Albert Street, Newbury on 2027-02-16, "
                 "driver can come from 09:00 (just 1 box there).",
                 ("schedule_pickup", first), ("schedule_pickup", dict(first, pickup_date="2027-02-16"))) == \
        [first, {"address": "9 Albert Street, Newbury", "pickup_date": "2027-02-16", "earliest_time": "09:00",
                 "parcel_count": 1}]
    # words in quotes from the next request; a length stated nowhere, where two stated ones fit
    assert reply("put 'team offsite' in the calendar on 2027-06-17 at 09:00, 480 minutes long, and another "
                 "event 'offsite dinner' the same day at 19:30 for 2 hours",
                 ("create_event", {"title": "offsite dinner", "date": "2027-06-17", "time": "09:00",
                                   "duration_minutes": 480}),
                 ("create_event", {"title": "offsite dinner", "date": "2027-06-17", "time": "19:30",
                                   "duration_minutes": 20})) == \
        [{"title": "team offsite", "date": "2027-06-17", "time": "09:00", "duration_minutes": 480},
         {"title": "offsite dinner", "date": "2027-06-17", "time": "19:30", "duration_minutes": 120}]
    # a currency given back leaves the sum's own currency as the source: 80 CHF is converted from CHF
    assert reply("whats 80 CHF in GBP. also how much is 80 CHF in INR",
                 ("convert_currency", {"amount": 80, "from_currency": "CHF", "to_currency": "INR"}),
                 ("convert_currency", {"amount": 80, "from_currency": "GBP", "to_currency": "INR"}))[1] == \
        {"amount": 80, "from_currency": "CHF", "to_currency": "GBP"}


def test_an_optional_option_only_another_request_names_is_left_out():
    said = "Move PX-873310 to 2027-08-02 in the morning, and PX-873311 to 2027-08-03, any time is ok for that one"
    first = {"tracking_number": "PX-873310", "new_date": "2027-08-02", "time_slot": "morning"}
    for slot in ("morning", "afternoon"):
        assert reply(said, ("reschedule_delivery", first), ("reschedule_delivery", {
            "tracking_number": "PX-873311", "new_date": "2027-08-03", "time_slot": slot})) == \
            [first, {"tracking_number": "PX-873311", "new_date": "2027-08-03"}]
    # nor is it added where the model left it out (chat/ground.py `filled`)
    assert reply(said, ("reschedule_delivery", first), ("reschedule_delivery", {
        "tracking_number": "PX-873311", "new_date": "2027-08-03"}))[1] == {"tracking_number": "PX-873311", "new_date": "2027-08-03"}
    # said in the call's own request, or after it before another begins: it stands
    said = "Move PX-873310 to 2027-08-02 in the morning, and PX-873311 to 2027-08-03, in the evening please"
    second = {"tracking_number": "PX-873311", "new_date": "2027-08-03", "time_slot": "evening"}
    assert reply(said, ("reschedule_delivery", first), ("reschedule_delivery", second))[1] == second


def test_an_optional_value_only_a_part_naming_another_tool_states_is_left_out():
    # "(just 2)" belongs to the drop-off points, a part that names their tool and not the pickup's
    said = "Schedule a pickup at Kungsgatan 33, Stockholm on 2027-09-09 from 08:00, and show me the nearest " \
           "drop-off points in Stockholm too (just 2)."
    pickup = {"address": "Kungsgatan 33, Stockholm", "pickup_date": "2027-09-09", "earliest_time": "08:00"}
    assert reply(said, ("schedule_pickup", {**pickup, "parcel_count": 2}),
                 ("find_drop_off_points", {"city": "Stockholm", "radius_km": 2})) == \
        [pickup, {"city": "Stockholm", "max_results": 2}]
    # said in the call's own part, it stands; so does a value a part that names no tool states
    assert reply("Schedule a pickup at Kungsgatan 33, Stockholm on 2027-09-09 for 2 parcels, and show me the "
                 "nearest drop-off points", ("schedule_pickup", {**pickup, "parcel_count": 2}))[0]["parcel_count"] == 2
    assert reply("Schedule a pickup at Kungsgatan 33, Stockholm on 2027-09-09 from 08:00. There are 2 of them",
                 ("schedule_pickup", {**pickup, "parcel_count": 2}))[0]["parcel_count"] == 2


def test_a_value_from_a_part_that_is_no_other_request_stands():
    # "in pounds" shares the sum of the part before it: either order of the two calls stands
    calls = [("convert_currency", {"amount": 100, "from_currency": "USD", "to_currency": "GBP"}),
             ("convert_currency", {"amount": 100, "from_currency": "USD", "to_currency": "EUR"})]
    assert reply("100 dollars in euros and also in pounds pls", *calls) == [c for _, c in calls]
    # the same email to someone else: shared values place no call
    first = {"to": "priya@quill.in", "subject": "Invoice 4471", "body": "Hi Priya, invoice 4471 is attached"}
    again = dict(first, to="accounts@quill.in")
    assert reply("email priya@quill.in subject 'Invoice 4471' body 'Hi Priya, invoice 4471 is attached' "
                 "and send the exact same email to accounts@quill.in as well",
                 ("send_email", first), ("send_email", again)) == [first, again]
    # values in parts of their own, and a part that states two values of the kind
    assert reply("standup on 2027-01-05, at 09:15, for 15 minutes",
                 ("create_event", {"title": "standup", "date": "2027-01-05", "time": "09:15",
                                   "duration_minutes": 15})) == \
        [{"title": "standup", "date": "2027-01-05", "time": "09:15", "duration_minutes": 15}]
    assert reply("dentist 2025-12-01 at 08:00 or 09:00 and haircut 2025-12-03 at 17:30",
                 ("create_event", {"title": "Dentist", "date": "2025-12-01", "time": "17:30"}))[0]["time"] == "17:30"
