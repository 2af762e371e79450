"""Will another program load this adapter as it is? `llm-mcp adapters export-check`.

Read-only checks of an adapter folder against what plain PEFT, vLLM and Ollama accept, each
finding with what to do about it. Nothing is loaded but the config and the safetensors header.

The rules are those of the loaders themselves (docs/training.md, "Using an adapter elsewhere"):
- vLLM (`vllm/lora/peft_helper.py`, `PEFTHelper.validate_legal`; `vllm/lora/models.py`): rank at
  most `--max-lora-rank` (16 unless raised, to one of 8, 16, 32, 64, 128, 256, 320, 512); no
  DoRA; no `modules_to_save`; no bias; one r and alpha for every module (it reads neither
  `rank_pattern` nor `alpha_pattern`); LoRA on the model's linear layers, not the embeddings or
  the output head.
- Ollama (`docs/import.md`): safetensors adapters of Llama, Mistral and Gemma models, best made on
  a base that was not quantized; the Modelfile's template decides how prompts are written.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

TARGETS = ("peft", "vllm", "ollama")
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's choices for --max-lora-rank
VLLM_DEFAULT_RANK = 16
OLLAMA_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "MixtralForCausalLM",
                        "GemmaForCausalLM", "Gemma2ForCausalLM")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
NOT_LINEAR = ("embed_tokens", "lm_head", "wte", "wpe", "embed_in", "embed_out")
# base_model.model.<module path>.lora_A.weight (PEFT's key for a LoRA matrix of one module)
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.(?P<kind>lora_[AB]|lora_embedding_[AB]|"
                       r"lora_magnitude_vector)(?:\.weight)?$")


@dataclass
class Finding:
    """One fact about the adapter for one target: `level` is ok, warn (works, with a caveat or a
    flag to pass) or fail (the target refuses the adapter or gives wrong results)."""

    target: str
    level: str
    what: str
    fix: str = ""


def export_check(folder: Path) -> list[Finding]:
    """Every finding for `folder` (a PEFT adapter folder), target by target."""
    from llm_mcp.adapters.card import PEFT_FILES, read_card

    config = json.loads((folder / PEFT_FILES[0]).read_text())
    card = read_card(folder)
    weights = folder / PEFT_FILES[1]
    modules = _modules(_tensor_shapes(weights)) if weights.is_file() else None
    return [*_peft(folder, config, card, modules), *_vllm(config, card, modules or {}),
            *_ollama(config, card, _architecture(config, card))]


def _tensor_shapes(path: Path) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return {key: list(f.get_slice(key).get_shape()) for key in f.keys()}


def _modules(shapes: dict[str, list[int]]) -> dict[str, dict[str, list[int]]]:
    """{module path: {"lora_A": shape, "lora_B": shape, ...}} from the tensor names."""
    out: dict[str, dict[str, list[int]]] = {}
    for key, shape in shapes.items():
        m = _LORA_KEY.match(key)
        if m:
            out.setdefault(m["module"], {})[m["kind"]] = shape
    return out


def _peft(folder: Path, config: dict, card: dict, modules) -> list[Finding]:
    found = []
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        found.append(Finding("peft", "fail", f"pickle files in the folder: {', '.join(pickles)} "
                             "(loading them can run code)", "delete them; the weights belong in "
                             "adapter_model.safetensors"))
    if config.get("peft_type") != "LORA":
        found.append(Finding("peft", "fail", f"peft_type is {config.get('peft_type')!r}, not LORA",
                             "these checks know LoRA adapters only"))
        return found
    if modules is None:
        found.append(Finding("peft", "fail", "no adapter_model.safetensors",
                             "train again, or copy the file that `llm-mcp train --output` wrote"))
        return found
    ranks = config.get("rank_pattern") or {}
    broken = []
    for name, parts in sorted(modules.items()):
        a, b = parts.get("lora_A") or parts.get("lora_embedding_A"), parts.get("lora_B") or parts.get("lora_embedding_B")
        if a is None or b is None:
            broken.append(f"{name} (only {', '.join(parts)})")
        elif a[0] != b[-1]:
            broken.append(f"{name} (lora_A rank {a[0]}, lora_B rank {b[-1]})")
        elif a[0] != config["r"] and not any(re.search(k, name) for k in ranks):
            broken.append(f"{name} (rank {a[0]}, the config says r {config['r']})")
    if not modules:
        found.append(Finding("peft", "fail", "adapter_model.safetensors holds no LoRA tensors",
                             "train again"))
    elif broken:
        found.append(Finding("peft", "fail", f"LoRA tensors that do not fit: {'; '.join(broken[:5])}"
                             + (f" and {len(broken) - 5} more" if len(broken) > 5 else ""),
                             "the file is damaged or from another config: train again"))
    else:
        found.append(Finding("peft", "ok", f"{len(modules)} LoRA modules of rank {config['r']} in "
                             "safetensors; loads with PeftModel.from_pretrained(base, folder)"))
    base = str(config.get("base_model_name_or_path") or "")
    hub_id = _hub_id(card)
    if base.startswith(("/", ".", "~")) or re.match(r"^[A-Za-z]:\\", base):
        found.append(Finding(
            "peft", "warn", f"base_model_name_or_path is a folder of this machine ({base})",
            "elsewhere load the base yourself and pass it to PeftModel.from_pretrained; for "
            "AutoPeftModelForCausalLM or the hub, set it to the base's hub id"
            + (f" ({hub_id})" if hub_id else "")))
    if card.get("base_model", {}).get("kind") == "gguf":
        found.append(Finding(
            "peft", "warn", "trained on a base converted from a GGUF file "
            f"({card['base_model'].get('spec')}); the hub's weights of that model differ by "
            "the GGUF file's quantization", "serve it on the same converted base for the "
            "accuracy measured here (llm-mcp does)"))
    return found


def _vllm(config: dict, card: dict, modules: dict) -> list[Finding]:
    found = []
    r = int(config.get("r", 0))
    if r > VLLM_RANKS[-1]:
        found.append(Finding("vllm", "fail", f"rank {r} is above vLLM's largest --max-lora-rank "
                             f"({VLLM_RANKS[-1]})", f"train with lora.r={VLLM_RANKS[-1]} or less"))
    elif r > VLLM_DEFAULT_RANK:
        flag = next(x for x in VLLM_RANKS if x >= r)
        found.append(Finding("vllm", "warn", f"rank {r} is above vLLM's default --max-lora-rank "
                             f"{VLLM_DEFAULT_RANK}", f"start vLLM with --max-lora-rank {flag}"))
    if config.get("use_dora"):
        found.append(Finding("vllm", "fail", "DoRA (use_dora) is not supported by vLLM",
                             "train with lora.use_dora=false, or merge it: llm-mcp adapters merge"))
    if config.get("modules_to_save"):
        found.append(Finding("vllm", "fail", "modules_to_save "
                             f"({', '.join(config['modules_to_save'])}): vLLM loads LoRA matrices only",
                             "train without lora.modules_to_save, or merge it: llm-mcp adapters merge"))
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        found.append(Finding("vllm", "fail", f"bias terms (bias={config.get('bias')}): vLLM "
                             "serves LoRA without biases", "train with lora.bias=none"))
    patterns = {k: v for k in ("rank_pattern", "alpha_pattern") for v in [config.get(k)] if v}
    if patterns:
        found.append(Finding("vllm", "fail", f"{' and '.join(patterns)} set: vLLM scales every "
                             "module by the one lora_alpha / r", "train with one rank and alpha"))
    leaves = sorted({name.rsplit(".", 1)[-1] for name in modules})
    odd = [x for x in leaves if x in NOT_LINEAR]
    if odd:
        found.append(Finding("vllm", "fail", f"LoRA on {', '.join(odd)}: vLLM puts LoRA on the "
                             "model's linear layers only", "train without those target modules, "
                             "or merge it: llm-mcp adapters merge"))
    if not any(f.level == "fail" for f in found):
        found.append(Finding("vllm", "ok", f"loads with `vllm serve BASE --enable-lora "
                             f"--lora-modules NAME=FOLDER` (LoRA on {', '.join(leaves) or 'nothing'})"))
    found.append(_format_note("vllm", card))
    return found


def _ollama(config: dict, card: dict, architecture: str | None) -> list[Finding]:
    found = []
    if architecture is None:
        found.append(Finding("ollama", "warn", "the base model's architecture is unknown here "
                             "(its config.json is not on this machine)", "Ollama imports adapters "
                             f"of {', '.join(OLLAMA_ARCHITECTURES)}"))
    elif architecture not in OLLAMA_ARCHITECTURES:
        found.append(Finding("ollama", "fail", f"Ollama imports adapters of "
                             f"{', '.join(OLLAMA_ARCHITECTURES)}, not {architecture}",
                             "merge it (llm-mcp adapters merge) and convert the merged model to GGUF "
                             "with llama.cpp's convert_hf_to_gguf.py"))
    for key, what in (("use_dora", "DoRA"), ("modules_to_save", "modules_to_save")):
        if config.get(key):
            found.append(Finding("ollama", "fail", f"{what}: Ollama imports LoRA matrices only",
                                 "merge it: llm-mcp adapters merge"))
    if card.get("training", {}).get("load_in_4bit"):
        found.append(Finding("ollama", "warn", "trained with QLoRA on a 4-bit base; Ollama's docs "
                             "advise adapters made on a base that was not quantized",
                             "compare its answers with llm-mcp's on the same prompts"))
    if not any(f.level == "fail" for f in found):
        found.append(Finding("ollama", "ok", "a Modelfile with `FROM <the base>` and `ADAPTER "
                             "<this folder>` imports it (`ollama create NAME`)"))
    found.append(_format_note("ollama", card))
    return found


def _format_note(target: str, card: dict) -> Finding:
    """How prompts and calls must be written for the adapter's answers to be the measured ones."""
    fmt = card.get("chat_format")
    if fmt == "hermes":
        how = ("pass a chat template that writes it (--chat-template) and parse calls with a Hermes "
               "parser that removes one leading space from string values" if target == "vllm" else
               "write a TEMPLATE in the Modelfile that renders it, and remove one leading space from "
               "every string value of a call")
        return Finding(target, "warn", "trained on llm-mcp's built-in Hermes format (tools in "
                       "<tools>, calls in <tool_call>, string values the request writes after a "
                       "space written with it); the base's own chat template differs", how)
    if fmt == "native":
        return Finding(target, "ok", "trained on the tokenizer's own chat template: prompts match "
                       "when the server uses that template; pick its tool-call parser for the model")
    return Finding(target, "warn", "no adapter card: the chat format it was trained on is unknown",
                   "prompts must be written as in training")


