"""Tokenized examples → packed rows with shared prefixes → tensors.

A row holds one or more *units*. A unit is a prefix that several examples begin with (typically
the system prompt with the tool schemas) followed by each example's continuation:

    row:      [ prefix P | cont 1 | cont 2 | cont 3 ][ prefix P' | cont 4 ][pad]
    position:   0 … P-1   P …      P …      P …        0 … P'-1    P' …
    attends:    causal    prefix + itself (causal)     (each unit sees only itself)

Each continuation sees exactly what it would see if its example ran alone (its prefix and its own
earlier tokens, at the same positions), so the loss and the gradients equal those of running the
examples one by one; the prefix is computed once instead of once per example. An example that
shares no prefix is a unit with an empty prefix and one continuation (plain packing).

Targets are pre-shifted: `targets[p]` is the label of the token that follows position p in the
same example, or IGNORE. So the trainer computes the output head only where a target exists.
The prefix never reaches the token that predicts an example's first label, hence prefix
positions carry no targets and one prefix position never has to predict several continuations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llm_mcp.data.tokenize import IGNORE, Tokenized


@dataclass
class Unit:
    prefix_len: int
    members: list[int]  # indices into the tokenized list

    def length(self, items: list[Tokenized]) -> int:
        return self.prefix_len + sum(len(items[i]) - self.prefix_len for i in self.members)


@dataclass
class Row:
    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    # (prefix start, prefix length, [(continuation start, continuation length), ...])
    blocks: list[tuple[int, int, list[tuple[int, int]]]] = field(default_factory=list)
    members: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def add(self, unit: Unit, items: list[Tokenized]) -> None:
        start, plen = len(self.input_ids), unit.prefix_len
        first = items[unit.members[0]]
        self.input_ids += first.input_ids[:plen]
        self.position_ids += list(range(plen))
        self.targets += [IGNORE] * plen
        conts = []
        for index in unit.members:
            item = items[index]
            assert item.input_ids[:plen] == first.input_ids[:plen], "unit members differ in the prefix"
            assert all(t == IGNORE for t in item.labels[:plen + 1]), "prefix reaches a labelled token"
            conts.append((len(self.input_ids), len(item) - plen))
            self.input_ids += item.input_ids[plen:]
            self.position_ids += list(range(plen, len(item)))
            self.targets += item.labels[plen + 1:] + [IGNORE]
            self.members.append(index)
        self.blocks.append((start, plen, conts))


# A row's attention costs as much as its matmuls at about this many tokens. By FLOPs: per layer
# and token the matmuls take ~2(4h² + 3h·i), attention ~4h per token pair, so (4h² + 3h·i) / 2h =
# 2h + 1.5i ≈ 3,500 for SmolLM2-135M (h 576, i 1,536). Measured (forward and backward, LoRA on
# the upper half, bf16 autocast, 2 CPU cores; 8 rows of 400 tokens against 1 row of 3,200): ~1,600
# under a block mask, which sdpa computes densely, and ~3,200 for plain causal rows (no mask
# tensor: the blocks above the diagonal are skipped).
ATTENTION_TOKENS = 1600
CAUSAL_ATTENTION_TOKENS = 3200


def cost(tokens: int, masked: bool = True) -> float:
    """The relative compute of a row of `tokens` tokens: matmuls plus attention."""
    return tokens + tokens * tokens / (ATTENTION_TOKENS if masked else CAUSAL_ATTENTION_TOKENS)


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """How many leading tokens `a` and `b` share, at most `limit`."""
    n, limit = 0, min(len(a), len(b), limit)
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def shared_prefixes(items: list[Tokenized], indices: list[int] | None = None,
                    min_len: int = 16) -> list[Unit]:
    """Group examples that start with the same tokens so that the fewest tokens are computed.

    Sorted by token ids, examples form a prefix tree; for each subtree the cheaper of "one unit
    sharing the subtree's common prefix" and "the best grouping of its child subtrees" is taken
    (so 6 examples with 8 tools and 3 with the first 2 of those tools make two units, not one
    unit sharing only the first 2 tools). A unit of T tokens costs T matmul tokens plus the
    attention of a T-long row (`cost`), so examples that share only a short preamble and have
    long continuations of their own stay apart. The prefix stops before the token that predicts
    an example's first label (see the module docstring), so reusing it changes no loss term. A
    common prefix shorter than `min_len` is not worth sharing."""
    indices = list(range(len(items))) if indices is None else indices
    order = sorted(indices, key=lambda i: items[i].input_ids)
    if not order:
        return []

    def common(a: int, b: int) -> int:  # shared prefix length, capped before the first labels
        return common_prefix(items[a].input_ids, items[b].input_ids,
                             min(items[a].first_label, items[b].first_label) - 1)

    lcp = [common(order[k], order[k + 1]) for k in range(len(order) - 1)]

    def best(lo: int, hi: int) -> tuple[float, list[Unit]]:  # order[lo:hi]
        if hi - lo == 1:
            return cost(len(items[order[lo]])), [Unit(0, [order[lo]])]
        plen = min(lcp[lo:hi - 1])
        members = order[lo:hi]
        together = cost(plen + sum(len(items[i]) - plen for i in members)) if plen >= min_len else None
        cuts = [k + 1 for k in range(lo, hi - 1) if lcp[k] == plen]
        apart, units = 0.0, []
        for a, b in zip([lo] + cuts, cuts + [hi]):
            c, u = best(a, b)
            apart, units = apart + c, units + u
        if together is not None and together <= apart:
            return together, [Unit(plen, members)]
        return apart, units

    return best(0, len(order))[1]


def _split(unit: Unit, items: list[Tokenized], row_tokens: int) -> list[Unit]:
    """A unit longer than a row becomes several units with the same prefix."""
    out = [Unit(unit.prefix_len, [])]
    for i in unit.members:
        candidate = Unit(unit.prefix_len, out[-1].members + [i])
        if out[-1].members and candidate.length(items) > row_tokens:
            out.append(Unit(unit.prefix_len, [i]))
        else:
            out[-1] = candidate
    return [u if len(u.members) > 1 else Unit(0, u.members) for u in out]


def build_rows(items: list[Tokenized], indices: list[int], packing: bool = True,
               row_tokens: int = 4096, min_prefix: int = 16) -> list[Row]:
    """The rows of one micro-batch. Without packing every example is a row of its own.

    Packing pays where examples share a prefix: the prefix is computed once. But the rows of a
    micro-batch are padded to the longest, so a long packed row makes every other row as long.
    The rows are laid out under a few caps on a row's length (the longest example, 2x, 4x, 8x,
    `row_tokens`), and once with every example alone (rows that need no mask), and the layout
    whose forward passes cost least (`passes`) is taken."""
    alone = []
    for i in indices:
        row = Row()
        row.add(Unit(0, [i]), items)
        alone.append(row)
    if not packing:
        return alone
    units = shared_prefixes(items, indices, min_prefix)
    longest = max(len(items[i]) for i in indices)
    caps = sorted({min(longest * k, row_tokens) for k in (1, 2, 4, 8)} | {max(row_tokens, longest)})
    layouts = [alone] + [_layout(units, items, cap) for cap in caps]  # alone: plain causal rows
    return min(layouts, key=lambda rows: _passes(rows)[0])


def _plain(rows: list[Row]) -> bool:
    """Every row one example alone: plain causal attention, no mask tensor (`collate`)."""
    return all(len(r.blocks) == 1 and r.blocks[0][1] == 0 and len(r.blocks[0][2]) == 1 for r in rows)


def _layout(units: list[Unit], items: list[Tokenized], cap: int) -> list[Row]:
    """First-fit decreasing into rows of at most `cap` tokens. A unit that shares a prefix joins
    rows that share prefixes; an example that shares none joins a row only where it fits within
    the longest row so far, so that it never lengthens the batch (its attention then costs what
    the padding it replaces would have)."""
    parts = sorted((part for unit in units for part in _split(unit, items, cap)), key=lambda u: -u.length(items))
    rows: list[Row] = []
    for unit in parts:
        size = unit.length(items)
        if unit.prefix_len:
            row = next((r for r in rows if r.blocks[0][1] and len(r) + size <= cap), None)
        else:
            width = max((len(r) for r in rows), default=0)
            row = next((r for r in rows if len(r) + size <= width), None)
        if row is None:
            row = Row()
            rows.append(row)
        row.add(unit, items)
    return rows


def collate(rows: list[Row], pad_id: int):
    """Rows → tensors (batch, seq): input_ids, position_ids, targets and attention_mask.

    Where every row is one example alone, attention_mask is None: plain causal attention, which
    sdpa computes without a mask tensor and skips the blocks above the diagonal (the padding
    comes after the example, so no token attends to it, and its positions continue the row's so
    that transformers sees no packed sequences). Otherwise attention_mask is (batch, 1, seq, seq)
    boolean, True where attending is allowed, and padding attends to itself only. Padding has no
    targets."""
    import torch

    width = max(len(r) for r in rows)
    batch = len(rows)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    targets = torch.full((batch, width), IGNORE, dtype=torch.long)
    pos = torch.zeros((batch, width), dtype=torch.long)
    mask = None if _plain(rows) else torch.zeros((batch, 1, width, width), dtype=torch.bool)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    for b, r in enumerate(rows):
        n = len(r)
        ids[b, :n] = torch.tensor(r.input_ids)
        targets[b, :n] = torch.tensor(r.targets)
        pos[b, :n] = torch.tensor(r.position_ids)
        if mask is None:  # the row's positions go on through its padding (0 .. width-1)
            pos[b, n:] = torch.arange(n, width)
            continue
        for start, plen, conts in r.blocks:
            mask[b, 0, start:start + plen, start:start + plen] = causal[:plen, :plen]
            for cstart, clen in conts:
                cend = cstart + clen
                mask[b, 0, cstart:cend, start:start + plen] = True
                mask[b, 0, cstart:cend, cstart:cend] = causal[:clen, :clen]
        idx = torch.arange(n, width)
        mask[b, 0, idx, idx] = True
    return {"input_ids": ids, "position_ids": pos, "attention_mask": mask, "targets": targets}


# A forward and backward pass costs about this many tokens' compute beyond its rows (measured as
# above: 2 rows of 400 tokens take 1.55 s, 4 rows 2.85 s).
PASS_TOKENS = 150


def passes(rows: list[Row]) -> list[list[Row]]:
    """The rows in forward passes, each padded to its own longest row: rows sorted by length and
    cut where the padding saved outweighs a pass's fixed cost (`PASS_TOKENS`)."""
    return _passes(rows)[1]


