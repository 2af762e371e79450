"""The decode step's KV cache: the padded cache the decode core keeps (serve/decode.py) against
per-row caches, the other layout issue 17 asks to measure.

The same rows (held-out questions of examples/test.jsonl with the first 2, 4 or 8 sample tools,
so contexts of different lengths), the same greedy tokens, timed per decode step:

  padded    one cache (rows, kv_heads, L, head_dim), rows left-padded to the longest, one forward
            pass per step: the decode core's, preallocated (transformers' StaticCache, steps write
            their column in place; laid anew when rows join, compacted in place when they leave)
  dynamic   the same in a DynamicCache (every step re-allocates it one column wider: what the
            core uses where StaticCache does not fit the model's layers)
  repad     a cache per row; every step lays them side by side, left-padded, runs one forward
            pass and appends each row's new column back to its own cache (per-row storage,
            batched compute)
  loop      a cache per row, one forward pass per row per step (no padding, no batching)

and the cost of the padded layout's own copies: a row joining (its cache laid beside the running
rows', all re-padded) and a row from the middle leaving (the rest compacted), each against one step.

Against this machine's limits: a decode step reads the weights and every row's cache (bytes ÷
measured memory bandwidth = the step's floor), and a prompt computed from nothing (the 8-tool
prompt, through the prompt cache's `grow`) does 2 × parameters FLOPs a token, the embedding
table left out (÷ the measured fp32 matmul peak).

  LLM_MCP_HOME=... python bench/kv_cache.py [--model smollm2-135m-instruct] [--rows 4,16] [--steps 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).parent.parent
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    import torch
    from transformers import DynamicCache

    from llm_mcp.chat import ChatFormat
    from llm_mcp.models import load_model
    from llm_mcp.models.load import cache_kwarg
    from llm_mcp.serve.decode import BASE, Decoder, Prefixes, Row
    from serve_throughput import bandwidth_gb_s, setup
    from train_throughput import matmul_peak

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--rows", default="4,16", help="batch sizes")
    ap.add_argument("--steps", type=int, default=16, help="decode steps timed per layout")
    ap.add_argument("--adapter", help=argparse.SUPPRESS)
    ap.add_argument("--json")
    args = ap.parse_args()
    tools, questions, _, _ = setup(args)
    loaded = load_model(args.model, dtype="fp32", device="cpu")
    model, fmt = loaded.model.eval(), ChatFormat(loaded.tokenizer)
    kw = cache_kwarg(model)
    out: dict = {"model": args.model, "threads": torch.get_num_threads(), "steps": args.steps, "rows": {}}

    def prompts(n: int) -> list[list[int]]:
        return [fmt.prompt_ids([{"role": "user", "content": questions[i]}], tools[:(2, 4, 8)[i % 3]])
                for i in range(n)]

    def per_row_caches(ids: list[list[int]]):
        prefixes = Prefixes(lambda: model)
        caches = []
        for p in ids:
            prefixes.grow(p[:-1], BASE)
            caches.append(prefixes.copy(p[:-1], BASE))
        return caches

    def padded(ids, static: bool = True):
        decoder = Decoder(lambda: model)
        decoder.static = None if static else False
        rows = [Row(p, fmt, max_new_tokens=10**6) for p in ids]
        for r in rows:
            r.stops = frozenset()  # nobody leaves: every layout runs the same steps
        decoder.join(rows)
        decoder.step()  # warm
        started = time.perf_counter()
        for _ in range(args.steps):
            decoder.step()
        seconds = (time.perf_counter() - started) / args.steps
        # the layout's own copies: one more row joining, then one leaving
        extra = Row(ids[0], fmt, max_new_tokens=10**6)
        extra.stops = frozenset()
        decoder.admit([extra])
        decoder.prefixes.grow(ids[0][:-1], BASE)  # its prompt computed outside the timing
        started = time.perf_counter()
        decoder.prefill()
        join = time.perf_counter() - started
        leaving = decoder.rows[len(decoder.rows) // 2]  # a row from the middle: the rows after it move
        started = time.perf_counter()
        decoder._drop([leaving], "cancelled")
        leave = time.perf_counter() - started
        return seconds, [r.stream.ids[:args.steps + 1] for r in rows], join, leave

    def repad(ids):
        caches = per_row_caches(ids)
        last = torch.tensor([p[-1] for p in ids])
        pos = torch.tensor([len(p) - 1 for p in ids])
        tokens = [[] for _ in ids]

        def step():
            nonlocal last, pos
            lengths = [c.get_seq_length() for c in caches]
            wide = max(lengths)
            cache = DynamicCache()
            for i in range(len(caches[0].layers)):
                def pad(t):  # (1, kv_heads, Li, head_dim) → (1, kv_heads, wide, head_dim)
                    gap = wide - t.shape[2]
                    return torch.nn.functional.pad(t, (0, 0, gap, 0)) if gap else t
                cache.update(torch.cat([pad(c.layers[i].keys) for c in caches]),
                             torch.cat([pad(c.layers[i].values) for c in caches]), i)
            mask = torch.zeros((len(ids), wide + 1), dtype=torch.long)
            for r, n in enumerate(lengths):
                mask[r, wide - n:] = 1
            with torch.inference_mode():
                logits = model(input_ids=last[:, None], attention_mask=mask, position_ids=pos[:, None],
                               use_cache=True, logits_to_keep=1, **{kw: cache}).logits[:, -1]
            for i, layer in enumerate(cache.layers):  # the new column back to each row's cache
                for r, c in enumerate(caches):
                    own = c.layers[i]
                    own.keys = torch.cat([own.keys, layer.keys[r:r + 1, :, -1:]], dim=2)
                    own.values = torch.cat([own.values, layer.values[r:r + 1, :, -1:]], dim=2)
            last, pos = logits.argmax(-1), pos + 1
            for r, t in enumerate(last.tolist()):
                tokens[r].append(t)
        return timed(step), tokens

    def loop(ids):
        caches = per_row_caches(ids)
        last = [p[-1] for p in ids]
        tokens = [[] for _ in ids]

        def step():
            for r, c in enumerate(caches):
                n = c.get_seq_length()
                with torch.inference_mode():
                    logits = model(input_ids=torch.tensor([[last[r]]]), position_ids=torch.tensor([[n]]),
                                   use_cache=True, logits_to_keep=1, **{kw: c}).logits[0, -1]
                last[r] = int(logits.argmax())
                tokens[r].append(last[r])
        return timed(step), tokens

    def timed(step) -> float:
        step()  # warm (and the first token)
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        return (time.perf_counter() - started) / args.steps

    # prefill: the longest prompt from nothing, its best of three, against the matmul peak
    longest = max(prompts(3), key=len)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        Prefixes(lambda: model).grow(longest, BASE)
        best = min(best, time.perf_counter() - started)
    # the input embedding is a lookup, and the (tied) output head runs for the last token only
    params = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    peak, bandwidth = matmul_peak("fp32"), bandwidth_gb_s()
    flops = 2 * params * len(longest) / best
    out["prefill"] = {"tokens": len(longest), "seconds": round(best, 3), "tokens_per_s": round(len(longest) / best),
                      "flop_per_s": round(flops / 1e9, 1), "matmul_peak_gflop_per_s": round(peak / 1e9, 1),
                      "of_peak": round(flops / peak, 2)}
    out["bandwidth_gb_s"] = round(bandwidth, 1)
    print(f"prefill: {len(longest)} tokens in {best:.2f} s, {flops / 1e9:.0f} GFLOP/s = {flops / peak:.0%} of the "
          f"measured fp32 matmul peak ({peak / 1e9:.0f} GFLOP/s); memory bandwidth {bandwidth:.1f} GB/s", flush=True)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    for n in [int(x) for x in args.rows.split(",")]:
        ids = prompts(n)
        step_padded, want, join, leave = padded(ids)
        step_dynamic, got_dynamic, join_dynamic, leave_dynamic = padded(ids, static=False)
        step_repad, got_repad = repad(ids)
        step_loop, got_loop = loop(ids)
        same = got_repad == want and got_loop == want and got_dynamic == want
        # what a step must read: the weights and every row's cache at the widest context (padded)
        kv_bytes = n * (max(len(p) for p in ids) + args.steps) * 2 * sum(
            layer.keys[0, :, 0].numel() * layer.keys.element_size() for layer in per_row_caches(ids[:1])[0].layers)
        floor = (weight_bytes + kv_bytes) / (bandwidth * 1e9)
        row = {"context_tokens": [len(p) for p in ids], "same_tokens": same,
               "padded_step_s": round(step_padded, 4), "repad_step_s": round(step_repad, 4),
               "loop_step_s": round(step_loop, 4), "padded_join_s": round(join, 4),
               "padded_leave_s": round(leave, 4), "dynamic_step_s": round(step_dynamic, 4),
               "dynamic_join_s": round(join_dynamic, 4), "dynamic_leave_s": round(leave_dynamic, 4),
               "dynamic_vs_padded": round(step_padded / step_dynamic, 2),
               "repad_vs_padded": round(step_padded / step_repad, 2),
               "loop_vs_padded": round(step_padded / step_loop, 2),
               "bandwidth_floor_s": round(floor, 4), "padded_of_floor": round(floor / step_padded, 2)}
        out["rows"][n] = row
        print(f"{n:>3} rows, contexts {min(row['context_tokens'])}-{max(row['context_tokens'])} tokens: "
              f"step padded {step_padded * 1e3:.0f} ms, dynamic {step_dynamic * 1e3:.0f} ms "
              f"({row['dynamic_vs_padded']}× the speed; join {join_dynamic * 1e3:.0f} ms, leave "
              f"{leave_dynamic * 1e3:.0f} ms), per-row re-padded {step_repad * 1e3:.0f} ms "
              f"({row['repad_vs_padded']}× the speed), per-row loop {step_loop * 1e3:.0f} ms "
              f"({row['loop_vs_padded']}×); the bandwidth floor {floor * 1e3:.0f} ms "
              f"({row['padded_of_floor']:.0%} of it reached); padded join {join * 1e3:.0f} ms, leave {leave * 1e3:.0f} ms; "
              f"same tokens: {same}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
