"""`llm-mcp teach` end to end: the tools pulled from a real MCP server (tests/assets/tool_server.py
over stdio), data made, a candidate trained and scored against the base and the current adapter,
and promoted only when it wins. On a tiny random model (nothing it learns beats the base) the gate
holds; on the real SmolLM2 a candidate that wins is promoted and a running `llm-mcp serve` serves it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx2
import pytest

from conftest import Server
from llm_mcp.cli import main

SERVER = Path(__file__).parent / "assets" / "tool_server.py"
NATURAL = Path(__file__).parent / "data" / "teach_natural.jsonl"
MCP = ["--mcp-command", f"{sys.executable} {SERVER} stdio"]
TINY_RUN = ["--n", "48", "--held-out", "0.25", "--max-new-tokens", "8", "max_steps=2", "micro_batch_size=8"]


def teach(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["teach", *args])
    captured = capsys.readouterr()
    return code, json.loads(captured.out.strip().splitlines()[-1]), captured.err


def card(home: Path, name: str) -> dict:
    return json.loads((home / "adapters" / name / "adapter_card.json").read_text())


def test_the_gate_keeps_a_candidate_that_does_not_win_and_force_says_so(tiny_llama, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("LLM_MCP_HOME", str(home))
    own = tmp_path / "mine.jsonl"  # the user's own examples call only ping
    own.write_text("".join(json.dumps({"input": text, "output": "", "tool_calls": [{"name": "ping", "arguments": {}}]}) + "\n"
                           for text in ("is the server up?", "ping it", "are you alive", "check the server", "up?",
                                        "server status please")))
    base = ["--name", "office", "--model", str(tiny_llama), *MCP, "--only", "ping,get_invoice,set_thermostat"]

    code, out, err = teach(capsys, *base, "--data", str(own), *TINY_RUN)
    assert code == 1 and not out["promoted"] and out["adapter"] == "office.candidate-1"
    assert "6 examples from your files" in err and "(for get_invoice, set_thermostat)" in err
    kept = card(home, "office.candidate-1")["teach"]
    assert kept["decision"] == "kept as candidate" and "does not beat base" in kept["reason"]
    assert kept["data"]["calls_in_user_files"] == {"ping": 6}
    assert kept["data"]["synthesized_for"] == ["get_invoice", "set_thermostat"]
    assert set(kept["columns"]["held-out"]) == {"base", "office.candidate-1"}
    assert len(kept["data"]["sha256"]["train"]) == 64 and kept["tools_from"].endswith("tool_server.py stdio")
    assert not (home / "adapters" / "office").exists()
    run = Path(out["run"])
    assert json.loads((run / "decision.json").read_text())["reason"] == kept["reason"]
    assert (run / "eval-held-out" / "report.md").is_file()
    train_lines = (run / "train.jsonl").read_text().splitlines()
    assert len(train_lines) + kept["data"]["held_out"] == 6 + kept["data"]["synthesized"]

    code, out, err = teach(capsys, *base, *TINY_RUN, "--force")
    assert code == 0 and out["promoted"] and out["adapter"] == "office"
    forced = card(home, "office")["teach"]
    assert forced["reason"].startswith("promoted by --force although") and forced["previous"] is None

    code, out, err = teach(capsys, *base, *TINY_RUN, "--force")  # a third: the current one is kept aside
    assert out["promoted"] and card(home, "office")["teach"]["previous"] == "office.previous-1"
    columns = card(home, "office")["teach"]["columns"]["held-out"]
    assert len(columns) == 3 and {"base", "office"} < set(columns)
    assert card(home, "office.previous-1")["teach"]["reason"] == forced["reason"]
    assert main(["adapters", "list", "--json"]) == 0
    listed = {a["name"]: a["path"] for a in json.loads(capsys.readouterr().out)}
    assert listed["office"] == str(home / "adapters" / "office") and "office.previous-1" in listed
    assert sorted(listed) == ["office", "office.candidate-1", "office.previous-1"]  # the winners became office

    # requests you wrote ride along with synthesis for every tool, never held out
    code, out, err = teach(capsys, *base, "--examples", str(own), "--repeat", "3", *TINY_RUN)
    assert "6 requests you wrote, each 3 times under other tool lists" in err
    assert "6 requests you wrote: calls to ping 6; 0 without a call" in err
    assert "note: 2 tools have fewer than 5 of your requests (get_invoice, set_thermostat)" in err
    mix = card(home, out["adapter"])["teach"]["data"]
    assert mix["your_requests"] == 6 and mix["synthesized"] == 48 and mix["synthesized_for"] == "all"
    run = Path(out["run"])
    train_inputs = [json.loads(line).get("input") for line in (run / "train.jsonl").read_text().splitlines()]
    held_inputs = {json.loads(line).get("input") for line in (run / "held_out.jsonl").read_text().splitlines()}
    mine = [json.loads(line)["input"] for line in own.read_text().splitlines()]
    assert all(train_inputs.count(text) == 3 for text in mine) and not held_inputs & set(mine)

    bad = tmp_path / "bad.jsonl"  # a request calling a tool the server does not have: refused, nothing written
    bad.write_text(own.read_text().splitlines()[0] + "\n" + json.dumps(
        {"input": "reboot it", "output": "", "tool_calls": [{"name": "reboot", "arguments": {}}]}) + "\n")
    runs = sorted((home / "teach").iterdir())
    code = main(["teach", *base, "--examples", str(bad), *TINY_RUN])
    assert code == 2 and "bad.jsonl:2" in capsys.readouterr().err
    assert sorted((home / "teach").iterdir()) == runs

    code = main(["teach", "--name", "x", "--tools", str(own)])
    assert code == 2
    code = main(["teach", "--name", "office.candidate-9", *MCP])
    assert code == 2 and "kept candidate" in capsys.readouterr().err


@pytest.mark.slow
def test_a_winning_candidate_on_smollm2_is_promoted_and_served(smol_dir, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LLM_MCP_HOME", str(home))
    server = Server(smol_dir, home)
    try:
        # the gate decides on requests people wrote for these tools (tests/data/teach_natural.jsonl,
        # never seen by the generator); --margin 1: 12 steps do not yet teach when not to call
        code, out, err = teach(capsys, "--name", "thermo", "--model", str(smol_dir), *MCP,
                               "--only", "get_invoice,set_thermostat", "--natural", str(NATURAL),
                               "--n", "96", "--held-out", "0.2", "--max-new-tokens", "40",
                               "--margin", "1", "--serve", server.url, "max_steps=12", "micro_batch_size=8")
        assert code == 0, err
        assert out["promoted"] and out["served"] and out["adapter"] == "thermo"
        decided = card(home, "thermo")["teach"]
        natural = decided["columns"]["natural"]
        assert decided["set"] == "natural" and natural["thermo.candidate-1"]["ast"] > natural["base"]["ast"], natural
        models = [m["id"] for m in httpx2.get(server.url + "/v1/models", timeout=30).json()["data"]]
        served = next(m for m in models if m.endswith(":thermo"))
        r = httpx2.post(server.url + "/v1/chat/completions", timeout=300, json={
            "model": served, "max_tokens": 40,
            "messages": [{"role": "user", "content": "Set the office thermostat with celsius 21."}],
            "tools": [{"type": "function", "function": {"name": "set_thermostat", "description": "Set the office thermostat.",
                                                        "parameters": {"type": "object", "properties": {"celsius": {"type": "number"}},
                                                                       "required": ["celsius"]}}}]})
        assert r.status_code == 200, r.text
        calls = r.json()["choices"][0]["message"].get("tool_calls") or []
        assert [c["function"]["name"] for c in calls] == ["set_thermostat"], r.json()
    finally:
        server.stop()


def test_teach_over_mcp_is_a_job_and_a_served_adapter_is_reloaded_when_promoted(tiny_llama, tmp_path):
    import asyncio

    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    sys.path.insert(0, str(SERVER.parent))
    from tool_server import TOOLS

    home = tmp_path / "home"
    home.mkdir()
    server = Server(tiny_llama, home)
    tools = [t for t in TOOLS if t["name"] in ("ping", "get_invoice")]
    args = {"name": "desk", "tools": tools, "n": 40, "force": True,
            "options": {"max_steps": 2, "micro_batch_size": 8}}

    async def main():
        http = httpx2.AsyncClient(timeout=300)
        async with Client(streamable_http_client(server.url + "/mcp", http_client=http)) as c:
            async def taught(extra: dict) -> dict:
                r = await c.call_tool("teach", {**args, **extra})
                assert not r.is_error, r.content[0].text
                assert r.structured_content["kind"] == "teach"
                done = await c.call_tool("wait_for_job", {"job_id": r.structured_content["id"], "timeout_s": 600})
                return done.structured_content

            first = await taught({})
            assert first["status"] == "completed", first
            assert first["progress"]["decision"] == "promoted" and first["progress"]["adapter"] == "desk"
            assert first["progress"]["reason"].startswith("promoted by --force")
            loaded = (await c.call_tool("load_adapter", {"name": "desk"})).structured_content
            assert loaded["loaded"] and loaded["teach"]["previous"] is None
            (home / "mine.jsonl").write_text(json.dumps(  # a request you wrote, from the data directory
                {"input": "is the server alive?", "output": "", "tool_calls": [{"name": "ping", "arguments": {}}]}) + "\n")
            second = await taught({"options": {**args["options"], "seed": 1}, "examples": "mine.jsonl",
                                   "repeat": 2})
            assert second["progress"]["decision"] == "promoted"
            served = (await c.call_tool("list_adapters", {})).structured_content["result"]
            desk = next(a for a in served if a["name"] == "desk")
            # the server reloaded the promoted weights: their card is the second decision's
            assert desk["loaded"] and desk["teach"]["previous"] == "desk.previous-1"
            mix = card(home, "desk")["teach"]["data"]  # the request you wrote went in, twice
            assert mix["your_requests"] == 1 and mix["repeat"] == 2
            assert desk["teach"]["decided"] >= loaded["teach"]["decided"]
            # a candidate that does not win (nothing a tiny random model learns beats the base) is
            # kept aside, and the server goes on serving the promoted weights, unchanged
            ask = {"messages": [{"role": "user", "content": "invoice INV-7 please"}], "tools": tools,
                   "adapter": "desk", "max_new_tokens": 8}
            before = (await c.call_tool("chat", ask)).structured_content["content"]
            third = await taught({"force": False, "options": {**args["options"], "seed": 2}})
            assert third["progress"]["decision"] == "kept as candidate", third["progress"]
            assert third["progress"]["adapter"] == "desk.candidate-1"
            served = (await c.call_tool("list_adapters", {})).structured_content["result"]
            assert next(a for a in served if a["name"] == "desk")["teach"] == desk["teach"]
            assert (await c.call_tool("chat", ask)).structured_content["content"] == before
            r = await c.call_tool("resume_job", {"job_id": second["id"]})
            assert r.is_error and "does not resume" in r.content[0].text
            r = await c.call_tool("teach", {**args, "tools": [{"name": "bad", "inputSchema": {"type": "object",
                                                             "properties": {"n": {"type": "integr"}}}}]})
            assert r.is_error and "not a valid JSON Schema" in r.content[0].text
            r = await c.call_tool("teach", {**args, "natural": "../outside.jsonl"})
            assert r.is_error
            r = await c.call_tool("teach", {**args, "examples": "mine.jsonl", "repeat": 0})
            assert r.is_error and "repeat 0" in r.content[0].text
    try:
        asyncio.run(main())
    finally:
        server.stop()
