"""The LoRA SFT recipe: setup → loop → save, in that order, in this one file.

Built on PEFT (the LoRA layers) and accelerate (device, mixed precision, DDP under `accelerate
launch`). What it adds to a plain loop, each for a measured reason:
- shared-prefix packing (`data/packing.py`): the tool-schema prompt that every example repeats is
  computed once per row, not once per example;
- the output head only at labelled positions (`train/loss.py`);
- the loss normalised by the labelled tokens of the whole optimizer step, so packing, micro-batch
  size and the number of processes change nothing but speed;
- checkpoints with every state (`train/checkpoint.py`), so `--resume` repeats the same losses;
- on out-of-memory the step is retried with half the micro-batch (the same examples, so the same
  maths); on a non-finite loss or exploding gradient the run stops before applying the step.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from llm_mcp.data.tokenize import IGNORE
from llm_mcp.errors import LLMMCPError
from llm_mcp.train import checkpoint
from llm_mcp.train.config import TrainConfig
from llm_mcp.train.metrics import MetricsLog, format_report, plot_loss, trainable_report

log = logging.getLogger(__name__)

# Test hook: pretend that a micro-batch of more than this many tokens ran out of memory, so the
# back-off can be exercised on machines without a GPU. Never set in normal use.
FAULT_OOM_TOKENS = "LLM_MCP_FAULT_OOM_TOKENS"


class TrainingDiverged(LLMMCPError):
    pass


@dataclass
class Prepared:
    """Examples ready for the loop."""

    items: list  # data.tokenize.Tokenized
    examples: list  # data.example.Example, the ones read
    tools: list[dict]
    data_sha256: str
    dropped: int = 0


@dataclass
class Result:
    output: Path
    steps: int
    final_loss: float | None
    seconds: float
    examples_per_s: float
    tokens_per_s: float
    report: dict


def default_output(config: TrainConfig) -> Path:
    from llm_mcp.config import home_dir

    stem = Path(config.data).stem if config.data else "adapter"
    return home_dir() / "adapters" / stem


def prepare_data(path: str, config: TrainConfig, fmt) -> Prepared:
    """Read, validate (every error with file:line), check render/parse parity, tokenize."""
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.example import issues_error
    from llm_mcp.data.tokenize import tokenize_examples
    from llm_mcp.data.validate import check_dataset
    from llm_mcp.models.load import sha256_files

    tools = read_tools_file(config.tools) if config.tools else None
    ds, issues, _ = check_dataset(path, fmt, data_format=None if config.format == "auto" else config.format,
                                  tools=tools)
    errors = [i for i in issues if i.level == "error"]
    if errors and config.skip_invalid:
        bad = {(i.source, i.line) for i in errors}
        for issue in errors:
            log.warning("skipped: %s", issue)
        ds.examples = [ex for ex in ds.examples if (ex.source, ex.line) not in bad]
        log.warning("skip_invalid: %d invalid examples dropped, %d left", len(bad), len(ds.examples))
        errors = [i for i in errors if i.line == 0]  # a file-level error still stops training
    if errors or not ds.examples:
        raise issues_error(path, errors, "nothing trained")
    items, dropped = tokenize_examples(ds.examples, fmt, config.max_length)
    for issue in dropped:
        log.warning("%s", issue)
    if not items:
        raise LLMMCPError(f"every example of {path} is longer than max_length {config.max_length}",
                          "raise max_length")
    seen: dict[str, dict] = {}
    for ex in ds.examples:
        for t in ex.tools:
            seen.setdefault(t["name"], t)
    digest = sha256_files([Path(path)]) if Path(path).is_file() else ""
    return Prepared(items, ds.examples, list(seen.values()), digest, len(dropped))


def epoch_order(n: int, seed: int, epoch: int, prompts: list[str] | None = None,
                chunk: int = 1) -> list[int]:
    """A shuffle of the examples. Where they carry different tool lists (`prompts`), examples of
    one list are dealt out in chunks of `chunk` (one step's worth) and the chunks shuffled, so a
    micro-batch shares its prompt and packing computes it once; one list: a plain shuffle."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(n))
    rng.shuffle(order)
    if not prompts or chunk <= 1 or len(set(prompts)) == 1:
        return order
    by_prompt: dict[str, list[int]] = {}
    for i in order:
        by_prompt.setdefault(prompts[i], []).append(i)
    chunks = [group[k:k + chunk] for group in by_prompt.values() for k in range(0, len(group), chunk)]
    rng.shuffle(chunks)
    return [i for c in chunks for i in c]


def _label_count(item) -> int:
    return sum(1 for t in item.labels[1:] if t != IGNORE)


def _linear_names(model) -> list[str]:
    """The model's linear layers by their last name, the output head left out."""
    import torch

    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if (isinstance(m, torch.nn.Linear) or "Linear" in type(m).__name__) and m is not head})


