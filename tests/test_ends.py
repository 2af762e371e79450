"""A call's two ends of a journey take the places, and the order, the request says
(chat/ends.py), through the grounder every reply is parsed with."""

from __future__ import annotations

from llm_mcp.chat import ToolCall
from llm_mcp.chat.ends import ends, journeys
from llm_mcp.chat.ground import grounder

QUOTE = {"name": "get_shipping_quote", "description": "Price of sending a parcel",
         "parameters": {"type": "object", "required": ["origin", "destination"], "properties": {
             "origin": {"type": "string", "description": "City the parcel is sent from"},
             "destination": {"type": "string", "description": "City the parcel goes to"},
             "weight_kg": {"type": "number"}}}}
CONVERT = {"name": "convert", "parameters": {"type": "object", "properties": {
    "from_currency": {"type": "string", "description": "ISO 4217 code"},
    "to_currency": {"type": "string", "description": "ISO 4217 code"}}}}


def reply(text: str, *pairs: tuple[str, str]) -> list[tuple[str, str]]:
    check = grounder([QUOTE, CONVERT], [{"role": "user", "content": text}])
    calls = [check(ToolCall("get_shipping_quote", {"origin": a, "destination": b})) for a, b in pairs]
    return [(c.arguments["origin"], c.arguments["destination"]) for c in calls]


def test_the_ends_and_the_journeys_a_request_states():
    assert ends(QUOTE["parameters"]) == ("origin", "destination")
    assert ends(CONVERT["parameters"]) is None  # currencies are no places
    assert journeys("I want to go from New York City to San Francisco on Monday, or Amsterdam to Paris. "
                    "quote: 20kg Rotterdam -> Antwerp", []) == \
        [("New York City", "San Francisco"), ("Rotterdam", "Antwerp"), ("Amsterdam", "Paris")]
    # "A to B" in lower case only with a place the call holds, and not "a parcel to belfast"
    assert journeys("quote 0.5kg dublin to belfast", []) == []
    assert journeys("quote 0.5kg dublin to belfast", ["belfast"]) == [("dublin", "belfast")]
    assert journeys("ship a parcel to belfast", ["belfast"]) == []
    assert journeys("Send it to Paris from London", []) == []


def test_a_call_takes_the_journey_the_request_states():
    # one end from nowhere; the places the wrong way round; the second of two journeys
    assert reply("overnight quote 0.5kg dublin to belfast", ("belfast", "London")) == [("dublin", "belfast")]
    assert reply("How much for 4 kg from Leeds to Glasgow?", ("Glasgow", "Leeds")) == [("Leeds", "Glasgow")]
    assert reply("quote: 20kg Rotterdam -> Antwerp, overnight. and 20kg Rotterdam -> Brussels overnight",
                 ("Rotterdam", "Antwerp"), ("Brussels", "Amsterdam")) == \
        [("Rotterdam", "Antwerp"), ("Rotterdam", "Brussels")]
    # no journey stated: the destination said after "from" swaps the two
    assert reply("my daughter is in Leuven. This time it's 3.2 kg, sending from Ghent. Cost?",
                 ("Leuven", "Ghent")) == [("Ghent", "Leuven")]


def test_a_call_the_request_agrees_with_stands():
    assert reply("ship a parcel to belfast from dublin", ("dublin", "belfast")) == [("dublin", "belfast")]
    assert reply("Send it to Paris from London", ("London", "Paris")) == [("London", "Paris")]
    assert reply("I'm in Leuven and want to send 2 kg to Ghent", ("Leuven", "Ghent")) == [("Leuven", "Ghent")]
    # two journeys share the call's place: which one is not for this rule to say
    assert reply("Leeds -> Glasgow or Leeds -> York?", ("Leeds", "Hull")) == [("Leeds", "Hull")]
