"""Real traffic into training data: a real `llm-mcp serve --record-conversations` on loopback,
chat over both APIs, feedback over both APIs, `llm-mcp data from-log` writing records that
validate and train, retention and deletion."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
from conftest import REPO, Server, random_adapter

TOOLS = json.loads((REPO / "examples" / "tools.json").read_text())
ASK = [{"role": "user", "content": "is it cold in oslo right now"}]
FIX = {"name": "get_weather", "arguments": {"location": "Oslo"}}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_mcp", *args], capture_output=True, text=True,
                          env={**os.environ, "LLM_MCP_HOME": str(home)}, timeout=300)


def _mcp(url: str):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(url + "/mcp", http_client=httpx.AsyncClient(timeout=120)))


def test_retention_deletes_old_rows_at_each_insert(tmp_path):
    from llm_mcp.store import Store, ago

    store = Store(tmp_path / "db.sqlite")
    row = {"api": "mcp", "base": "m", "adapter": None, "messages": ASK, "tools": [], "content": "hi",
           "tool_calls": []}
    store.add_conversation({**row, "id": "old", "ts": ago(10)}, keep_days=365)
    store.add_conversation({**row, "id": "recent", "ts": ago(2)}, keep_days=365)
    assert [r["id"] for r in store.conversations()] == ["old", "recent"]
    store.add_conversation({**row, "id": "new"}, keep_days=5)
    assert [r["id"] for r in store.conversations()] == ["recent", "new"]
    assert store.conversations()[0]["messages"] == ASK and store.conversation("new")["correct"] is None
    odd = [{"role": "user", "content": "snow \ud800 in oslo?"}]  # a lone surrogate a client sent
    store.add_conversation({**row, "id": "odd", "messages": odd}, keep_days=5, keep_rows=2)
    assert [r["id"] for r in store.conversations()] == ["new", "odd"]  # the newest 2
    assert store.conversation("odd")["messages"] == odd
    store.close()


def test_recorded_requests_take_feedback_and_become_training_data(tiny_llama, tmp_path):
    from llm_mcp.data.validate import check_dataset
    from llm_mcp.store import Store, ago

    home = tmp_path / "home"
    old = Store(home / "llm-mcp.db")  # a conversation from before the retention limit
    old.add_conversation({"id": "chatcmpl-old", "ts": ago(40), "api": "openai", "base": "m", "adapter": None,
                          "messages": ASK, "tools": [], "content": "x", "tool_calls": []}, keep_days=365)
    old.close()
    alpha = random_adapter(tiny_llama, tmp_path / "alpha", 1)
    server = Server(tiny_llama, home, "--adapter", f"alpha={alpha}", "--record-conversations",
                    "--record-days", "30")
    try:
        log = (home / f"server-{server.port}.log").read_text()
        assert "recording conversations" in log and "kept 30 days" in log
        h = httpx.Client(base_url=server.url, timeout=120)
        model = h.get("/v1/models").json()["data"][0]["id"]
        plain = h.post("/v1/chat/completions", json={"model": model, "messages": ASK, "tools": TOOLS,
                                                     "max_tokens": 8}).json()
        streamed = h.post("/v1/chat/completions", json={"model": model, "messages": ASK, "tools": TOOLS,
                                                        "max_tokens": 8, "stream": True}).text
        chunks = [json.loads(line[6:]) for line in streamed.splitlines()
                  if line.startswith("data: {")]
        stream_id = chunks[0]["id"]
        assert {c["id"] for c in chunks} == {stream_id} and stream_id != plain["id"]

        async def over_mcp():
            async with _mcp(server.url) as c:
                r = await c.call_tool("chat", {"messages": ASK, "tools": TOOLS, "adapter": "alpha",
                                               "max_new_tokens": 8})
                assert not r.is_error
                rid = r.structured_content["request_id"]
                ok = await c.call_tool("record_feedback", {"request_id": rid, "correct": False,
                                                           "corrected_calls": [FIX], "note": "asked about oslo"})
                assert not ok.is_error and ok.structured_content["corrected_calls"] == [FIX]
                for args, text in [
                        ({"request_id": "chatcmpl-nope", "correct": False}, "no recorded request"),
                        ({"request_id": rid, "correct": False, "corrected_calls": [{"name": "get_wether"}]},
                         "did you mean 'get_weather'"),
                        ({"request_id": rid, "correct": False,
                          "corrected_calls": [{"name": "get_weather", "arguments": {"unit": "kelvin"}}]},
                         "'location' is a required property"),
                        ({"request_id": rid, "correct": True, "corrected_calls": [FIX]}, "go with correct: false"),
                        ({"request_id": rid, "correct": "maybe"}, "correct"),
                        ({"request_id": rid, "correct": False, "note": "x" * 5000}, "at most 2000"),
                        ({"request_id": rid, "correct": False, "note": "bad \x00 byte"}, "printable")]:
                    bad = await c.call_tool("record_feedback", args)
                    assert bad.is_error and text in bad.content[0].text, (args, bad.content[0].text)
                return rid
        mcp_id = asyncio.run(over_mcp())

        def feedback(body, **kw):
            return h.post("/v1/feedback", json=body, **kw)
        wrong = {"type": "function", "function": {"name": "get_weather", "arguments": '{"location": "Oslo", "unit": "celsius"}'}}
        r = feedback({"request_id": plain["id"], "correct": False, "corrected_calls": [wrong]})
        assert r.status_code == 200, r.text
        assert r.json()["corrected_calls"] == [{"name": "get_weather", "arguments": {"location": "Oslo", "unit": "celsius"}}]
        assert feedback({"request_id": stream_id, "correct": True}).status_code == 200
        for body, status, text in [
                ({"request_id": "chatcmpl-old", "correct": True}, 404, "no recorded request"),  # deleted at start
                ({"correct": True}, 400, "request_id"),
                ({"request_id": plain["id"], "correct": "true"}, 400, "correct"),
                ({"request_id": plain["id"], "correct": False, "extra": 1}, 400, "extra"),
                ({"request_id": plain["id"], "correct": False, "corrected_calls": [{"name": "nope"}]}, 400,
                 "not among the tools"),
                ({"request_id": plain["id"], "correct": False, "corrected_calls": {"name": "get_weather"}}, 400,
                 "corrected_calls")]:
            r = feedback(body)
            assert r.status_code == status and text in r.json()["error"]["message"], (body, r.text)
        r = h.post("/v1/feedback", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        assert h.post("/v1/chat/completions", json={"messages": ASK, "max_tokens": 2}).status_code == 200
    finally:
        server.stop()

    store = Store(home / "llm-mcp.db")
    rows = {r["id"]: r for r in store.conversations()}
    store.close()
    assert len(rows) == 4 and {plain["id"], stream_id, mcp_id} < set(rows)  # and the last chat; not the old one
    assert rows[mcp_id]["adapter"] == "alpha" and rows[mcp_id]["messages"] == ASK
    assert [t["name"] for t in rows[plain["id"]]["tools"]] == [t["function"]["name"] for t in TOOLS]
    assert rows[plain["id"]]["content"] == (plain["choices"][0]["message"]["content"] or "")

    shown = _cli(home, "data", "from-log", "--show", "--only", "all")
    assert shown.returncode == 0, shown.stderr
    assert mcp_id in shown.stdout and "fixed: get_weather" in shown.stdout and "asked about oslo" in shown.stdout
    assert "4 recorded requests, 3 selected (all)" in shown.stderr

    out = tmp_path / "fixed.jsonl"
    r = _cli(home, "data", "from-log", "--out", str(out))  # --only corrected: the two corrections
    assert r.returncode == 0, r.stderr
    ds, issues, _ = check_dataset(out)
    assert not [i for i in issues if i.level == "error"] and len(ds.examples) == 2
    answers = sorted(json.dumps([c.to_dict() for c in ex.messages[-1].tool_calls]) for ex in ds.examples)
    assert answers == sorted([json.dumps([FIX]), json.dumps([{"name": "get_weather", "arguments":
                                                              {"location": "Oslo", "unit": "celsius"}}])])
    assert all(ex.messages[-2].content == ASK[0]["content"] and len(ex.tools) == len(TOOLS) for ex in ds.examples)

    r = _cli(home, "data", "from-log", "--adapter", "alpha", "--out", str(tmp_path / "alpha.jsonl"))
    assert r.returncode == 0 and len((tmp_path / "alpha.jsonl").read_text().splitlines()) == 1
    r = _cli(home, "data", "from-log", "--since", "2999-01-01", "--out", str(tmp_path / "none.jsonl"))
    assert r.returncode != 0 and "nothing written" in r.stderr and not (tmp_path / "none.jsonl").exists()
    r = _cli(home, "data", "from-log", "--since", "yesterday", "--show")
    assert r.returncode != 0 and "is not a date" in r.stderr

    trained = _cli(home, "train", "--data", str(out), "--output", str(tmp_path / "from-log-adapter"), "--model", str(tiny_llama),
                   "max_steps=1", "precision=fp32")
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "from-log-adapter" / "adapter_model.safetensors").exists()

    r = _cli(home, "data", "clear-log", "--before", "2000-01-01")
    assert r.returncode == 0 and "deleted 0" in r.stderr
    r = _cli(home, "data", "clear-log")
    assert r.returncode == 0 and "deleted 4" in r.stderr
    store = Store(home / "llm-mcp.db")
    assert store.conversations() == []
    store.close()
