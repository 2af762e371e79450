"""The serving engine: one base model, any number of PEFT adapters, one worker thread.

Requests are rendered by the model's ChatFormat in the caller's thread (so a malformed request
fails there), then queued. The worker takes every request waiting (up to `max_batch`) and decodes
them together:

    rows  [prefix][pad p1 p1]  adapter "weather"   ┐ one forward per new token; each row gets
          [prefix][p2 p2 p2 p2]  base                ├ its own adapter's LoRA delta (stacked
          [prefix][pad pad p3 ]  adapter "email"     ┘ LoRA, see _stacked), the base row none

Each row stops at its own end-of-turn token or token limit; its text is fed to a StreamParser as
it grows, so callers get text deltas and whole tool calls while the batch runs. Requests that
arrive during a batch wait for the next one (static batching).
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

from llm_mcp.chat import ChatFormat, ParsedReply
from llm_mcp.chat.guide import apply_guide
from llm_mcp.chat.types import Message, ToolCall, normalize_tools
from llm_mcp.errors import LLMMCPError

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


MIN_PREFIX = 16  # a shared prompt prefix shorter than this is not worth a cache of its own


class Busy(LLMMCPError):
    """The queue is full: try again later (HTTP 429)."""


class Gone(LLMMCPError):
    """The request's adapter was unloaded while it waited (HTTP 404, as an unknown model)."""


class Fault(LLMMCPError):
    """Generation failed on the server's side, not because of the request (HTTP 500)."""


@dataclass
class Result:
    content: str
    tool_calls: list[ToolCall]
    raw: str  # the reply as generated (after any forced prefix), cut at the end of turn
    adapter: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop, length, tool_calls
    seconds: float
    errors: list = field(default_factory=list)  # unreadable call blocks (chat.toolcalls.ParseError)

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
    # set by the engine
    prompt: list[int] = field(default_factory=list)
    guide: Any = None  # chat.guide.CallGuide: names, parameters and enums held to the tools
    prefix: str = ""  # reply text forced by tool_choice
    result: Result | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Adapter:
    name: str
    path: Path
    key: str  # PEFT's name for it (module keys may not hold dots)
    card: dict


