"""`llm-mcp adapters export-check` on real PEFT adapters of tiny models: what plain PEFT, vLLM and
Ollama would refuse, and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import random_adapter


def _check(folder: Path, *extra: str) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "adapters", "export-check", str(folder),
                           "--json", *extra], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _levels(found: list[dict], target: str) -> list[str]:
    return [f["level"] for f in found if f["target"] == target]


def test_an_adapter_like_the_default_recipes_passes_everywhere(tiny_llama, tmp_path):
    folder = random_adapter(tiny_llama, tmp_path / "a", 0, layers=[1])
    rc, found = _check(folder)
    assert rc == 0
    assert "fail" not in [f["level"] for f in found]
    assert {f["target"] for f in found} == {"peft", "vllm", "ollama"}
    peft_ok = next(f for f in found if f["target"] == "peft" and f["level"] == "ok")
    assert "7 LoRA modules of rank 4" in peft_ok["what"]  # one layer: q k v o gate up down
    # the tiny base's folder is on this machine: its architecture (Llama) is one Ollama imports
    assert "ok" in _levels(found, "ollama")
    # no adapter card: the chat format it learned is unknown, and the check says so
    assert any("chat format" in f["what"] for f in found if f["level"] == "warn")


def test_what_vllm_refuses_is_named_with_what_to_do(tiny_llama, tmp_path):
    folder = random_adapter(tiny_llama, tmp_path / "b", 0, r=40, lora_alpha=80, use_dora=True,
                            bias="lora_only")
    rc, found = _check(folder, "--target", "vllm")
    assert rc == 1 and {f["target"] for f in found} == {"vllm"}
    text = " | ".join(f"{f['level']}: {f['what']} -> {f['fix']}" for f in found)
    assert "fail: DoRA" in text and "fail: bias terms" in text
    assert "--max-lora-rank 64" in text  # 40 rounds up to the next rank vLLM offers
    assert "ok" not in _levels(found, "vllm")
    rc, found = _check(folder, "--target", "peft")  # plain PEFT loads it all the same
    assert rc == 0 and _levels(found, "peft")[0] == "ok"


def test_lora_on_the_embeddings_and_modules_to_save_fail_for_vllm(tiny_llama, tmp_path):
    folder = random_adapter(tiny_llama, tmp_path / "c", 0, target_modules=["q_proj", "embed_tokens"],
                            modules_to_save=["lm_head"])
    rc, found = _check(folder, "--target", "vllm", "--target", "ollama")
    assert rc == 1
    fails = [f["what"] for f in found if f["level"] == "fail"]
    assert any("embed_tokens" in w for w in fails) and any("modules_to_save" in w for w in fails)
    assert "fail" in _levels(found, "ollama")


def test_a_damaged_or_pickled_adapter_fails_the_peft_check(tiny_llama, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = random_adapter(tiny_llama, tmp_path / "d", 0)
    weights = folder / "adapter_model.safetensors"
    tensors = load_file(weights)
    dropped = next(k for k in tensors if "lora_B" in k)
    save_file({k: v for k, v in tensors.items() if k != dropped}, weights)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04.")
    rc, found = _check(folder, "--target", "peft")
    assert rc == 1
    fails = " | ".join(f["what"] for f in found if f["level"] == "fail")
    assert "pickle files in the folder: pytorch_model.bin" in fails
    assert dropped.split(".lora_B")[0].removeprefix("base_model.model.") + " (only lora_A)" in fails


def test_a_base_ollama_does_not_import_and_the_card_format(tiny_qwen2, tmp_path):
    folder = random_adapter(tiny_qwen2, tmp_path / "e", 0)
    (folder / "adapter_card.json").write_text(json.dumps({
        "base_model": {"spec": str(tiny_qwen2), "kind": "folder"}, "chat_format": "hermes",
        "training": {"load_in_4bit": True}}))
    rc, found = _check(folder, "--target", "ollama")
    assert rc == 1
    fail = next(f for f in found if f["level"] == "fail")
    assert "not Qwen2ForCausalLM" in fail["what"] and "llm-mcp adapters merge" in fail["fix"]
    warns = " | ".join(f["what"] + " " + f["fix"] for f in found if f["level"] == "warn")
    assert "QLoRA" in warns and "Hermes format" in warns and "one leading space" in warns


def test_export_check_of_an_unknown_adapter_says_what_exists(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "adapters", "export-check",
                           str(tmp_path / "nothing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no adapter" in proc.stderr