def _hub_id(card: dict) -> str | None:
    """The base's hub id: from the card, or from the alias the base was named by."""
    from llm_mcp.models.resolve import ALIASES

    base = card.get("base_model", {})
    alias = ALIASES.get(str(base.get("spec")))
    return base.get("hub_id") or (alias.hub_id if alias else None)


def _architecture(config: dict, card: dict) -> str | None:
    """The base model's architecture from its config.json, when the base is on this machine."""
    folders = [Path(str(config.get("base_model_name_or_path") or ""))]
    spec = card.get("base_model", {}).get("spec")
    if spec:
        from llm_mcp.errors import LLMMCPError
        from llm_mcp.models.resolve import resolve

        try:
            source = resolve(spec)
            folders += [p for p in (source.cache_dir, source.path) if p]
        except LLMMCPError:
            pass
    for folder in folders:
        path = folder / "config.json"
        if str(folder) not in ("", ".") and path.is_file():
            return (json.loads(path.read_text()).get("architectures") or [None])[0]
    return None


def render(found: list[Finding], targets: tuple[str, ...] = TARGETS) -> str:
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
    lines = []
    for target in targets:
        lines.append(target)
        for f in (f for f in found if f.target == target):
            lines.append(f"  {marks[f.level]} {f.what}")
            if f.fix:
                lines.append(f"       → {f.fix}")
    return "\n".join(lines)


def as_json(found: list[Finding]) -> list[dict]:
    return [asdict(f) for f in found]
