"""Parse model output into text and structured tool calls, whole or incrementally.

What the parser accepts (all formats that chat templates in the field render calls in):
  - `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks (Hermes, Qwen), anywhere in
    the text, any number, whitespace inside or not, a truncated last block;
  - a reply that is only a JSON call object or list of them (Llama 3.x), optionally after
    `<|python_tag|>` or `[TOOL_CALLS]` (Mistral);
  - "arguments" or "parameters", as an object or as a JSON string; two objects glued in one
    block; Python-style quoting ({'name': 'f'}) when the JSON is otherwise unreadable.
What cannot be read becomes a `ParseError` carrying the raw text: parsing never raises.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from llm_mcp.chat.more import Dropped
from llm_mcp.chat.route import Redo
from llm_mcp.chat.types import ToolCall
from llm_mcp.errors import LLMMCPError

OPEN, CLOSE = "<tool_call>", "</tool_call>"
BARE_PREFIXES = ("<|python_tag|>", "[TOOL_CALLS]")


@dataclass
class ParseError:
    raw: str  # the text that could not be read as a call
    reason: str


@dataclass
class ParsedReply:
    content: str
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    withheld: list[ToolCall] = field(default_factory=list)  # calls asked about instead (chat/ground.py)
    taken: list[ToolCall] = field(default_factory=list)  # calls as written, before values were taken from the conversation


def dump_call(call: ToolCall, context: str | None = None) -> str:
    """The JSON of one call as the built-in format writes it. `</` is escaped as `<\\/` (valid
    JSON) so that no argument value can close the `<tool_call>` block early.

    With `context` (the conversation before the call), a string value that the context writes
    after a space is written with one more leading space: `{"location": " Zurich"}` for "weather
    in Zurich". Byte-level BPE merges a word with the space before it (" Zurich" is one SmolLM2
    token, "Zurich" after a quote is three: Z ur ich), and a model copies a value most reliably
    when the call repeats the request's own tokens: measured, most misses of unseen values were
    slips in that first token (BUX for SBUX, Zuraforr for Zurich). A value that begins with
    whitespace always gets the extra space, so `parse(..., unspace=True)`, which removes one
    leading space from every string value, gives back exactly the value written.
    """
    arguments = call.arguments if context is None else _map_strings(
        call.arguments, lambda v: " " + v if _after_space(v, context) else v)
    text = json.dumps({"name": call.name, "arguments": arguments}, ensure_ascii=False)
    return text.replace("</", "<\\/")


def _after_space(value: str, context: str) -> bool:
    return value[:1].isspace() or (bool(value) and f" {value}" in context)


def _map_strings(value, fn):
    """`value` with `fn` applied to every string in it (not to object keys)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    return value


def _unspaced(calls: list[ToolCall]) -> list[ToolCall]:
    """One leading space off every string value: the inverse of `dump_call` with a context."""
    return [ToolCall(c.name, _map_strings(c.arguments, lambda v: v[1:] if v.startswith(" ") else v), c.id)
            for c in calls]


