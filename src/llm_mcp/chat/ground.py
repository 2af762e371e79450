"""Calls whose identifiers come from nowhere are withheld, and the user is asked for them.

A small model asked "reschedule my delivery please" may answer
`reschedule_delivery(tracking_number="PX-nnnn")`: the tool's own example, or a number it saw in
training. Some values can only be copied, never inferred: an order or tracking number, an email
address, a phone number, a URL, a UUID. When such a value of a call is nowhere in the
conversation (any turn's text, an earlier call's arguments, a tool's result), the call is not
made; the reply asks for what is missing instead:

    reschedule my delivery please   →   To call reschedule_delivery I need the tracking number: what is it?

Which parameters hold such values is read from their schema (chat/kinds.py: the format, the
name, the description): strings without an enum whose kind is `identifier`, `email`, `phone`,
`url` or `uuid`, at the top of the arguments or as the items of a string array, and whose value
has that kind's shape (an address has an "@", an identifier no spaces). Values are
compared as `llm-mcp eval` compares strings (lower case, no spaces or punctuation), so "px 482913"
grounds "PX-482913". A short all-letter code (an airport's "CDG", a currency's "USD") can be
known from a name, so it is never withheld. Everything else (cities, names, dates, free text) is
the model's to infer or rephrase and is left alone.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from llm_mcp.chat.kinds import example_of, kind_of
from llm_mcp.chat.types import Message, Resolver, ToolCall, normalize

COPIED = ("identifier", "email", "phone", "url", "uuid")  # kinds a value can only be copied as
ID_WORDS = {"id", "ids", "code", "number", "num", "no", "ref", "reference", "tracking", "sku", "serial",
            "uuid", "guid", "key", "pnr", "iban"}


def conversation_text(messages: list) -> str:
    """Everything the conversation says, flattened for `ungrounded`: every turn's text and the
    arguments of the calls made so far (an id a tool returned may be used in the next call)."""
    parts = []
    for m in messages:
        m = Message.from_any(m)
        parts.append(m.content)
        parts += [str(v) for c in m.tool_calls for v in leaves(c.arguments)]
    return normalize(" ".join(parts))


def ungrounded(call: ToolCall, schema: dict, said: str) -> dict[str, str]:
    """The parameters of `call` whose value must have been copied (see the module doc) but is not
    in `said` (a `conversation_text`), each with its kind."""
    resolve = Resolver(schema)
    props = resolve(schema).get("properties") or {}
    missing = {}
    for name, value in call.arguments.items():
        spec = resolve(props.get(name))
        if spec.get("type") == "array" and isinstance(value, list):
            spec, values = resolve(spec.get("items")), value
        else:
            values = [value]
        if spec.get("type") != "string" or "enum" in spec or "const" in spec:
            continue
        kind = _copied_kind(name, spec)
        if kind and any(isinstance(v, str) and _looks(kind, v) and normalize(v) not in said for v in values):
            missing[name] = kind
    return missing


def _copied_kind(name: str, spec: dict) -> str | None:
    """The kind of a parameter whose values can only be copied, or None. An identifier is named
    so in so many words (`order_id`, `trackingNumber`) or shown by an example in its description:
    `kind_of` finds "id" inside "provider" too, which is fine for drawing a value, not for this."""
    kind = kind_of(name, spec)
    if kind not in COPIED:
        return None
    words = set(re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()))
    if kind == "identifier" and not (words & ID_WORDS or example_of(spec)):
        return None
    return kind


def _looks(kind: str, value: str) -> bool:
    """Does `value` have the shape of its kind? (An `email_body` is an "email" parameter by its
    name; what the model writes there is not an address, and is not checked.) A short all-letter
    code ("CDG", "USD") can be known from a name, so it is not checked either."""
    value = value.strip()
    if kind == "email":
        return "@" in value
    if kind == "phone":
        return sum(c.isdigit() for c in value) >= 5
    if kind == "url":
        return " " not in value and ("." in value or "/" in value)
    if kind == "uuid":
        return len(normalize(value)) >= 8
    return bool(normalize(value)) and not any(c.isspace() for c in value) and not (value.isalpha() and len(value) <= 4)


NOUNS = {"email": "email address", "phone": "phone number", "url": "web address", "uuid": "id"}


def question(call: ToolCall, missing: dict[str, str]) -> str:
    """What the reply says in place of a withheld call (`missing`: `ungrounded`'s answer)."""
    words = list(dict.fromkeys(NOUNS.get(kind) or name.replace("_", " ").strip()
                               for name, kind in missing.items()))
    said = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"To call {call.name} I need the {said}: what {'is it' if len(words) == 1 else 'are they'}?"


def grounder(tools: list[dict], messages: list | None) -> Callable[[ToolCall], str | None] | None:
    """For the calls of a reply to `messages` with `tools` (normalised): the question that
    replaces a call with an ungrounded value, or None for a call that stands. None when there is
    nothing to check."""
    if messages is None or not tools:
        return None
    schemas = {t["name"]: t.get("parameters") or {} for t in tools}
    said = conversation_text(messages)

    def check(call: ToolCall) -> str | None:
        missing = ungrounded(call, schemas[call.name], said) if call.name in schemas else {}
        return question(call, missing) if missing else None

    return check


def leaves(value: Any):
    """The scalars inside a JSON value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value