def _check_targets(model, targets) -> None:
    """target_modules that match nothing → an error listing the model's linear layers."""
    if targets == "all-linear":
        return
    linear = _linear_names(model)
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise LLMMCPError(f"target_modules {missing} match no module of this model; its linear "
                          f"layers are: {', '.join(linear)}",
                          f"for example lora.target_modules={','.join(linear[:2])}, or all-linear")


def _layers(model, layers: list[int] | str | None) -> list[int] | None:
    """lora.layers_to_transform made concrete for this model ("upper-half" → its upper half)."""
    count = getattr(model.config, "num_hidden_layers", None)
    if layers == "upper-half":
        if count is None:
            raise LLMMCPError("lora.layers_to_transform=upper-half: this model's config does not "
                              "say how many layers it has", "list the layers, e.g. 12-23, or null")
        return list(range(count // 2, count))
    outside = [i for i in layers or [] if count is not None and not 0 <= i < count]
    if outside:
        raise LLMMCPError(f"lora.layers_to_transform names layers {outside}, but this model has "
                          f"{count} decoder layers (0-{count - 1})",
                          f"for example lora.layers_to_transform={count // 2}-{count - 1} or upper-half")
    return layers


def _precision(config: TrainConfig, device_type: str) -> str:
    """→ accelerate's mixed_precision: "no", "bf16" or "fp16"."""
    import torch

    wanted = config.precision
    if wanted == "auto":
        if device_type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device_type == "cpu" and cpu_has_bf16() else "no"
    if wanted == "fp16" and device_type != "cuda":
        raise LLMMCPError("precision fp16 needs a CUDA GPU", "use precision=bf16 or fp32 on this machine")
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[wanted]


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _to(batch: dict, device) -> dict:
    return {key: None if value is None else value.to(device) for key, value in batch.items()}


def _is_oom(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def train(config: TrainConfig, resume: bool = False, progress: bool | None = None) -> Result:
    """Run the recipe. `resume`: continue from the latest checkpoint in the output folder."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import get_scheduler

    from llm_mcp.chat import ChatFormat
    from llm_mcp.data.packing import micro_batches
    from llm_mcp.models import load_model, load_tokenizer, resolve
    from llm_mcp.train.loss import token_loss_sum

    # ---------------------------------------------------------------- setup
    if not config.data:
        raise LLMMCPError("no training data given", "llm-mcp train --data examples/train.jsonl")
    output = Path(config.output) if config.output else default_output(config)
    quant = None
    if config.load_in_4bit:  # fail before anything loads (needs CUDA + bitsandbytes)
        from llm_mcp.models.load import quantization_config

        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        quant = {"compute_dtype": dtypes[config.bnb_4bit_compute_dtype],
                 "quant_type": config.bnb_4bit_quant_type,
                 "double_quant": config.bnb_4bit_use_double_quant}
        quantization_config(**quant)
    on_cpu = (config.device == "cpu" or not torch.cuda.is_available()
              or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"))
    # accelerate keeps its settings in a process-wide singleton; a second run in the same process
    # (another precision) must start from a clean one. The distributed setup (PartialState) stays.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    accelerator = Accelerator(cpu=on_cpu, mixed_precision=_precision(config, "cpu" if on_cpu else "cuda"))
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    set_seed(config.seed)
    if output.exists() and not resume and checkpoint.checkpoints(output):
        raise LLMMCPError(f"{output} already holds a run with checkpoints",
                          "continue it with --resume, or choose another --output")
    if main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.json").write_text(config.model_dump_json(indent=1))

    source = resolve(config.model, config.gguf_file)
    tokenizer = load_tokenizer(source)
    fmt = ChatFormat(tokenizer, None if config.chat_format == "auto" else config.chat_format)
    data = prepare_data(config.data, config, fmt)
    items = data.items
    held_out = prepare_data(config.eval_data, config, fmt) if config.eval_data else None
    evals = held_out.items if held_out else []

    per_step = config.micro_batch_size * config.gradient_accumulation_steps * world
    steps_per_epoch = max(1, math.ceil(len(items) / per_step) if world == 1 else len(items) // per_step)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))

    # GPUs: frozen base weights in the compute dtype (half the memory; the LoRA weights stay fp32).
    # CPUs: fp32 weights under bf16 autocast measured faster (946 vs 827 tokens/s on SmolLM2).
    load_dtype = ("fp32" if accelerator.mixed_precision == "no" or accelerator.device.type == "cpu"
                  else accelerator.mixed_precision)
    if config.base_dtype != "auto":
        if config.base_dtype != "fp32" and accelerator.mixed_precision == "no":
            raise LLMMCPError(f"base_dtype={config.base_dtype} needs mixed precision, and this "
                              "machine trains in fp32 (no bf16 support found)", "use base_dtype=fp32")
        load_dtype = config.base_dtype
    loaded = load_model(source, dtype=load_dtype, device=str(accelerator.device),
                        load_in_4bit=config.load_in_4bit, quant=quant)
    model = loaded.model
    if config.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing)
    _check_targets(model, config.lora.target_modules)
    settings = config.lora.model_dump()
    settings["layers_to_transform"] = _layers(model, settings["layers_to_transform"])
    if settings["layers_to_transform"] and settings["target_modules"] == "all-linear":
        settings["target_modules"] = _linear_names(model)  # PEFT takes layers with a list only
    lora = LoraConfig(task_type="CAUSAL_LM", **settings)
    model = get_peft_model(model, lora)
    if config.gradient_checkpointing and not config.load_in_4bit:
        # Non-reentrant checkpointing reaches the LoRA weights as they are. transformers also makes
        # the embeddings' output require grad (only reentrant checkpointing needs that), which
        # would run the backward pass through every layer below the LoRA ones: half the
        # examples/s with LoRA on the upper half, measured. Enabled after PEFT, which does the same.
        base = model.get_base_model()
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        base.disable_input_require_grads()
    model.train()
    if config.neftune_noise_alpha:  # transformers' hook: noise only while the module trains
        from transformers.integrations.neftune import activate_neftune
        activate_neftune(model, config.neftune_noise_alpha)
    report = trainable_report(model)
    if main:
        log.info("%s", format_report(report))
        log.info("%d examples (%d dropped as too long), %d steps of %d examples (%d per micro-batch "
                 "× %d accumulation × %d processes), precision %s, packing %s", len(items),
                 data.dropped, total_steps, per_step, config.micro_batch_size,
                 config.gradient_accumulation_steps, world, accelerator.mixed_precision,
                 "shared-prefix" if config.packing else "off")

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler(config.lr_scheduler, optimizer,
                              num_warmup_steps=round(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)

    start_step = 0
    if resume:
        path = checkpoint.latest(output)
        state = checkpoint.load(path, accelerator=accelerator, model=model, optimizer=optimizer,
                                scheduler=scheduler)
        if state.get("data_sha256") != data.data_sha256:
            log.warning("the training data changed since %s was written; continuing anyway", path)
        start_step = state["step"]
        if main:
            log.info("resumed from %s (step %d of %d)", path, start_step, total_steps)
    metrics = MetricsLog(output / "metrics.jsonl", start_step if resume else None) if main else None

    micro = config.micro_batch_size
    pad_id = tokenizer.pad_token_id
    fault_oom = int(os.environ.get(FAULT_OOM_TOKENS, "0") or 0)

    def run_step(examples: list[int], step_tokens: int) -> float:
        """Forward + backward over this process's examples; → their summed loss."""
        chunks = [examples[i:i + micro] for i in range(0, len(examples), micro)]
        total = 0.0
        for k, chunk in enumerate(chunks):
            batches = micro_batches(items, chunk, pad_id, config.packing, max(config.row_tokens, config.max_length))
            size = sum(b["input_ids"].numel() for b in batches)
            if fault_oom and size > fault_oom:
                raise torch.OutOfMemoryError(f"injected: {size} tokens")
            for j, batch in enumerate(batches):
                sync = k == len(chunks) - 1 and j == len(batches) - 1
                with (nullcontext() if sync else accelerator.no_sync(model)):
                    with accelerator.autocast():
                        loss_sum, _ = token_loss_sum(model, _to(batch, accelerator.device))
                    # (sum over this pass) / (labelled tokens of the whole step, all processes);
                    # DDP averages gradients over processes, hence × world
                    accelerator.backward(loss_sum * world / step_tokens)
                total += loss_sum.item()
        return total

    # ---------------------------------------------------------------- loop
    bar = _Progress(total_steps, start_step, main, bar=progress if progress is not None else sys.stderr.isatty())
    started = time.perf_counter()
    seen_examples = seen_tokens = 0
    last_loss = None
    last_saved = start_step if resume else None
    step = start_step
    order_epoch, order = None, []
    try:
        for step in range(start_step, total_steps):
            epoch, within = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, epoch_order(len(items), config.seed, epoch,
                                                        [it.prompt for it in items], per_step)
            everyone = order[within * per_step:(within + 1) * per_step]
            mine = everyone[rank::world]  # dealt out round-robin to the processes
            step_tokens = sum(_label_count(items[i]) for i in everyone)
            while True:
                try:
                    loss_sum = run_step(mine, step_tokens)
                    break
                except Exception as err:  # noqa: BLE001 - only out-of-memory is handled here
                    if not _is_oom(err):
                        raise
                    optimizer.zero_grad(set_to_none=True)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    if micro == 1:
                        raise LLMMCPError(
                            f"out of memory at step {step + 1} with one example per micro-batch",
                            "lower max_length, set gradient_checkpointing=true, or use the qlora "
                            "preset (4-bit base model)") from err
                    micro = max(1, micro // 2)
                    log.warning("out of memory at step %d: retrying with micro_batch_size %d "
                                "(gradient accumulation ×2, same effective batch)", step + 1, micro)
            loss = accelerator.reduce(torch.tensor(loss_sum, device=accelerator.device),
                                      "sum").item() / step_tokens
            grad_norm = float(accelerator.clip_grad_norm_(params, config.max_grad_norm))
            if not (math.isfinite(loss) and math.isfinite(grad_norm)) or grad_norm > config.explode_grad_norm:
                raise TrainingDiverged(*_diverged(step + 1, loss, grad_norm, config, output,
                                                  last_saved))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            last_loss = loss
            done = step + 1
            seen_examples += len(everyone)
            seen_tokens += sum(len(items[i]) for i in everyone)
            elapsed = time.perf_counter() - started
            if main and (done % config.log_every == 0 or done == total_steps):
                metrics.write({"step": done, "total_steps": total_steps,
                               "epoch": round(done / steps_per_epoch, 4), "loss": loss,
                               "grad_norm": grad_norm, "lr": scheduler.get_last_lr()[0],
                               "examples": seen_examples, "micro_batch_size": micro,
                               "examples_per_s": seen_examples / elapsed,
                               "tokens_per_s": seen_tokens / elapsed, "elapsed_s": elapsed})
            bar.update(done, loss, seen_tokens / elapsed)
            if evals and config.eval_every and (done % config.eval_every == 0 or done == total_steps):
                eval_loss = evaluate(model, items=evals, config=config, pad_id=pad_id,
                                     accelerator=accelerator)
                if main:
                    metrics.write({"step": done, "eval_loss": eval_loss})
                    bar.note(f"step {done}: eval loss {eval_loss:.4f}")
            if (held_out and config.eval_calls_every and done % config.eval_calls_every == 0
                    and done < total_steps):
                calls = _score_calls(accelerator, model, fmt, held_out, config.eval_calls_limit)
                if main:
                    metrics.write({"step": done, "eval_calls": calls})
                    bar.note(f"step {done}: tool calls on {calls['examples']} held-out examples: "
                             f"AST {calls['ast']:.1%}, no-call {calls['no_call']:.1%}")
            if done % config.save_every == 0 and done < total_steps:
                checkpoint.save(output, done, accelerator=accelerator, model=model,
                                optimizer=optimizer, scheduler=scheduler, keep=config.keep_checkpoints,
                                extra=_state_extra(done, steps_per_epoch, data, config))
                last_saved = done
    finally:
        bar.close()
        if metrics:
            metrics.close()

    # ---------------------------------------------------------------- save
    seconds = time.perf_counter() - started
    trained = max(total_steps - start_step, 0)
    result = Result(output, total_steps, last_loss, seconds,
                    seen_examples / seconds if seconds else 0.0,
                    seen_tokens / seconds if seconds else 0.0, report)
    final_eval = None
    if evals and not config.eval_every:  # a collective: every process takes part
        final_eval = evaluate(model, items=evals, config=config, pad_id=pad_id, accelerator=accelerator)
    final_calls = None
    if held_out and config.eval_calls:
        final_calls = _score_calls(accelerator, model, fmt, held_out, None)
        if main:
            MetricsLog.append(output / "metrics.jsonl", {"step": total_steps, "eval_calls": final_calls})
            log.info("tool calls on %d held-out examples: AST %.1f%%, exact %.1f%%, no-call %.1f%%",
                     final_calls["examples"], 100 * final_calls["ast"], 100 * final_calls["exact"],
                     100 * final_calls["no_call"])
    accelerator.wait_for_everyone()
    if main:
        from llm_mcp.adapters.card import write_adapter

        write_adapter(accelerator.unwrap_model(model), output, config=config, source=source,
                      fmt=fmt, tools=data.tools, data_sha256=data.data_sha256, report=report,
                      metrics={"final_loss": last_loss, "steps": total_steps,
                               "examples": len(items), "dropped_examples": data.dropped,
                               "seconds_this_run": round(seconds, 1), "steps_this_run": trained,
                               "examples_per_s": round(result.examples_per_s, 3),
                               "tokens_per_s": round(result.tokens_per_s, 1),
                               "eval_loss": final_eval, "eval_calls": final_calls, "processes": world,
                               "precision": accelerator.mixed_precision})
        plot_loss(output / "metrics.jsonl", output / "loss.png", title=output.name)
        log.info("adapter written to %s (%d steps in %.0fs, final loss %.4f)", output, trained,
                 seconds, last_loss if last_loss is not None else float("nan"))
    accelerator.wait_for_everyone()
    return result


def evaluate(model, *, items: list, config: TrainConfig, pad_id: int, accelerator) -> float:
    """Mean loss over the labelled tokens of `items` (no gradients; dropout off)."""
    import torch

    from llm_mcp.data.packing import micro_batches
    from llm_mcp.train.loss import token_loss_sum

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    indices = list(range(len(items)))[accelerator.process_index::accelerator.num_processes]
    with torch.no_grad():
        for i in range(0, len(indices), config.micro_batch_size):
            for batch in micro_batches(items, indices[i:i + config.micro_batch_size], pad_id,
                                       config.packing, max(config.row_tokens, config.max_length)):
                with accelerator.autocast():
                    s, n = token_loss_sum(model, _to(batch, accelerator.device))
                total, count = total + float(s), count + n
    both = accelerator.reduce(torch.tensor([total, float(count)], device=accelerator.device), "sum")
    model.train(was_training)
    return (both[0] / both[1].clamp_min(1)).item()


def _score_calls(accelerator, model, fmt, held_out: Prepared, limit: int | None) -> dict | None:
    """Tool-call metrics (greedy, BFCL rules) on the held-out examples, computed by the main
    process while the others wait."""
    from llm_mcp.eval.run import predict

    summary = None
    if accelerator.is_main_process:
        with accelerator.autocast():
            summary = predict(accelerator.unwrap_model(model), fmt, held_out.examples[:limit]).summary()
    accelerator.wait_for_everyone()
    return summary


def _state_extra(step: int, steps_per_epoch: int, data: Prepared, config: TrainConfig) -> dict:
    return {"epoch": step // steps_per_epoch, "step_in_epoch": step % steps_per_epoch,
            "data_sha256": data.data_sha256,
            "config_sha256": hashlib.sha256(config.model_dump_json().encode()).hexdigest()}


def _diverged(step: int, loss: float, grad_norm: float, config: TrainConfig, output: Path,
              last_saved: int | None) -> tuple[str, str]:
    if not math.isfinite(loss):
        what = f"the loss is {loss}"
    elif not math.isfinite(grad_norm):
        what = f"the gradient norm is {grad_norm}"
    else:
        what = f"the gradient norm is {grad_norm:.3g} (limit explode_grad_norm={config.explode_grad_norm:g})"
    kept = (f"the last good checkpoint is {output}/checkpoints/step-{last_saved:06d}"
            if last_saved else "no checkpoint had been written")
    return (f"training diverged at step {step}: {what}; the step was not applied and {kept}",
            f"lower the learning rate (learning_rate={config.learning_rate / 2:g}) or raise the "
            f"effective batch (gradient_accumulation_steps={config.gradient_accumulation_steps * 2})"
            + (", then continue with --resume" if last_saved else ""))


class _Progress:
    """A rich progress bar on a terminal; a log line every ~10% otherwise; silent but on the
    main process."""

    def __init__(self, total: int, start: int, main: bool, bar: bool):
        self.total, self.main = total, main
        self.bar = None
        self.every = max(1, total // 10)
        if main and bar:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"),
                                TextColumn("{task.fields[speed]} tok/s"), TimeElapsedColumn(),
                                TextColumn("eta"), TimeRemainingColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, loss="-", speed="-")

    def update(self, done: int, loss: float, tokens_per_s: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=done, loss=f"{loss:.4f}", speed=f"{tokens_per_s:.0f}")
        elif self.main and (done % self.every == 0 or done == self.total):
            log.info("step %d/%d loss %.4f %.0f tok/s", done, self.total, loss, tokens_per_s)

    def note(self, text: str) -> None:
        if self.main:
            (self.bar.console.log if self.bar else log.info)(text)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
