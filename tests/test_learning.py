"""The proof: the default recipe teaches the real embedded SmolLM2 to call tools it could not
call before (one epoch of examples/train.jsonl, ~4 minutes on 2 CPU cores), and `llm-mcp eval`
shows it side by side with the base on the held-out examples/test.jsonl, whose argument values
never occur in the training data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


@pytest.mark.slow
def test_the_default_recipe_teaches_smollm2_to_call_tools(smol_dir, tmp_path):
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    out = tmp_path / "adapters" / "tools"
    tools = str(REPO / "examples" / "tools.json")
    result = train(load_config("default", None, {"data": str(REPO / "examples" / "train.jsonl"),
                                                 "tools": tools, "output": str(out)}))
    assert result.final_loss < 0.2

    report_dir = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "eval", "--data", str(REPO / "examples" / "test.jsonl"),
                           "--tools", tools, "--adapter", str(out), "--base", "--dtype", "bf16",
                           "--out", str(report_dir)],
                          capture_output=True, text=True, timeout=1200)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    models = json.loads((report_dir / "report.json").read_text())["models"]
    base, tuned = models["base"]["summary"], models["tools"]["summary"]
    assert base["examples"] == tuned["examples"] == 100
    assert base["ast"] < 0.2  # it does not call tools out of the box
    # four seeds of this recipe scored 96.5-97.7% exact and 100% no-call (docs/benchmarks.md)
    assert tuned["exact"] >= 0.92 and tuned["no_call"] >= 0.92, tuned
    assert tuned["ast"] >= tuned["exact"] and tuned["well_formed"] > base["well_formed"]
