"""The serving engine: one base model, any number of PEFT adapters, one worker thread.

Requests are rendered in the caller's thread by their adapter's ChatFormat (the one its card
names: an adapter is served in the format it learned), then queued. The worker decodes them with
continuous batching (serve/decode.py): at every step the requests waiting join the running
batch (up to `max_batch` rows and `max_batch_tokens` cached tokens), and each reply leaves, and is
delivered, as soon as it ends:

    step   1  2  3  4  5  6  7  8
    req a  ■  ■  ■  ■  ■ ■ ■ ■           rows with their own adapter's LoRA delta (stacked LoRA,
    req b     ■  ■  ■  ✓                  see _stacked); each stops at its own end-of-turn token
    req c           ■  ■  ■  ■  ✓         or token limit, its text fed to a StreamParser as it
    req d                 ■  ■  ■ …       grows, so callers get deltas and whole tool calls.

`batching="static"` keeps the earlier policy for comparison (bench/serve_throughput.py): a batch
is gathered, then runs until its last reply ends; requests that arrive meanwhile wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.chat import ChatFormat, ParsedReply
from llm_mcp.chat.types import Message, ToolCall, normalize_tools
from llm_mcp.errors import LLMMCPError, NotFound
from llm_mcp.serve.decode import BASE, Decoder, Prefixes, Row

log = logging.getLogger(__name__)

# The one rule for adapter names, wherever a name arrives (MCP tools, jobs, the data directory):
# it becomes a folder under $LLM_MCP_HOME/adapters, so it starts with a letter or digit (never
# `.`, `..`, a hidden folder or something read as a command-line flag).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise LLMMCPError(f"bad adapter name {name!r}", "use 1-64 letters, digits, '.', '_' or '-', "
                          "starting with a letter or digit")
    return name


class Busy(LLMMCPError):
    """The queue is full: try again later (HTTP 429)."""


class Gone(LLMMCPError):
    """The request's adapter was unloaded while it waited (HTTP 404, as an unknown model)."""


class Fault(LLMMCPError):
    """Generation failed on the server's side, not because of the request (HTTP 500)."""


class Cancelled(LLMMCPError):
    """The caller went away (a closed stream): the request's row was freed."""


@dataclass
class Result:
    content: str
    tool_calls: list[ToolCall]
    raw: str  # the reply as generated (after any forced prefix), cut at the end of turn
    adapter: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop, length, tool_calls
    seconds: float  # decoding: from joining the batch to the last token
    errors: list = field(default_factory=list)  # unreadable call blocks (chat.toolcalls.ParseError)
    first_token_s: float = 0.0  # from submission to the first token (queue wait and prefill)
    total_s: float = 0.0  # from submission to the reply

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


@dataclass
class Request:
    messages: list
    tools: list = field(default_factory=list)
    adapter: str | None = None  # None: the base model
    max_new_tokens: int | None = None  # None: 256, or the server's limit if lower
    temperature: float = 0.0
    tool_choice: Any = "auto"  # auto, none, required, or a tool name
    on_event: Callable[[Any], None] | None = None  # TextDelta / CallEvent / ErrorEvent, worker thread
    on_done: Callable[[], None] | None = None  # after `done` is set (worker thread)
    # set by the engine
    prompt: list[int] = field(default_factory=list)
    guide: Any = None  # chat.guide.CallGuide: names, parameters and enums held to the tools
    ground: list | None = None  # the conversation its calls are checked against (chat/ground.py)
    prefix: str = ""  # reply text forced by tool_choice
    fmt: ChatFormat | None = None  # the adapter's chat format: renders, guides and parses
    cancelled: bool = False  # set by Engine.cancel
    row: Row | None = None  # while it decodes
    submitted: float = 0.0  # time.perf_counter() at submit
    result: Result | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Adapter:
    name: str
    path: Path
    key: str  # PEFT's name for it (module keys may not hold dots)
    card: dict
    fmt: ChatFormat  # the chat format it learned (its card's), the server's when the card has none


