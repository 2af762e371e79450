"""Write a trained adapter: PEFT's files and the adapter card, atomically.

    <output>/adapter_config.json, adapter_model.safetensors   PEFT's own format (loads with
                                                              PeftModel.from_pretrained, no llm-mcp)
    <output>/adapter_card.json                                what it was made from and how
    <output>/README.md                                        the same, for people

The card records the base model (spec and a weights hash), the chat format, the tools, the LoRA
and training config, the data hash and the final metrics: enough to tell whether an adapter fits
a base model, and to make it again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from llm_mcp.store import now

CARD = "adapter_card.json"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")
HERMES_NOTE = (
    " In that format a string argument that the request writes after a space is written with the"
    ' space (`{"location": " Zurich"}`: the request\'s own token); llm-mcp removes one leading space'
    " from every string value when it parses a reply, and so must any other Hermes parser"
    " (vLLM's `hermes` tool parser does not).")


def base_fingerprint(source) -> dict:
    """Spec, kind and a weights hash of the base model (GGUF source hash from the conversion
    stamp; sha256 of the safetensors files of a folder; none for a hub id not downloaded)."""
    from llm_mcp.models.load import sha256_files
    from llm_mcp.models.resolve import SOURCE_FILE

    out = {"spec": source.spec, "name": source.name, "kind": source.kind, "hub_id": source.hub_id}
    folder = source.cache_dir if source.kind == "gguf" else source.path
    stamp = folder / SOURCE_FILE if folder else None
    if stamp and stamp.is_file():
        out["sha256"] = json.loads(stamp.read_text()).get("sha256")
        out["hashed"] = "gguf source file"
    elif source.kind == "folder":
        out["sha256"] = sha256_files(sorted(source.path.glob("*.safetensors")))
        out["hashed"] = "safetensors files"
    return out


def adapter_folders(home: Path | None = None) -> list[Path]:
    """The PEFT adapter folders in $LLM_MCP_HOME/adapters (or `home`/adapters), by name."""
    from llm_mcp.config import home_dir

    folder = (home or home_dir()) / "adapters"
    return sorted(p for p in folder.glob("*") if (p / PEFT_FILES[0]).is_file()) if folder.is_dir() else []


def find_adapter(name_or_dir: str) -> Path:
    """An adapter folder from a path, or from a name under $LLM_MCP_HOME/adapters."""
    from llm_mcp.config import home_dir
    from llm_mcp.errors import LLMMCPError

    home = home_dir() / "adapters"
    for folder in (Path(name_or_dir), home / name_or_dir):
        if (folder / PEFT_FILES[0]).is_file():
            return folder
    if Path(name_or_dir).is_dir():
        raise LLMMCPError(f"{name_or_dir} is not a PEFT adapter folder (no adapter_config.json)",
                          "pass the folder that `llm-mcp train --output` wrote")
    known = [p.name for p in adapter_folders()]
    raise LLMMCPError(f"no adapter {name_or_dir!r} (neither a folder nor a name in {home})",
                      f"adapters there: {', '.join(known)}" if known else
                      "train one with `llm-mcp train --data FILE`")


def read_card(folder: Path) -> dict:
    path = Path(folder) / CARD
    # a card that is a symlink is not the adapter's own (it could show any file it points to)
    return json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else {}


def write_adapter(model, output: Path, *, config, source, fmt, tools: list[dict],
                  data_sha256: str, report: dict, metrics: dict) -> Path:
    """Save the PEFT adapter and its card into `output` (files replaced one by one only after all
    were written to a temporary folder next to them)."""
    from llm_mcp import __version__

    output.mkdir(parents=True, exist_ok=True)
    tmp = output / f".adapter.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    card = {
        "llm_mcp_version": __version__,
        "created": now(),
        "base_model": base_fingerprint(source),
        "chat_format": fmt.kind,
        "tools": tools,
        "lora": config.lora.model_dump(),
        "training": config.model_dump(exclude={"lora"}),
        "data": {"train": {"path": config.data, "sha256": data_sha256},
                 "eval": {"path": config.eval_data} if config.eval_data else None},
        "parameters": report,
        "metrics": metrics,
    }
    (tmp / CARD).write_text(json.dumps(card, indent=1, ensure_ascii=False))
    (tmp / "README.md").write_text(render_readme(card, output.name))
    for name in (*PEFT_FILES, CARD, "README.md"):
        os.replace(tmp / name, output / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return output


def render_readme(card: dict, name: str) -> str:
    base, lora, train, m = card["base_model"], card["lora"], card["training"], card["metrics"]
    tools = ", ".join(t["name"] for t in card["tools"]) or "none"
    targets = lora["target_modules"] if isinstance(lora["target_modules"], str) else ", ".join(lora["target_modules"])
    lines = [
        "---",
        "library_name: peft",
        f"base_model: {base.get('hub_id') or base['name']}",
        "tags: [lora, tool-calling, llm-mcp]",
        "---",
        f"# {name}",
        "",
        f"A LoRA adapter that teaches `{base['name']}` to call tools ({tools}), made by llm-mcp "
        f"{card['llm_mcp_version']} on {card['created']}.",
        "",
        "## Use",
        "```",
        f"llm-mcp chat --adapter {name} \"…\"          # or serve it: llm-mcp serve",
        "```",
        "With PEFT alone:",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        f"base = AutoModelForCausalLM.from_pretrained(\"{base.get('hub_id') or base['name']}\")",
        f"model = PeftModel.from_pretrained(base, \"{name}\")",
        "```",
        f"Prompts must be written in the `{card['chat_format']}` chat format with the same tools "
        "(llm-mcp does this)." + (HERMES_NOTE if card["chat_format"] == "hermes" else ""),
        "",
        "## Training",
        f"- LoRA: r {lora['r']}, alpha {lora['lora_alpha']}, dropout {lora['lora_dropout']}, "
        f"targets {targets}, bias {lora['bias']}, rslora {lora['use_rslora']}, dora {lora['use_dora']}",
        f"- {m.get('steps')} steps, learning rate {train['learning_rate']} ({train['lr_scheduler']}), "
        f"{train['micro_batch_size']} × {train['gradient_accumulation_steps']} examples per step per "
        f"process, {m.get('processes', 1)} process(es), precision {m.get('precision')}",
        f"- data: `{card['data']['train']['path']}` (sha256 {card['data']['train']['sha256'][:12]}…), "
        f"{m.get('examples')} examples",
        f"- trainable parameters: {card['parameters']['trainable']:,} "
        f"({card['parameters']['percent']}%)",
        f"- final training loss: {m.get('final_loss')}" +
        (f", eval loss {m['eval_loss']}" if m.get("eval_loss") is not None else ""),
    ]
    calls = m.get("eval_calls")
    if calls:
        lines.append(f"- tool calls on {calls['examples']} held-out examples (greedy, BFCL rules): "
                     f"AST match {calls['ast']:.1%}, exact {calls['exact']:.1%}, no-call accuracy "
                     f"{calls['no_call']:.1%}, well-formed {calls['well_formed']:.1%}")
    lines += [
        "",
        "Full details: `adapter_card.json`; loss curve: `loss.png`; per-step log: `metrics.jsonl`.",
        "",
    ]
    return "\n".join(lines)
