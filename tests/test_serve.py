"""The server: the engine's mixed-adapter batches, the SQLite store, and a real `llm-mcp serve`
process on loopback driven by the MCP SDK's client (streamable HTTP and stdio) and the `openai`
client. The model is a tiny random Llama; its two adapters are random PEFT LoRA weights, so each
answers differently and a reply can be traced to the adapter that made it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import Server, random_adapter

REPO = Path(__file__).parent.parent
TOOLS = json.loads((REPO / "examples" / "tools.json").read_text())
PROMPTS = ["What's the weather in Oslo?", "Email bob@example.com", "Hello!", "Convert 5 USD to JPY"]


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    # beta adapts layer 1 only, as the default training preset adapts the upper half
    return {"alpha": random_adapter(tiny_llama, root / "alpha", 1),
            "beta": random_adapter(tiny_llama, root / "beta", 2, layers=[1])}


# ---- engine -----------------------------------------------------------------------------------

def test_mixed_adapter_batches_answer_each_request_as_its_adapter_alone(tiny_llama, adapters):
    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama), max_batch=16)
    for name, folder in adapters.items():
        engine.load_adapter(name, folder)
    choices = [None, "alpha", "beta"]
    alone = {}
    for p in PROMPTS:
        for a in choices:
            alone[p, a] = engine.generate(Request([{"role": "user", "content": p}], TOOLS, a, max_new_tokens=12)).raw
    assert len({alone[PROMPTS[0], a] for a in choices}) == 3  # the adapters really differ
    engine.batches.clear()
    jobs = [(p, a) for a in choices for p in PROMPTS] + [(PROMPTS[0], "alpha"), (PROMPTS[1], None),
                                                          (PROMPTS[2], "beta"), (PROMPTS[3], "alpha")]
    reqs = [engine.submit(Request([{"role": "user", "content": p}], TOOLS, a, max_new_tokens=12)) for p, a in jobs]
    for (p, a), req in zip(jobs, reqs):
        assert req.done.wait(120)
        assert req.result.raw == alone[p, a], (p, a)
        assert req.result.adapter == a
    assert len(jobs) == 16 and max(engine.batches) > 1
    engine.unload_adapter("alpha")
    engine.unload_adapter("beta")
    assert not hasattr(engine.model, "peft_config")  # back to the plain base
    assert engine.generate(Request([{"role": "user", "content": PROMPTS[0]}], TOOLS, None,
                                   max_new_tokens=12)).raw == alone[PROMPTS[0], None]
    engine.close()


def test_engine_limits_and_bad_requests_are_clear_errors(tiny_llama, tmp_path):
    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama), max_new_tokens=64, max_prompt_tokens=200)
    user = [{"role": "user", "content": "hi"}]
    cases = [(Request(user, max_new_tokens=65), "outside 1..64"),
             (Request(user, adapter="nope"), "no adapter 'nope'"),
             (Request([{"role": "robot", "content": "x"}]), "unknown role"),
             (Request([]), "messages must be a non-empty list"),
             (Request(user, TOOLS), "over the server's limit of 200"),
             (Request(user, TOOLS[:1], tool_choice="get_time"), "not among the tools")]
    for req, text in cases:
        with pytest.raises(LLMMCPError, match=text):
            engine.prepare(req)
    pickle_only = tmp_path / "pickled"
    pickle_only.mkdir()
    (pickle_only / "adapter_config.json").write_text("{}")
    (pickle_only / "adapter_model.bin").write_bytes(b"\x80")
    with pytest.raises(LLMMCPError, match="safetensors"):
        engine.load_adapter("x", pickle_only)
    assert engine.generate(Request(user, max_new_tokens=3)).completion_tokens <= 3  # still serving
    engine.close()


def test_a_forced_tool_choice_makes_the_reply_a_call_to_that_tool(tiny_llama):
    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama))
    result = engine.generate(Request([{"role": "user", "content": "hi"}], TOOLS, tool_choice="get_weather",
                                     max_new_tokens=4))
    assert result.raw.startswith('<tool_call>{"name": "get_weather", "arguments": ')
    # `required`: the random model's reply is held to a tool name by the guide
    names = {t["function"]["name"] for t in TOOLS}
    for text in PROMPTS:
        raw = engine.generate(Request([{"role": "user", "content": text}], TOOLS, tool_choice="required",
                                      max_new_tokens=12)).raw
        assert raw.startswith('<tool_call>{"name": "')
        assert raw[len('<tool_call>{"name": "'):].split('"')[0] in names, raw
    engine.close()


# ---- store ------------------------------------------------------------------------------------

def test_store_migrations_are_applied_once_and_rows_survive_reopening(tmp_path):
    from llm_mcp.store import MIGRATIONS, Store

    store = Store(tmp_path / "db.sqlite")
    assert store.migrate() == []  # the constructor applied them all
    store.put_adapter("a", tmp_path / "a", {"base_model": {"spec": "m"}})
    store.add_job("j1", "a", {"dataset": "d", "output": "o", "overrides": []}, tmp_path / "j1.log")
    store.update_job("j1", status="running", progress={"step": 1, "total_steps": 4})
    store.close()
    again = Store(tmp_path / "db.sqlite")
    names = [r["name"] for r in again._rows("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert again.adapter("a")["base"] == "m" and again.job("j1")["progress"]["total_steps"] == 4
    assert [j["id"] for j in again.jobs("running")] == ["j1"]
    again.close()


# ---- a real server process --------------------------------------------------------------------

@pytest.fixture(scope="module")
def home(tmp_path_factory, adapters) -> Path:
    home = tmp_path_factory.mktemp("serve-home")
    shutil.copytree(adapters["beta"], home / "adapters" / "beta")  # found there, loaded on request
    (home / "data").mkdir()
    shutil.copy(REPO / "examples" / "train.jsonl", home / "data" / "train.jsonl")
    lines = (REPO / "examples" / "test.jsonl").read_text().splitlines(keepends=True)
    (home / "data" / "test.jsonl").write_text("".join(lines[:6]))
    return home


@pytest.fixture(scope="module")
def server(tiny_llama, adapters, home):
    s = Server(tiny_llama, home, "--adapter", f"alpha={adapters['alpha']}")
    yield s
    s.stop()


def _mcp(url: str, headers: dict | None = None):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(url + "/mcp", http_client=httpx.AsyncClient(headers=headers or {},
                                                                                  timeout=120)))


def _run(coro):
    return asyncio.run(coro)


def test_openai_client_models_chat_stream_and_errors(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    ids = [m.id for m in client.models.list().data]
    base = ids[0]
    assert f"{base}:alpha" in ids and len(ids) == 2
    messages = [{"role": "user", "content": PROMPTS[0]}]
    plain = client.chat.completions.create(model=base, messages=messages, tools=TOOLS, max_tokens=10)
    tuned = client.chat.completions.create(model=f"{base}:alpha", messages=messages, tools=TOOLS, max_tokens=10)
    assert plain.choices[0].message.content != tuned.choices[0].message.content
    assert tuned.usage.completion_tokens <= 10 and tuned.usage.prompt_tokens > 100
    chunks = list(client.chat.completions.create(model=f"{base}:alpha", messages=messages, tools=TOOLS,
                                                 max_tokens=10, stream=True, stream_options={"include_usage": True}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == (tuned.choices[0].message.content or "").strip()
    assert chunks[-1].usage.completion_tokens == tuned.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == tuned.choices[0].finish_reason
    with pytest.raises(openai.BadRequestError, match="not among the tools"):
        client.chat.completions.create(model=base, messages=messages, tools=TOOLS[:1],
                                       tool_choice={"type": "function", "function": {"name": "get_time"}})
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="nope", messages=messages)
    with pytest.raises(openai.BadRequestError, match="outside 1..1024"):
        client.chat.completions.create(model=base, messages=messages, max_tokens=100_000)
    with pytest.raises(openai.BadRequestError, match="unknown role"):
        client.chat.completions.create(model=base, messages=[{"role": "robot", "content": "x"}])
    bad = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", timeout=10,
                     headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    assert client.chat.completions.create(model=base, messages=messages, max_tokens=2).choices  # still serving
    # conversations are recorded only with --record-conversations: this server keeps none
    refused = httpx.post(server.url + "/v1/feedback", json={"request_id": plain.id, "correct": True}, timeout=10)
    assert refused.status_code == 404 and "--record-conversations" in refused.json()["error"]["message"]
    from llm_mcp.store import Store

    store = Store(server.home / "llm-mcp.db")
    assert store.conversations() == [] and store.requests()  # sizes and times only
    store.close()


def test_sixteen_concurrent_http_requests_with_mixed_adapters(server):
    async def main():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as h:
            async def ask(prompt, model):
                r = await h.post("/v1/chat/completions", json={"model": model, "messages": [
                    {"role": "user", "content": prompt}], "tools": TOOLS, "max_tokens": 10})
                assert r.status_code == 200, r.text
                return r.json()["choices"][0]["message"]["content"]

            base = (await h.get("/v1/models")).json()["data"][0]["id"]
            models = [base, f"{base}:alpha"]
            alone = {(p, m): await ask(p, m) for p in PROMPTS for m in models}
            jobs = [(p, m) for p in PROMPTS for m in models] * 2
            together = await asyncio.gather(*(ask(p, m) for p, m in jobs))
            assert together == [alone[j] for j in jobs]
            assert alone[PROMPTS[0], models[0]] != alone[PROMPTS[0], models[1]]
    _run(main())


def test_mcp_tools_resources_and_errors_over_http(server, home, tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text((home / "data" / "test.jsonl").read_text())
    (home / "data" / "escape.jsonl").symlink_to(outside)

    async def main():
        async with _mcp(server.url) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert names == {"chat", "list_models", "list_adapters", "load_adapter", "unload_adapter",
                             "delete_adapter", "validate_dataset", "start_training", "get_job", "list_jobs",
                             "cancel_job", "resume_job", "wait_for_job", "evaluate", "teach", "record_feedback"}
            r = await c.call_tool("chat", {"messages": [{"role": "user", "content": PROMPTS[0]}], "tools": TOOLS,
                                           "adapter": "alpha", "max_new_tokens": 6})
            assert not r.is_error and r.structured_content["adapter"] == "alpha"
            rid = r.structured_content["request_id"]
            assert r.structured_content["usage"]["completion_tokens"] <= 6
            models = (await c.call_tool("list_models", {})).structured_content["result"]
            assert [m["adapter"] for m in models] == [None, "alpha"]
            listed = (await c.call_tool("list_adapters", {})).structured_content["result"]
            assert {(a["name"], a["loaded"]) for a in listed} == {("alpha", True), ("beta", False)}
            r = await c.call_tool("load_adapter", {"name": "beta"})
            assert not r.is_error and r.structured_content["loaded"]
            card = json.loads((await c.read_resource("llm-mcp://adapters/beta")).contents[0].text)
            assert isinstance(card, dict)
            r = await c.call_tool("unload_adapter", {"name": "beta"})
            assert not r.is_error and not r.structured_content["loaded"]
            ok = await c.call_tool("validate_dataset", {"path": "data/test.jsonl"})
            assert ok.structured_content["ok"] and ok.structured_content["examples"] == 6
            for bad, text in [({"path": "../../etc/passwd"}, "outside the folders"),
                              ({"path": "/etc/passwd"}, "outside the folders"),
                              ({"path": "data/escape.jsonl"}, "outside the folders"),
                              ({"path": "data/missing.jsonl"}, "does not exist")]:
                r = await c.call_tool("validate_dataset", bad)
                assert r.is_error and text in r.content[0].text, (bad, r.content[0].text)
            for tool, args, text in [
                    ("chat", {"messages": [{"role": "user", "content": "x"}], "adapter": "nope"}, "no adapter 'nope'"),
                    ("chat", {"messages": [{"role": "robot", "content": "x"}]}, "unknown role"),
                    ("chat", {"messages": [{"role": "user", "content": "x"}], "max_new_tokens": 10 ** 6}, "outside"),
                    ("load_adapter", {"name": "x", "path": "/tmp"}, "outside the folders"),
                    ("load_adapter", {"name": "../x"}, "bad adapter name"),
                    ("start_training", {"dataset": "data/train.jsonl", "name": "x", "options": {"output": "/tmp/x"}},
                     "may not set output"),
                    ("start_training", {"dataset": "data/train.jsonl", "name": "x", "options": {"lora.r": -1}},
                     "lora.r"),
                    ("get_job", {"job_id": "nope"}, "no job 'nope'"),
                    ("record_feedback", {"request_id": rid, "correct": True},
                     "does not record conversations")]:
                r = await c.call_tool(tool, args)
                assert r.is_error and text in r.content[0].text, (tool, r.content[0].text)
            r = await c.call_tool("chat", {"messages": [{"role": "user", "content": "x"}], "max_new_tokens": 2})
            assert not r.is_error  # the server lives on
    _run(main())


def test_training_over_mcp_with_progress_cancel_load_and_evaluate(server):
    async def main():
        async with _mcp(server.url) as c:
            r = await c.call_tool("start_training", {"dataset": "data/train.jsonl", "name": "taught", "options": {
                "max_steps": 6, "micro_batch_size": 4, "save_every": 2, "precision": "fp32", "learning_rate": 1e-3}})
            assert not r.is_error, r.content[0].text
            job = r.structured_content
            assert job["status"] in ("queued", "running")
            slow = (await c.call_tool("start_training", {"dataset": "data/train.jsonl", "name": "slow", "options": {
                "max_steps": 500, "micro_batch_size": 2}})).structured_content
            assert slow["status"] == "queued"  # one job at a time
            notes = []

            async def progress(done, total, message):
                notes.append((done, total, message))

            done = await c.call_tool("wait_for_job", {"job_id": job["id"]}, progress_callback=progress)
            assert done.structured_content["status"] == "completed", done.structured_content
            assert notes and notes[-1][0] == 6 and notes[-1][1] == 6 and "loss" in notes[-1][2]
            status = json.loads((await c.read_resource(f"llm-mcp://jobs/{job['id']}")).contents[0].text)
            assert status["status"] == "completed" and "llm_mcp train" in status["log_tail"]
            # the queued job starts once the first one ends; cancel it while it runs
            for _ in range(200):
                if (await c.call_tool("get_job", {"job_id": slow["id"]})).structured_content["status"] == "running":
                    break
                await asyncio.sleep(0.2)
            r = await c.call_tool("cancel_job", {"job_id": slow["id"]})
            assert not r.is_error
            ended = (await c.call_tool("wait_for_job", {"job_id": slow["id"], "timeout_s": 60})).structured_content
            assert ended["status"] == "cancelled"
            r = await c.call_tool("load_adapter", {"name": "taught"})
            assert not r.is_error and r.structured_content["loaded"], r.content[0].text
            r = await c.call_tool("chat", {"messages": [{"role": "user", "content": PROMPTS[0]}], "tools": TOOLS,
                                           "adapter": "taught", "max_new_tokens": 4})
            assert not r.is_error and r.structured_content["adapter"] == "taught"
            r = await c.call_tool("evaluate", {"dataset": "data/test.jsonl", "adapter": "taught",
                                               "max_new_tokens": 8})
            assert not r.is_error and r.structured_content["summary"]["examples"] == 6
            jobs = (await c.call_tool("list_jobs", {})).structured_content["result"]
            assert [j["status"] for j in jobs][-2:] == ["completed", "cancelled"]
            r = await c.call_tool("delete_adapter", {"name": "taught"})
            assert not r.is_error and r.structured_content["deleted_files"]
    _run(main())


def test_a_job_interrupted_by_a_server_crash_resumes_to_completion(tiny_llama, tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "train.jsonl", home / "data" / "train.jsonl")
    server = Server(tiny_llama, home)
    try:
        async def start():
            async with _mcp(server.url) as c:
                r = await c.call_tool("start_training", {"dataset": "data/train.jsonl", "name": "crash", "options": {
                    "max_steps": 40, "micro_batch_size": 2, "save_every": 2, "precision": "fp32"}})
                job = r.structured_content
                for _ in range(600):
                    j = (await c.call_tool("get_job", {"job_id": job["id"]})).structured_content
                    if j["progress"] and j["progress"]["step"] >= 4:
                        return j
                    await asyncio.sleep(0.1)
                raise AssertionError("no progress")
        job = _run(start())
        from llm_mcp.store import Store

        pid = Store(home / "llm-mcp.db").job(job["id"])["pid"]
        server.stop(signal.SIGKILL)  # the server dies; so does the machine's trainer
        os.kill(pid, signal.SIGKILL)
    finally:
        server.stop()
    server = Server(tiny_llama, home)
    try:
        async def resume():
            async with _mcp(server.url) as c:
                j = (await c.call_tool("get_job", {"job_id": job["id"]})).structured_content
                assert j["status"] == "interrupted"
                r = await c.call_tool("resume_job", {"job_id": job["id"]})
                assert not r.is_error and r.structured_content["resumed"]
                return (await c.call_tool("wait_for_job", {"job_id": job["id"]})).structured_content
        final = _run(resume())
    finally:
        server.stop()
    assert final["status"] == "completed" and final["progress"]["step"] == 40
    steps = [json.loads(x)["step"] for x in (home / "adapters" / "crash" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == list(range(1, 41))  # resumed at its checkpoint, no step lost or repeated
    assert (home / "adapters" / "crash" / "adapter_model.safetensors").is_file()


def test_token_is_required_off_loopback_and_checked_when_set(tiny_llama, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "llm_mcp", "serve", "--model", str(tiny_llama), "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k != "LLM_MCP_TOKEN"},
                               "LLM_MCP_HOME": str(tmp_path)})
    assert proc.returncode == 2 and "needs a token" in proc.stderr and "LLM_MCP_TOKEN" in proc.stderr

    class Authed(Server):
        auth = {"Authorization": "Bearer s3cret"}

    server = Authed(tiny_llama, tmp_path, env={"LLM_MCP_TOKEN": "s3cret"})
    try:
        assert httpx.get(server.url + "/v1/models").status_code == 401
        assert httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(server.url + "/mcp", json={}).status_code == 401
        assert httpx.get(server.url + "/v1/models", headers=server.auth).status_code == 200

        async def main():
            async with _mcp(server.url, server.auth) as c:
                return (await c.call_tool("list_models", {})).structured_content["result"]
        assert _run(main())[0]["adapter"] is None
        # DNS rebinding: a foreign Host or Origin is refused even with the token
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        hdrs = {**server.auth, "Accept": "application/json, text/event-stream"}
        assert httpx.post(server.url + "/mcp", json=init, headers={**hdrs, "Host": "evil.example"}).status_code == 421
        assert httpx.post(server.url + "/mcp", json=init,
                          headers={**hdrs, "Origin": "http://evil.example"}).status_code == 403
    finally:
        server.stop()


def test_stdio_transport_speaks_only_protocol_on_stdout(tiny_llama, adapters, tmp_path):
    from mcp import Client, StdioServerParameters

    async def main():
        params = StdioServerParameters(command=sys.executable, args=[
            "-m", "llm_mcp", "serve", "--transport", "stdio", "--model", str(tiny_llama),
            "--adapter", f"alpha={adapters['alpha']}"], env={**os.environ, "LLM_MCP_HOME": str(tmp_path)})
        async with Client(params) as c:
            assert "chat" in {t.name for t in (await c.list_tools()).tools}
            r = await c.call_tool("chat", {"messages": [{"role": "user", "content": "hi"}], "adapter": "alpha",
                                           "max_new_tokens": 3})
            assert not r.is_error and r.structured_content["adapter"] == "alpha"
    _run(main())


def test_engine_replies_equal_plain_generate_with_and_without_a_cached_prefix(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM

    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    fmt = engine.fmt
    want = []
    for p in PROMPTS:
        ids = torch.tensor([fmt.prompt_ids([{"role": "user", "content": p}], TOOLS)])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id)
        want.append(fmt.reply_text([t for t in out[0, ids.shape[1]:].tolist() if t not in fmt.stop_token_ids]))
    one_by_one = [engine.generate(Request([{"role": "user", "content": p}], TOOLS, max_new_tokens=10)).raw
                  for p in PROMPTS]  # the 2nd..4th reuse the 1st's tool-schema prefix
    reqs = [engine.submit(Request([{"role": "user", "content": p}], TOOLS, max_new_tokens=10)) for p in PROMPTS]
    together = [r.done.wait(60) and r.result.raw for r in reqs]
    assert one_by_one == want and together == want
    engine.close()