class Frontend:
    """What every backend shares (the local Engine here, serve/vllm.py's VLLMEngine): the chat
    formats of one tokenizer, the adapters by name, and requests checked and rendered in their
    adapter's format before they are handed to the backend's `submit`. A backend sets `name`,
    `spec`, `device`, `tokenizer`, `fmt`, the limits, `guided` and `grounded`, and implements `submit`,
    `cancel`, `close`, `load_adapter`, `unload_adapter` and `evaluate`."""

    def _setup_front(self, tokenizer, chat_format: str, *, max_new_tokens: int, max_prompt_tokens: int,
                     max_queue: int, guided: bool, grounded: bool = True) -> None:
        self.tokenizer = tokenizer
        self.fmt = ChatFormat(tokenizer, None if chat_format == "auto" else chat_format)
        self._formats = {self.fmt.kind: self.fmt}  # one ChatFormat per kind (its guide reads the vocabulary)
        self.max_new_tokens, self.max_prompt_tokens, self.max_queue = max_new_tokens, max_prompt_tokens, max_queue
        self.guided = guided  # schema-guided decoding of calls (chat/guide.py)
        self.grounded = grounded  # calls checked against the conversation (chat/ground.py)
        self.adapters: dict[str, Adapter] = {}
        self._leaving: set[str] = set()  # adapters being unloaded: their waiting requests fail
        self._prepare_lock = threading.Lock()  # requests are rendered one at a time

    def format(self, kind: str | None) -> ChatFormat:
        """The ChatFormat of `kind` (hermes, native) for this model; None: the server's."""
        kind = kind or self.fmt.kind
        if kind not in self._formats:
            self._formats[kind] = ChatFormat(self.tokenizer, kind)
        return self._formats[kind]

    def _adapter_files(self, name: str, folder: Path) -> tuple[dict, ChatFormat]:
        """Check a PEFT adapter folder (safetensors only) before loading it: its card and the
        chat format it learned."""
        from llm_mcp.adapters.card import read_card

        check_name(name)
        if not (folder / "adapter_config.json").is_file():
            raise LLMMCPError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)")
        if not (folder / "adapter_model.safetensors").is_file():
            raise LLMMCPError(f"{folder} has no adapter_model.safetensors",
                              "only safetensors adapters are loaded (no pickle); re-save it with "
                              "save_pretrained(..., safe_serialization=True)")
        card = read_card(folder)
        try:
            return card, self.format(card.get("chat_format"))
        except LLMMCPError as err:
            raise LLMMCPError(f"adapter {name!r} learned the {card.get('chat_format')!r} chat format, "
                              f"which this model cannot render: {err}") from err

    def adapter(self, name: str) -> Adapter:
        if name not in self.adapters:
            loaded = ", ".join(sorted(self.adapters)) or "none"
            raise NotFound(f"no adapter {name!r} is loaded (loaded: {loaded})",
                              "load it first (MCP tool load_adapter, or `llm-mcp serve --adapter NAME=DIR`)")
        return self.adapters[name]

    # ---- requests -----------------------------------------------------------------------------

    def prepare(self, req: Request) -> Request:
        """Check limits, render the prompt, apply tool_choice. Raises LLMMCPError. Callable from
        any thread (one renders at a time: a tokenizer is not safe to share between threads);
        servers call it off their event loop."""
        with self._prepare_lock:
            return self._prepare(req)

    def _prepare(self, req: Request) -> Request:
        fmt = self.fmt if req.adapter is None else self.adapter(req.adapter).fmt
        if req.max_new_tokens is None:
            req.max_new_tokens = min(REPLY_TOKENS, self.max_new_tokens)
        if not _is_int(req.max_new_tokens) or not 1 <= req.max_new_tokens <= self.max_new_tokens:
            raise LLMMCPError(f"max_new_tokens {req.max_new_tokens!r} is outside 1..{self.max_new_tokens} "
                              "(a whole number)",
                              "ask for fewer tokens (the server's limit is --max-new-tokens)")
        if not _is_number(req.temperature) or not 0 <= req.temperature <= 5:
            raise LLMMCPError(f"temperature {req.temperature!r} is outside 0..5 (a finite number)")
        if not isinstance(req.messages, list) or not req.messages:
            raise LLMMCPError("messages must be a non-empty list", "send at least one user message")
        messages = [Message.from_any(m) for m in req.messages]
        tools = normalize_tools(req.tools) if req.tools else []
        choice = _tool_choice(req.tool_choice)
        names = [t["name"] for t in tools]
        if choice not in ("auto", "none", "required") and choice not in names:
            raise LLMMCPError(f"tool_choice {choice!r} is not among the tools ({', '.join(names) or 'none'})")
        if choice == "required" and not tools:
            raise LLMMCPError("tool_choice is 'required' but no tools were given")
        req.tool_choice = choice
        if choice == "none":
            tools = []
        prompt = fmt.prompt_ids(messages, tools)
        req.guide = fmt.guide(tools) if self.guided else None
        # a call the client forces (required, a tool's name) is the client's to check
        req.ground = messages if self.grounded and choice == "auto" else None
        if fmt.kind == "hermes" and choice not in ("auto", "none"):
            # the reply is made to start with a call (to that tool): a prefix the model continues
            # (with `required` the guide then holds the name to the tools)
            req.prefix = '<tool_call>{"name": "' if choice == "required" else f'<tool_call>{{"name": "{choice}", "arguments": '
            prompt = prompt + self.tokenizer(req.prefix, add_special_tokens=False)["input_ids"]
        if len(prompt) > self.max_prompt_tokens:
            raise LLMMCPError(f"the prompt is {len(prompt)} tokens, over the server's limit of "
                              f"{self.max_prompt_tokens}", "shorten the conversation or send fewer tools")
        req.prompt, req.fmt = prompt, fmt
        return req

    def generate(self, req: Request, timeout: float | None = None) -> Result:
        """Submit and wait (blocking)."""
        self.submit(req)
        if not req.done.wait(timeout):
            raise LLMMCPError("the request timed out")
        if req.error:
            raise req.error
        return req.result

    async def agenerate(self, req: Request, on_event: Callable[[Any], Any] | None = None) -> Result:
        """Submit and await; `on_event` (may be async) gets the stream events in order."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        end = object()
        req.on_event = lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev)
        # called after the request's last event was handed over, so `end` comes last
        req.on_done = lambda: loop.call_soon_threadsafe(events.put_nowait, end)
        if not req.prompt:  # rendering is CPU work: not on the event loop
            await loop.run_in_executor(None, self.prepare, req)
        self.submit(req)
        try:
            while (event := await events.get()) is not end:
                if on_event:
                    out = on_event(event)
                    if asyncio.iscoroutine(out):
                        await out
        except asyncio.CancelledError:  # the caller went away: free the request's row
            self.cancel(req)
            raise
        if req.error:
            raise req.error
        return req.result

    def _unrunnable(self, req: Request) -> LLMMCPError | None:
        """Why `req` cannot start now, or None: it was cancelled, or its adapter was unloaded (or is
        on its way out, or was replaced by one of another chat format) since it was rendered."""
        if req.cancelled:
            return Cancelled("the request was cancelled")
        if req.adapter is None or (req.adapter in self.adapters and req.adapter not in self._leaving
                                   and self.adapters[req.adapter].fmt is req.fmt):
            return None
        return Gone(f"adapter {req.adapter!r} was unloaded while the request waited",
                    "load it again, or ask another model")

    @staticmethod
    def _result(req: Request, stream, finish_reason: str, tokens: int, seconds: float, first_at: float) -> None:
        """The reply in `stream` (serve/generate.ReplyStream) as the request's Result: calls
        dropped under tool_choice none, finish reason `tool_calls` for a reply that ends in calls."""
        parsed: ParsedReply = stream.finish()
        raw = stream.text()
        calls, content = parsed.calls, parsed.content
        if req.tool_choice == "none" and calls:  # calls are not wanted: give the text
            calls, content = [], raw.strip()
        reason = "tool_calls" if calls and finish_reason == "stop" else finish_reason
        req.result = Result(content, calls, raw, req.adapter, len(req.prompt), tokens, reason, seconds,
                            list(parsed.errors), first_at - req.submitted, time.perf_counter() - req.submitted)

    @staticmethod
    def _fail(req: Request, error: BaseException) -> None:
        req.error = error
        Frontend._done(req)

    @staticmethod
    def _done(req: Request) -> None:
        req.done.set()
        if req.on_done:
            try:
                req.on_done()
            except Exception:  # an event loop that is gone
                log.debug("done callback failed", exc_info=True)


class Engine(Frontend):
    """The local backend: the model in this process, decoded by serve/decode.py."""

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto",
                 gguf_file: str | None = None, chat_format: str = "auto", max_batch: int = 16,
                 max_queue: int = 64, max_new_tokens: int = 1024, max_prompt_tokens: int = 8192,
                 max_batch_tokens: int = 65536, max_prefill_tokens: int = 8192, prefill_chunk: int = 2048,
                 gather_s: float = 0.03, guided: bool = True, batching: str = "continuous",
                 prompt_cache_mb: int = 512, grounded: bool = True):
        from llm_mcp.models import load_model

        if batching not in ("continuous", "static"):
            raise LLMMCPError(f"batching {batching!r} is not 'continuous' or 'static'")
        if not _is_int(prefill_chunk) or prefill_chunk < 0:
            raise LLMMCPError(f"prefill_chunk {prefill_chunk!r} is not a whole number ≥ 0 (0: whole prompts)")
        if not _is_int(prompt_cache_mb) or prompt_cache_mb < 0:
            raise LLMMCPError(f"prompt_cache_mb {prompt_cache_mb!r} is not a whole number ≥ 0")
        loaded = load_model(model, dtype=dtype, device=device, gguf_file=gguf_file)
        self.spec, self.source = model, loaded.source
        self.name = loaded.source.name
        self.model = loaded.model
        self.device = next(self.model.parameters()).device
        self._setup_front(loaded.tokenizer, chat_format, max_new_tokens=max_new_tokens,
                          max_prompt_tokens=max_prompt_tokens, max_queue=max_queue, guided=guided,
                          grounded=grounded)
        self.max_batch, self.gather_s = max_batch, gather_s
        # rows × cached width at most (the KV cache's size); prompt tokens admitted together
        self.max_batch_tokens, self.max_prefill_tokens = max_batch_tokens, max_prefill_tokens
        self.batching = batching
        self._stacks: dict[tuple, list] = {}  # stacked LoRA weights per adapter set (_stacked)
        self._keys = 0
        self._queue: deque[Request] = deque()
        self._cv = threading.Condition()
        self._model_lock = threading.RLock()  # the worker's steps, adapter (un)loading, evals
        self._closed = False
        # prompts computed lately (tool schemas, conversations so far), newest kept within the budget
        self._prefixes = Prefixes(lambda: self.model, self._adapter_choice, max_bytes=prompt_cache_mb << 20)
        # joining prompts are prefilled `prefill_chunk` tokens at a time, a decode step of the
        # running rows between chunks: a long prompt no longer stalls every reply for its whole prefill
        self._decoder = Decoder(lambda: self.model, self._adapter_choice, self._prefixes, chunk=prefill_chunk,
                                max_rows=max_batch)
        self.batches: deque[int] = deque(maxlen=1000)  # rows running after each join (benchmarks, tests)
        self._worker = threading.Thread(target=self._work, name="llm-mcp-engine", daemon=True)
        self._worker.start()

    # ---- adapters -----------------------------------------------------------------------------

    def load_adapter(self, name: str, folder: Path) -> Adapter:
        """Load a PEFT adapter (safetensors only) under `name`; replaces one of the same name
        (its requests decoding now finish first, as for unload_adapter)."""
        from peft import PeftModel

        folder = Path(folder)
        card, fmt = self._adapter_files(name, folder)
        if name in self.adapters:
            self.unload_adapter(name)
        with self._model_lock:
            self._forget()
            self._keys += 1
            key = f"adapter_{self._keys}"
            try:
                if hasattr(self.model, "peft_config"):
                    self.model.load_adapter(str(folder), adapter_name=key)
                else:
                    self.model = PeftModel.from_pretrained(self.model, str(folder), adapter_name=key)
            except Exception as err:  # a wrong base, a broken file: the server lives on
                raise LLMMCPError(f"could not load adapter {name!r} from {folder}: {err}",
                                  "check that it was trained on this base model") from err
            self.model.eval()
            adapter = Adapter(name, folder, key, card, fmt)
            self.adapters[name] = adapter
            return adapter

    def unload_adapter(self, name: str, timeout: float = 600.0) -> None:
        """Unload `name`. Its requests already decoding finish first (up to `timeout` seconds);
        its queued ones fail alone (Gone)."""
        with self._model_lock:
            key = self.adapter(name).key
            self._leaving.add(name)
        try:
            deadline = time.monotonic() + timeout
            while True:
                with self._model_lock:
                    decoder = self._decoder
                    rows = decoder.rows + decoder.pending
                    busy = any(r.adapter == key for r in rows)
                    if not busy or time.monotonic() > deadline:
                        for row in rows:  # only past the deadline
                            row.cancelled = row.cancelled or row.adapter == key
                        if busy:
                            while decoder.pending:
                                decoder.prefill()
                            decoder.step()  # the cancelled rows leave
                        self._unload(name)
                        return
                with self._cv:
                    self._cv.wait(0.05)
        finally:
            self._leaving.discard(name)

    def _unload(self, name: str) -> None:
        self._forget()
        adapter = self.adapters[name]
        if len(self.adapters) == 1:
            self.model = self.model.unload()  # back to the plain base model
        else:
            self.model.delete_adapter(adapter.key)
        del self.adapters[name]

    def _forget(self) -> None:
        """Drop what was computed under the adapters loaded so far."""
        self._prefixes.clear()
        self._stacks.clear()

    def evaluate(self, cases: list, adapter: str | None = None, max_new_tokens: int = REPLY_TOKENS):
        """Tool-call accuracy (eval.run.predict) of the base or a loaded adapter; requests wait."""
        from llm_mcp.eval.run import predict

        with self._model_lock:
            fmt, key = self.fmt, BASE
            if adapter is not None:
                loaded = self.adapter(adapter)
                fmt, key = loaded.fmt, loaded.key
            _, scope = self._adapter_choice([key])
            with scope():
                return predict(self.model, fmt, cases, max_new_tokens=max_new_tokens, guided=self.guided,
                               grounded=self.grounded)

    def submit(self, req: Request) -> Request:
        if not req.prompt:
            self.prepare(req)
        with self._cv:
            if self._closed:
                raise LLMMCPError("the engine is shutting down")
            if len(self._queue) >= self.max_queue:
                raise Busy(f"the server is busy ({len(self._queue)} requests waiting)", "retry in a moment")
            req.submitted = time.perf_counter()
            self._queue.append(req)
            self._cv.notify()
        return req

    def cancel(self, req: Request) -> None:
        """Stop `req`: taken off the queue, or its row leaves the batch at the next step."""
        req.cancelled = True
        if req.row is not None:
            req.row.cancelled = True
        with self._cv:
            if req in self._queue:
                self._queue.remove(req)
                self._fail(req, Cancelled("the request was cancelled"))

    def close(self, drain_s: float = 60.0) -> None:
        """Take no more requests, give those queued or running `drain_s` seconds to finish,
        cancel the rest, and wait for the worker to end: a forward pass still running on a
        daemon thread when the interpreter exits aborts the process."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if threading.current_thread() is self._worker:
            return
        self._worker.join(drain_s)
        if self._worker.is_alive():
            with self._cv:
                queued = list(self._queue)
            for req in queued:
                self.cancel(req)
            for row in [*self._decoder.rows, *self._decoder.pending]:
                row.cancelled = True
            self._worker.join(drain_s)

    # ---- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        decoder = self._decoder
        while True:
            with self._cv:
                while not self._queue and decoder.idle and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue and decoder.idle:
                    return
                idle = decoder.idle
                if idle:
                    self._gather()
                joining = self._take() if idle or (self.batching == "continuous" and not decoder.pending) else []
            try:
                with self._model_lock:  # held: no adapter is unloaded under a step
                    joining = [req for req in joining if self._admit(req)]
                    if joining:
                        decoder.admit([self._row(req) for req in joining])
                    if decoder.pending:  # one chunk of the joining prompts, then a step of the rest
                        decoder.prefill()
                        if not decoder.pending:
                            self.batches.append(len(decoder.rows))
                    if decoder.rows:
                        decoder.step()
            except Exception:  # never kill the worker: the rows concerned failed (Fault)
                log.exception("generation failed")
            with self._cv:
                self._cv.notify_all()  # unload_adapter waits for rows to leave

    def _gather(self) -> None:
        """Requests sent together arrive some milliseconds apart (each is rendered first): with
        the batch empty, gather while they keep coming, up to gather_s after the last one,
        8 × gather_s in all, so that they are prefilled together. Called under _cv."""
        now = time.perf_counter()
        last, end = now, now + 8 * self.gather_s
        while len(self._queue) < self.max_batch and now < min(last + self.gather_s, end):
            seen = len(self._queue)
            self._cv.wait(min(last + self.gather_s, end) - now)
            now = time.perf_counter()
            if len(self._queue) > seen:
                last = now

    def _take(self) -> list[Request]:
        """The requests that join at this step, first come first served: while a row is free,
        the cache stays within max_batch_tokens and the prompts within max_prefill_tokens
        (one request always joins an empty batch). Called under _cv."""
        rows, width = len(self._decoder.rows), self._decoder.width
        out: list[Request] = []
        prefill = 0
        while self._queue and rows + len(out) < self.max_batch:
            req = self._queue[0]
            need = len(req.prompt) + req.max_new_tokens
            if rows + len(out) and ((rows + len(out) + 1) * max(width, need) > self.max_batch_tokens
                                    or prefill + len(req.prompt) > self.max_prefill_tokens):
                break
            out.append(self._queue.popleft())
            prefill += len(req.prompt)
            width = max(width, need)
        return out

    def _admit(self, req: Request) -> bool:
        """Can `req` run now? Its adapter may have been unloaded (or be on its way out) since it
        was queued: then it alone fails, the others run."""
        error = self._unrunnable(req)
        if error is not None:
            self._fail(req, error)
        return error is None

    def _row(self, req: Request) -> Row:
        key = self.adapters[req.adapter].key if req.adapter else BASE
        row = Row(req.prompt, req.fmt, key, req.max_new_tokens, req.temperature, req.guide, req.prefix,
                  req.on_event, lambda row: self._finish(req, row), req.tools, req.ground,
                  cancelled=req.cancelled)
        req.row = row
        return row

    @staticmethod
    def _finish(req: Request, row: Row) -> None:
        """The row left the batch: the request's result (or error), then `done`."""
        req.row = None
        if row.finish_reason == "error":
            return Frontend._fail(req, Fault(f"generation failed on the server: {row.error}"))
        if row.finish_reason == "cancelled":
            return Frontend._fail(req, Cancelled("the request was cancelled"))
        Frontend._result(req, row.stream, row.finish_reason, row.tokens, row.seconds, row.first_at)
        Frontend._done(req)

    def _adapter_choice(self, keys: list[str]):
        """(forward kwargs, context) for a batch whose rows use adapters `keys`: one adapter is
        set once; the base alone runs with the adapters disabled; a mix runs stacked LoRA
        (`_stacked`), or PEFT's per-row `adapter_names` where that cannot be used."""
        from contextlib import nullcontext

        peft = hasattr(self.model, "peft_config")
        if not peft:
            return {}, nullcontext
        if set(keys) == {BASE}:
            return {}, self.model.disable_adapter
        if len(set(keys)) == 1:
            if self.model.active_adapters != [keys[0]]:  # set_adapter walks every module: not every step
                self.model.set_adapter(keys[0])
            return {}, nullcontext
        stacked = self._stacked(keys)
        if stacked is not None:
            return {}, stacked
        return {"adapter_names": keys}, nullcontext

    def _stacked(self, keys: list[str]):
        """A context for a mixed batch: the adapters are disabled and every LoRA layer gets a
        forward hook adding, for all rows at once,

            Δ = ((x · A_catᵀ) ⊙ M) · B_catᵀ      A_cat (Σr, in): the batch's adapters' A stacked
                                                   B_cat (out, Σr): their B × scaling, side by side
                                                   M (rows, 1, Σr): 1 on each row's own rank block

        — the arithmetic of PEFT's per-row path (each row gets B_k·A_k·x·s_k of its adapter k,
        base rows nothing) in one pass instead of one per adapter (measured: PEFT's path made a
        mixed decode step ~20% slower than a single-adapter one). None when an adapter is not
        plain LoRA on Linear layers (DoRA and other variants, embeddings): PEFT's path then."""
        import contextlib

        import torch

        names = tuple(sorted({k for k in keys if k != BASE}))
        if names not in self._stacks:
            self._stacks[names] = self._stack(names)
        stack = self._stacks[names]
        if stack is None:
            return None
        plan, masks = [], {}
        for layer, a, b, blocks in stack:
            if blocks not in masks:  # layers adapted by the same adapters share one mask
                mask = torch.zeros((len(keys), 1, a.shape[0]), dtype=a.dtype, device=a.device)
                for name, start, r in blocks:
                    for row, k in enumerate(keys):
                        if k == name:
                            mask[row, :, start:start + r] = 1
                masks[blocks] = mask
            plan.append((layer, a, b, masks[blocks]))

        @contextlib.contextmanager
        def scope():
            handles = []
            with self.model.disable_adapter():
                for layer, a, b, mask in plan:
                    def hook(module, args, out, a=a, b=b, mask=mask):
                        x = args[0].to(a.dtype)  # (rows, seq, in)
                        return out + (((x @ a.T) * mask) @ b.T).to(out.dtype)
                    handles.append(layer.register_forward_hook(hook))
                try:
                    yield
                finally:
                    for h in handles:
                        h.remove()
        return scope

    def _stack(self, names: tuple[str, ...]) -> list | None:
        """For each LoRA layer: (layer, A_cat, B_cat, its rank blocks (name, start, r)) over the
        adapters `names` it holds; None when one is not plain LoRA on a Linear layer."""
        import torch
        from peft.tuners.lora.layer import Linear, LoraLayer

        layers = [m for m in self.model.modules() if isinstance(m, LoraLayer)]
        if any(not isinstance(m, Linear) or any(n in m.lora_variant for n in names) or m.merged
               for m in layers):
            return None
        stack = []
        for layer in layers:
            here = [n for n in names if n in layer.lora_A]
            if not here:
                continue
            a = torch.cat([layer.lora_A[n].weight for n in here])  # (Σr, in)
            b = torch.cat([layer.lora_B[n].weight * layer.scaling[n] for n in here], dim=1)  # (out, Σr)
            blocks, start = [], 0
            for n in here:
                r = layer.lora_A[n].weight.shape[0]
                blocks.append((n, start, r))
                start += r
            stack.append((layer, a, b, tuple(blocks)))
        return stack


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _tool_choice(choice) -> str:
    """auto, none, required or a tool name, from those strings or OpenAI's
    {"type": "function", "function": {"name": ...}} (or {"name": ...})."""
    if choice is None or choice == "":
        return "auto"
    if isinstance(choice, dict):
        inner = choice.get("function", choice)
        name = inner.get("name") if isinstance(inner, dict) else None
        if isinstance(name, str) and name:
            return name
    elif isinstance(choice, str):
        return choice
    raise LLMMCPError(f"tool_choice {json.dumps(choice, default=str)[:100]} is not understood",
                      'use "auto", "none", "required" or {"type": "function", "function": {"name": "..."}}')
