"""The decode core: rows that join a running batch and leave it as they finish.

The server's engine, `llm-mcp eval` and `llm-mcp chat` all decode here. A row is one reply: its
prompt ids, its chat format (the adapter's own), its adapter, its guide, sampling and limits. The
batch is a padded KV cache with a row per reply:

    cache (rows, kv_heads, L + free, head_dim), mask (rows, L)
    row 0  [pad pad  p0  p0  p0  r0 r0 r0 | _ _ _]   running
    row 1  [ p1  p1  p1  p1  p1  r1 r1 r1 | _ _ _]   running
    row 2  [pad pad pad  p2  p2  p2  p2 p2 | _ _ _]  joined at this step

preallocated (transformers' StaticCache) with HEADROOM free columns that the steps fill in
place and spare rows that joining rows are written into, laid anew only when the rows or
columns run out (a DynamicCache, laid anew at every join, where the model's layers do not fit a
StaticCache).

`admit` queues new rows; `prefill` computes their prompts one after another, each from the
longest prefix it shares with a prompt computed lately under its adapter (`Prefixes`: the tool
schemas, or a conversation so far, are computed once), `chunk` tokens per call, so that the
engine can give the running rows a step between two calls; a row whose prompt is in joins the
batch at once, its cache left-padded to the running rows' width. `step` feeds every row its
last token (position ids per row, the padding masked out; a row that just joined is fed its
last prompt token) and picks the next; a row that ends (its end-of-turn token, its limit, or
cancelled) leaves at once, its reply delivered then, the rows after it moved up in place (the
columns no remaining row needs are cut off the left at the next lay). Greedy replies equal
`model.generate`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from llm_mcp.chat import ChatFormat
from llm_mcp.chat.guide import apply_guide
from llm_mcp.chat.toolcalls import ToolCall
from llm_mcp.config import REPLY_TOKENS
from llm_mcp.data.packing import common_prefix

log = logging.getLogger(__name__)

MIN_PREFIX = 16  # a shared prompt prefix shorter than this is not worth a cache of its own
HEADROOM = 64  # free columns a preallocated batch cache keeps: it is laid anew once per so many steps
SPARE_ROWS = 4  # spare rows a preallocated batch cache keeps (at least; half its rows when more)
BASE = "__base__"  # the adapter key of rows that use the base model


@dataclass
class Row:
    """One reply being decoded. `on_done(row)` is called once, when it leaves the batch."""
    prompt: list[int]
    fmt: ChatFormat
    adapter: str = BASE  # the model's adapter key (PEFT's name), or BASE
    max_new_tokens: int = REPLY_TOKENS
    temperature: float = 0.0
    guide: Any = None  # chat.guide.CallGuide
    prefix: str = ""  # reply text forced before the first token (tool_choice)
    on_event: Callable[[Any], None] | None = None  # TextDelta / CallEvent, as they are parsed
    on_done: Callable[[Row], None] | None = None
    tools: Any = None  # the request's tools: its calls' dates and times conformed (chat/conform.py)
    messages: list | None = None  # the conversation its calls are checked against (chat/ground.py)
    cancelled: bool = False  # set from any thread: the row leaves at the next step
    # set while decoding
    stream: Any = field(init=False, repr=False)
    redos: int = field(default=0, init=False)  # calls sent back and decoded again (chat/route.py)
    kept: int = field(default=0, init=False)  # reply tokens moved into the prompt by `redo`
    without: tuple = field(default=(), init=False)  # the tools sent back from the call at `redo_at`
    redo_at: int = field(default=-1, init=False)
    asked: int = field(default=0, init=False)  # call blocks opened beyond the model's own (chat/more.py)
    unasked: tuple = field(default=(), init=False)  # the tools of calls asked for and dropped at `asked_at`
    asked_at: int = field(default=-1, init=False)
    args_asked: int = field(default=0, init=False)  # arguments asked for beyond the model's own (chat/more.py)
    forced: list = field(default_factory=list, init=False)  # the next tokens, whatever the logits say
    finish_reason: str | None = None  # stop, length, cancelled, error
    error: BaseException | None = None
    joined: float = 0.0  # time.perf_counter() when it joined the batch
    first_at: float = 0.0  # … when its first token was picked
    seconds: float = 0.0  # from joining to the last token

    def __post_init__(self) -> None:
        from llm_mcp.serve.generate import ReplyStream

        self.stream = ReplyStream(self.fmt, self._send, self.prefix, self.tools, self.messages, self._may_redo())
        self.stops = frozenset(self.fmt.stop_token_ids)

    def _may_redo(self) -> bool:
        from llm_mcp.chat.route import MAX_REDOS

        return self.guide is not None and self.messages is not None and self.redos < MAX_REDOS

    def _may_ask(self) -> bool:
        """May the decoder ask for more than the model wrote (chat/more.py)? With the guide and the
        grounding on, the built-in format (whose openings it writes), and room left."""
        from llm_mcp.chat.more import ROOM

        return (self.guide is not None and self.messages is not None and self.fmt.kind == "hermes"
                and self.tokens + ROOM <= self.max_new_tokens)

    def wants_more(self) -> bool:
        """At the end of its turn: is this a reply of calls alone that may be asked for one more?"""
        from llm_mcp.chat.more import MAX_MORE

        return self.asked < MAX_MORE and self._may_ask() and self.stream.parser.wants_more()

    def wants_arg(self, token: int) -> ToolCall | None:
        """Where `token` would close an open call's arguments: that call, if it may be asked for
        one more argument; else None."""
        from llm_mcp.chat.more import MAX_ARGS

        parser = self.stream.parser
        if self.args_asked < MAX_ARGS and parser.in_call and self._may_ask() \
                and self.fmt.token_text(token).startswith("}"):
            return parser.wants_arg()
        return None

    def more_arg(self, call: ToolCall) -> None:
        """Write the opening of one more argument of `call` in place of its closing brace."""
        from llm_mcp.chat.more import ARG_OPENING

        self.stream.parser.ask_arg(call)
        self.forced = self.fmt.fixed_ids(ARG_OPENING)
        self.args_asked += 1

    def more(self, dropped: tuple = ()) -> None:
        """Write the opening of one more call block in place of the end of turn, the guide holding
        the call to the tools that could take what no call holds yet (chat/more.py `takers`), but
        those `dropped` here."""
        from llm_mcp.chat.guide import RedoGuide
        from llm_mcp.chat.more import OPENING
        from llm_mcp.chat.types import normalize_tools

        takers = self.stream.parser.takers() - set(dropped)
        without = tuple(t["name"] for t in normalize_tools(self.tools) if t["name"] not in takers)
        first, rest = self.fmt.guide(self.tools, without), self.fmt.guide(self.tools)
        if first and rest:
            self.guide = RedoGuide(first, rest, len(self.stream.seen))
        self.stream.ask()
        self.forced = self.fmt.fixed_ids(OPENING)
        self.asked += 1

    def may_ask_again(self) -> bool:
        """A call asked for was dropped: may one more be asked for in its place, off its tool
        (chat/more.py)? Where room is left, and a tool besides those dropped there could take
        what no call holds."""
        from llm_mcp.chat.more import MAX_MORE

        tool = self.stream.parser.dropped_tool
        return tool is not None and self.asked < MAX_MORE and self._may_ask() \
            and bool(self.stream.parser.takers() - {*self._unasked(), tool})

    def ask_again(self) -> None:
        """Go back to just before the call asked for and dropped, and ask for one more in its
        place, the guide keeping it off that call's tool (and off those dropped at the same place
        before)."""
        at, tool = self._dropped_at(), self.stream.parser.dropped_tool
        self.unasked, self.asked_at = (*self._unasked(), tool), at
        self._go_back(at, self.unasked)
        self.more(self.unasked)

    def _dropped_at(self) -> int:
        """Where the call asked for and dropped begins, the line break its opening writes included."""
        at = self.stream.dropped
        return at - 1 if self.stream.seen[:at].endswith("\n") else at

    def _unasked(self) -> tuple:
        """The tools of calls asked for and dropped where the one just dropped begins."""
        return self.unasked if self._dropped_at() == self.asked_at else ()

    def redo(self) -> None:
        """Go back to just before the call the stream sent back (chat/route.py), the guide keeping
        the next call off its tool (and off those sent back from the same place before)."""
        at, tool = self.stream.redo
        self.without = (*(self.without if at == self.redo_at else ()), tool)
        self.redo_at, self.redos = at, self.redos + 1
        self._go_back(at, self.without)

    def _go_back(self, at: int, without: tuple) -> None:
        """The reply's tokens before `at` (in the text so far) join the prompt, and decoding goes
        on from there, the guide keeping the next call off the tools `without`."""
        from llm_mcp.chat.guide import RedoGuide
        from llm_mcp.serve.generate import ReplyStream

        before = self.stream.parser
        n = self.stream.ids_before(at)
        ids = self.stream.ids[:n]
        self.prompt, self.kept = self.prompt + ids, self.kept + n
        self.prefix = self.prefix + self.fmt.reply_text(ids)
        first, rest = self.fmt.guide(self.tools, without), self.fmt.guide(self.tools)
        self.guide = RedoGuide(first, rest, len(self.prefix)) if first and rest else rest
        self.stream = ReplyStream(self.fmt, self._send, self.prefix, self.tools, self.messages,
                                  self._may_redo() and first is not None, resumed=True)
        self.stream.parser.added, self.stream.parser.filled = before.added, before.filled  # the calls kept

    def _send(self, event) -> None:
        if self.on_event:
            try:
                self.on_event(event)
            except Exception:  # a client that went away must not stop the batch
                log.debug("event callback failed", exc_info=True)

    @property
    def tokens(self) -> int:
        return self.kept + len(self.stream.ids)


def _no_adapters(keys: list[str]):
    from contextlib import nullcontext

    return {}, nullcontext


class Prefixes:
    """The KV caches of prompts computed lately (one row each, under an adapter): a new prompt
    starts from the stored prompt of its adapter that shares the longest prefix with it (the
    system turn with the tool schemas, or a whole conversation so far), so only what is new in
    it is computed. A prompt that extends a stored one takes that cache over; one that branches
    off it (another question after the same tools, another conversation) gets a copy of the
    shared part, and the stored one stays for its own next turn:

        stored   [s s s s s s s s a a a]     conversation A under tools s
        new      [s s s s s s s s b b]       conversation B: copies s, computes b b
        stored   [s s s s s s s s a a a] and [s s s s s s s s b b]

    At most `keep` prompts and `max_bytes` of caches are kept, the least recently used going
    first (a 135M model in fp32 holds ~46 KB a token: 512 MiB is ~11,000 tokens)."""

    def __init__(self, model: Callable[[], Any], choose: Callable = _no_adapters, keep: int = 16,
                 max_bytes: int = 512 << 20):
        self.model, self.choose, self.keep, self.max_bytes = model, choose, keep, max_bytes
        self._stored: list[tuple[str, tuple, Any]] = []  # (adapter key, ids, their cache), newest last

    def clear(self) -> None:
        self._stored.clear()

    def grow(self, ids: list[int], key: str, limit: int = 0) -> int:
        """Compute `ids` under adapter `key` from the stored prompt that shares most with them
        (afresh under MIN_PREFIX shared tokens), at most `limit` new tokens in one forward pass
        (0: all of them). Returns the tokens computed; called again, it goes on from there."""
        import torch
        from transformers import DynamicCache

        from llm_mcp.models.load import cache_kwarg

        n, best = 0, None
        for i, (k, stored_ids, _) in enumerate(self._stored):
            shared = common_prefix(stored_ids, ids, len(ids)) if k == key else 0
            if shared and shared >= n:  # on a tie, the most recent
                n, best = shared, i
        if best is not None and (n >= MIN_PREFIX or n == len(ids)):
            _, stored_ids, cache = self._stored[best]
            if n == len(stored_ids):  # ids go on from it: take it over
                del self._stored[best]
            else:  # ids branch off it: the shared part is copied, the stored prompt stays
                self._stored.append(self._stored.pop(best))
                cache = _head(cache, n)
        else:
            cache, n = DynamicCache(), 0
        end = len(ids) if not limit else min(len(ids), n + limit)
        if end > n:
            model = self.model()
            device = next(model.parameters()).device
            kwargs, scope = self.choose([key])
            with torch.inference_mode(), scope():
                model(input_ids=torch.tensor([ids[n:end]], device=device),
                      position_ids=torch.arange(n, end, device=device)[None],
                      use_cache=True, logits_to_keep=1, **{cache_kwarg(model): cache}, **kwargs)
        self._stored.append((key, tuple(ids[:end]), cache))
        while len(self._stored) > 1 and (len(self._stored) > self.keep or self._bytes() > self.max_bytes):
            self._stored.pop(0)  # the least recently used goes; never the one just computed
        return end - n

    def _find(self, ids: list[int], key: str) -> int | None:
        whole = tuple(ids)
        return next((i for i, (k, stored_ids, _) in enumerate(self._stored)
                     if k == key and stored_ids == whole), None)

    def holds(self, ids: list[int], key: str) -> bool:
        return self._find(ids, key) is not None

    def copy(self, ids: list[int], key: str):
        """A copy of the stored cache of `ids` under adapter `key`, for a row of the batch (the
        stored one grows on)."""
        i = self._find(ids, key)
        self._stored.append(self._stored.pop(i))
        return _head(self._stored[-1][2], len(ids))

    def _bytes(self) -> int:
        return sum(t.numel() * t.element_size() for _, _, cache in self._stored
                   for layer in cache.layers for t in (layer.keys, layer.values))


def _head(cache, n: int):
    """A new DynamicCache holding the first `n` positions of `cache`'s (copied)."""
    from transformers import DynamicCache

    head = DynamicCache()
    for i, layer in enumerate(cache.layers):  # keys, values: (1, kv_heads, positions, head_dim)
        head.update(layer.keys[:, :, :n].clone(), layer.values[:, :, :n].clone(), i)
    return head


