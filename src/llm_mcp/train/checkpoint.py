"""Checkpoints: everything needed to continue a run as if it had never stopped, without pickle.

    <output>/checkpoints/step-000050/
        adapter_config.json, adapter_model.safetensors   the adapter (PEFT's own files)
        optimizer.safetensors                             AdamW moments and step counts
        rng-<rank>.safetensors                            torch (and CUDA) generator states
        state.json                                        step, epoch, optimizer param groups,
                                                          scheduler, python RNG, data/config hashes

A checkpoint is written into a hidden temporary folder and renamed into place, so a kill at any
moment leaves either the previous checkpoints or a complete new one; `state.json` is written
last and a folder without it is never read. The data order is a pure function of the seed and
the epoch, so the step number is the data position.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

from llm_mcp.errors import LLMMCPError

STATE = "state.json"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoints(output: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folder = output / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest(output: Path) -> Path:
    found = checkpoints(output)
    if not found:
        partial = sorted((output / "checkpoints").glob("*")) if (output / "checkpoints").is_dir() else []
        seen = f"; found only incomplete {', '.join(p.name for p in partial)}" if partial else ""
        raise LLMMCPError(f"no checkpoint to resume from in {output}/checkpoints{seen}",
                          f"start the run without --resume (it will write to {output})")
    return found[-1]


def _optimizer_tensors(optimizer) -> tuple[dict, list]:
    state = optimizer.state_dict()
    tensors = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def save(output: Path, step: int, *, accelerator, model, optimizer, scheduler, extra: dict,
         keep: int) -> Path:
    """Write checkpoint `step` atomically and drop all but the `keep` newest. Every process
    calls this (each writes its own RNG state); the main process writes the rest."""
    import torch
    from safetensors.torch import save_file

    folder = output / "checkpoints"
    final = folder / f"step-{step:06d}"
    tmp = folder / f".step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_file(rng, str(tmp / f"rng-{accelerator.process_index}.safetensors"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(str(tmp), safe_serialization=True)
        (tmp / "README.md").unlink(missing_ok=True)  # PEFT's blank model card; the run's is final
        tensors, groups = _optimizer_tensors(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {"step": step, "param_groups": groups, "scheduler": scheduler.state_dict(),
                 "python_random": _encode_random(random.getstate()),
                 "num_processes": accelerator.num_processes, **extra}
        (tmp / STATE).write_text(json.dumps(state, indent=1, default=_json_default))
        if final.exists():  # a checkpoint of this step from an earlier, interrupted run
            shutil.rmtree(final)
        os.rename(tmp, final)
        for old in checkpoints(output)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(path: Path, *, accelerator, model, optimizer, scheduler) -> dict:
    """Restore adapter weights, optimizer, scheduler and RNG states; return state.json."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = json.loads((path / STATE).read_text())
    if state.get("num_processes", 1) != accelerator.num_processes:
        raise LLMMCPError(
            f"{path} was written by {state['num_processes']} processes, this run has "
            f"{accelerator.num_processes}", "resume with the same number of processes")
    weights = load_file(str(path / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(accelerator.unwrap_model(model), weights)
    if getattr(result, "unexpected_keys", None):
        raise LLMMCPError(f"{path} holds weights this adapter does not have: "
                          f"{result.unexpected_keys[:3]}", "resume with the config it was written with")
    tensors = load_file(str(path / "optimizer.safetensors"))
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    rng_file = path / f"rng-{accelerator.process_index}.safetensors"
    rng = load_file(str(rng_file))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"])
    random.setstate(_decode_random(state["python_random"]))
    return state


def _encode_random(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _decode_random(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")
