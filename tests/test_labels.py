"""A free-text value the request gives under its parameter's name is taken whole
(chat/labels.py), through the grounder every reply is parsed with."""

from __future__ import annotations

from llm_mcp.chat import ToolCall
from llm_mcp.chat.ground import grounder
from llm_mcp.chat.labels import labelled

EMAIL = {"name": "send_email", "description": "Send an email", "parameters": {
    "type": "object", "required": ["to", "subject", "body"], "properties": {
        "to": {"type": "string", "format": "email"}, "subject": {"type": "string"},
        "body": {"type": "string", "description": "The message"}}}}
TEXT = {"type": "string"}


def checked(text: str, **arguments) -> dict:
    return grounder([EMAIL], [{"role": "user", "content": text}])(ToolCall("send_email", arguments)).arguments


def test_values_given_under_a_parameters_name():
    said = "email ann@x.org with subject 'Thank you' and body 'Thanks for your hospitality! Best, Marco'"
    assert labelled("subject", TEXT, said) == ["Thank you"]
    assert labelled("body", TEXT, said) == ["Thanks for your hospitality! Best, Marco"]
    said = "to ann@x.org. Subject line: Boiler broken. body: Hello, the boiler stopped. Thanks, Aoife"
    assert labelled("subject", TEXT, said) == ["Boiler broken"]
    assert labelled("body", TEXT, said) == ["Hello, the boiler stopped. Thanks, Aoife"]
    said = "To: hr@x.co / Subject: Address change / Message: My new address is 14 Alder Road."
    assert labelled("subject", TEXT, said) == ["Address change"]
    assert labelled("label", TEXT, "a 20 minute timer labelled 'tea'") == ["tea"]
    assert labelled("body", TEXT, "email her saying 'see you at 5'") == ["see you at 5"]
    # "called" or "named" labels a label or a title: its next words, up to a join, a number or what is said of it
    assert labelled("label", TEXT, "set timer for 25 min called descaling") == ["descaling"]
    assert labelled("label", TEXT, "a timer called pasta for 10 minutes, and one named 'bread'") == ["pasta", "bread"]
    assert labelled("title", TEXT, "an event named Team sync on Monday") == ["Team sync"]
    assert labelled("label", TEXT, "the plumber called me at 5, then called about the leak") == []
    assert labelled("subject", TEXT, "an email called Hello") == []  # a subject is labelled by its own name
    # a word of the name with no quote or colon after it labels nothing
    assert labelled("subject", TEXT, "search the web on the subject of heat pumps") == []


def test_a_labelled_value_copied_in_part_or_from_another_is_taken_whole():
    said = "email ann@x.org with subject 'Thank you' and body 'Thanks for your hospitality! Best, Marco'"
    assert checked(said, to="ann@x.org", subject="Best, Marco", body="Thanks for your hospitality!") == \
        {"to": "ann@x.org", "subject": "Thank you", "body": "Thanks for your hospitality! Best, Marco"}
    said = "to ann@x.org. subject: Boiler broken. body: Hello, the boiler stopped. Could you send someone? Aoife"
    assert checked(said, to="ann@x.org", subject="Boiler broke", body="Hello, the boiler stopped.") == \
        {"to": "ann@x.org", "subject": "Boiler broken",
         "body": "Hello, the boiler stopped. Could you send someone? Aoife"}
    # what stands: a value the request says otherwise, and a parameter it labels twice
    said = "email ann@x.org about the trip, subject: Hike. body: are we still on for Saturday? Bring water"
    assert checked(said, to="ann@x.org", subject="the trip", body="Are we still on for Saturday?") == \
        {"to": "ann@x.org", "subject": "the trip", "body": "are we still on for Saturday? Bring water"}
    said = "email ann@x.org subject 'Hi' or subject 'Hello', body 'ok'"
    assert checked(said, to="ann@x.org", subject="H", body="ok")["subject"] == "H"


SEARCH = {"name": "web_search", "description": "Search the web", "parameters": {
    "type": "object", "required": ["query"], "properties": {"query": {"type": "string", "description": "Search query"}}}}
TIMER = {"name": "set_timer", "description": "Start a countdown timer", "parameters": {
    "type": "object", "required": ["minutes"], "properties": {
        "minutes": {"type": "integer"}, "label": {"type": "string", "description": "Optional label"}}}}
