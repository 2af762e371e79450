"""Examples → token ids with assistant-only labels; length buckets.

Labels are the input ids where the assistant produced the token and -100 elsewhere (design
invariant 2); the model shifts them by one internally. An example longer than `max_length` is
dropped and reported, never cut: a cut could end inside a tool call.

Packing (with prompt prefixes shared between examples) is in `data/packing.py`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from llm_mcp.data.example import Example, Issue

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    source: str = ""
    line: int = 0
    prompt: str = ""  # which tool list the example was rendered with (examples that share one pack together)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def first_label(self) -> int:
        return next((i for i, t in enumerate(self.labels) if t != IGNORE), len(self.labels))


def too_long(ex: Example, tokens: int, max_length: int) -> Issue:
    """The warning for an example training drops: longer than `max_length` (it is never cut)."""
    return Issue(ex.source, ex.line, "too-long", f"{tokens} tokens, more than max_length {max_length}; "
                 "training drops it, not cut", "raise max_length (e.g. max_length=" f"{-(-tokens // 256) * 256}), "
                 "or list fewer tools in its prompt (data synth --max-tools)", level="warning")


def tokenize_examples(examples: list[Example], fmt, max_length: int) -> tuple[list[Tokenized], list[Issue]]:
    out, dropped = [], []
    for ex in examples:
        r = fmt.render(ex.messages, ex.tools)
        if len(r.input_ids) > max_length:
            dropped.append(too_long(ex, len(r.input_ids), max_length))
            continue
        labels = [t if m else IGNORE for t, m in zip(r.input_ids, r.assistant_mask)]
        out.append(Tokenized(r.input_ids, labels, ex.source, ex.line, prompt_key(ex.tools)))
    return out, dropped


def prompt_key(tools: list[dict]) -> str:
    """Which tool list an example carries (examples with equal keys share their prompt)."""
    return hashlib.sha1(json.dumps(tools, sort_keys=True).encode()).hexdigest()[:16]


def length_buckets(items: list[Tokenized], batch_size: int) -> list[list[int]]:
    """Batches of indices of similar length (sorted), so padding inside a batch stays small."""
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
