"""`llm-mcp train` on a tiny random Llama: config, files written and loaded back by plain PEFT,
exact resume after kill -9, OOM back-off, NaN guard, clear errors, merge, two processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm_mcp.errors import LLMMCPError
from llm_mcp.train.config import PRESETS_DIR, load_config, preset_names

REPO = Path(__file__).parent.parent
TRAIN = REPO / "examples" / "train.jsonl"

# fp32 so that runs compare exactly; small micro-batches so a run has many steps
TINY = ["precision=fp32", "micro_batch_size=2", "lora.r=4", "lora.lora_alpha=8",
        "lora.target_modules=all-linear", "lora.layers_to_transform=null", "learning_rate=1e-3",
        "log_every=1"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.jsonl"
    path.write_text("".join(TRAIN.read_text().splitlines(keepends=True)[:24]))
    return path


def _config(tiny, data, out, *extra):
    return load_config("default", None, {"model": str(tiny), "data": str(data), "output": str(out)},
                       [*TINY, *extra])


def _losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().split("\n")[:-1])
            if "loss" in r]


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "llm_mcp", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


# ---- config -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads(name):
    config = load_config(name)
    assert config.lora.r > 0 and config.learning_rate > 0
    assert (PRESETS_DIR / f"{name}.yaml").is_file()


def test_every_config_key_is_documented():
    from llm_mcp.train.config import LoraSettings, TrainConfig, describe

    for model in (TrainConfig, LoraSettings):
        for name, field in model.model_fields.items():
            assert name == "lora" or field.description, name
    assert "lora.use_dora" in describe()


def test_overrides_reach_nested_keys_and_every_error_is_reported_at_once():
    c = load_config("classic", overrides=["r=32", "lora.lora_alpha=64", "target_modules=q_proj,k_proj",
                                          "learning_rate=5e-4", "packing=false"])
    assert (c.lora.r, c.lora.lora_alpha, c.lora.target_modules) == (32, 64, ["q_proj", "k_proj"])
    assert c.learning_rate == 5e-4 and c.packing is False
    with pytest.raises(LLMMCPError) as err:
        load_config("default", overrides=["lora.r=0", "learning_rate=fast", "colour=blue"])
    text = str(err.value)
    assert "lora.r" in text and "learning_rate" in text and "colour: unknown key" in text


def test_base_dtype_needs_mixed_precision():
    assert load_config("default", overrides=["base_dtype=bf16"]).base_dtype == "bf16"
    with pytest.raises(LLMMCPError, match="base_dtype=bf16 needs mixed precision"):
        load_config("default", overrides=["base_dtype=bf16", "precision=fp32"])


def test_a_config_file_sits_between_preset_and_overrides(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("learning_rate: 3.0e-4\nlora:\n  r: 12\nmax_steps: 7\n")
    c = load_config("default", str(f), {"data": "x.jsonl"}, ["max_steps=9"])
    assert (c.learning_rate, c.lora.r, c.max_steps, c.data) == (3e-4, 12, 9, "x.jsonl")
    assert c.lora.target_modules == "all-linear"  # from the preset


# ---- a run ------------------------------------------------------------------------------------

def test_a_short_run_writes_a_plain_peft_adapter_with_card_metrics_and_plot(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    out = tmp_path / "adapter"
    result = train(_config(tiny_llama, small_data, out, "max_steps=3", "save_every=2"))
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_card.json", "README.md",
                 "metrics.jsonl", "loss.png", "train_config.json"):
        assert (out / name).is_file(), name
    assert [s for s, _ in _losses(out)] == [1, 2, 3] and result.final_loss == _losses(out)[-1][1]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000002"]
    card = json.loads((out / "adapter_card.json").read_text())
    assert card["base_model"]["sha256"] and card["chat_format"] == "hermes"
    assert "removes one leading space" in (out / "README.md").read_text()  # the Hermes note
    assert {t["name"] for t in card["tools"]} >= {"get_weather", "send_email"}
    assert card["lora"]["r"] == 4 and card["data"]["train"]["sha256"]
    assert card["parameters"]["trainable"] > 0 and card["metrics"]["steps"] == 3
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    # loads with PEFT and transformers alone, and the adapter changes the output
    code = f"""
import sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained({str(tiny_llama)!r})
ids = torch.tensor([[1, 2, 3, 4]])
before = base(ids).logits
model = PeftModel.from_pretrained(base, {str(out)!r})
after = model(ids).logits
assert 'llm_mcp' not in sys.modules
print((after - before).abs().max().item())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(proc.stdout.strip()) > 0


