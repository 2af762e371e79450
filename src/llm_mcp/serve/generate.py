"""Generate one assistant turn: render with the ChatFormat, generate, stream-parse the reply.

This is the single-request path that `llm-mcp chat` uses; the serving Engine batches on top of
the same ChatFormat calls, so what is parsed here is what the server parses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from llm_mcp.chat import ChatFormat, ParsedReply
from llm_mcp.chat.guide import apply_guide
from llm_mcp.chat.toolcalls import Event


@dataclass
class Reply:
    parsed: ParsedReply
    raw: str  # the decoded reply, cut at the end-of-turn token
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    events: list = field(default_factory=list)


class ReplyStream:
    """A reply as its tokens arrive: decoded, fed to the ChatFormat's StreamParser, the events
    (text deltas, whole tool calls) passed on. `prefix`: reply text forced before the first token
    (the engine's tool_choice)."""

    def __init__(self, fmt: ChatFormat, on_event: Callable[[Event], None] | None = None, prefix: str = ""):
        self.fmt, self.on_event, self.prefix = fmt, on_event, prefix
        self.parser = fmt.stream_parser()
        self.ids: list[int] = []
        self.seen = ""  # text already fed to the parser
        self._feed(prefix)

    def text(self) -> str:
        """The reply so far, cut at the end-of-turn token."""
        return self.prefix + self.fmt.reply_text(self.ids)

    def add(self, ids: Iterable[int]) -> None:
        self.ids.extend(ids)
        text = self.text()
        if not text.endswith("\ufffd"):  # half a multi-byte character: wait for the rest
            self._feed(text)

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


class _Streamer:
    """A transformers streamer around a ReplyStream."""

    def __init__(self, fmt: ChatFormat, on_event: Callable[[Event], None] | None):
        self.reply = ReplyStream(fmt, on_event)
        self.parsed: ParsedReply | None = None
        self.prompt_done = False

    def put(self, value) -> None:
        if not self.prompt_done:  # generate() first hands over the prompt
            self.prompt_done = True
            return
        self.reply.add(int(t) for t in value.reshape(-1).tolist())

    def end(self) -> None:
        self.parsed = self.reply.finish()


def generate_reply(model: Any, fmt: ChatFormat, messages: list, tools: Any = None, *,
                   max_new_tokens: int = 256, temperature: float = 0.0,
                   on_event: Callable[[Event], None] | None = None, guided: bool = True) -> Reply:
    """One assistant turn for `messages`, greedy unless temperature > 0; `guided`: tool names,
    parameter names and enums held to the schemas (chat/guide.py), as the server does."""
    import torch
    from transformers import LogitsProcessorList

    prompt = fmt.prompt_ids(messages, tools)
    guide = fmt.guide(tools) if guided else None

    def hold(ids, scores):  # ids (1, seq), scores (1, vocab)
        apply_guide(scores[0], guide, fmt.reply_text(ids[0, len(prompt):].tolist()))
        return scores

    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    streamer = _Streamer(fmt, on_event)
    sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {
        "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens, eos_token_id=fmt.stop_token_ids,
            pad_token_id=fmt.tokenizer.pad_token_id, streamer=streamer,
            logits_processor=LogitsProcessorList([hold] if guide else []), **sampling,
        )
    seconds = time.perf_counter() - started
    new = out[0, len(prompt):].tolist()
    return Reply(streamer.parsed, fmt.reply_text(new), len(prompt), len(new), seconds)
