"""The decode core: rows that join a running batch and leave it as they finish.

The server's engine, `llm-mcp eval` and `llm-mcp chat` all decode here. A row is one reply: its
prompt ids, its chat format (the adapter's own), its adapter, its guide, sampling and limits. The
batch is a padded KV cache with a row per reply:

    cache (rows, kv_heads, L, head_dim), mask (rows, L)
    row 0  [pad pad  p0  p0  p0  r0 r0 r0]   running
    row 1  [ p1  p1  p1  p1  p1  r1 r1 r1]   running
    row 2  [pad pad pad  p2  p2  p2  p2 p2]  joined at this step

`join` prefills new rows together (the prompt prefix they share from `Prefixes`, their rests
left-padded against it), picks each one's first token and lays their cache beside the running
rows, left-padded to the same width. `step` feeds every row its last token (position ids per
row, the padding masked out) and picks the next; a row that ends (its end-of-turn token, its
limit, or cancelled) leaves at once, its reply delivered then, its cache row dropped, and the
columns no remaining row needs are cut off the left. Greedy replies equal `model.generate`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from llm_mcp.chat import ChatFormat
from llm_mcp.chat.guide import apply_guide
from llm_mcp.data.packing import common_prefix

log = logging.getLogger(__name__)

MIN_PREFIX = 16  # a shared prompt prefix shorter than this is not worth a cache of its own
BASE = "__base__"  # the adapter key of rows that use the base model


@dataclass
class Row:
    """One reply being decoded. `on_done(row)` is called once, when it leaves the batch."""
    prompt: list[int]
    fmt: ChatFormat
    adapter: str = BASE  # the model's adapter key (PEFT's name), or BASE
    max_new_tokens: int = 256
    temperature: float = 0.0
    guide: Any = None  # chat.guide.CallGuide
    prefix: str = ""  # reply text forced before the first token (tool_choice)
    on_event: Callable[[Any], None] | None = None  # TextDelta / CallEvent, as they are parsed
    on_done: Callable[[Row], None] | None = None
    cancelled: bool = False  # set from any thread: the row leaves at the next step
    # set while decoding
    stream: Any = field(init=False, repr=False)
    finish_reason: str | None = None  # stop, length, cancelled, error
    error: BaseException | None = None
    joined: float = 0.0  # time.perf_counter() when it joined the batch
    first_at: float = 0.0  # … when its first token was picked
    seconds: float = 0.0  # from joining to the last token

    def __post_init__(self) -> None:
        from llm_mcp.serve.generate import ReplyStream

        self.stream = ReplyStream(self.fmt, self._send, self.prefix)
        self.stops = frozenset(self.fmt.stop_token_ids)

    def _send(self, event) -> None:
        if self.on_event:
            try:
                self.on_event(event)
            except Exception:  # a client that went away must not stop the batch
                log.debug("event callback failed", exc_info=True)

    @property
    def tokens(self) -> int:
        return len(self.stream.ids)


def pad_id(tokenizer) -> int:
    """The id that fills left padding (masked out, so any id does): the pad token, else 0."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def _no_adapters(keys: list[str]):
    from contextlib import nullcontext

    return {}, nullcontext


class Prefixes:
    """KV caches of recent prompt prefixes (the system turn with the tool schemas, as a rule), one
    row each, per adapter: a new prefix extends the stored one it shares most with."""

    def __init__(self, model: Callable[[], Any], choose: Callable = _no_adapters, keep: int = 8):
        self.model, self.choose, self.keep = model, choose, keep
        self._stored: dict[str, tuple] = {}  # adapter key → (prefix ids, its cache), newest last

    def clear(self) -> None:
        self._stored.clear()

    def batch(self, prefix: list[int], keys: list[str]):
        """A cache of `prefix` with one row per key, each under its adapter's weights."""
        import copy

        import torch
        from transformers import DynamicCache

        if not prefix:
            return DynamicCache()
        distinct = sorted(set(keys))
        parts = [self.one(prefix, key) for key in distinct]
        work = copy.deepcopy(parts[0])  # the rows grow their own copy
        if len(distinct) == 1:
            if len(keys) > 1:
                work.batch_repeat_interleave(len(keys))
            return work
        index = torch.tensor([distinct.index(k) for k in keys], device=parts[0].layers[0].keys.device)
        for layer, *others in zip(work.layers, *(p.layers for p in parts[1:])):
            # (1, kv_heads, prefix, head_dim) per adapter → (rows, …) in row order
            layer.keys = torch.cat([layer.keys, *(o.keys for o in others)])[index]
            layer.values = torch.cat([layer.values, *(o.values for o in others)])[index]
        return work

    def one(self, prefix: list[int], key: str):
        """The one-row cache of `prefix` under adapter `key`: the stored one cropped to what it
        shares with `prefix` and extended by the rest (afresh under MIN_PREFIX shared tokens)."""
        import torch
        from transformers import DynamicCache

        from llm_mcp.models.load import cache_kwarg

        model = self.model()
        stored_ids, stored = self._stored.pop(key, ((), None))
        n = common_prefix(list(stored_ids), prefix, len(prefix)) if stored is not None else 0
        if n >= MIN_PREFIX:
            cache = stored
            if len(stored_ids) > n:
                cache.crop(-(len(stored_ids) - n))
        else:
            cache, n = DynamicCache(), 0
        if n < len(prefix):
            device = next(model.parameters()).device
            kwargs, scope = self.choose([key])
            with torch.inference_mode(), scope():
                model(input_ids=torch.tensor([prefix[n:]], device=device),
                      position_ids=torch.arange(n, len(prefix), device=device)[None],
                      use_cache=True, logits_to_keep=1, **{cache_kwarg(model): cache}, **kwargs)
        self._stored[key] = (tuple(prefix), cache)
        while len(self._stored) > self.keep:  # the least recently used goes
            self._stored.pop(next(iter(self._stored)))
        return cache


