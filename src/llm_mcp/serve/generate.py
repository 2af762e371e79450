"""Generate one assistant turn: render with the ChatFormat, generate, stream-parse the reply.

This is the single-request path that `llm-mcp chat` uses; the serving Engine batches on top of
the same ChatFormat calls, so what is parsed here is what the server parses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

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


class _Streamer:
    """A transformers streamer: decodes the new tokens as they come and feeds the parser."""

    def __init__(self, fmt: ChatFormat, on_event: Callable[[Event], None] | None):
        self.fmt, self.on_event = fmt, on_event
        self.parser = fmt.stream_parser()
        self.ids: list[int] = []
        self.seen = ""  # text already fed to the parser
        self.prompt_done = False

    def put(self, value) -> None:
        if not self.prompt_done:  # generate() first hands over the prompt
            self.prompt_done = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self.fmt.reply_text(self.ids)
        if text.endswith("\ufffd"):  # half a multi-byte character: wait for the rest
            return
        self._feed(text)

    def _feed(self, text: str) -> None:
        if text.startswith(self.seen) and len(text) > len(self.seen):
            for event in self.parser.feed(text[len(self.seen):]):
                self._send(event)
            self.seen = text

    def _send(self, event: Event) -> None:
        if self.on_event:
            self.on_event(event)

    def end(self) -> None:
        self._feed(self.fmt.reply_text(self.ids))
        for event in self.parser.finish():
            self._send(event)


def generate_reply(model: Any, fmt: ChatFormat, messages: list, tools: Any = None, *,
                   max_new_tokens: int = 256, temperature: float = 0.0,
                   on_event: Callable[[Event], None] | None = None) -> Reply:
    """One assistant turn for `messages`, greedy unless temperature > 0."""
    import torch

    prompt = fmt.prompt_ids(messages, tools)
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
            pad_token_id=fmt.tokenizer.pad_token_id, streamer=streamer, **sampling,
        )
    seconds = time.perf_counter() - started
    new = out[0, len(prompt):].tolist()
    return Reply(streamer.parser.result(), fmt.reply_text(new), len(prompt), len(new), seconds)
