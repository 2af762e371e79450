"""A list of enum options the model cut short takes the options its sentence names (chat/options.py)."""

from __future__ import annotations

from llm_mcp.chat import ToolCall
from llm_mcp.chat.options import Words, completed

HANDOVER = ["leave_at_door", "ring_bell", "leave_with_neighbor", "no_knock", "callOnArrival"]
SCHEMA = {"type": "object", "required": ["parcel"],
          "properties": {"parcel": {"type": "string"},
                         "how": {"type": "array", "items": {"type": "string", "enum": HANDOVER}},
                         "mode": {"type": "string", "enum": HANDOVER}}}


def _how(text: str, how: list) -> list:
    return completed(ToolCall("instruct", {"parcel": "PX-1", "how": how}), SCHEMA, text).arguments["how"]


def test_a_list_cut_short_takes_the_options_its_sentence_names_in_their_order():
    assert _how("PX-1: leave it at the door and call me when you arrive", ["callOnArrival"]) \
        == ["leave_at_door", "callOnArrival"]
    assert _how("ring the bell, and if there's no answer leave it with the neighbour", ["ring_bell"]) \
        == ["ring_bell", "leave_with_neighbor"]
    assert _how("Ring the bell. No knocking", ["ring_bell"]) == ["ring_bell"]  # another sentence
    # another parcel's words: an identifier between the options
    assert _how("PX-100200 no knock, PX-100201 leave at door", ["no_knock"]) == ["no_knock"]
    assert _how("PX-100200 no knock, PX-100201 leave at door", ["leave_at_door"]) == ["leave_at_door"]
    assert _how("same for both PX-1 and PX-2: leave at door, no knocking", ["no_knock"]) == ["leave_at_door", "no_knock"]
    # an option of the list not named this way ("phone me"): the others go after it
    assert _how("phone me on arrival, ring the bell and no knocking", ["callOnArrival", "ring_bell"]) \
        == ["callOnArrival", "ring_bell", "no_knock"]
    # an option that says no is named by its other word denied; the word alone names nothing
    assert _how("ring the bell but please DON'T knock", ["ring_bell"]) == ["ring_bell", "no_knock"]
    assert _how("ring the bell and knock loudly", ["ring_bell"]) == ["ring_bell"]
    assert Words("do not knock, the baby sleeps").named("no_knock") and not Words("knock twice").named("no_knock")


def test_a_list_is_left_as_the_model_wrote_it_where_nothing_more_is_named():
    for text, how in [("don't leave it at the door, ring the bell", ["ring_bell"]),  # negated
                      ("no need to ring the bell, just leave it with the neighbour", ["leave_with_neighbor"]),
                      ("phone me on arrival and leave it at the door", ["callOnArrival"]),  # its own not named
                      ("leave at door, ring bell", ["leave_at_door", "ring_bell"]),  # all there
                      ("leave it at the door", []),
                      ("the dog knocks things over at the door; leave it", ["leave_at_door"])]:
        assert _how(text, how) == how, text
    # no room: the schema's maxItems
    few = {**SCHEMA, "properties": {**SCHEMA["properties"], "how": {**SCHEMA["properties"]["how"], "maxItems": 1}}}
    call = ToolCall("instruct", {"parcel": "PX-1", "how": ["ring_bell"]})
    assert completed(call, few, "ring the bell and leave it at the door") is call
    # not a list: a single option stays the model's
    call = ToolCall("instruct", {"parcel": "PX-1", "mode": "ring_bell"})
    assert completed(call, SCHEMA, "ring the bell and leave it at the door") is call


def test_an_option_is_named_loosely_word_by_word():
    words = Words("Please leave it with the neighbour. Do not call on arrival!")
    assert words.named("leave_with_neighbor") == [(1, 0)]
    assert words.named("callOnArrival") == []  # "not" before it
    assert Words("knocking is fine, leaving is not").named("no_knock") == []
    assert Words("no knocking please").named("no_knock") == [(0, 0)]
    assert Words("leave it on the front step by the door").named("leave_at_door") == []  # too far apart


def test_an_option_is_mentioned_by_its_words_but_plain_verbs_in_one_sentence_none_denied():
    def mentioned(text: str) -> list:
        return [o for o in HANDOVER if Words(text).mentioned(o)]

    assert mentioned("PX-612207 - please call me when the driver arrives") == ["callOnArrival"]
    assert mentioned("if I'm out, give PX-205566 to the neighbours") == ["leave_with_neighbor"]
    assert mentioned("ring the bell") == ["ring_bell"]
    # a word denied, the verb's too; a short word alone ("door"); another sentence; an option that says no
    for text in ("don't leave it at the door", "knock on the door loudly", "no need to call on arrival",
                 "the driver arrives at noon. Call me", "no knocking"):
        assert mentioned(text) == [], text