class Engine:
    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto",
                 gguf_file: str | None = None, chat_format: str = "auto", max_batch: int = 16,
                 max_queue: int = 64, max_new_tokens: int = 1024, max_prompt_tokens: int = 8192,
                 gather_s: float = 0.03, guided: bool = True):
        from llm_mcp.models import load_model

        loaded = load_model(model, dtype=dtype, device=device, gguf_file=gguf_file)
        self.spec, self.source = model, loaded.source
        self.name = loaded.source.name
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = next(self.model.parameters()).device
        self.fmt = ChatFormat(loaded.tokenizer, None if chat_format == "auto" else chat_format)
        self.max_batch, self.max_queue, self.gather_s = max_batch, max_queue, gather_s
        self.max_new_tokens, self.max_prompt_tokens = max_new_tokens, max_prompt_tokens
        self.guided = guided  # schema-guided decoding of calls (chat/guide.py)
        self.adapters: dict[str, Adapter] = {}
        self._prefixes: dict[str, tuple] = {}  # adapter key → (prefix ids, its KV cache), newest last
        self._keys = 0
        self._queue: deque[Request] = deque()
        self._cv = threading.Condition()
        self._model_lock = threading.RLock()  # the worker's batches, adapter (un)loading, evals
        self._prepare_lock = threading.Lock()  # requests are rendered one at a time
        self._closed = False
        self.batches: deque[int] = deque(maxlen=1000)  # sizes of recent batches (benchmarks, tests)
        self._worker = threading.Thread(target=self._work, name="llm-mcp-engine", daemon=True)
        self._worker.start()

    # ---- adapters -----------------------------------------------------------------------------

    def load_adapter(self, name: str, folder: Path) -> Adapter:
        """Load a PEFT adapter (safetensors only) under `name`; replaces one of the same name."""
        from peft import PeftModel

        from llm_mcp.adapters.card import read_card

        check_name(name)
        folder = Path(folder)
        if not (folder / "adapter_config.json").is_file():
            raise LLMMCPError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)")
        if not (folder / "adapter_model.safetensors").is_file():
            raise LLMMCPError(f"{folder} has no adapter_model.safetensors",
                              "only safetensors adapters are loaded (no pickle); re-save it with "
                              "save_pretrained(..., safe_serialization=True)")
        with self._model_lock:
            self._prefixes.clear()
            if name in self.adapters:
                self.unload_adapter(name)
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
            adapter = Adapter(name, folder, key, read_card(folder))
            self.adapters[name] = adapter
            return adapter

    def unload_adapter(self, name: str) -> None:
        with self._model_lock:
            self._prefixes.clear()
            adapter = self.adapter(name)
            if len(self.adapters) == 1:
                self.model = self.model.unload()  # back to the plain base model
            else:
                self.model.delete_adapter(adapter.key)
            del self.adapters[name]

    def adapter(self, name: str) -> Adapter:
        if name not in self.adapters:
            loaded = ", ".join(sorted(self.adapters)) or "none"
            raise LLMMCPError(f"no adapter {name!r} is loaded (loaded: {loaded})",
                              "load it first (MCP tool load_adapter, or `llm-mcp serve --adapter NAME=DIR`)")
        return self.adapters[name]

    def evaluate(self, cases: list, adapter: str | None = None, max_new_tokens: int = 128):
        """Tool-call accuracy (eval.run.predict) of the base or a loaded adapter; requests wait."""
        from llm_mcp.eval.run import predict

        with self._model_lock:
            fmt, key = self.fmt, "__base__"
            if adapter is not None:
                loaded = self.adapter(adapter)
                fmt = ChatFormat(self.tokenizer, loaded.card.get("chat_format") or self.fmt.kind)
                key = loaded.key
            _, scope = self._adapter_choice([key])
            with scope():
                return predict(self.model, fmt, cases, max_new_tokens=max_new_tokens, guided=self.guided)

    # ---- requests -----------------------------------------------------------------------------

    def prepare(self, req: Request) -> Request:
        """Check limits, render the prompt, apply tool_choice. Raises LLMMCPError. Callable from
        any thread (one renders at a time: a tokenizer is not safe to share between threads);
        servers call it off their event loop."""
        with self._prepare_lock:
            return self._prepare(req)

    def _prepare(self, req: Request) -> Request:
        if req.adapter is not None:
            self.adapter(req.adapter)
        if req.max_new_tokens is None:
            req.max_new_tokens = min(256, self.max_new_tokens)
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
        prompt = self.fmt.prompt_ids(messages, tools)
        req.guide = self.fmt.guide(tools) if self.guided else None
        if self.fmt.kind == "hermes" and choice not in ("auto", "none"):
            # the reply is made to start with a call (to that tool): a prefix the model continues
            # (with `required` the guide then holds the name to the tools)
            req.prefix = '<tool_call>{"name": "' if choice == "required" else f'<tool_call>{{"name": "{choice}", "arguments": '
            prompt = prompt + self.tokenizer(req.prefix, add_special_tokens=False)["input_ids"]
        if len(prompt) > self.max_prompt_tokens:
            raise LLMMCPError(f"the prompt is {len(prompt)} tokens, over the server's limit of "
                              f"{self.max_prompt_tokens}", "shorten the conversation or send fewer tools")
        req.prompt = prompt
        return req

    def submit(self, req: Request) -> Request:
        if not req.prompt:
            self.prepare(req)
        with self._cv:
            if self._closed:
                raise LLMMCPError("the engine is shutting down")
            if len(self._queue) >= self.max_queue:
                raise Busy(f"the server is busy ({len(self._queue)} requests waiting)", "retry in a moment")
            self._queue.append(req)
            self._cv.notify()
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
        if not req.prompt:  # rendering is CPU work: not on the event loop
            await loop.run_in_executor(None, self.prepare, req)
        self.submit(req)
        # `done` is set after the request's last event was handed over, so `end` comes last
        waiter = loop.run_in_executor(None, req.done.wait)
        waiter.add_done_callback(lambda _: events.put_nowait(end))
        while (event := await events.get()) is not end:
            if on_event:
                out = on_event(event)
                if asyncio.iscoroutine(out):
                    await out
        if req.error:
            raise req.error
        return req.result

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    # ---- the worker ---------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed and not self._queue:
                    return
                # Requests sent together arrive some milliseconds apart (each is rendered first):
                # gather while they keep coming, up to gather_s after the last one, 8 × gather_s in all.
                now = time.perf_counter()
                last, end = now, now + 8 * self.gather_s
                while len(self._queue) < self.max_batch and now < min(last + self.gather_s, end):
                    seen = len(self._queue)
                    self._cv.wait(min(last + self.gather_s, end) - now)
                    now = time.perf_counter()
                    if len(self._queue) > seen:
                        last = now
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            try:
                with self._model_lock:  # held: no adapter can be unloaded under the batch
                    batch = [req for req in batch if self._admit(req)]
                    if batch:
                        self._run(batch)
            except Exception as err:  # never kill the worker: fail the batch's requests
                log.exception("batch of %d failed", len(batch))
                for req in batch:
                    if not req.done.is_set():
                        req.error = Fault(f"generation failed on the server: {err}")
                        req.done.set()

    def _admit(self, req: Request) -> bool:
        """Can `req` run now? Its adapter may have been unloaded since it was queued: then it
        alone fails, the rest of the batch runs."""
        if req.adapter is None or req.adapter in self.adapters:
            return True
        req.error = Gone(f"adapter {req.adapter!r} was unloaded while the request waited",
                         "load it again, or ask another model")
        req.done.set()
        return False

    def _run(self, batch: list[Request]) -> None:
        import torch

        from llm_mcp.data.packing import common_prefix
        from llm_mcp.models.load import cache_kwarg

        started = time.perf_counter()
        self.batches.append(len(batch))
        b = len(batch)
        name = cache_kwarg(self.model)
        keys = [self.adapters[r.adapter].key if r.adapter else "__base__" for r in batch]
        # The prompt prefix every row shares (the system turn with the tool schemas, as a rule) is
        # computed once per adapter, or taken from the last batch that computed it.
        plen = min(len(r.prompt) for r in batch) - 1
        for r in batch[1:]:
            plen = common_prefix(batch[0].prompt, r.prompt, plen)
        plen = plen if plen >= MIN_PREFIX else 0
        cache = self._prefix_cache(batch[0].prompt[:plen], keys, name)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(r.prompt) for r in batch) - plen
        ids = torch.full((b, width), pad, dtype=torch.long, device=self.device)  # (b, width) left-padded
        mask = torch.ones((b, plen + width), dtype=torch.long, device=self.device)  # prefix + rest
        pos = torch.zeros((b, width), dtype=torch.long, device=self.device)
        for row, req in enumerate(batch):
            rest = req.prompt[plen:]
            gap = width - len(rest)
            ids[row, gap:] = torch.tensor(rest, device=self.device)
            mask[row, plen:plen + gap] = 0
            pos[row] = (torch.arange(width, device=self.device) - gap).clamp_min(0) + plen
        kwargs, scope = self._adapter_choice(keys)
        stops = torch.tensor(sorted(self.fmt.stop_token_ids), device=self.device)
        limits = torch.tensor([r.max_new_tokens for r in batch], device=self.device)
        temps = torch.tensor([r.temperature for r in batch], device=self.device, dtype=torch.float32)
        rows = [_Row(self.fmt, r) for r in batch]
        finished = torch.zeros(b, dtype=torch.bool, device=self.device)
        steps = 0
        with torch.inference_mode(), scope():
            while True:
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                                 logits_to_keep=1, **{name: cache}, **kwargs)
                logits = out.logits[:, -1].float()  # (b, vocab)
                for row in (~finished).nonzero().flatten().tolist():
                    if batch[row].guide is not None:
                        self._guide(logits[row], batch[row], rows[row])
                token = logits.argmax(-1)
                hot = temps > 0
                if hot.any():
                    probs = torch.softmax(logits[hot] / temps[hot, None], dim=-1)
                    token[hot] = torch.multinomial(probs, 1).squeeze(-1)
                steps += 1
                token = torch.where(finished, torch.full_like(token, pad), token)
                for row in (~finished).nonzero().flatten().tolist():
                    try:
                        rows[row].add(int(token[row]))
                    except Exception as err:  # this request alone fails; the others go on
                        log.exception("request in row %d failed", row)
                        rows[row].fail(Fault(f"generation failed on the server: {err}"))
                        finished[row] = True
                stopped = torch.isin(token, stops) & ~finished
                finished |= stopped | (steps >= limits)
                for row in finished.nonzero().flatten().tolist():
                    if not rows[row].closed:
                        rows[row].close("stop" if bool(stopped[row]) else "length",
                                        time.perf_counter() - started)
                if finished.all():
                    break
                ids = token[:, None]
                mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=self.device)], dim=1)
                pos = pos[:, -1:] + 1

    @staticmethod
    def _guide(logits, req: Request, row: _Row) -> None:
        """Hold the row's next token to its tools' schemas; a guide that fails is dropped (the
        request goes on unguided, the batch is untouched)."""
        try:
            apply_guide(logits, req.guide, row.stream.seen)
        except Exception:
            log.exception("the call guide failed; the request goes on unguided")
            req.guide = None

    def _prefix_cache(self, prefix: list[int], keys: list[str], name: str):
        """A KV cache of `prefix` with one row per request, each under its adapter's weights:
        the prefix's cache per adapter (`_stored_prefix`), copied and dealt out to the rows."""
        import copy

        import torch
        from transformers import DynamicCache

        if not prefix:
            return DynamicCache()
        distinct = sorted(set(keys))
        parts = [self._stored_prefix(prefix, key, name) for key in distinct]  # one row each
        work = copy.deepcopy(parts[0])  # the batch's rows grow their own copy
        if len(distinct) == 1:
            if len(keys) > 1:
                work.batch_repeat_interleave(len(keys))
            return work
        index = torch.tensor([distinct.index(k) for k in keys], device=self.device)
        for layer, *others in zip(work.layers, *(p.layers for p in parts[1:])):
            # keys/values: (1, kv_heads, prefix, head_dim) per adapter → (rows, …) in request order
            layer.keys = torch.cat([layer.keys, *(o.keys for o in others)])[index]
            layer.values = torch.cat([layer.values, *(o.values for o in others)])[index]
        return work

    def _stored_prefix(self, prefix: list[int], key: str, name: str):
        """The one-row KV cache of `prefix` under adapter `key`: the last one stored for that
        adapter, cropped to what it shares with `prefix` and extended by the rest (or computed
        afresh when it shares under MIN_PREFIX tokens); stored again for the next batch."""
        import torch
        from transformers import DynamicCache

        from llm_mcp.data.packing import common_prefix

        stored_ids, stored = self._prefixes.pop(key, ((), None))
        n = common_prefix(list(stored_ids), prefix, len(prefix)) if stored is not None else 0
        if n >= MIN_PREFIX:
            cache = stored
            if len(stored_ids) > n:
                cache.crop(-(len(stored_ids) - n))
        else:
            cache, n = DynamicCache(), 0
        if n < len(prefix):
            kwargs, scope = self._adapter_choice([key])
            with torch.inference_mode(), scope():
                self.model(input_ids=torch.tensor([prefix[n:]], device=self.device),
                           position_ids=torch.arange(n, len(prefix), device=self.device)[None],
                           use_cache=True, logits_to_keep=1, **{name: cache}, **kwargs)
        self._prefixes[key] = (tuple(prefix), cache)
        while len(self._prefixes) > 8:  # the least recently used goes
            self._prefixes.pop(next(iter(self._prefixes)))
        return cache

    def _adapter_choice(self, keys: list[str]):
        """(forward kwargs, context) for a batch whose rows use adapters `keys`: one adapter is
        set once; the base alone runs with the adapters disabled; a mix runs stacked LoRA
        (`_stacked`), or PEFT's per-row `adapter_names` where that cannot be used."""
        from contextlib import nullcontext

        peft = hasattr(self.model, "peft_config")
        if not peft:
            return {}, nullcontext
        if set(keys) == {"__base__"}:
            return {}, self.model.disable_adapter
        if len(set(keys)) == 1:
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
        from peft.tuners.lora.layer import Linear, LoraLayer

        names = sorted({k for k in keys if k != "__base__"})
        layers = [m for m in self.model.modules() if isinstance(m, LoraLayer)]
        if any(not isinstance(m, Linear) or any(n in m.lora_variant for n in names) or m.merged
               for m in layers):
            return None
        plan = []
        for layer in layers:
            here = [n for n in names if n in layer.lora_A]
            if not here:
                continue
            a = torch.cat([layer.lora_A[n].weight for n in here])  # (Σr, in)
            b = torch.cat([layer.lora_B[n].weight * layer.scaling[n] for n in here], dim=1)  # (out, Σr)
            mask = torch.zeros((len(keys), 1, a.shape[0]), dtype=a.dtype, device=a.device)
            start = 0
            for n in here:
                r = layer.lora_A[n].weight.shape[0]
                for row, k in enumerate(keys):
                    if k == n:
                        mask[row, :, start:start + r] = 1
                start += r
            plan.append((layer, a, b, mask))

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


class _Row:
    """One request's reply as it grows; closing it sets the request's result."""

    def __init__(self, fmt: ChatFormat, req: Request):
        from llm_mcp.serve.generate import ReplyStream

        self.req = req
        self.stream = ReplyStream(fmt, self._send, req.prefix)
        self.closed = False

    def _send(self, event) -> None:
        if self.req.on_event:
            try:
                self.req.on_event(event)
            except Exception:  # a client that went away must not stop the batch
                log.debug("event callback failed", exc_info=True)

    def add(self, token: int) -> None:
        self.stream.add([token])

    def fail(self, error: BaseException) -> None:
        self.closed = True
        self.req.error = error
        self.req.done.set()

    def close(self, reason: str, seconds: float) -> None:
        self.closed = True
        parsed: ParsedReply = self.stream.finish()
        raw = self.stream.text()
        calls, content = parsed.calls, parsed.content
        if self.req.tool_choice == "none" and calls:  # calls are not wanted: give the text
            calls, content = [], raw.strip()
        if calls and reason == "stop":
            reason = "tool_calls"
        self.req.result = Result(content, calls, raw, self.req.adapter, len(self.req.prompt),
                                 len(self.stream.ids), reason, seconds, list(parsed.errors))
        self.req.done.set()


