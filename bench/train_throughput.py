"""Training throughput: TRL's SFTTrainer (defaults, then tuned) against llm-mcp's recipe.

Three trainers (and the recipe again, memory-lean), each in its own subprocess (so the peak RSS
is that trainer's alone), on the same model, the same examples, the same LoRA (r=16, alpha=32,
all-linear, dropout 0; on every layer, or with --layers upper-half on the upper half of the
decoder layers as the default preset does), learning rate 1e-3 with a cosine schedule, the same precision (bf16 autocast when the CPU has avx512_bf16 or
amx_bf16, else fp32) and the same effective batch (--batch examples per optimizer step, no
gradient accumulation) for --steps steps, all on the CPU:

  a  TRL SFTTrainer + PEFT with TRL's defaults: a "text" dataset (every example rendered by
     llm-mcp's ChatFormat, tools included), default collator (padded batches), no packing,
     gradient checkpointing on (TRL's default), fp32 base weights, loss on every token.
  b  TRL tuned for CPU: a prompt/completion dataset (the same text cut at the first assistant
     token), completion-only loss, padding_free=True (the batch flattened into one row with
     position_ids, no pad tokens), no gradient checkpointing, bf16 base weights when bf16.
     assistant_only_loss=True is tried first; refused options are dropped and reported.
     packing=True is not used: it turns the batch into N rows of max_length tokens rather than
     N examples (so the effective batch would differ); padding_free is the same pad-free forward.
  c  llm-mcp: llm_mcp.train.recipe.train with the default preset (shared-prefix packing, the
     output head only at labelled positions).
  d  the same, memory-lean: gradient_checkpointing=true (activations recomputed in the backward
     pass instead of kept) and base_dtype=bf16 when bf16 (the frozen weights in half the bytes).

The examples are the first steps*batch of --data, and every trainer sees the same examples in
the same steps: TRL reads them in order (train_sampling_strategy="sequential"), and its copies
are written in the order the recipe's seeded shuffle takes them (examples that carry one tool list
kept together per step, as the recipe deals them). Timed: the training loop only (TRL: on_train_begin -> on_train_end callbacks; the
recipe: its own loop timer, Result.seconds); model load, tokenization and saving are not.
`--data distinct`: examples that share no prompt (each carries its own 1-2 tools of the
synthesizer's 36-tool bank), where shared-prefix packing helps little: rows of one example each,
in forward passes of similar length.
tokens/s counts the rendered examples' tokens as written (no padding, no repeated EOS).
Model FLOP/s = tokens/s x the model FLOPs a trained token needs (2N forward, 2N' backward
through the layers the gradient passes; flops_per_token), the same count for every trainer, as
a fraction of this machine's matmul peak measured in the same run (matmul_peak).
The TRL texts drop the whitespace after the final end-of-turn token, so that TRL does not append
a second EOS; that newline is not trained by the recipe either.

  LLM_MCP_HOME=... python bench/train_throughput.py [--model smollm2-135m-instruct]
      [--data examples/train.jsonl | distinct] [--steps 4] [--batch 8] [--only a,b,c,d] [--layers all|upper-half]
      [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAMES = {"a": "TRL defaults", "b": "TRL tuned", "c": "llm-mcp", "d": "llm-mcp, memory-lean"}
LOSS_OVER = {"a": "all tokens (not comparable)", "b": "completion tokens", "c": "assistant tokens",
             "d": "assistant tokens"}
LORA = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear", "lora_dropout": 0.0}
LR, SEED, WARMUP_RATIO = 1e-3, 0, 0.05  # WARMUP_RATIO: the default preset's


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------- data

def prepare(model: str, data: str, n: int, batch: int, work: Path) -> dict:
    """Render the first n examples once; write the three trainers' copies of them."""
    from llm_mcp.chat import ChatFormat
    from llm_mcp.data.convert import to_record
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.models import load_tokenizer, local_dir
    from llm_mcp.data.tokenize import prompt_key
    from llm_mcp.train.recipe import epoch_order

    tok = load_tokenizer(model)
    fmt = ChatFormat(tok)
    if data == "distinct":
        data = str(distinct_tools(n, work))
    examples = read_dataset(data).examples
    if len(examples) < n:
        sys.exit(f"{data} has {len(examples)} examples, fewer than steps*batch = {n}")
    examples = examples[:n]
    # the recipe's step s takes file[order[s*B:(s+1)*B]] (examples of one tool list together):
    # its file is the examples as they are, TRL's copies are written in that order
    order = epoch_order(n, SEED, 0, [prompt_key(ex.tools) for ex in examples], batch)
    texts, pairs, tokens, multi_turn = [], [], 0, 0
    for ex in (examples[i] for i in order):
        r = fmt.render(ex.messages, ex.tools)
        tokens += len(r.input_ids)
        multi_turn += sum(1 for m in ex.messages if m.role == "assistant") > 1
        text = r.text.rstrip() if r.text.rstrip().endswith(tok.eos_token) else r.text
        cut = r.offsets[r.assistant_mask.index(1)][0]  # first assistant token
        texts.append({"text": text})
        pairs.append({"prompt": text[:cut], "completion": text[cut:]})
    ordered = [to_record(ex, "openai") for ex in examples]
    for name, rows in (("text", texts), ("prompt_completion", pairs), ("llm_mcp", ordered)):
        (work / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    longest = max(len(fmt.render(ex.messages, ex.tools).input_ids) for ex in examples)
    return {"tokens": tokens, "examples": n, "model_dir": local_dir(model), "format": fmt.kind,
            "longest": longest, "multi_turn": multi_turn}


def distinct_tools(n: int, work: Path) -> Path:
    """n examples that share no prompt: each carries its own 1-2 tools drawn from the
    synthesizer's 36-tool bank (as users' records that each bring their tools do)."""
    from llm_mcp.data.synth import Options, bank_tools, synthesize

    options = Options(group=1, max_tools=2, distractors=1)
    records = synthesize(bank_tools(), n, seed=SEED, options=options).records
    path = work / "distinct.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ------------------------------------------------------------------------------- trainers

def trl_lora(args) -> dict:
    """LORA for PEFT's LoraConfig; with --layers upper-half, the upper half of the decoder layers
    (PEFT takes a layer list only with named target modules: the Llama-family linear layers)."""
    if args.layers != "upper-half":
        return dict(LORA)
    from transformers import AutoConfig

    count = AutoConfig.from_pretrained(args.model_dir).num_hidden_layers
    return dict(LORA, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                      "down_proj"], layers_to_transform=list(range(count // 2, count)))


def run_trl(args, tuned: bool) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from llm_mcp.models import load_tokenizer

    class Clock(TrainerCallback):
        """Times the training loop (and each step's end); keeps the loss logged at the last step."""
        start = end = loss = None

        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()
            self.step_ends = []

        def on_step_end(self, *a, **k):
            self.step_ends.append(time.perf_counter() - self.start)

        def on_train_end(self, *a, **k):
            self.end = time.perf_counter()

        def on_log(self, args_, state, control, logs=None, **k):
            if logs and "loss" in logs:
                self.loss = logs["loss"]

    bf16 = args.precision == "bf16"
    name = "prompt_completion" if tuned else "text"
    rows = [json.loads(line) for line in (Path(args.work) / f"{name}.jsonl").read_text().splitlines()]
    # the hyperparameters that define the training (same as the recipe); everything else default
    common = dict(max_steps=args.steps, per_device_train_batch_size=args.batch,
                  gradient_accumulation_steps=1, learning_rate=LR, lr_scheduler_type="cosine",
                  warmup_steps=round(WARMUP_RATIO * args.steps), weight_decay=0.0, max_grad_norm=1.0,
                  seed=SEED, bf16=bf16, use_cpu=True, train_sampling_strategy="sequential",
                  logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True)
    if tuned:
        base = dict(completion_only_loss=True, padding_free=True, max_length=None,
                    gradient_checkpointing=False,
                    model_init_kwargs={"dtype": "bfloat16" if bf16 else "float32"})
        tries = [dict(base, assistant_only_loss=True), base,
                 {k: v for k, v in base.items() if k not in ("padding_free", "max_length")}]
    else:
        tries = [{}]
    refused = []
    for i, options in enumerate(tries):
        clock = Clock()
        try:
            config = SFTConfig(output_dir=str(Path(args.work) / f"trl_{name}"), **common, **options)
            trainer = SFTTrainer(model=args.model_dir, args=config, train_dataset=Dataset.from_list(rows),
                                 processing_class=load_tokenizer(args.model),
                                 peft_config=LoraConfig(task_type="CAUSAL_LM", **trl_lora(args)),
                                 callbacks=[clock])
            break
        except (ValueError, RuntimeError, NotImplementedError, TypeError) as err:
            dropped = set(options) - set(tries[i + 1]) if i + 1 < len(tries) else set(options)
            refused.append({"options": sorted(dropped),
                            "error": f"{type(err).__name__}: {str(err).splitlines()[0]}"})
            trainer = None
            gc.collect()
    if trainer is None:
        raise SystemExit(f"every TRL configuration was refused: {refused}")
    trainer.train()
    seconds = clock.end - clock.start
    settings = {"gradient_checkpointing": config.gradient_checkpointing, "packing": config.packing,
                "padding_free": trainer.padding_free, "max_length": config.max_length,
                "completion_only_loss": trainer.completion_only_loss,
                "assistant_only_loss": config.assistant_only_loss,
                "base_dtype": options.get("model_init_kwargs", {}).get("dtype", "float32"),
                "bf16_autocast": bf16, "optim": str(config.optim)}
    return {"steps": trainer.state.global_step, "seconds": seconds, "final_loss": clock.loss,
            "step_ends_s": [round(t, 3) for t in clock.step_ends],
            "settings": settings, "refused": refused}


def run_llm_mcp(args, lean: bool) -> dict:
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    out = Path(args.work) / "llm_mcp_out"
    overrides = [f"max_steps={args.steps}", f"micro_batch_size={args.batch}", "save_every=100000",
                 f"precision={args.precision}", "gradient_accumulation_steps=1", "device=cpu",
                 f"learning_rate={LR}", f"seed={SEED}", "lr_scheduler=cosine",
                 f"warmup_ratio={WARMUP_RATIO}", f"gradient_checkpointing={lean}"]
    if lean and args.precision == "bf16":
        overrides.append("base_dtype=bf16")
    overrides += [f"lora.{k}={v}" for k, v in LORA.items()]
    overrides.append("lora.layers_to_transform=" + ("upper-half" if args.layers == "upper-half" else "null"))
    config = load_config("default", None, {"model": args.model, "data": str(Path(args.work) / "llm_mcp.jsonl"),
                                           "output": str(out)}, overrides)
    result = train(config, progress=False)
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in logged if "loss" in m]
    return {"steps": result.steps, "seconds": result.seconds,
            "step_ends_s": [round(m["elapsed_s"], 3) for m in logged if "elapsed_s" in m],
            "final_loss": losses[-1] if losses else result.final_loss,
            "settings": {"packing": config.packing, "micro_batch_size": config.micro_batch_size,
                         "gradient_checkpointing": config.gradient_checkpointing,
                         "base_dtype": config.base_dtype,
                         "precision": config.precision, "recipe_examples_per_s": result.examples_per_s},
            "refused": []}


def child(args) -> None:
    if args.child in ("c", "d"):
        result = run_llm_mcp(args, lean=args.child == "d")
    else:
        result = run_trl(args, tuned=args.child == "b")
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------- report

def matmul_peak(precision: str) -> float:
    """This machine's measured matmul rate (FLOP/s): the best of 8 products of 2048x2048
    matrices in the training's compute dtype, on every thread torch uses."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    best = float("inf")
    for _ in range(8):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 ** 3 / best


def flops_per_token(model_dir: str, layers: str) -> float:
    """Model FLOPs a trained token needs (the usual count for LoRA on frozen weights): 2N forward
    through the decoder's N weights, 2N' backward through the N' weights of the layers the
    gradient passes (no weight gradients: those are frozen); the output head and attention
    scores are left out. Llama-style blocks (q, k, v, o; gate, up, down)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    d, heads = c.hidden_size, c.num_attention_heads
    kv = getattr(c, "num_key_value_heads", heads) or heads
    per_layer = 2 * d * d + 2 * d * (d // heads) * kv + 3 * d * c.intermediate_size
    n = per_layer * c.num_hidden_layers
    trained = n if layers == "all" else per_layer * (c.num_hidden_layers - c.num_hidden_layers // 2)
    return 2 * n + 2 * trained


def table(rows: dict) -> str:
    head = ["trainer", "steps", "examples", "train s", "examples/s", "tokens/s", "model FLOP/s (of peak)",
            "peak RSS MB", "final loss", "loss over"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, r in rows.items():
        loss = "n/a" if r["final_loss"] is None else f"{r['final_loss']:.4f}"
        lines.append(f"| ({key}) {NAMES[key]} | {r['steps']} | {r['examples']} | {r['seconds']:.2f} | "
                     f"{r['examples_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
                     f"{r['model_flops'] / 1e9:.0f} G ({r['of_peak']:.1%}) | {r['peak_rss_mb']:.0f} | "
                     f"{loss} | {LOSS_OVER[key]} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data", default="examples/train.jsonl", help="a dataset, or `distinct` (1-2 own tools per example)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--only", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto")
    p.add_argument("--layers", choices=["all", "upper-half"], default="all",
                   help="LoRA on every decoder layer, or on the upper half (the default preset's)")
    p.add_argument("--json", help="also write the results as JSON here")
    p.add_argument("--child", choices=list(NAMES), help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    from llm_mcp.train.recipe import cpu_has_bf16

    precision = args.precision if args.precision != "auto" else ("bf16" if cpu_has_bf16() else "fp32")
    which = [k.strip() for k in args.only.split(",") if k.strip()]
    if not which or set(which) - set(NAMES):
        p.error("--only takes a comma-separated subset of a,b,c,d")
    n = args.steps * args.batch
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        info = prepare(args.model, args.data, n, args.batch, work)
        if info["longest"] > 1024 and "a" in which:
            print(f"note: an example has {info['longest']} tokens; TRL's default max_length 1024 "
                  "truncates it in (a)", file=sys.stderr)
        if info["multi_turn"]:
            print(f"note: {info['multi_turn']} examples have several assistant turns; (b) trains "
                  "every token after the first one", file=sys.stderr)
        rows = {}
        for key in which:
            print(f"== ({key}) {NAMES[key]} ...", file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, "--child", key, "--work", tmp, "--model", args.model,
                   "--model-dir", info["model_dir"], "--steps", str(args.steps),
                   "--batch", str(args.batch), "--precision", precision, "--layers", args.layers]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
            found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not found:
                sys.exit(f"({key}) {NAMES[key]} failed with exit code {proc.returncode}")
            r = json.loads(found[-1][len("RESULT "):])
            r["examples"] = r["steps"] * args.batch
            r["tokens"] = info["tokens"] * r["steps"] // args.steps
            r["examples_per_s"] = r["examples"] / r["seconds"]
            r["tokens_per_s"] = r["tokens"] / r["seconds"]
            rows[key] = r
        peak = matmul_peak(precision)
        per_token = flops_per_token(info["model_dir"], args.layers)
        for r in rows.values():
            r["model_flops"] = r["tokens_per_s"] * per_token
            r["of_peak"] = r["model_flops"] / peak

    md = table(rows)
    ratios = {}
    for ours in ("c", "d"):
        for other in ("a", "b"):
            if ours in rows and other in rows:
                key = f"{ours}/{other}"
                ratios[key] = {
                    "examples_per_s": rows[ours]["examples_per_s"] / rows[other]["examples_per_s"],
                    "peak_rss": rows[ours]["peak_rss_mb"] / rows[other]["peak_rss_mb"]}
                md += (f"\n\n({ours}) over ({other}): {ratios[key]['examples_per_s']:.2f}x the "
                       f"examples/s (and tokens/s), {ratios[key]['peak_rss']:.2f}x the peak RSS")
    for key, r in rows.items():
        md += f"\n\n({key}) settings: {json.dumps(r['settings'])}"
        md += f"\n({key}) seconds at the end of each step: {r['step_ends_s']}"
        for refusal in r["refused"]:
            md += f"\n({key}) refused {refusal['options']}: {refusal['error']}"
    header = (f"model {args.model} ({info['format']} format), {n} examples of {args.data} "
              f"({info['tokens']} tokens), {args.steps} steps x {args.batch} examples, "
              f"precision {precision}, LoRA layers {args.layers}, {os.cpu_count()} CPUs; "
              f"measured matmul peak {peak / 1e9:.0f} GFLOP/s ({precision}), "
              f"{per_token / 1e6:.0f} MFLOP per trained token\n\n")
    print(header + md)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": args.model, "data": args.data, "steps": args.steps, "batch": args.batch,
            "precision": precision, "layers": args.layers, "dataset_tokens": info["tokens"], "results": rows,
            "matmul_peak_flops": peak, "flops_per_token": per_token,
            "ratios": ratios, "markdown": header + md}, indent=1))


if __name__ == "__main__":
    main()
