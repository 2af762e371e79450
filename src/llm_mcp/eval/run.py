"""Predict the assistant's reply for each example, greedily and in batches that share the
prompt prefix (the system prompt with the tool schemas), then score.

An example's prompt is its conversation up to the last assistant turn; the gold answer is that
turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llm_mcp.chat.types import ToolCall
from llm_mcp.data.packing import common_prefix
from llm_mcp.eval.match import calls_match


@dataclass
class Prediction:
    index: int
    gold: list[ToolCall]
    gold_text: str
    raw: str
    calls: list[ToolCall]
    errors: int
    correct: bool


@dataclass
class Score:
    examples: int = 0
    call_examples: int = 0
    no_call_examples: int = 0
    exact: int = 0  # call examples whose calls match
    no_call_correct: int = 0  # no-call examples answered without a call
    parsable: int = 0  # call examples whose reply parsed without errors and has a call
    right_name: int = 0  # call examples whose predicted names equal the gold names
    seconds: float = 0.0
    predictions: list[Prediction] = field(default_factory=list)

    @property
    def exact_rate(self) -> float:
        return self.exact / self.call_examples if self.call_examples else 0.0

    @property
    def no_call_rate(self) -> float:
        return self.no_call_correct / self.no_call_examples if self.no_call_examples else 0.0

    def summary(self) -> dict:
        return {"examples": self.examples, "call_examples": self.call_examples,
                "exact": round(self.exact_rate, 4), "no_call_examples": self.no_call_examples,
                "no_call_correct": round(self.no_call_rate, 4),
                "right_name": round(self.right_name / max(self.call_examples, 1), 4),
                "parsable": round(self.parsable / max(self.call_examples, 1), 4),
                "seconds": round(self.seconds, 1)}


def _split(example):
    last = max(k for k, m in enumerate(example.messages) if m.role == "assistant")
    return example.messages[:last], example.messages[last]


def _groups(prompts: list[list[int]], batch_size: int, min_prefix: int = 16):
    """Prompts in token order, cut into batches of neighbours that share a prefix;
    → [(prefix length, [indices])]. The prefix leaves every prompt at least one token."""
    order = sorted(range(len(prompts)), key=lambda i: prompts[i])
    out: list[tuple[int, list[int]]] = []
    for i in order:
        if out and len(out[-1][1]) < batch_size:
            plen, members = out[-1]
            n = common_prefix(prompts[members[-1]], prompts[i], min(plen, len(prompts[i]) - 1))
            if n >= min_prefix:
                out[-1] = (n, members + [i])
                continue
        out.append((len(prompts[i]) - 1, [i]))
    return out


def predict(model, fmt, examples, max_new_tokens: int = 128, batch_size: int = 16,
            progress=None) -> Score:
    """Greedy replies for every example and their score.

    Examples that share a prompt prefix are decoded together: the prefix is computed once
    (batch 1), its K/V repeated for the batch, and each prompt's rest is left-padded against it
    (the padding masked out, position ids continuing from the prefix):

        [prefix P][pad pad q1 q1 q1] → decode
        [prefix P][q2 q2 q2 q2 q2 ] → decode
    """
    import torch
    from transformers import DynamicCache

    from llm_mcp.models.load import cache_kwarg

    device = next(model.parameters()).device
    pad = fmt.tokenizer.pad_token_id
    name = cache_kwarg(model)
    prompts = [fmt.prompt_ids(_split(ex)[0], ex.tools) for ex in examples]
    stops = torch.tensor(sorted(fmt.stop_token_ids), device=device)
    score = Score()
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    done = 0
    with torch.inference_mode():
        for plen, members in _groups(prompts, batch_size):
            cache = DynamicCache()
            model(input_ids=torch.tensor([prompts[members[0]][:plen]], device=device),
                  use_cache=True, logits_to_keep=1, **{name: cache})
            b = len(members)
            if b > 1:
                cache.batch_repeat_interleave(b)
            rests = [prompts[i][plen:] for i in members]
            width = max(len(r) for r in rests)
            ids = torch.full((b, width), pad, dtype=torch.long, device=device)
            mask = torch.ones((b, plen + width), dtype=torch.long, device=device)
            pos = torch.zeros((b, width), dtype=torch.long, device=device)
            for row, rest in enumerate(rests):
                gap = width - len(rest)
                ids[row, gap:] = torch.tensor(rest, device=device)
                mask[row, plen:plen + gap] = 0
                pos[row] = (torch.arange(width, device=device) - gap).clamp_min(0) + plen
            new = torch.empty((b, 0), dtype=torch.long, device=device)
            finished = torch.zeros(b, dtype=torch.bool, device=device)
            for _ in range(max_new_tokens):
                out = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                            use_cache=True, logits_to_keep=1, **{name: cache})
                token = out.logits[:, -1].argmax(-1)  # (b,)
                token = torch.where(finished, torch.full_like(token, pad), token)
                finished |= torch.isin(token, stops)
                new = torch.cat([new, token[:, None]], dim=1)
                if finished.all():
                    break
                ids = token[:, None]
                mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
                pos = pos[:, -1:] + 1
            for row, i in enumerate(members):
                tokens = new[row].tolist()
                cut = next((k for k, t in enumerate(tokens) if t in fmt.stop_token_ids), len(tokens))
                score.predictions.append(_judge(fmt, examples[i], i, tokens[:cut]))
            done += b
            if progress:
                progress(done, len(examples))
    model.train(was_training)
    score.seconds = time.perf_counter() - started
    for p in sorted(score.predictions, key=lambda p: p.index):
        score.examples += 1
        if p.gold:
            score.call_examples += 1
            score.exact += p.correct
            score.parsable += bool(p.calls) and not p.errors
            score.right_name += sorted(c.name for c in p.calls) == sorted(c.name for c in p.gold)
        else:
            score.no_call_examples += 1
            score.no_call_correct += p.correct
    score.predictions.sort(key=lambda p: p.index)
    return score


def _judge(fmt, example, index: int, new: list[int]) -> Prediction:
    _, gold = _split(example)
    raw = fmt.reply_text(new)
    parsed = fmt.parse(raw)
    correct = calls_match(parsed.calls, gold.tool_calls) and (bool(gold.tool_calls) or not parsed.errors)
    return Prediction(index, gold.tool_calls, gold.content, raw, parsed.calls, len(parsed.errors), correct)
