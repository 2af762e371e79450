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