class Decoder:
    """A running batch. `model()` gives the current model (the engine swaps it when adapters
    load); `choose(keys)` gives (forward kwargs, context) for rows using adapters `keys`.
    Not thread-safe: one thread joins and steps (the engine's worker, or the caller)."""

    def __init__(self, model: Callable[[], Any], pad: int, choose: Callable = _no_adapters,
                 prefixes: Prefixes | None = None):
        self.model, self.pad, self.choose = model, pad, choose
        self.prefixes = prefixes or Prefixes(model, choose)
        self.rows: list[Row] = []
        self.cache = None
        self.mask = self.last = self.pos = None  # (rows, L), (rows,), (rows,)
        self.steps = 0  # forward passes over the running batch (benchmarks, tests)

    @property
    def width(self) -> int:
        """Cached columns per row (the padded length)."""
        return 0 if self.mask is None else int(self.mask.shape[1])

    def join(self, rows: list[Row]) -> None:
        """Prefill `rows` together, pick their first tokens and add them to the batch. A failure
        fails these rows alone (raised after they are closed)."""
        import torch

        from llm_mcp.models.load import cache_kwarg

        if not rows:
            return
        model = self.model()
        device = next(model.parameters()).device
        started = time.perf_counter()
        for row in rows:
            row.joined = started
        try:
            keys = [r.adapter for r in rows]
            plen = min(len(r.prompt) for r in rows) - 1  # every row keeps a token to feed
            for r in rows[1:]:
                plen = common_prefix(rows[0].prompt, r.prompt, plen)
            plen = plen if plen >= MIN_PREFIX else 0
            cache = self.prefixes.batch(rows[0].prompt[:plen], keys)
            width = max(len(r.prompt) for r in rows) - plen
            b = len(rows)
            ids = torch.full((b, width), self.pad, dtype=torch.long, device=device)  # left-padded
            mask = torch.ones((b, plen + width), dtype=torch.long, device=device)  # prefix + rest
            pos = torch.zeros((b, width), dtype=torch.long, device=device)
            for i, row in enumerate(rows):
                rest = row.prompt[plen:]
                gap = width - len(rest)
                ids[i, gap:] = torch.tensor(rest, device=device)
                mask[i, plen:plen + gap] = 0
                pos[i] = (torch.arange(width, device=device) - gap).clamp_min(0) + plen
            kwargs, scope = self.choose(keys)
            with torch.inference_mode(), scope():
                out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                            logits_to_keep=1, **{cache_kwarg(model): cache}, **kwargs)
            logits = out.logits[:, -1].float()  # (b, vocab)
        except Exception as err:
            for row in rows:
                self._close(row, "error", err)
            raise
        self._merge(rows, cache, mask, pos[:, -1] + 1)
        self._advance(len(self.rows) - b, logits)

    def step(self) -> None:
        """One token for every row; rows that end leave. A failing forward pass fails them all."""
        import torch

        from llm_mcp.models.load import cache_kwarg

        self._drop([r for r in self.rows if r.cancelled], "cancelled")
        if not self.rows:
            return
        model = self.model()
        keys = [r.adapter for r in self.rows]
        ones = torch.ones((len(self.rows), 1), dtype=self.mask.dtype, device=self.mask.device)
        mask = torch.cat([self.mask, ones], dim=1)
        kwargs, scope = self.choose(keys)
        try:
            with torch.inference_mode(), scope():
                out = model(input_ids=self.last[:, None], attention_mask=mask, position_ids=self.pos[:, None],
                            use_cache=True, logits_to_keep=1, **{cache_kwarg(model): self.cache}, **kwargs)
        except Exception as err:
            self.fail(err)
            raise
        self.steps += 1
        self.mask, self.pos = mask, self.pos + 1
        self._advance(0, out.logits[:, -1].float())

    def fail(self, err: BaseException) -> None:
        """Close every row with `err` and empty the batch."""
        rows, self.rows = self.rows, []
        self.cache = self.mask = self.last = self.pos = None
        for row in rows:
            self._close(row, "error", err)

    # ---- inside ---------------------------------------------------------------------------------

    def _advance(self, start: int, logits) -> None:
        """Pick the next token of rows[start:] from their logits (rows - start, vocab), hand it
        to each reply, and let the rows that ended leave."""
        import torch

        rows = self.rows[start:]
        for i, row in enumerate(rows):
            if row.guide is not None:
                try:
                    apply_guide(logits[i], row.guide, row.stream.seen)
                except Exception:  # a guide that fails is dropped: the reply goes on unguided
                    log.exception("the call guide failed; the request goes on unguided")
                    row.guide = None
        token = logits.argmax(-1)
        temps = torch.tensor([r.temperature for r in rows], device=logits.device)
        hot = temps > 0
        if hot.any():
            probs = torch.softmax(logits[hot] / temps[hot, None], dim=-1)
            token[hot] = torch.multinomial(probs, 1).squeeze(-1)
        self.last[start:] = token
        now = time.perf_counter()
        ended: list[tuple[Row, str, BaseException | None]] = []
        for row, t in zip(rows, token.tolist()):
            row.seconds = now - row.joined
            row.first_at = row.first_at or now
            try:
                row.stream.add([t])
            except Exception as err:  # this reply alone fails; the others go on
                log.exception("a reply failed")
                ended.append((row, "error", err))
                continue
            if t in row.stops:
                ended.append((row, "stop", None))
            elif row.tokens >= row.max_new_tokens:
                ended.append((row, "length", None))
        self._drop([r for r, _, _ in ended], None, {id(r): (why, err) for r, why, err in ended})

    def _drop(self, leaving: list[Row], reason: str | None, why: dict | None = None) -> None:
        if not leaving:
            return
        gone = {id(r) for r in leaving}
        keep = [i for i, r in enumerate(self.rows) if id(r) not in gone]
        if keep:
            import torch

            index = torch.tensor(keep, device=self.mask.device)
            self.mask, self.last, self.pos = self.mask[index], self.last[index], self.pos[index]
            first = int(self.mask.any(0).nonzero()[0])  # columns left of it are padding in every row
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[index, :, first:]
                layer.values = layer.values[index, :, first:]
            self.rows = [self.rows[i] for i in keep]
        else:
            self.rows, self.cache = [], None
            self.mask = self.last = self.pos = None
        for row in leaving:
            kind, err = (why or {}).get(id(row), (reason, None))
            self._close(row, kind, err)

    def _merge(self, rows: list[Row], cache, mask, pos) -> None:
        """Lay the new rows' cache (new, kv_heads, Ln, head_dim) beside the running one, both
        left-padded to the wider of the two."""
        import torch

        last = torch.zeros(len(rows), dtype=torch.long, device=mask.device)
        if not self.rows:
            self.rows, self.cache, self.mask, self.last, self.pos = list(rows), cache, mask, last, pos
            return
        wide = max(self.width, int(mask.shape[1]))

        def widen(t, dim: int):
            gap = wide - t.shape[dim]
            if not gap:
                return t
            shape = list(t.shape)
            shape[dim] = gap
            return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)

        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = torch.cat([widen(old.keys, 2), widen(new.keys, 2)])
            old.values = torch.cat([widen(old.values, 2), widen(new.values, 2)])
        self.mask = torch.cat([widen(self.mask, 1), widen(mask, 1)])
        self.last = torch.cat([self.last, last])
        self.pos = torch.cat([self.pos, pos])
        self.rows.extend(rows)

    @staticmethod
    def _close(row: Row, reason: str, err: BaseException | None) -> None:
        if row.finish_reason is not None:
            return
        row.finish_reason, row.error = reason, err
        if row.on_done:
            try:
                row.on_done(row)
            except Exception:
                log.exception("a reply's completion callback failed")


def decode_all(decoder: Decoder, rows: list[Row], batch: int = 16,
               progress: Callable[[int, int], None] | None = None) -> list[Row]:
    """Decode `rows` to the end, at most `batch` at a time, a new one joining as soon as one
    leaves (neighbours in `rows` join together, so order them by prompt to share prefixes)."""
    waiting = list(reversed(rows))
    done = 0
    while waiting or decoder.rows:
        room = batch - len(decoder.rows)
        if room > 0 and waiting:
            decoder.join([waiting.pop() for _ in range(min(room, len(waiting)))])
        decoder.step()
        finished = sum(r.finish_reason is not None for r in rows)
        if progress and finished != done:
            progress(finished, len(rows))
        done = finished
    return rows
