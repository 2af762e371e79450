"""A call that puts another tool's identifier where none goes, or a phrase where its own goes, is decoded again.

Asked "please deliver PX-482913 on 20 August 2027 instead", a small model may answer
`schedule_pickup(address="PX-482913", pickup_date="2027-08-20")`: the tracking number put
where an address goes, in a tool that has no place for one. The number has the shape that
other tools' identifier parameters show ("Tracking number, like PX-482913"), and the called
tool has no parameter of that shape: the model chose the wrong tool. Such a call is sent back
(`Redo`): the decode core (serve/decode.py, `Row.redo`) decodes the reply again from just
before it, that tool excluded for this call by the guide (chat/guide.py, `RedoGuide`), and the
model's next choice takes its place:

    deliver PX-482913 on 20 August 2027 instead, evening
        schedule_pickup(address="PX-482913", …)  →  reschedule_delivery(tracking_number="PX-482913", …)

"Another tool's identifier": a word the conversation states that has the shape (chat/mentions.py
`identifiers`) of the example an identifier parameter's description shows (chat/kinds.py
`example_of`; the parameter is one whose values can only be copied, chat/ground.py), letters
and digits both (an all-letter example, "AAPL", would make every word an identifier). A call
sent back is one with such a value at the top of its arguments, in a parameter that is not an
identifier parameter of that shape, to a tool that has none.

The other way round too (`unshaped`): asked "Pick up from Calle Mayor 5, Madrid on 2027-07-14",
the model may answer `reschedule_delivery(tracking_number="calle mayor 5, Madrid", …)`, a phrase
of several words with letters and digits where an identifier like "PX-482913" goes, while the
conversation states no identifier of that shape at all. The tool needs what the user never
gave: the model chose the wrong tool, and the call is sent back the same way. (A value of one
word, "AB123CD", may be the user's own id in another form, and stands; one without the
example's digits, "my parcel", is asked about, chat/ground.py `unstated`.) Everything else
stands.

Only a decoder that can go back does this (the local engine, `llm-mcp chat`, `llm-mcp eval`,
with the guide on); a reply parsed whole (vLLM's, `ChatFormat.parse`) keeps such a call.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_mcp.chat import mentions
from llm_mcp.chat.kinds import example_of
from llm_mcp.chat.stated import copied_kind
from llm_mcp.chat.types import Resolver, ToolCall, normalize

MAX_REDOS = 2  # calls sent back per reply: each decodes the rest of the reply again


@dataclass(frozen=True)
class Redo:
    """A call sent back: decode it again without its tool."""
    call: ToolCall


def id_shapes(tools: list[dict]) -> dict[str, dict[str, str]]:
    """Per tool (normalised), its identifier parameters' example shapes: {tool: {param: shape}}."""
    shapes: dict[str, dict[str, str]] = {}
    for tool in tools:
        schema = tool.get("parameters") or {}
        resolve = Resolver(schema)
        own = {}
        for name, spec in (resolve(schema).get("properties") or {}).items():
            spec = resolve(spec)
            example = example_of(spec) if copied_kind(name, spec) == "identifier" else None
            shape = mentions.shape(example) if example else ""
            if "a" in shape and "9" in shape:
                own[name] = shape
        shapes[tool["name"]] = own
    return shapes


def misrouted(call: ToolCall, shapes: dict[str, dict[str, str]], stated) -> bool:
    """Does `call` put a stated identifier of another tool's shape (see the module doc) where its
    own tool has no identifier parameter of that shape? `stated`: chat.stated.Stated."""
    own = shapes.get(call.name)
    if own is None:
        return False
    theirs = {s for tool, params in shapes.items() if tool != call.name for s in params.values()}
    for name, value in call.arguments.items():
        if name in own or not isinstance(value, str):
            continue
        shape = mentions.shape(value)
        if shape not in theirs or shape in own.values():
            continue
        # the stated words of that shape (a shape is its own example: "a9" for "PX-482913")
        ids = {normalize(r) for m in stated("identifier", shape) for r in m.readings}
        if normalize(value) in ids:
            return True
    return False


def unshaped(call: ToolCall, shapes: dict[str, dict[str, str]], stated) -> bool:
    """Does `call` put a phrase of several words, with letters and digits, into an identifier
    parameter of its tool ("calle mayor 5, Madrid" where "PX-482913" goes), where the conversation
    states no identifier of that parameter's shape (see the module doc)? `stated`: chat.stated.Stated."""
    for name, shape in shapes.get(call.name, {}).items():
        value = call.arguments.get(name)
        if not isinstance(value, str) or len(value.split()) < 2 or mentions.shape(value) == shape \
                or not set(shape) <= set(mentions.shape(value)):
            continue
        if not stated("identifier", shape):
            return True
    return False
