"""The proof: the default recipe teaches the real embedded SmolLM2 to call tools it could not
call before, judged on requests people wrote (examples/natural.jsonl, held out: written by hand,
never read by the generator), after one epoch of examples/train.jsonl (1280 examples synthesized
from the tool schemas alone, ~25 minutes on 2 CPU cores). `llm-mcp eval` scores it against the base."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def _eval(data: str, tools: str, out: Path, *models: str, limit: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "llm_mcp", "eval", "--data", str(REPO / "examples" / data), "--tools", tools,
           *models, "--dtype", "bf16", "--out", str(out)] + (["--limit", str(limit)] if limit else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    return {k: v["summary"] for k, v in json.loads((out / "report.json").read_text())["models"].items()}


@pytest.mark.slow
def test_the_default_recipe_teaches_smollm2_to_call_tools(smol_dir, tmp_path):
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    out = tmp_path / "adapters" / "tools"
    tools = str(REPO / "examples" / "tools.json")
    result = train(load_config("default", None, {"data": str(REPO / "examples" / "train.jsonl"), "output": str(out)}))
    assert result.final_loss < 0.8

    natural = _eval("natural.jsonl", tools, tmp_path / "natural", "--adapter", str(out))["tools"]
    base = _eval("natural.jsonl", tools, tmp_path / "base", "--base", limit=40)["base"]
    assert natural["examples"] == 118 and base["examples"] == 40
    # it barely calls tools out of the box: a rare call of its own that the serve-time checks make
    # right (one of 29 on 2026-12-07) is all it gets, far below what the adapter learnt
    assert base["ast"] <= 0.05 and natural["ast"] >= base["ast"] + 0.1, (base, natural)
    # measured in docs/benchmarks.md ("Natural requests"): 74% well-formed, 59% right tool, 22%
    # AST, 93% no-call; far from the goal (85% AST), so these thresholds hold the gain over the
    # base and over the 640-example data (13% AST, 61% no-call), with a margin for run-to-run noise
    assert natural["well_formed"] >= 0.6 and natural["tool_name"] >= 0.45, natural
    assert natural["ast"] >= 0.15 and natural["no_call"] >= 0.75, natural
