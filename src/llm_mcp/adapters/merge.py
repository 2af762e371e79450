"""Merge an adapter into its base model: a full model folder any transformers user can load."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from llm_mcp.errors import LLMMCPError


def merge(adapter: Path, out: Path, model: str | None = None, dtype: str = "auto") -> Path:
    """Load the base (from the adapter card unless `model` is given), apply the adapter, fold
    W + (alpha/r)·B·A into W, save safetensors + tokenizer into `out` (atomically)."""
    from peft import PeftModel

    from llm_mcp.adapters.card import find_adapter, read_card
    from llm_mcp.models import load_model

    adapter = find_adapter(str(adapter))
    card = read_card(adapter)
    spec = model or card.get("base_model", {}).get("spec")
    if not spec:
        raise LLMMCPError(f"{adapter} has no adapter card naming its base model",
                          "pass the base model with --model")
    if out.exists() and any(out.iterdir()):
        raise LLMMCPError(f"{out} exists and is not empty", "choose a new --out folder")
    loaded = load_model(spec, dtype="fp32" if dtype == "auto" else dtype, device="cpu")
    merged = PeftModel.from_pretrained(loaded.model, str(adapter)).merge_and_unload()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(tmp))
    if out.exists():
        out.rmdir()
    os.rename(tmp, out)
    return out
