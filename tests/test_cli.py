"""The command line, run as a user runs it: in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def run(*args, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy(), cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_does_not_import_torch_or_transformers():
    code = ("import sys\nfrom llm_mcp.cli import main\n"
            "for argv in (['--help'], ['chat', '--help'], ['models', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'accelerate') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    assert "chat" in out.stdout and "--adapter" in out.stdout


def test_version():
    assert run("--version").stdout.startswith("llm-mcp ")


def test_chat_json_on_a_tiny_model(tiny_llama):
    out = run("chat", "--model", str(tiny_llama), "--tools", str(REPO / "examples" / "tools.json"),
              "--max-new-tokens", "4", "--json", "What's the weather in Tokyo?")
    reply = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(reply) == {"content", "tool_calls", "withheld", "taken", "redone", "added", "filled", "errors",
                          "usage", "chat_format"}
    assert reply["chat_format"] == "hermes"
    assert reply["usage"]["completion_tokens"] <= 4 and reply["usage"]["prompt_tokens"] > 300


def test_chat_errors_are_clear_and_exit_2(tmp_path, tiny_llama):
    out = run("chat", "--model", "no-such-model", "hi", check=False)
    assert out.returncode == 2 and "unknown model 'no-such-model'" in out.stderr
    assert "Traceback" not in out.stderr
    bad = tmp_path / "tools.json"
    bad.write_text('[{"name": "f"},\n {oops}]')
    out = run("chat", "--model", str(tiny_llama), "--tools", str(bad), "hi", check=False)
    assert out.returncode == 2 and f"{bad}:2: not valid JSON" in out.stderr
    out = run("chat", "--model", str(tiny_llama), "--adapter", str(tmp_path), "hi", check=False)
    assert out.returncode == 2 and "not a PEFT adapter folder" in out.stderr


def test_models_list(smol_dir):
    rows = json.loads(run("models", "list", "--json").stdout)
    names = {(r["name"], r["kind"]) for r in rows}
    assert ("smollm2-135m-instruct", "alias") in names
    assert ("smollm2-135m-instruct", "cached") in names


@pytest.mark.slow
def test_real_smollm2_answers_paris_from_the_cache(smol_dir):
    out = run("chat", "What is the capital of France?")
    assert "Paris" in out.stdout
    assert "converting" not in out.stderr  # the session's cache was reused


def test_adapters_list_show_and_delete(tiny_llama, tmp_path):
    from conftest import random_adapter

    home = tmp_path / "home"
    folder = random_adapter(tiny_llama, home / "adapters" / "weather", 1)
    (folder / "adapter_card.json").write_text(json.dumps({"base_model": {"spec": "tiny"}, "created": "now",
                                                           "metrics": {"steps": 7, "eval_calls": {"ast": 0.5}}}))
    env = {**os.environ, "LLM_MCP_HOME": str(home)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "llm_mcp", "adapters", *args], capture_output=True,
                              text=True, timeout=120, env=env)

    listed = json.loads(cli("list", "--json").stdout)
    assert [(a["name"], a["steps"], a["eval_ast"]) for a in listed] == [("weather", 7, 0.5)]
    assert "AST 50.0%" in cli("list").stdout
    assert json.loads(cli("show", "weather").stdout)["base_model"]["spec"] == "tiny"
    refused = cli("delete", "weather")
    assert refused.returncode == 2 and "--yes" in refused.stderr and folder.exists()
    outside = random_adapter(tiny_llama, tmp_path / "elsewhere", 2)
    kept = cli("delete", str(outside), "--yes")
    assert kept.returncode == 2 and "not deleting files elsewhere" in kept.stderr and outside.exists()
    unknown = cli("delete", "rain", "--yes")
    assert unknown.returncode == 2 and "no adapter 'rain'" in unknown.stderr and "weather" in unknown.stderr
    assert cli("delete", "weather", "--yes").returncode == 0 and not folder.exists()
    assert "no adapters yet" in cli("list").stdout


def test_serve_engine_vllm_needs_a_server(tiny_llama):
    out = run("serve", "--model", str(tiny_llama), "--engine", "vllm", check=False)
    assert out.returncode == 2 and "needs --vllm-url" in out.stderr
    from conftest import _port

    url = f"http://127.0.0.1:{_port()}"  # nothing listens there
    out = run("serve", "--model", str(tiny_llama), "--engine", "vllm", "--vllm-url", url, check=False)
    assert out.returncode == 2 and f"the vLLM server at {url} did not answer" in out.stderr
    assert "Traceback" not in out.stderr