class Decoder:
    """A running batch. `model()` gives the current model (the engine swaps it when adapters
    load); `choose(keys)` gives (forward kwargs, context) for rows using adapters `keys`.
    Not thread-safe: one thread admits, prefills and steps (the engine's worker, or the caller)."""

    def __init__(self, model: Callable[[], Any], choose: Callable = _no_adapters,
                 prefixes: Prefixes | None = None, chunk: int = 0, max_rows: int = 0):
        self.model, self.choose = model, choose
        self.prefixes = prefixes or Prefixes(model, choose)
        self.chunk = chunk  # prompt tokens computed per `prefill` call; 0: every pending prompt whole
        self.max_rows = max_rows  # rows the caller will ever run together (0: not known); caps spare rows
        self.rows: list[Row] = []
        self.pending: list[Row] = []  # admitted, their prompts being computed, first come first
        self.cache = None
        self.mask = self.last = self.pos = None  # (rows, L), (rows,), (rows,)
        self.steps = 0  # forward passes over the running batch (benchmarks, tests)
        self.prefills = 0  # prompt forward passes (benchmarks, tests)
        self.static: bool | None = None  # the batch cache is a StaticCache (see _lay)
        self.lays = 0  # batch caches laid anew (benchmarks, tests)
        self._store: list = []  # a StaticCache's whole (spare rows included) keys and values per layer

    @property
    def idle(self) -> bool:
        """No row running and no prompt being computed."""
        return not self.rows and not self.pending

    @property
    def width(self) -> int:
        """Cached columns per row (the padded length)."""
        return 0 if self.mask is None else int(self.mask.shape[1])

    def join(self, rows: list[Row]) -> None:
        """Admit `rows` and compute their prompts whole: they are in the batch, and the next
        `step` picks their first tokens."""
        self.admit(rows)
        while self.pending:
            self.prefill()

    def admit(self, rows: list[Row]) -> None:
        """Queue `rows` for `prefill`, those of one adapter and like prompts next to each other
        (each then extends the cache the one before left)."""
        started = time.perf_counter()
        for row in rows:
            row.joined = started
            if len(row.prompt) < 2:  # a rendered chat prompt never is; this row alone fails
                self._close(row, "error", ValueError(f"a prompt of {len(row.prompt)} tokens (at least 2)"))
        self.pending.extend(sorted((r for r in rows if r.finish_reason is None), key=lambda r: (r.adapter, r.prompt)))

    def prefill(self) -> None:
        """Compute about `chunk` tokens of the pending prompts (0: all of them), one prompt after
        another; a row whose prompt is in joins the batch, its last prompt token to be fed by the
        next `step` (which picks its first token with the running rows' next ones):

            stored cache of the row's adapter   [s s s s s s s s s x x]   (the last prompt computed)
            cropped to what the prompts share   [s s s s s s s s s]
            extended by the rest but its last   [s s s s s s s s s u u u]   → copied as the row's cache
            the last prompt token                                  [u]   → fed at the next step

        A failure fails its row alone (raised after it is closed)."""
        budget = self.chunk or float("inf")
        ready: list[Row] = []
        caches = []
        while self.pending and budget > 0:
            row = self.pending[0]
            ids = row.prompt[:-1]
            try:
                if not row.cancelled and not self.prefixes.holds(ids, row.adapter):
                    computed = self.prefixes.grow(ids, row.adapter, int(budget) if self.chunk else 0)
                    self.prefills += 1
                    budget -= max(computed, 1)
                    if not self.prefixes.holds(ids, row.adapter):
                        continue  # more of this prompt at the next call
                self.pending.pop(0)
                if row.cancelled:
                    self._close(row, "cancelled", None)
                    continue
                caches.append(self.prefixes.copy(ids, row.adapter))
                ready.append(row)
            except Exception as err:
                self.pending.remove(row)
                self._close(row, "error", err)
                self._merge(ready, caches)
                raise
        self._merge(ready, caches)

    def step(self) -> None:
        """One token for every row; rows that end leave. A failing forward pass fails them all."""
        import torch

        from llm_mcp.models.load import cache_kwarg

        self._drop([r for r in self.rows if r.cancelled], "cancelled")
        if not self.rows:
            return
        model = self.model()
        keys = [r.adapter for r in self.rows]
        if self._room() < 1:  # the preallocated cache is full: lay it anew with free columns
            old, first, width = self.cache, self._first(), self.width
            self.mask = self.mask[:, first:]

            def fill(i, keys, values):
                keys.copy_(old.layers[i].keys[:, :, first:width])
                values.copy_(old.layers[i].values[:, :, first:width])
            self.cache = self._lay(len(self.rows), width - first, fill)
        ones = torch.ones((len(self.rows), 1), dtype=self.mask.dtype, device=self.mask.device)
        mask = torch.cat([self.mask, ones], dim=1)
        full = torch.nn.functional.pad(mask, (0, self._room() - 1))  # (rows, cache columns)
        kwargs, scope = self.choose(keys)
        try:
            with torch.inference_mode(), scope():
                out = model(input_ids=self.last[:, None], attention_mask=full, position_ids=self.pos[:, None],
                            use_cache=True, logits_to_keep=1, **{cache_kwarg(model): self.cache}, **kwargs)
        except Exception as err:
            self.fail(err)
            raise
        self.steps += 1
        self.mask, self.pos = mask, self.pos + 1
        self._advance(out.logits[:, -1].float())

    def fail(self, err: BaseException) -> None:
        """Close every running row with `err` and empty the batch (pending rows go on)."""
        rows, self.rows, self._store = self.rows, [], []
        self.cache = self.mask = self.last = self.pos = None
        for row in rows:
            self._close(row, "error", err)

    # ---- inside ---------------------------------------------------------------------------------

    def _advance(self, logits) -> None:
        """Pick every row's next token from its logits (rows, vocab), hand it to each reply, and
        let the rows that ended leave."""
        import torch

        rows = self.rows
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
        picked = token.tolist()
        for i, row in enumerate(rows):
            if not row.forced and picked[i] in row.stops and row.wants_more():
                row.more()  # one more call asked for in place of the end of turn (chat/more.py)
            elif not row.forced and (call := row.wants_arg(picked[i])):
                row.more_arg(call)  # one more argument asked for in place of the closing brace
            if row.forced:
                picked[i] = row.forced.pop(0)
                token[i] = picked[i]
        self.last = token
        now = time.perf_counter()
        ended: list[tuple[Row, str, BaseException | None]] = []
        for row, t in zip(rows, picked):
            row.seconds = now - row.joined
            row.first_at = row.first_at or now
            try:
                row.stream.add([t])
            except Exception as err:  # this reply alone fails; the others go on
                log.exception("a reply failed")
                ended.append((row, "error", err))
                continue
            if row.stream.redo:  # a call sent back (chat/route.py): the row goes back and joins again
                ended.append((row, "redo", None))
            elif row.stream.dropped is not None and row.may_ask_again():  # asked again, off its tool
                ended.append((row, "again", None))
            elif row.stream.dropped is not None:  # a call asked for that asked for nothing new
                row.stream.cut()
                ended.append((row, "stop", None))
            elif t in row.stops:
                ended.append((row, "stop", None))
            elif row.tokens >= row.max_new_tokens:
                ended.append((row, "stop" if row.stream.cut() else "length", None))
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
            if self.static:  # in place: the kept rows move up (the padding columns go at the next lay)
                for layer in self.cache.layers:
                    for to, at in enumerate(keep):
                        if to != at:
                            layer.keys[to].copy_(layer.keys[at])
                            layer.values[to].copy_(layer.values[at])
                    layer.keys, layer.values = layer.keys[:len(keep)], layer.values[:len(keep)]
            else:
                first, width = self._first(), self.width
                self.mask = self.mask[:, first:]
                old = self.cache

                def fill(i, keys, values):  # columns first, then rows: 5-7× faster than both at once
                    torch.index_select(old.layers[i].keys[:, :, first:width], 0, index, out=keys)
                    torch.index_select(old.layers[i].values[:, :, first:width], 0, index, out=values)
                self.cache = self._lay(len(keep), width - first, fill)
            self.rows = [self.rows[i] for i in keep]
        else:
            self.rows, self.cache, self._store = [], None, []
            self.mask = self.last = self.pos = None
        for row in leaving:
            kind, err = (why or {}).get(id(row), (reason, None))
            if kind in ("redo", "again"):
                row.redo() if kind == "redo" else row.ask_again()
                self.pending.append(row)
            else:
                self._close(row, kind, err)

    def _merge(self, rows: list[Row], caches: list) -> None:
        """Join the new rows' one-row caches (1, kv_heads, Li, head_dim: each its prompt but the
        last token) to the batch: written into spare rows where they fit (`_write`), else laid
        anew beside the running rows', all left-padded to the widest (`_relay`)."""
        import torch

        if not rows:
            return
        device = caches[0].layers[0].keys.device
        lengths = [c.get_seq_length() for c in caches]
        fits = self._fits(len(rows), max(lengths))
        mask = self._write(caches, lengths) if fits else self._relay(caches, lengths)
        last = torch.tensor([r.prompt[-1] for r in rows], dtype=torch.long, device=device)
        pos = torch.tensor(lengths, dtype=torch.long, device=device)
        if self.rows:
            last, pos = torch.cat([self.last, last]), torch.cat([self.pos, pos])
        self.mask, self.last, self.pos = mask, last, pos
        self.rows.extend(rows)

    def _relay(self, caches: list, lengths: list[int]):
        """A new batch cache with the running rows and the new ones, all left-padded to the
        widest; → the batch's mask (rows, wide)."""
        import torch

        device = caches[0].layers[0].keys.device
        first = self._first() if self.rows else 0
        old = self.width - first
        wide = max(old, *lengths)
        # each part: (its first row, its first column, its width, its cache), laid to end at `wide`
        parts = ([(0, first, old, self.cache)] if self.rows else []) + [
            (len(self.rows) + i, 0, n, c) for i, (n, c) in enumerate(zip(lengths, caches))]
        total = len(self.rows) + len(caches)

        def fill(i, keys, values):  # (rows, kv_heads, wide, head_dim), zeros where nothing is laid
            for row, start, n, cache in parts:
                src = cache.layers[i]
                keys[row:row + src.keys.shape[0], :, wide - n:] = src.keys[:, :, start:start + n]
                values[row:row + src.values.shape[0], :, wide - n:] = src.values[:, :, start:start + n]
        self.cache = self._lay(total, wide, fill, caches[0])
        mask = torch.zeros((total, wide), dtype=torch.long, device=device)
        if self.rows:
            mask[:len(self.rows), wide - old:] = self.mask[:, first:]
        for row, _, n, _ in parts[1 if self.rows else 0:]:
            mask[row, wide - n:] = 1
        return mask

    def _lay(self, rows: int, width: int, fill: Callable, like=None):
        """A new batch cache of `rows` × `width` columns, `fill(layer, keys, values)` writing each
        layer's (rows, kv_heads, width, head_dim) tensors (zeros until written): preallocated with
        HEADROOM free columns that the steps then fill in place (transformers' StaticCache), where
        the model's layers allow it; else a DynamicCache, which re-allocates itself whole at every
        step (measured at 16 rows: steps 0–26% slower, a row leaving 4× dearer; see
        docs/benchmarks.md). `like`: a cache whose layers give the shapes and dtype (default: the
        batch's)."""
        import torch
        from transformers import DynamicCache, StaticCache
        from transformers.cache_utils import StaticLayer

        like = (like or self.cache).layers
        config = self.model().config
        if self.static is None:  # sliding-window and other layer kinds, older transformers: dynamic
            try:
                probe = StaticCache(config, 1)
                self.static = all(type(layer) is StaticLayer and hasattr(layer, "cumulative_length")
                                  for layer in probe.layers) and len(probe.layers) == len(like)
            except Exception:
                self.static = False
        self.lays += 1
        if self.static:
            cache = StaticCache(config, width + HEADROOM)
            ref = like[0].keys
            spare = max(SPARE_ROWS, rows // 2)
            if self.max_rows:
                spare = max(0, min(spare, self.max_rows - rows))
            cache.early_initialization(rows + spare, ref.shape[1], ref.shape[3], ref.dtype, ref.device)
            self._store = [(layer.keys, layer.values) for layer in cache.layers]
            for i, layer in enumerate(cache.layers):  # the running rows see the first `rows`
                layer.keys, layer.values = layer.keys[:rows], layer.values[:rows]
                fill(i, layer.keys[:, :, :width], layer.values[:, :, :width])
                layer.cumulative_length.fill_(width)  # the next step writes column `width`
            return cache
        self._store = []
        cache = DynamicCache()
        for i, layer in enumerate(like):
            shape = (rows, layer.keys.shape[1], width, layer.keys.shape[3])
            keys = torch.zeros(shape, dtype=layer.keys.dtype, device=layer.keys.device)
            values = torch.zeros(shape, dtype=layer.values.dtype, device=layer.values.device)
            fill(i, keys, values)
            cache.update(keys, values, i)
        return cache

    def _fits(self, joining: int, longest: int) -> bool:
        """Can `joining` rows of at most `longest` cached tokens be written into the spare rows of
        the running batch's StaticCache, right-aligned to its columns, without laying it anew?"""
        return (bool(self.static and self.rows and self._store) and longest <= self.width
                and len(self.rows) + joining <= self._store[0][0].shape[0])

    def _write(self, caches: list, lengths: list[int]):
        """Write the new rows in place (see _fits): each one-row cache goes into a spare row,
        ending at the running rows' last column; the columns left of it are masked padding.
        → the batch's mask (rows, width).

            running  [ p0  p0  p0  p0  r0  r0 | _ _ ]
            joining  [  0   0  p1  p1  p1  p1 | 0 0 ]   (spare row: stale columns zeroed)"""
        import torch

        width, start = self.width, len(self.rows)
        total = start + len(caches)
        for i, layer in enumerate(self.cache.layers):
            for store, part in zip(self._store[i], ("keys", "values")):
                for row, (n, cache) in enumerate(zip(lengths, caches), start):
                    store[row].zero_()
                    store[row, :, width - n:width] = getattr(cache.layers[i], part)[0, :, :n]
            layer.keys, layer.values = self._store[i][0][:total], self._store[i][1][:total]
        mask = torch.zeros((len(caches), width), dtype=self.mask.dtype, device=self.mask.device)
        for row, n in enumerate(lengths):
            mask[row, width - n:] = 1
        return torch.cat([self.mask, mask])

    def _first(self) -> int:
        """The first column a row needs (those left of it are padding in every row)."""
        return int(self.mask.any(0).nonzero()[0])

    def _room(self) -> int:
        """Free columns of the batch cache (those a step may fill without laying it anew)."""
        layer = self.cache.layers[0]
        return layer.max_cache_len - self.width if self.static else 1

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
    decoder.max_rows = decoder.max_rows or batch
    done = 0
    while waiting or not decoder.idle:
        room = batch - len(decoder.rows) - len(decoder.pending)
        if room > 0 and waiting:
            decoder.admit([waiting.pop() for _ in range(min(room, len(waiting)))])
        decoder.join([])  # every pending prompt in (rows that joined, or went back: chat/route.py)
        decoder.step()
        finished = sum(r.finish_reason is not None for r in rows)
        if progress and finished != done:
            progress(finished, len(rows))
        done = finished
    return rows
