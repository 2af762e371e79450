"""One assistant turn as `llm-mcp chat` makes it, and the reply stream every decode shares.

`ReplyStream` turns a reply's tokens into text and parse events as they arrive (the server's
engine, `llm-mcp eval` and `generate_reply` all decode through serve/decode.py, which feeds it),
so what is parsed here is what the server parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.chat import ChatFormat, ParsedReply
from llm_mcp.chat.toolcalls import Event


@dataclass
class Reply:
    parsed: ParsedReply
    raw: str  # the decoded reply, cut at the end-of-turn token
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    events: list = field(default_factory=list)
    redone: int = 0  # calls sent back and decoded again (chat/route.py)
    added: int = 0  # calls asked for beyond the model's own, and kept (chat/more.py)
    filled: int = 0  # arguments asked for beyond the model's own, and kept (chat/more.py)


class ReplyStream:
    """A reply as its tokens arrive: decoded, fed to the ChatFormat's StreamParser, the events
    (text deltas, whole tool calls) passed on. `prefix`: reply text forced before the first token
    (the engine's tool_choice; or, `resumed`, the part kept of a reply decoded again, its events
    already passed on). `tools` and `messages`: the calls conformed to the tools and checked
    against the conversation, as `ChatFormat.parse` does; `redo`: a call after the prefix that
    carries another tool's identifier, or a phrase where its own goes, is sent back
    (chat/route.py; `redo` then says where).

    Decoding is incremental (each token decoded once, with a few tokens before it for context,
    as vLLM's detokenizer does): `seen` is the reply so far, what the guide reads."""

    def __init__(self, fmt: ChatFormat, on_event: Callable[[Event], None] | None = None, prefix: str = "",
                 tools: Any = None, messages: list | None = None, redo: bool = False, resumed: bool = False):
        self.fmt, self.on_event, self.prefix = fmt, None if resumed else on_event, prefix
        self.parser = fmt.stream_parser(tools, messages, len(prefix) if redo else None)
        self.ids: list[int] = []
        self.seen = ""  # text already fed to the parser
        self._decoded = ""  # the text of ids[:_read]
        self._start = self._read = 0  # decode from _start; ids before _read are in _decoded
        self._feed(prefix)
        self.on_event = on_event

    @property
    def redo(self) -> tuple[int, str] | None:
        """(where in `seen` the call sent back begins, its tool), or None."""
        return self.parser.redo

    @property
    def dropped(self) -> int | None:
        """Where in `seen` a call asked for and dropped begins (chat/more.py), or None."""
        return self.parser.dropped

    def ask(self) -> None:
        """One more call block is written into the reply (chat/more.py): calls from here are asked for."""
        self.parser.asked_from = len(self.seen)

    def cut(self) -> bool:
        """Take the reply back to before the call asked for, where it was dropped or is still open
        (the tokens ran out in it); False where there is none."""
        if self.parser.dropped is None and not self.parser.drop_open():
            return False
        self.ids = self.ids[:self.ids_before(self.parser.dropped)]
        return True

    def ids_before(self, at: int) -> int:
        """How many of the reply's ids spell text that ends at or before `at` (in `seen`)."""
        n = len(self.ids)
        while n and len(self.prefix + self.fmt.reply_text(self.ids[:n])) > at:
            n -= 1
        return n

    def text(self) -> str:
        """The whole reply, cut at the end-of-turn token (decoded afresh)."""
        return self.prefix + self.fmt.reply_text(self.ids)

    def add(self, ids: Iterable[int]) -> None:
        self.ids.extend(ids)
        decode = self.fmt.tokenizer.decode
        before = decode(self.ids[self._start:self._read], skip_special_tokens=False)
        window = decode(self.ids[self._start:], skip_special_tokens=False)
        if window.endswith("\ufffd") or len(window) <= len(before):
            return  # half a multi-byte character (or nothing yet): wait for the rest
        self._decoded += window[len(before):]
        self._start, self._read = self._read, len(self.ids)
        self._feed(self.prefix + self.fmt.cut_at_stop(self._decoded))

    def finish(self) -> ParsedReply:
        self._feed(self.text())
        for event in self.parser.finish():
            self._send(event)
        return self.parser.result()

    def _feed(self, text: str) -> None:
        if text.startswith(self.seen) and len(text) > len(self.seen):
            for event in self.parser.feed(text[len(self.seen):]):
                self._send(event)
            self.seen = text

    def _send(self, event: Event) -> None:
        if self.on_event:
            self.on_event(event)


def generate_reply(model: Any, fmt: ChatFormat, messages: list, tools: Any = None, *,
                   max_new_tokens: int = REPLY_TOKENS, temperature: float = 0.0,
                   on_event: Callable[[Event], None] | None = None, guided: bool = True,
                   grounded: bool = True) -> Reply:
    """One assistant turn for `messages` on the decode core (serve/decode.py), greedy unless
    temperature > 0; `guided`: calls held to the tools' schemas (chat/guide.py), as the server
    does; `grounded`: calls checked against `messages` (chat/ground.py: miscopied values
    taken from them, a call whose identifier is not in them withheld and asked about). The
    model's active adapter (if any) answers in `fmt`."""
    from llm_mcp.serve.decode import Decoder, Row, decode_all

    prompt = fmt.prompt_ids(messages, tools)
    row = Row(prompt, fmt, max_new_tokens=max_new_tokens, temperature=temperature,
              guide=fmt.guide(tools) if guided else None, on_event=on_event, tools=tools,
              messages=messages if grounded else None)
    decode_all(Decoder(lambda: model), [row], batch=1)
    if row.error is not None:
        raise row.error
    parsed = row.stream.finish()
    return Reply(parsed, row.stream.text(), len(prompt), row.tokens, row.seconds, redone=row.redos,
                 added=row.stream.parser.added, filled=row.stream.parser.filled)
