"""The benchmark scripts that a test can afford: bench/gpu_check.py at toy size on the CPU, so the
script a GPU lease depends on is known to run before the lease starts."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def test_the_gpu_check_runs_every_part_on_the_cpu(smol_dir, tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tokenizer", str(smol_dir),
                           "--size", "tiny", "--steps", "2", "--json", str(out)],
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
