"""Examples → token ids with assistant-only labels; length buckets; packing.

Labels are the input ids where the assistant produced the token and -100 elsewhere (design
invariant 2); the model shifts them by one internally. An example longer than `max_length` is
dropped and reported, never cut: a cut could end inside a tool call.

Packing puts several examples in one row of at most `max_tokens`. Each example keeps its own
position ids (restarting at 0) and attends only to itself: `collate` builds the block-diagonal
causal mask. Examples that begin with the same tokens (typically the system prompt with the tool
schemas) are found by `shared_prefixes`, so a trainer can compute such a prefix once per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_mcp.data.example import Example, Issue

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    source: str = ""
    line: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def first_label(self) -> int:
        return next((i for i, t in enumerate(self.labels) if t != IGNORE), len(self.labels))


def tokenize_examples(examples: list[Example], fmt, max_length: int) -> tuple[list[Tokenized], list[Issue]]:
    out, dropped = [], []
    for ex in examples:
        r = fmt.render(ex.messages, ex.tools)
        if len(r.input_ids) > max_length:
            dropped.append(Issue(ex.source, ex.line, "too-long", f"{len(r.input_ids)} tokens, more "
                                 f"than max_length {max_length}; dropped, not cut",
                                 "raise max_length or shorten the example", level="warning"))
            continue
        labels = [t if m else IGNORE for t, m in zip(r.input_ids, r.assistant_mask)]
        out.append(Tokenized(r.input_ids, labels, ex.source, ex.line))
    return out, dropped


@dataclass
class PackedRow:
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    seq_lens: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)  # indices into the tokenized list

    def add(self, index: int, item: Tokenized) -> None:
        self.input_ids += item.input_ids
        self.labels += item.labels
        self.position_ids += list(range(len(item)))
        self.seq_lens.append(len(item))
        self.members.append(index)


def pack(items: list[Tokenized], max_tokens: int) -> list[PackedRow]:
    """First-fit decreasing: longest examples first, each into the first row it fits."""
    rows: list[PackedRow] = []
    for index in sorted(range(len(items)), key=lambda i: -len(items[i])):
        item = items[index]
        if len(item) > max_tokens:
            raise ValueError(f"example of {len(item)} tokens does not fit rows of {max_tokens}")
        row = next((r for r in rows if len(r.input_ids) + len(item) <= max_tokens), None)
        if row is None:
            row = PackedRow()
            rows.append(row)
        row.add(index, item)
    return rows


def length_buckets(items: list[Tokenized], batch_size: int) -> list[list[int]]:
    """Batches of indices of similar length (sorted), so padding inside a batch stays small."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def shared_prefixes(items: list[Tokenized], min_len: int = 16) -> list[tuple[list[int], int]]:
    """Groups of examples that start with the same tokens, as (indices, prefix length).

    The prefix never reaches into an example's labelled tokens, so computing it once and reusing
    it for every member changes no loss term."""
    order = sorted(range(len(items)), key=lambda i: items[i].input_ids)
    groups: list[tuple[list[int], int]] = []
    for i in order:
        if groups:
            members, plen = groups[-1]
            prev = items[members[-1]].input_ids
            cur = items[i].input_ids
            lcp = 0
            limit = min(len(prev), len(cur), plen)
            while lcp < limit and prev[lcp] == cur[lcp]:
                lcp += 1
            lcp = min(lcp, items[i].first_label)
            if lcp >= min_len:
                members.append(i)
                groups[-1] = (members, lcp)
                continue
        groups.append(([i], min(len(items[i]), items[i].first_label)))
    return groups


def collate(rows: list[PackedRow], pad_id: int):
    """Rows → tensors: input_ids, labels, position_ids (batch, seq) and a block-diagonal causal
    attention mask (batch, 1, seq, seq), True where attending is allowed. Padding attends to
    itself only and carries no labels."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    batch = len(rows)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    labels = torch.full((batch, width), IGNORE, dtype=torch.long)
    pos = torch.zeros((batch, width), dtype=torch.long)
    mask = torch.zeros((batch, 1, width, width), dtype=torch.bool)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    for b, r in enumerate(rows):
        n = len(r.input_ids)
        ids[b, :n] = torch.tensor(r.input_ids)
        labels[b, :n] = torch.tensor(r.labels)
        pos[b, :n] = torch.tensor(r.position_ids)
        start = 0
        for length in r.seq_lens:
            end = start + length
            mask[b, 0, start:end, start:end] = causal[:length, :length]
            start = end
        for p in range(n, width):  # padding: attend to itself so no row of the mask is empty
            mask[b, 0, p, p] = True
    return {"input_ids": ids, "labels": labels, "position_ids": pos, "attention_mask": mask}