def test_tool_calls_are_scored_on_the_eval_data_during_and_after_training(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join((REPO / "examples" / "test.jsonl").read_text().splitlines(keepends=True)[:5]))
    out = tmp_path / "adapter"
    train(_config(tiny_llama, small_data, out, "max_steps=3", f"eval_data={held_out}",
                  "eval_calls_every=2", "eval_calls_limit=2"))
    scored = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "eval_calls" in r]
    assert [(r["step"], r["eval_calls"]["examples"]) for r in scored] == [(2, 2), (3, 5)]
    card = json.loads((out / "adapter_card.json").read_text())
    assert card["metrics"]["eval_calls"] == scored[-1]["eval_calls"]
    assert set(card["metrics"]["eval_calls"]) >= {"ast", "exact", "no_call", "well_formed", "tool_name"}
    assert "held-out examples (greedy, BFCL rules)" in (out / "README.md").read_text()


def test_the_trainable_parameter_report_counts_lora_weights(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    result = train(_config(tiny_llama, small_data, tmp_path / "a", "max_steps=1",
                           "lora.target_modules=q_proj,v_proj"))
    # 2 layers × (q: 4×32 + 32×4, v: 4×32 + 16×4)
    assert result.report["trainable"] == 2 * ((4 * 32 + 32 * 4) + (4 * 32 + 16 * 4))
    assert result.report["adapted_modules"] == {"q_proj": 2, "v_proj": 2}


def test_packing_and_accumulation_change_nothing_but_speed(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    runs = {
        "packed": ["micro_batch_size=4", "gradient_accumulation_steps=1"],
        "unpacked": ["micro_batch_size=4", "packing=false"],
        "accumulated": ["micro_batch_size=1", "gradient_accumulation_steps=4"],
    }
    curves = {}
    for name, extra in runs.items():
        train(_config(tiny_llama, small_data, tmp_path / name, "max_steps=4", "lora.lora_dropout=0", *extra))
        curves[name] = _losses(tmp_path / name)
    for name in ("unpacked", "accumulated"):
        for (s1, a), (s2, b) in zip(curves["packed"], curves[name]):
            assert s1 == s2 and abs(a - b) < 1e-5 * max(1.0, abs(a)), (name, s1, a, b)


def test_neftune_adds_noise_to_the_embeddings_while_training(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    for name, extra in (("plain", []), ("again", []), ("noisy", ["neftune_noise_alpha=5"])):
        train(_config(tiny_llama, small_data, tmp_path / name, "max_steps=2", "lora.lora_dropout=0", *extra))
    plain, again, noisy = (_losses(tmp_path / n) for n in ("plain", "again", "noisy"))
    assert plain == again  # the runs are deterministic: the difference below is the noise
    assert noisy[0][1] != plain[0][1]
    assert (tmp_path / "noisy" / "adapter_model.safetensors").is_file()


def test_gradient_checkpointing_recomputes_only_the_adapted_layers(tiny_llama, small_data, tmp_path):
    import torch

    from llm_mcp.train.recipe import train

    calls = {}

    def count(module, args, output):  # attention runs again when a checkpointed layer is recomputed
        if hasattr(module, "layer_idx") and type(module).__name__.endswith("Attention"):
            calls[module.layer_idx] = calls.get(module.layer_idx, 0) + 1

    curves = {}
    for name in ("kept", "checkpointed"):
        calls.clear()
        hook = torch.nn.modules.module.register_module_forward_hook(count)
        try:
            train(_config(tiny_llama, small_data, tmp_path / name, "max_steps=3", "lora.layers_to_transform=1",
                          f"gradient_checkpointing={name == 'checkpointed'}"))
        finally:
            hook.remove()
        curves[name] = (_losses(tmp_path / name), dict(calls))
    (kept, kept_calls), (checked, checked_calls) = curves["kept"], curves["checkpointed"]
    assert kept == checked
    assert kept_calls[0] == kept_calls[1] == checked_calls[0] > 0
    # layer 1 holds the LoRA weights and runs twice; layer 0 once, as nothing below needs a gradient
    assert checked_calls[1] == 2 * checked_calls[0]


# ---- when it goes wrong -----------------------------------------------------------------------

def test_resume_after_kill_9_repeats_the_same_losses(tiny_llama, small_data, tmp_path):
    args = ["train", "--model", str(tiny_llama), "--data", str(small_data), *TINY,
            "max_steps=300", "save_every=10", "lora.lora_dropout=0.1", "epochs=100"]
    whole = tmp_path / "whole"
    done = _cli(*args, "--output", str(whole), timeout=600)
    assert done.returncode == 0, done.stderr

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "llm_mcp", *args, "--output", str(cut)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = cut / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 35:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(metrics.read_text().splitlines())
    assert 35 <= killed_at < 300, "the run was not interrupted mid-way"
    assert not (cut / "adapter_model.safetensors").exists()

    resumed = _cli(*args, "--output", str(cut), "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    a, b = _losses(whole), _losses(cut)
    assert [s for s, _ in b] == list(range(1, 301))
    worst = max(abs(x - y) for (_, x), (_, y) in zip(a, b))
    assert worst < 1e-6, f"resumed losses differ by {worst}"


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_maths(tiny_llama, small_data, tmp_path, caplog):
    from llm_mcp.train.recipe import FAULT_OOM_TOKENS, train

    plain = tmp_path / "plain"
    train(_config(tiny_llama, small_data, plain, "max_steps=3", "micro_batch_size=4", "lora.lora_dropout=0"))
    squeezed = tmp_path / "squeezed"
    os.environ[FAULT_OOM_TOKENS] = "1200"  # 4 examples a row: 1069-1316 tokens; 2: 884-1180
    try:
        with caplog.at_level("WARNING"):
            train(_config(tiny_llama, small_data, squeezed, "max_steps=3", "micro_batch_size=4",
                          "lora.lora_dropout=0"))
    finally:
        os.environ.pop(FAULT_OOM_TOKENS)
    assert "retrying with micro_batch_size" in caplog.text
    records = [json.loads(line) for line in (squeezed / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["micro_batch_size"] < 4
    for (_, a), (_, b) in zip(_losses(plain), _losses(squeezed)):
        assert abs(a - b) < 1e-5


def test_a_diverging_run_stops_at_the_step_and_names_the_fix(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import TrainingDiverged, train

    with pytest.raises(TrainingDiverged) as err:
        train(_config(tiny_llama, small_data, tmp_path / "d", "learning_rate=1e4", "max_grad_norm=1e9",
                      "max_steps=50", "save_every=1", "explode_grad_norm=1e3", "lr_scheduler=constant"))
    text = str(err.value)
    assert "diverged at step" in text and "learning_rate=" in text and "--resume" in text
    assert (tmp_path / "d" / "checkpoints").is_dir()
    assert not (tmp_path / "d" / "adapter_model.safetensors").exists()


def test_layers_to_transform_adapts_only_those_layers_and_checks_the_range(tiny_llama, small_data, tmp_path):
    from peft import PeftConfig

    from llm_mcp.train.recipe import train

    assert load_config("default", overrides=["layers_to_transform=10-12,15"]).lora.layers_to_transform == [10, 11, 12, 15]
    assert load_config("default", overrides=["lora.layers_to_transform=3"]).lora.layers_to_transform == [3]
    with pytest.raises(LLMMCPError, match="layers_to_transform"):
        load_config("default", overrides=["lora.layers_to_transform=top"])
    # all-linear with the default preset's upper-half: every linear layer of layer 1 (of 0-1) only
    result = train(_config(tiny_llama, small_data, tmp_path / "a", "max_steps=1",
                           "lora.layers_to_transform=upper-half"))
    assert result.report["adapted_modules"] == {m: 1 for m in ("down_proj", "gate_proj", "k_proj", "o_proj",
                                                                "q_proj", "up_proj", "v_proj")}
    assert PeftConfig.from_pretrained(tmp_path / "a").layers_to_transform == [1]
    with pytest.raises(LLMMCPError) as err:
        train(_config(tiny_llama, small_data, tmp_path / "b", "max_steps=1", "lora.layers_to_transform=1-2"))
    assert "[2]" in str(err.value) and "2 decoder layers (0-1)" in str(err.value)


def test_target_modules_matching_nothing_lists_the_linear_layers(tiny_llama, small_data, tmp_path):
    from llm_mcp.train.recipe import train

    with pytest.raises(LLMMCPError) as err:
        train(_config(tiny_llama, small_data, tmp_path / "x", "lora.target_modules=qkv,o_proj"))
    assert "['qkv']" in str(err.value) and "q_proj" in str(err.value) and "down_proj" in str(err.value)


def test_qlora_without_cuda_fails_before_loading(small_data, tmp_path):
    import torch

    from llm_mcp.train.recipe import train

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(LLMMCPError, match="CUDA"):
        train(load_config("qlora", None, {"model": "/nonexistent/model", "data": str(small_data),
                                          "output": str(tmp_path / "q")}))


def test_bad_data_stops_before_training_with_file_and_line(tiny_llama, tmp_path):
    from llm_mcp.train.recipe import train

    bad = tmp_path / "bad.jsonl"
    bad.write_text(TRAIN.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(LLMMCPError, match=r"bad.jsonl:2"):
        train(_config(tiny_llama, bad, tmp_path / "o"))


def test_resume_without_a_checkpoint_says_what_to_do(tiny_llama, small_data, tmp_path):
    proc = _cli("train", "--model", str(tiny_llama), "--data", str(small_data), "--output",
                str(tmp_path / "new"), "--resume", *TINY)
    assert proc.returncode == 2 and "no checkpoint to resume from" in proc.stderr
    assert "without --resume" in proc.stderr


# ---- after training -----------------------------------------------------------------------------

def test_merge_writes_a_full_model_with_the_adapter_folded_in(tiny_llama, small_data, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from llm_mcp.train.recipe import train

    out = tmp_path / "adapter"
    train(_config(tiny_llama, small_data, out, "max_steps=2"))
    merged = tmp_path / "merged"
    proc = _cli("adapters", "merge", str(out), "--out", str(merged))
    assert proc.returncode == 0, proc.stderr
    ids = torch.tensor([[1, 5, 9, 200, 7]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(out))(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
    assert (want - got).abs().max().item() < 1e-4
    assert list(merged.glob("*.safetensors")) and (merged / "tokenizer.json").is_file()


def test_two_processes_match_one_with_the_same_effective_batch(tiny_llama, small_data, tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    common = ["--model", str(tiny_llama), "--data", str(small_data), *TINY, "max_steps=4",
              "lora.lora_dropout=0"]
    p1 = _cli("train", *common, "--output", str(one), "micro_batch_size=4", timeout=600)
    assert p1.returncode == 0, p1.stderr
    # on CPUs torchrun starts the processes (accelerate launch --cpu starts one); accelerate
    # then sets up gloo and DDP from torchrun's environment
    p2 = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                         "-m", "llm_mcp", "train", *common, "--output", str(two), "micro_batch_size=2"],
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "ACCELERATE_USE_CPU": "1"})
    assert p2.returncode == 0, p2.stderr[-3000:]
    card = json.loads((two / "adapter_card.json").read_text())
    assert card["metrics"]["processes"] == 2
    for (_, a), (_, b) in zip(_losses(one), _losses(two)):
        assert abs(a - b) < 1e-4 * max(1.0, abs(a))


def test_examples_with_different_tool_lists_are_batched_by_prompt():
    from llm_mcp.train.recipe import epoch_order

    prompts = ["a"] * 8 + ["b"] * 8 + ["c"] * 4
    order = epoch_order(20, seed=3, epoch=0, prompts=prompts, chunk=4)
    assert sorted(order) == list(range(20))
    assert all(len({prompts[i] for i in order[k:k + 4]}) == 1 for k in range(0, 20, 4))
    assert order != epoch_order(20, seed=3, epoch=1, prompts=prompts, chunk=4)
    # one prompt for all: the plain shuffle, as before
    assert epoch_order(20, 3, 0, ["a"] * 20, 4) == epoch_order(20, 3, 0)


def test_skip_invalid_trains_on_the_valid_examples_and_lists_the_rest(tiny_llama, small_data, tmp_path, caplog):
    from llm_mcp.train.recipe import train

    lines = small_data.read_text().splitlines()
    broken = json.loads(lines[1])
    broken["tool_calls"] = [{"name": "no_such_tool", "arguments": {}}]
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:6]]) + "\n")
    with pytest.raises(LLMMCPError, match=r"mixed.jsonl:2"):
        train(_config(tiny_llama, data, tmp_path / "refused", "max_steps=1"))
    assert not (tmp_path / "refused" / "adapter_model.safetensors").exists()
    with caplog.at_level("WARNING"):
        result = train(_config(tiny_llama, data, tmp_path / "kept", "max_steps=1", "skip_invalid=true"))
    assert (result.output / "adapter_model.safetensors").is_file()
    assert "mixed.jsonl:2" in caplog.text and "1 invalid examples dropped, 5 left" in caplog.text
