"""GPU check: the recipe's CUDA paths on a randomly initialised SmolLM2-sized model.

One script for a short lease on a GPU machine (about 5 minutes on one H200):
  1. bf16 LoRA steps with shared-prefix packing, then the same steps without it: examples/s,
     dataset tokens/s, peak GPU memory, loss after the steps (the two losses must agree);
  2. QLoRA steps (4-bit nf4 base with double quantisation, bf16 compute) — needs bitsandbytes;
  3. the out-of-memory back-off on purpose: the process is held to --oom-gib of GPU memory
     (torch.cuda.set_per_process_memory_fraction) and asked for --oom-micro unpacked examples per
     micro-batch; the recipe must halve until the step fits and finish with the same loss.
Each part runs llm_mcp.train.recipe.train in this process and is reported even when another
fails. Without CUDA the same parts run on the CPU at toy size (`--size tiny`), QLoRA is reported
as skipped and the back-off is driven by the recipe's fault-injection variable instead — so the
script itself is tested where no GPU is lent.

The model is random (nothing is downloaded); it needs a tokenizer folder (`--tokenizer`, for
example the converted SmolLM2 in $LLM_MCP_HOME/models, or its tokenizer files copied beside the
repository for a device run) and the sample data in examples/.

  python bench/gpu_check.py --tokenizer DIR [--size smol|tiny] [--steps 10] [--batch 8]
      [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {  # SmolLM2-135M's shape; tiny: a CPU smoke run of the same script
    "smol": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2),
}
LORA = ["lora.r=16", "lora.lora_alpha=32", "lora.target_modules=all-linear", "lora.lora_dropout=0"]


def build_model(tokenizer_dir: str, size: str, folder: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         **SIZES[size])
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)  # safetensors
    tokenizer.save_pretrained(folder)
    return folder


def run(name: str, model: Path, work: Path, args, *overrides: str, env: dict | None = None,
        memory_gib: float | None = None) -> dict:
    """One training run; → its figures, or the error it ended with."""
    import torch

    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    out = work / name
    config = load_config("default", flags={"model": str(model), "data": args.data, "tools": args.tools,
                                           "output": str(out)},
                         overrides=[*LORA, f"max_steps={args.steps}", f"micro_batch_size={args.batch}",
                                    "learning_rate=1e-3", "save_every=100000", "seed=0", *overrides])
    cuda = torch.cuda.is_available()
    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        if memory_gib:
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, memory_gib * 2**30 / total))
    row = {"part": name, "settings": " ".join(overrides) or "-"}
    started = time.perf_counter()
    try:
        result = train(config, progress=False)
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        steps = [x for x in lines if "loss" in x]
        row.update(ok=True, seconds=round(result.seconds, 2),
                   examples_per_s=round(result.examples_per_s, 2),
                   tokens_per_s=round(result.tokens_per_s, 1), loss=steps[-1]["loss"],
                   micro_batch_sizes=sorted({x["micro_batch_size"] for x in steps}, reverse=True))
    except Exception as err:  # noqa: BLE001 - every part is reported, failed or not
        row.update(ok=False, error=f"{type(err).__name__}: {err}"[:600],
                   seconds=round(time.perf_counter() - started, 2))
        traceback.print_exc()
    finally:
        for k, v in saved_env.items():  # the environment as it was
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
        if cuda:
            row["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.set_per_process_memory_fraction(1.0)
    return row


def environment() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info.update(gpu=torch.cuda.get_device_name(0), bf16=torch.cuda.is_bf16_supported(),
                    gpu_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    for package in ("transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            info[package] = __import__(package).__version__
        except Exception as err:  # noqa: BLE001 - a missing or broken package is a finding
            info[package] = f"unavailable ({type(err).__name__})"
    return info


def table(rows: list[dict]) -> str:
    head = "| part | settings | ok | s | examples/s | tokens/s | peak GPU GiB | loss | micro-batches |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append("| " + " | ".join(str(x) for x in (
            r["part"], r["settings"], "yes" if r.get("ok") else "no: " + r.get("error", r.get("skipped", "")),
            r.get("seconds", ""), r.get("examples_per_s", ""), r.get("tokens_per_s", ""),
            r.get("peak_gpu_gib", ""), f"{r['loss']:.4f}" if "loss" in r else "",
            "→".join(map(str, r.get("micro_batch_sizes", []))))) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True, help="folder with a tokenizer (SmolLM2's)")
    parser.add_argument("--size", choices=sorted(SIZES), default=None,
                        help="model shape (default: smol on CUDA, tiny on the CPU)")
    parser.add_argument("--data", default=str(ROOT / "examples" / "train.jsonl"))
    parser.add_argument("--tools", default=str(ROOT / "examples" / "tools.json"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--oom-micro", type=int, default=256, help="micro-batch asked for in part 3")
    parser.add_argument("--oom-gib", type=float, default=6.0, help="GPU memory allowed in part 3")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    env = environment()
    print(json.dumps(env), flush=True)
    cuda = env["cuda"]
    size = args.size or ("smol" if cuda else "tiny")
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        model = build_model(args.tokenizer, size, work / "model")
        rows.append(run("bf16 packed", model, work, args, "precision=bf16", "packing=true"))
        rows.append(run("bf16 unpacked", model, work, args, "precision=bf16", "packing=false"))
        if cuda and not env["bitsandbytes"].startswith("unavailable"):
            rows.append(run("qlora nf4", model, work, args, "load_in_4bit=true", "precision=bf16",
                            "bnb_4bit_quant_type=nf4", "bnb_4bit_use_double_quant=true"))
        else:
            rows.append({"part": "qlora nf4", "settings": "load_in_4bit=true", "ok": False,
                         "skipped": "needs CUDA and bitsandbytes"})
        # the back-off: a real CUDA out-of-memory under a memory cap; on the CPU the recipe's
        # fault injection stands in for it (any micro-batch over 6,000 tokens "runs out": 8 of
        # the sample examples, ~1,000 tokens each, do; 4 do not)
        oom_env = None if cuda else {"LLM_MCP_FAULT_OOM_TOKENS": "6000"}
        micro = args.oom_micro if cuda else 8
        rows.append(run("oom back-off", model, work, args, "precision=bf16", "packing=false",
                        f"micro_batch_size={micro}", f"max_steps={max(2, args.steps // 5)}",
                        env=oom_env, memory_gib=args.oom_gib if cuda else None))
        fits = min(micro, args.batch)  # the same examples per step, in micro-batches that fit
        rows.append(run("oom reference", model, work, args, "precision=bf16", "packing=false",
                        f"micro_batch_size={fits}", f"gradient_accumulation_steps={micro // fits}",
                        f"max_steps={max(2, args.steps // 5)}"))
    packed, unpacked = rows[0], rows[1]
    summary = {}
    if packed.get("ok") and unpacked.get("ok"):
        summary["packing_speedup"] = round(packed["examples_per_s"] / unpacked["examples_per_s"], 2)
        summary["packing_loss_gap"] = abs(packed["loss"] - unpacked["loss"])
    backoff, reference = rows[-2], rows[-1]
    if backoff.get("ok") and reference.get("ok"):
        summary["backoff_micro_batch"] = f"{micro} → {min(backoff['micro_batch_sizes'])}"
        summary["backoff_loss_gap"] = abs(backoff["loss"] - reference["loss"])
    print(table(rows))
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"environment": env, "size": size, "rows": rows,
                                               "summary": summary, "torch_threads": torch.get_num_threads()},
                                              indent=1))
    return 0 if all(r.get("ok") or r.get("skipped") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