WEATHER = {"name": "get_weather", "description": "Current weather", "parameters": {
    "type": "object", "required": ["location"], "properties": {"location": {"type": "string"}}}}


def test_free_text_that_runs_into_another_request_is_cut_where_it_joins_it():
    tools = [SEARCH, TIMER, WEATHER]

    def checked(text: str, name: str, **arguments) -> dict:
        return grounder(tools, [{"role": "user", "content": text}])(ToolCall(name, arguments)).arguments

    said = "search how to descale a nespresso machine then set timer for 25 min"
    assert checked(said, "web_search", query="how to descale a nespresso machine then set timer") == \
        {"query": "how to descale a nespresso machine"}
    # a join whose words name no other tool stays ("pros and cons"), as does running text
    assert checked("search pros and cons of heat pumps", "web_search", query="pros and cons of heat pumps") == \
        {"query": "pros and cons of heat pumps"}
    # an optional label that is only another request's words goes, unless the request labels it
    assert checked("5 min timer, chicago weather in fahrenheit", "set_timer", minutes=5, label="Chicago weather") \
        == {"minutes": 5}
    assert checked("a 5 min timer labelled 'weather check', and the weather in Chicago", "set_timer", minutes=5,
                   label="weather check") == {"minutes": 5, "label": "weather check"}


def test_a_query_cut_short_runs_to_the_end_of_its_request():
    search = {"name": "web_search", "description": "Search the web", "parameters": {
        "type": "object", "required": ["query"], "properties": {
            "query": {"type": "string", "description": "Search query"}, "max_results": {"type": "integer"}}}}
    tools = [search, TIMER, WEATHER]

    def checked(text: str, **arguments) -> dict:
        return grounder(tools, [{"role": "user", "content": text}])(ToolCall("web_search", arguments)).arguments

    # up to a join whose next piece says another argument's value, or names another tool, or a bracket
    assert checked("search the web for pros and cons of heat pumps and give me 10 results", query="Pros",
                   max_results=10) == {"query": "pros and cons of heat pumps", "max_results": 10}
    assert checked("search the web for pros and cons of heat pumps and give me 10 results", query="Pros") == \
        {"query": "pros and cons of heat pumps", "max_results": 10}
    assert checked("Search the web for best ramen in Osaka (just 5 results) and check the weather in Osaka",
                   query="best ramen", max_results=5) == {"query": "best ramen in Osaka", "max_results": 5}
    assert checked("search for vegan recipes and set a timer for 10 minutes", query="vegan") == \
        {"query": "vegan recipes"}
    # a piece that names the tool itself begins another request
    assert checked("I need a vegan lasagna recipe, search the web, top 5 is plenty", query="vegan lasagna recipe",
                   max_results=5) == {"query": "vegan lasagna recipe", "max_results": 5}
    # filler words are no query; a value said twice, or not in so many words, stands
    assert checked("search for vegan recipes for me please", query="vegan recipes") == {"query": "vegan recipes"}
    assert checked("vegan recipes: search for vegan recipes with tofu", query="vegan recipes") == \
        {"query": "vegan recipes"}
    assert checked("search for plant-based dishes", query="vegan") == {"query": "vegan"}


def test_a_value_said_only_in_the_free_text_another_tool_is_given_is_not_a_calls_own():
    event = {"name": "create_event", "description": "Add an event", "parameters": {
        "type": "object", "required": ["title", "time"], "properties": {
            "title": {"type": "string"}, "time": {"type": "string", "description": "Start time, HH:MM"}}}}
    said = [{"role": "user", "content": "Add 'Dentist' at 08:30, then email boss@x.io with the subject 'Late' "
                                        "saying: I will be in around 10:00 because of the dentist."}]
    check = grounder([event, EMAIL], said)
    assert check(ToolCall("create_event", {"title": "Dentist", "time": "10:00"})).arguments["time"] == "08:30"
    # the email's own values stand; with no time of its own said, the event's stands too
    body = "I will be in around 10:00 because of the dentist."
    assert check(ToolCall("send_email", {"to": "boss@x.io", "subject": "Late", "body": body})).arguments["body"] == body
    alone = [{"role": "user", "content": "Add 'Dentist', then email boss@x.io saying: see you at 10:00 or so"}]
    assert grounder([event, EMAIL], alone)(ToolCall("create_event", {"title": "Dentist", "time": "10:00"})) \
        .arguments["time"] == "10:00"
