"""Predict the assistant's reply for each example, greedily and in batches that share the
prompt prefix (the system prompt with the tool schemas), then score.

What is expected of each reply comes as a Case (eval/cases.py); the judgement is eval/match.py's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from llm_mcp.chat.guide import apply_guide
from llm_mcp.chat.types import ToolCall
from llm_mcp.data.packing import common_prefix
from llm_mcp.eval.cases import Case, from_example
from llm_mcp.eval.match import Verdict, match_calls


@dataclass
class Prediction:
    case: Case
    index: int
    raw: str  # the reply as generated, up to the end-of-turn token
    calls: list[ToolCall]
    errors: list  # chat.toolcalls.ParseError: call blocks that could not be read
    ast: Verdict  # BFCL rules
    exact: bool  # values equal as JSON
    tokens: int  # generated, the end-of-turn token included
    seconds: float  # from the start of its batch to its last token

    @property
    def well_formed(self) -> bool:
        return bool(self.calls) and not self.errors

    @property
    def right_name(self) -> bool:
        return sorted(c.name for c in self.calls) == sorted(self.case.tool_names)

    @property
    def kind(self) -> str:
        """ok, or the kind of failure: malformed, missed-call, false-call, wrong-count,
        wrong-name, wrong-arguments."""
        return "ok" if self.ast.ok else self.ast.kind


@dataclass
class Score:
    predictions: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0

    def _share(self, on_calls: bool, test) -> float:
        group = [p for p in self.predictions if bool(p.case.expected) == on_calls]
        return sum(bool(test(p)) for p in group) / len(group) if group else 0.0

    @property
    def examples(self) -> int:
        return len(self.predictions)

    @property
    def call_examples(self) -> int:
        return sum(bool(p.case.expected) for p in self.predictions)

    @property
    def no_call_examples(self) -> int:
        return self.examples - self.call_examples

    @property
    def exact_rate(self) -> float:
        return self._share(True, lambda p: p.exact)

    @property
    def ast_rate(self) -> float:
        return self._share(True, lambda p: p.ast.ok)

    @property
    def no_call_rate(self) -> float:
        return self._share(False, lambda p: p.ast.ok)

    def summary(self) -> dict:
        """The metrics: rates over the examples that expect calls (or, for no_call, none)."""
        n = max(self.examples, 1)
        return {
            "examples": self.examples, "call_examples": self.call_examples,
            "no_call_examples": self.no_call_examples,
            "well_formed": round(self._share(True, lambda p: p.well_formed), 4),
            "tool_name": round(self._share(True, lambda p: p.right_name), 4),
            "exact": round(self.exact_rate, 4), "ast": round(self.ast_rate, 4),
            "no_call": round(self.no_call_rate, 4),
            "missed_calls": sum(p.kind == "missed-call" for p in self.predictions),
            "false_calls": sum(p.kind == "false-call" for p in self.predictions),
            "mean_latency_s": round(sum(p.seconds for p in self.predictions) / n, 3),
            "mean_new_tokens": round(sum(p.tokens for p in self.predictions) / n, 1),
            "seconds": round(self.seconds, 1),
        }

    def per_tool(self) -> dict[str, dict]:
        """For each expected tool: examples that expect it, and the share matched (AST, exact)."""
        out: dict[str, dict] = {}
        for p in self.predictions:
            for name in sorted(set(p.case.tool_names)):
                row = out.setdefault(name, {"examples": 0, "ast": 0, "exact": 0})
                row["examples"] += 1
                row["ast"] += p.ast.ok
                row["exact"] += p.exact
        return {name: {"examples": r["examples"], "ast": round(r["ast"] / r["examples"], 4),
                       "exact": round(r["exact"] / r["examples"], 4)} for name, r in sorted(out.items())}

    def failures(self, per_kind: int = 3) -> dict[str, list[Prediction]]:
        out: dict[str, list[Prediction]] = {}
        for p in self.predictions:
            if p.kind != "ok" and len(out.setdefault(p.kind, [])) < per_kind:
                out[p.kind].append(p)
        return out


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


def predict(model, fmt, cases, max_new_tokens: int = 128, batch_size: int = 16,
            progress=None, guided: bool = True) -> Score:
    """Greedy replies for every case (or Example: its last assistant turn is the answer) and
    their score; `guided`: tool names, parameter names and enums held to the schemas, as the
    server does (chat/guide.py).

    Cases that share a prompt prefix are decoded together: the prefix is computed once
    (batch 1), its K/V repeated for the batch, and each prompt's rest is left-padded against it
    (the padding masked out, position ids continuing from the prefix):

        [prefix P][pad pad q1 q1 q1] → decode
        [prefix P][q2 q2 q2 q2 q2 ] → decode
    """
    import torch
    from transformers import DynamicCache

    from llm_mcp.models.load import cache_kwarg

    cases = [c if isinstance(c, Case) else from_example(c) for c in cases]
    device = next(model.parameters()).device
    pad = fmt.tokenizer.pad_token_id
    name = cache_kwarg(model)
    prompts = [fmt.prompt_ids(c.prompt, c.tools) for c in cases]
    stops = torch.tensor(sorted(fmt.stop_token_ids), device=device)
    score = Score()
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    done = 0
    with torch.inference_mode():
        for plen, members in _groups(prompts, batch_size):
            batch_started = time.perf_counter()
            cache = DynamicCache()
            model(input_ids=torch.tensor([prompts[members[0]][:plen]], device=device),
                  use_cache=True, logits_to_keep=1, **{name: cache})
            b = len(members)
            if b > 1:
                cache.batch_repeat_interleave(b)
            rests = [prompts[i][plen:] for i in members]
            width = max(len(r) for r in rests)
            ids = torch.full((b, width), pad, dtype=torch.long, device=device)  # (b, width)
            mask = torch.ones((b, plen + width), dtype=torch.long, device=device)
            pos = torch.zeros((b, width), dtype=torch.long, device=device)
            for row, rest in enumerate(rests):
                gap = width - len(rest)
                ids[row, gap:] = torch.tensor(rest, device=device)
                mask[row, plen:plen + gap] = 0
                pos[row] = (torch.arange(width, device=device) - gap).clamp_min(0) + plen
            new = torch.empty((b, 0), dtype=torch.long, device=device)
            finished = torch.zeros(b, dtype=torch.bool, device=device)
            ended = [0.0] * b  # seconds from the batch start to each row's last token
            guides = [fmt.guide(cases[i].tools) if guided else None for i in members]
            for _ in range(max_new_tokens):
                out = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                            use_cache=True, logits_to_keep=1, **{name: cache})
                logits = out.logits[:, -1]  # (b, vocab)
                for row, guide in enumerate(guides):
                    if guide is not None and not finished[row]:
                        apply_guide(logits[row], guide, fmt.reply_text(new[row].tolist()))
                token = logits.argmax(-1)  # (b,)
                token = torch.where(finished, torch.full_like(token, pad), token)
                now = time.perf_counter() - batch_started
                for row in (~finished).nonzero().flatten().tolist():
                    ended[row] = now
                finished |= torch.isin(token, stops)
                new = torch.cat([new, token[:, None]], dim=1)
                if finished.all():
                    break
                ids = token[:, None]
                mask = torch.cat([mask, torch.ones((b, 1), dtype=mask.dtype, device=device)], dim=1)
                pos = pos[:, -1:] + 1
            for row, i in enumerate(members):
                tokens = new[row].tolist()
                cut = next((k for k, t in enumerate(tokens) if t in fmt.stop_token_ids), None)
                generated = tokens[:cut] if cut is not None else tokens
                score.predictions.append(_judge(fmt, cases[i], i, generated,
                                                len(generated) + (cut is not None), ended[row]))
            done += b
            if progress:
                progress(done, len(cases))
    model.train(was_training)
    score.seconds = time.perf_counter() - started
    score.predictions.sort(key=lambda p: p.index)
    return score


def _judge(fmt, case: Case, index: int, new: list[int], tokens: int, seconds: float) -> Prediction:
    raw = fmt.reply_text(new)
    parsed = fmt.parse(raw)
    ast = match_calls(parsed.calls, case.expected, case.tools)
    exact = match_calls(parsed.calls, case.expected, case.tools, strict=True).ok
    if parsed.errors:  # an unreadable call block: no match, and no "no call" either
        kind = "malformed" if case.expected else "false-call"
        ast, exact = Verdict(False, kind, f"unreadable call: {parsed.errors[0].reason}"), False
    return Prediction(case, index, raw, parsed.calls, parsed.errors, ast, exact, tokens, seconds)