def _passes(rows: list[Row]) -> tuple[float, list[list[Row]]]:
    rows = sorted(rows, key=len)
    packed = [0]  # packed[k]: rows among rows[:k] that hold more than one example alone
    for row in rows:
        packed.append(packed[-1] + (not _plain([row])))
    # best[k]: the least cost of rows[:k]; cut[k]: where its last pass starts. A pass runs under
    # a mask only where one of its rows is packed (collate)
    best, cut = [0.0] + [float("inf")] * len(rows), [0] * (len(rows) + 1)
    for k in range(1, len(rows) + 1):
        for j in range(k):
            c = best[j] + (k - j) * cost(len(rows[k - 1]), packed[k] > packed[j]) + PASS_TOKENS
            if c < best[k]:
                best[k], cut[k] = c, j
    out, k = [], len(rows)
    while k:
        out.append(rows[cut[k]:k])
        k = cut[k]
    return best[-1], out[::-1]


def micro_batches(items: list[Tokenized], indices: list[int], pad_id: int, packing: bool = True,
                  row_tokens: int = 4096) -> list[dict]:
    """The tensors of one micro-batch's forward passes: packed rows with shared prefixes (or one
    row an example without packing), in one or more passes of rows of similar length.

    (Measured alternative, not used: running a shared prefix once as a batch of 1 and the
    continuations as a batch against its repeated K/V is exact too, but ran 1.2 examples/s
    against 1.9 for packed rows on SmolLM2 with 8 examples, CPU, bf16.)"""
    return [collate(group, pad_id) for group in passes(build_rows(items, indices, packing, row_tokens))]
