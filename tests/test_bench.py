"""The benchmark scripts that a test can afford, at toy size: bench/gpu_check.py on the CPU, so the
script a GPU lease depends on is known to run before the lease starts, and bench/recipe_seeds.py."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_the_gpu_check_runs_every_part_on_the_cpu(smol_dir, tmp_path):
    # the steps take 16 examples per part (2 steps of 8); preparing all 1280 five times was the cost
    data = tmp_path / "train.jsonl"
    data.write_text("".join((REPO / "examples" / "train.jsonl").read_text().splitlines(keepends=True)[:48]))
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tokenizer", str(smol_dir),
                           "--size", "tiny", "--steps", "2", "--data", str(data), "--json", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {r["part"]: r for r in report["rows"]}
    assert rows["bf16 packed"]["ok"] and rows["bf16 unpacked"]["ok"]
    assert report["summary"]["packing_loss_gap"] < 1e-3  # the same examples, the same maths
    assert rows["qlora nf4"]["skipped"] == "needs CUDA and bitsandbytes"
    assert rows["oom back-off"]["micro_batch_sizes"] == [4]  # 8 "ran out" (injected), 4 fitted
    assert report["summary"]["backoff_loss_gap"] < 1e-4
    assert "| part | settings |" in proc.stdout


def test_recipe_seeds_trains_and_scores_one_adapter_per_seed(tiny_llama, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("".join((REPO / "examples" / "train.jsonl").read_text().splitlines(keepends=True)[:8]))
    out, report = tmp_path / "runs", tmp_path / "seeds.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "recipe_seeds.py"), "--seeds", "0,1",
                           "--data", str(data), "--model", str(tiny_llama), "--limit", "3", "--dtype", "fp32",
                           "--out", str(out), "--json", str(report), "max_steps=1", "micro_batch_size=4",
                           "lora.r=4", "lora.layers_to_transform=null", "precision=fp32"],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    runs = json.loads(report.read_text())["runs"]
    assert sorted(runs) == ["0", "1"]
    for seed, run in runs.items():
        assert (out / f"seed-{seed}" / "adapter_model.safetensors").is_file()
        assert json.loads((out / f"seed-{seed}" / "train_config.json").read_text())["seed"] == int(seed)
        score = run["scores"]["examples/test.jsonl"]
        assert score["call_examples"] + score["no_call_examples"] == 3 and 0 <= score["exact"] <= 1
    assert "| 0 | " in proc.stdout and "| 1 | " in proc.stdout and "| mean | " in proc.stdout