def _literal(node: ast.AST):
    """A Python/JSON literal from an AST node: dicts, lists, strings, numbers, true/false/null."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null", "True", "False", "None"):
        return {"true": True, "True": True, "false": False, "False": False}.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    raise ValueError(f"not a literal: {type(node).__name__}")


def _json_values(text: str) -> list:
    """Every JSON value in `text`, one after another (glued objects allowed). Raises ValueError."""
    decoder = json.JSONDecoder()
    values, i, n = [], 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if values and text[i] in ",;":  # "{...}, {...}"
            i += 1
            continue
        value, i = decoder.raw_decode(text, i)
        values.append(value)
    if not values:
        raise ValueError("empty")
    return values


def _values(text: str) -> list:
    try:
        return _json_values(text)
    except ValueError as json_err:
        try:
            return [_literal(ast.parse(text.strip(), mode="eval").body)]
        except (SyntaxError, ValueError, RecursionError, TypeError):
            raise json_err from None


def _calls_from_values(values: list) -> list[ToolCall]:
    calls = []
    for value in values:
        for obj in value if isinstance(value, list) else [value]:
            calls.append(ToolCall.from_any(obj))
    return calls


def decode_block(raw: str, unspace: bool = False) -> tuple[list[ToolCall], ParseError | None]:
    """The calls inside one `<tool_call>` block (`unspace`: see `parse`)."""
    if not raw.strip():
        return [], ParseError(raw, "empty tool call")
    try:
        calls = _calls_from_values(_values(raw))
        return (_unspaced(calls) if unspace else calls), None
    except ValueError as err:
        return [], ParseError(raw, f"not valid JSON: {err}")
    except LLMMCPError as err:
        return [], ParseError(raw, err.message)


def _strip_bare_prefix(text: str) -> tuple[str, bool]:
    stripped = text.strip()
    for prefix in BARE_PREFIXES:
        if stripped.startswith(prefix):
            return stripped[len(prefix):].strip(), True
    return stripped, False


def _bare_calls(text: str) -> list[ToolCall] | None:
    """Calls when the whole reply is JSON call objects, else None."""
    body, had_prefix = _strip_bare_prefix(text)
    if OPEN in text or not (had_prefix or body[:1] in ("{", "[")):
        return None
    try:
        values = _json_values(body)
        calls = _calls_from_values(values)
    except (ValueError, LLMMCPError):
        return None
    return calls or None


def parse(text: str, unspace: bool = False) -> ParsedReply:
    """Split a model reply into its text and its tool calls. `unspace`: remove one leading space
    from every string argument value (the built-in format's, see `dump_call`)."""
    bare = _bare_calls(text)
    if bare is not None:
        return ParsedReply("", _unspaced(bare) if unspace else bare)
    pieces, calls, errors = [], [], []
    rest = text
    while True:
        i = rest.find(OPEN)
        if i < 0:
            pieces.append(rest)
            break
        pieces.append(rest[:i])
        rest = rest[i + len(OPEN):]
        j = rest.find(CLOSE)
        block, rest = (rest, "") if j < 0 else (rest[:j], rest[j + len(CLOSE):])
        found, error = decode_block(block, unspace)
        calls.extend(found)
        if error:
            errors.append(error)
        if j < 0:
            break
    return ParsedReply("".join(pieces).strip(), calls, errors)


@dataclass
class TextDelta:
    text: str


@dataclass
class CallEvent:
    call: ToolCall


@dataclass
class ErrorEvent:
    error: ParseError


Event = TextDelta | CallEvent | ErrorEvent


class StreamParser:
    """Incremental `parse`: feed text chunks, get text deltas and complete calls.

    Never emits part of a `<tool_call>` tag as text: a chunk that ends in `<tool` is held back
    until the next one says what it is. A reply that starts like bare JSON (`{`, `[`, a call
    prefix) is held whole and parsed at `finish()`. For any chunking, the events add up to
    `parse()` of the whole text (content compared after stripping).
    """

    def __init__(self, unspace: bool = False, fix: Callable[[list[ToolCall]], list[ToolCall]] | None = None,
                 ground: Callable[[ToolCall], Any] | None = None, redo_from: int | None = None) -> None:
        self.unspace = unspace  # see `parse`
        self.fix = fix  # applied to each block's calls before they are emitted (chat/conform.py)
        # each call checked against the conversation (chat/ground.py): the call, its values
        # perhaps taken from the conversation, or a question in its place, asked at the end; or
        # a Redo (chat/route.py) for a call that begins at `redo_from` or later: the parser
        # stops, and `redo` says where the call began and its tool
        self.ground = ground
        self.redo_from = redo_from
        self.redo: tuple[int, str] | None = None
        # calls that begin at `asked_from` or later were asked for by the decoder (chat/more.py):
        # one that asks for nothing new is dropped, the parser stops, `dropped` says where it began
        self.asked_from: int | None = None
        self.dropped: int | None = None
        self.dropped_tool: str | None = None  # the tool of the call dropped (None: a block left open)
        self.added = 0  # calls asked for and kept
        # one more argument asked for (chat/more.py): (where its block began, the keys before it)
        self.arg_asked: tuple[int, tuple[str, ...]] | None = None
        self.filled = 0  # arguments asked for and kept
        self._fed = 0  # characters fed so far
        self._block_at: int | None = None  # where the open call block began, in the text fed
        self.withheld: list[ToolCall] = []
        self.taken: list[ToolCall] = []  # calls as the model wrote them, before values were taken
        self.questions: list[str] = []
        self._buf = ""
        self._in_call = False
        self._started = False  # decided between bare-JSON mode and text mode
        self._bare = False
        self.text, self.calls, self.errors = [], [], []

    def feed(self, chunk: str) -> list[Event]:
        if self.redo or self.dropped is not None:
            return []
        self._buf += chunk
        self._fed += len(chunk)
        return self._drain(final=False)

    def finish(self) -> list[Event]:
        events = [] if self.redo or self.dropped is not None else self._drain(final=True)
        for q in self.questions:
            self._emit_text(("\n" if "".join(self.text).strip() else "") + q, events)
        return events

    def drop_open(self) -> bool:
        """Drop a call block asked for that is still open (the reply ran out of tokens in it)."""
        if self._in_call and self.asked_from is not None and (self._block_at or 0) >= self.asked_from:
            self.dropped, self._buf, self._in_call = self._block_at, "", False
            return True
        return False

    @property
    def only_calls(self) -> bool:
        """Is the reply so far call blocks alone, each closed and kept (no text, question or error)?"""
        return bool(self.calls) and self._started and not self._bare and not self._in_call \
            and not self._buf.strip() and not "".join(self.text).strip() and not self.errors \
            and not self.questions and not self.redo and self.dropped is None

    def wants_more(self) -> bool:
        """Could one more call be kept here (chat/more.py): a reply of calls alone, and a value the
        conversation states that none of them holds?"""
        return self.only_calls and bool(self.takers())

    def takers(self) -> set[str]:
        """The tools that could take a value the conversation states and no call holds (chat/more.py)."""
        takers = getattr(self.ground, "takers", None)
        return takers() if takers is not None else set()

    @property
    def in_call(self) -> bool:
        """Is a call block open (begun, not closed)?"""
        return self._in_call and not self._bare

    def open_call(self) -> ToolCall | None:
        """The call of the open block if its arguments closed here, or None (not in a block, or
        inside a value)."""
        if not self.in_call:
            return None
        calls, error = decode_block(self._buf + "}}", self.unspace)
        return calls[0] if len(calls) == 1 and error is None else None

    def wants_arg(self) -> ToolCall | None:
        """Where the open block's arguments would close: its call, if one more argument could be
        kept (chat/more.py); else None."""
        wanted = getattr(self.ground, "wanted", None)
        if wanted is None or (self.arg_asked and self.arg_asked[0] == self._block_at):
            return None
        call = self.open_call()
        return call if call is not None and wanted(call) else None

    def ask_arg(self, call: ToolCall) -> None:
        """One more argument is written into the open block, whose call so far is `call` (chat/more.py)."""
        self.arg_asked = (self._block_at, tuple(call.arguments))

    def result(self) -> ParsedReply:
        text = "".join(self.text).strip()
        return ParsedReply(text, list(self.calls), list(self.errors), list(self.withheld), list(self.taken))

    def _emit_text(self, text: str, events: list) -> None:
        if text:
            self.text.append(text)
            events.append(TextDelta(text))

    def _emit_block(self, block: str, events: list) -> None:
        found, error = decode_block(block, self.unspace)
        self._emit(found, [error] if error else [], events)

    def _emit(self, calls: list[ToolCall], errors: list[ParseError], events: list) -> None:
        at = self._block_at  # None: bare JSON, or a block never closed
        asked = at is not None and self.asked_from is not None and at >= self.asked_from
        for call in self.fix(calls) if self.fix else calls:
            arg = None  # the argument asked for in this block, if any (chat/more.py)
            if self.arg_asked and at is not None and self.arg_asked[0] == at:
                arg = next((k for k in call.arguments if k not in self.arg_asked[1]), None)
            checked = (self.ground(call, asked, arg) if asked or arg else self.ground(call)) if self.ground else call
            if isinstance(checked, Dropped):
                self.dropped, self.dropped_tool, self._buf = at, call.name, ""
                return
            if isinstance(checked, Redo):
                if at is not None and self.redo_from is not None and at >= self.redo_from:
                    self.redo = (at, call.name)
                    return
                checked = checked.call  # not decoded again: the call stands
            if isinstance(checked, str):
                self.withheld.append(call)
                self.questions.append(checked)
                continue
            if checked is not call:
                self.taken.append(call)
                call = checked
            self.calls.append(call)
            self.added += asked
            self.filled += arg is not None and arg in call.arguments
            events.append(CallEvent(call))
        for error in errors:
            self.errors.append(error)
            events.append(ErrorEvent(error))

    def _drain(self, final: bool) -> list[Event]:
        events: list[Event] = []
        while True:
            if not self._started:
                head = self._buf.lstrip()
                if not head or (any(p.startswith(head) for p in BARE_PREFIXES) and not final):
                    if final:
                        self._emit_text(self._buf, events)
                        self._buf = ""
                    return events  # nothing decisive yet
                self._bare = head[0] in "{[" or any(head.startswith(p) for p in BARE_PREFIXES)
                self._started = True
            if self._bare:
                if final:
                    parsed = parse(self._buf, self.unspace)
                    self._buf = ""
                    self._emit_text(parsed.content, events)
                    self._emit(parsed.calls, parsed.errors, events)
                return events
            if not self._in_call:
                i = self._buf.find(OPEN)
                if i >= 0:
                    self._block_at = self._fed - len(self._buf) + i
                    self._emit_text(self._buf[:i], events)
                    self._buf = self._buf[i + len(OPEN):]
                    self._in_call = True
                    continue
                keep = 0 if final else next(
                    (k for k in range(min(len(OPEN) - 1, len(self._buf)), 0, -1)
                     if self._buf.endswith(OPEN[:k])), 0)
                self._emit_text(self._buf[: len(self._buf) - keep], events)
                self._buf = self._buf[len(self._buf) - keep:]
                return events
            j = self._buf.find(CLOSE)
            if j >= 0:
                self._emit_block(self._buf[:j], events)
                if self.redo or self.dropped is not None:
                    return events
                self._buf = self._buf[j + len(CLOSE):]
                self._in_call = False
                continue
            if final:  # a block the reply never closed: not decoded again
                self._block_at = None
                self._emit_block(self._buf, events)
                self._buf = ""
            return events
