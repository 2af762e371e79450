"""`llm-mcp serve --engine vllm` on a real vLLM server (the CPU build, `make vllm-env`): the same
replies as the local engine for the base and for adapters, through MCP and /v1, adapters
registered at run time, and a vLLM that dies and comes back.

The model is a random 2-layer Llama built from a config (head size 64: vLLM's CPU attention
needs one of its sizes) with SmolLM2's tokenizer; adapters are random LoRA of rank 8."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest
from conftest import REPO, Server, random_adapter

VLLM_PYTHON = Path(os.environ.get("LLM_MCP_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
TOOLS = json.loads((REPO / "examples" / "tools.json").read_text())
NAMES = [t.get("function", t)["name"] for t in TOOLS]
ASK = [{"role": "user", "content": "what's the weather in Tokyo?"}]

if not VLLM_PYTHON.exists():
    if os.environ.get("LLM_MCP_REQUIRE_VLLM"):
        raise RuntimeError(f"LLM_MCP_REQUIRE_VLLM is set but {VLLM_PYTHON} is missing: run `make vllm-env`")
    pytest.skip(f"no vLLM environment at {VLLM_PYTHON} (make vllm-env builds it)", allow_module_level=True)


FLAGS = ["--max-lora-rank", "8", "--dtype", "float32", "--max-model-len", "2048"]
ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
KEY = "test-vllm-key"  # the fixture's vLLM key (a launched one gets a fresh key of its own)
AUTH = {"Authorization": f"Bearer {KEY}"}
os.environ["LLM_MCP_VLLM_KEY"] = KEY  # what VLLMEngine and the servers below send


class VLLM:
    """A vLLM server for `base` on a free port, started by serve/vllm.Launched (as `serve
    --vllm-launch` starts one). It has 4 LoRA slots (`Launched`'s default), more than the adapters
    batched together: with exactly as many (2) in a batch, vllm-cpu 0.32 gave the batch's base
    rows wrong replies (docs/serving.md)."""

    def __init__(self, base: Path, log: Path, port: int | None = None):
        from llm_mcp.serve.vllm import Launched

        self.base, self.log = base, open(log, "a")
        self.server = Launched(str(base), str(VLLM_PYTHON), port=port, extra=FLAGS, log=self.log, env=ENV, key=KEY)
        self.port, self.url = self.server.port, self.server.url

    def kill(self) -> None:
        self.server.kill()
        self.log.close()


def _first_difference(fmt, mine: str, theirs: str) -> str:
    """Where two replies part: the token index and both tokens (for an assertion message)."""
    a, b = (fmt.tokenizer(t, add_special_tokens=False)["input_ids"] for t in (mine, theirs))
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    tok = fmt.tokenizer.convert_ids_to_tokens
    return f"token {i}: local {tok(a[i:i + 1])} vs vLLM {tok(b[i:i + 1])} after {fmt.tokenizer.decode(a[:i])!r}"


def test_smollm2_with_two_trained_adapters_replies_as_the_local_engine(smol_dir, tmp_path):
    """The real SmolLM2 on vLLM (fp32, as the local engine here) with two adapters trained by
    the default recipe (a few steps each, two seeds): greedy, guided replies to the held-out
    natural requests equal the local engine's for the base and both adapters, over a real
    `llm-mcp serve --engine vllm` too (MCP chat and /v1). Runs first, before the tiny model's
    vLLM of the other tests starts (two vLLM servers would share 2 cores)."""
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.eval.cases import read_cases
    from llm_mcp.eval.run import predict
    from llm_mcp.serve.engine import Engine
    from llm_mcp.serve.vllm import Launched, VLLMEngine
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    home = tmp_path / "home"
    data = tmp_path / "train.jsonl"  # the first 48 examples of the committed data (its tools in every record)
    data.write_text("".join((REPO / "examples" / "train.jsonl").read_text().splitlines(keepends=True)[:48]))
    for seed, name in ((0, "tools"), (1, "tools2")):  # 3 steps of 8: enough to move the replies
        train(load_config("default", None, {"data": str(data), "seed": seed,
                                            "output": str(home / "adapters" / name), "max_steps": 3,
                                            "micro_batch_size": 8, "save_every": 100}))
    cases = read_cases(REPO / "examples" / "dev" / "natural_dev.jsonl",
                       read_tools_file(REPO / "examples" / "tools.json"))[::12]  # 7 requests
    ask = [{"role": "user", "content": cases[0].prompt[-1].content}]
    # the local engine's replies first, then vLLM alone on the machine (its engine process polls a core)
    local, replies, asked = Engine(str(smol_dir), dtype="float32"), {}, {}
    try:
        for adapter in (None, "tools", "tools2"):
            if adapter:
                local.load_adapter(adapter, home / "adapters" / adapter)
            with local._model_lock:
                if adapter:
                    local.model.set_adapter(local.adapters[adapter].key)
                # the base first: no adapter is loaded yet
                # (ungrounded: the local engine's going back, chat/route.py and chat/more.py, is its own;
                # vLLM's replies are taken as vLLM ends them)
                replies[adapter] = [p.raw for p in predict(local.model, local.fmt, cases, max_new_tokens=48,
                                                           grounded=False).predictions]
            asked[adapter] = _ask(local, adapter, content=ask[0]["content"], max_new=48)
        fmt = local.fmt
    finally:
        local.close()
    assert replies["tools"] != replies[None] and replies["tools2"] != replies["tools"]  # they learned

    flags = ["--max-lora-rank", "16", "--dtype", "float32", "--max-model-len", "2048"]
    log = open(tmp_path / "vllm-smol.log", "a")
    server = Launched(str(smol_dir), str(VLLM_PYTHON), extra=flags, log=log, env=ENV, key=KEY)
    front = VLLMEngine(str(smol_dir), server.url, watch=0)
    try:
        for adapter in (None, "tools", "tools2"):
            if adapter:
                front.load_adapter(adapter, home / "adapters" / adapter)
            theirs = front.evaluate(cases, adapter, max_new_tokens=48)
            for case, mine, other in zip(cases, replies[adapter], theirs.predictions):
                assert other.raw == mine, (adapter, case.prompt[-1], _first_difference(fmt, mine, other.raw))

        served = Server(smol_dir, home, "--engine", "vllm", "--vllm-url", server.url, "--adapter", "tools",
                        "--adapter", "tools2")
        try:
            base_id = httpx.get(served.url + "/v1/models").json()["data"][0]["id"]
            reply = httpx.post(served.url + "/v1/chat/completions", timeout=300, json={
                "model": f"{base_id}:tools", "messages": ask, "tools": TOOLS, "max_tokens": 48}).json()
            message, mine = reply["choices"][0]["message"], asked["tools"]
            calls = [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                     for c in message.get("tool_calls") or []]
            assert (message["content"] or "", calls) == (mine.content, [(c.name, c.arguments) for c in mine.tool_calls])

            async def over_mcp():
                async with _mcp(served.url) as c:
                    return await c.call_tool("chat", {"messages": ask, "tools": TOOLS, "adapter": "tools2",
                                                      "max_new_tokens": 48})
            r = asyncio.run(over_mcp())
            assert not r.is_error, r.content
            assert r.structured_content["content"] == asked["tools2"].content
        finally:
            served.stop()
    finally:
        front.close()
        server.stop()
        log.close()


@pytest.fixture(scope="module")
def base(tmp_path_factory, smol_tokenizer) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    folder = tmp_path_factory.mktemp("vllm-llama")
    torch.manual_seed(0)
    t = smol_tokenizer
    config = LlamaConfig(vocab_size=len(t), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
                         pad_token_id=t.pad_token_id, tie_word_embeddings=True)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    t.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory, base) -> Path:
    """A data directory with two random adapters in it (alpha, beta)."""
    home = tmp_path_factory.mktemp("vllm-home")
    for seed, name in ((1, "alpha"), (2, "beta")):
        random_adapter(base, home / "adapters" / name, seed, r=8)
    return home


@pytest.fixture(scope="module")
def vllm(base, home):
    server = VLLM(base, home / "vllm.log")
    yield server
    server.kill()


@pytest.fixture(scope="module")
def local(base, home):
    from llm_mcp.serve.engine import Engine

    engine = Engine(str(base), dtype="float32")
    for name in ("alpha", "beta"):
        engine.load_adapter(name, home / "adapters" / name)
    yield engine
    engine.close()


def _ask(engine, adapter=None, choice="auto", guided=True, max_new=24, content=ASK[0]["content"]):
    from llm_mcp.serve.engine import Request

    engine.guided = guided
    return engine.generate(Request([{"role": "user", "content": content}], TOOLS, adapter, max_new,
                                   tool_choice=choice), timeout=300)


def test_replies_equal_the_local_engine(vllm, local, home):
    """Greedy replies token for token: base and two adapters, guided or not, each tool_choice (a
    forced call's grammar starts after the prefix the prompt ends with); concurrent mixed-adapter
    requests as well; evaluation scores alike; export-check refusals before vLLM is asked."""
    from llm_mcp.errors import LLMMCPError
    from llm_mcp.eval.cases import read_cases
    from llm_mcp.eval.run import predict
    from llm_mcp.serve.vllm import VLLMEngine

    front = VLLMEngine(str(vllm.base), vllm.url + "/v1")
    try:
        assert front.served == str(vllm.base)
        for name in ("alpha", "beta"):
            front.load_adapter(name, home / "adapters" / name)
        for guided in (False, True):
            for adapter in (None, "alpha", "beta"):
                for choice in ("auto", "required", "get_weather", "none"):
                    mine, theirs = _ask(local, adapter, choice, guided), _ask(front, adapter, choice, guided)
                    assert theirs.raw == mine.raw, (guided, adapter, choice)
                    assert (theirs.content, theirs.tool_calls, theirs.finish_reason,
                            theirs.completion_tokens) == (mine.content, mine.tool_calls,
                                                          mine.finish_reason, mine.completion_tokens)
        # under vLLM's grammar the random model's forced call names a known tool and its arguments
        forced = _ask(front, "alpha", "required", True).raw
        assert re.match(r'<tool_call>\{"name": "(%s)", "arguments": \{"' % "|".join(NAMES), forced), forced

        asks = [(a, f"question {i}: weather in city {i}?") for i, a in enumerate([None, "alpha", "beta"] * 3)]
        alone = [_ask(local, a, content=c).raw for a, c in asks]
        with ThreadPoolExecutor(9) as pool:
            together = list(pool.map(lambda ac: _ask(front, ac[0], content=ac[1]).raw, asks))
        assert together == alone

        cases = read_cases(REPO / "examples" / "test.jsonl")[:6]
        local.guided = front.guided = True
        with local._model_lock:
            local.model.set_adapter(local.adapters["beta"].key)
            ours = predict(local.model, local.fmt, cases, max_new_tokens=24)
        theirs = front.evaluate(cases, "beta", max_new_tokens=24)
        assert [p.raw for p in theirs.predictions] == [p.raw for p in ours.predictions]
        def scores(score):
            return {k: v for k, v in score.summary().items() if k not in ("mean_latency_s", "seconds")}
        assert scores(theirs) == scores(ours)

        dora = random_adapter(vllm.base, home / "dora", 3, r=8, use_dora=True)
        with pytest.raises(LLMMCPError, match="DoRA"):
            front.load_adapter("dora", dora)
        assert "dora" not in front.adapters
        # a prompt over vLLM's context (2048 here, under llm-mcp's own limit) is the caller's
        # error (HTTP 400), not a server fault
        from llm_mcp.serve.engine import Fault

        with pytest.raises(LLMMCPError, match="vLLM refused the request") as refused:
            _ask(front, content="word " * 3000)
        assert not isinstance(refused.value, Fault)
    finally:
        front.close()


def _held(url: str) -> set[str]:
    """The models a vLLM server holds, adapters by their llm-mcp names (vLLM's are NAME@digest)."""
    return {m["id"].split("@")[0] for m in httpx.get(url + "/v1/models", headers=AUTH).json()["data"]}


def test_registrations_are_kept_in_sqlite_and_replayed(vllm, local, home, tmp_path):
    """A front with a store keeps its registrations there: a new front on the same server
    registers them again (one whose folder is gone is forgotten); unloading forgets them; an
    adapter vLLM forgets (as a restarted vLLM does) is registered again by the watcher's look;
    new weights in the same folder (a promotion) are served, not the old ones' cached prefix."""
    import shutil

    from llm_mcp.serve.vllm import VLLMEngine
    from llm_mcp.store import open_store

    store = open_store(tmp_path)
    folder = tmp_path / "kept"
    shutil.copytree(home / "adapters" / "alpha", folder)
    first = VLLMEngine(str(vllm.base), vllm.url, store=store, watch=0)
    try:
        first.load_adapter("kept", folder)
        assert _ask(first, "kept").raw == _ask(local, "alpha").raw
    finally:
        first.close()
    assert [r["name"] for r in store.registrations(first.server)] == ["kept"]
    store.put_registration(first.server, "ghost", tmp_path / "no-such-adapter")

    second = VLLMEngine(str(vllm.base), vllm.url, store=store, watch=0)
    try:
        assert second.replay(second.load_adapter) == ["kept"]  # ghost's folder is gone: forgotten
        assert sorted(second.adapters) == ["kept"]
        assert [r["name"] for r in store.registrations(second.server)] == ["kept"]
        assert _ask(second, "kept").raw == _ask(local, "alpha").raw
        httpx.post(vllm.url + "/v1/unload_lora_adapter", headers=AUTH, json={"lora_name": second.adapters["kept"].key})
        assert "kept" not in _held(vllm.url)
        second._look()  # what the watcher does every few seconds
        assert "kept" in _held(vllm.url)
        # a promotion: beta's weights written into the folder being served, then loaded again
        shutil.copy(home / "adapters" / "beta" / "adapter_model.safetensors", folder)
        second.load_adapter("kept", folder)
        assert _ask(second, "kept").raw == _ask(local, "beta").raw
        second.unload_adapter("kept")
        assert "kept" not in _held(vllm.url) and store.registrations(second.server) == []
    finally:
        second.close()


def test_a_vllm_serving_another_tokenizer_is_refused(vllm, base, tmp_path):
    """Prompts travel as token ids: a --model whose tokenizer is not the one vLLM serves is an
    error at start, not wrong replies."""
    import shutil

    from transformers import AutoTokenizer

    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.vllm import VLLMEngine

    other = tmp_path / "other"
    shutil.copytree(base, other)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_tokens(["Zürich"])
    tokenizer.save_pretrained(other)
    with pytest.raises(LLMMCPError, match="tokenizer is not the one of --model"):
        VLLMEngine(str(other), vllm.url, watch=0)


def test_eval_engine_vllm_scores_as_the_local_eval(vllm, home):
    """`llm-mcp eval --engine vllm` writes the report `llm-mcp eval` writes, with equal scores and
    predictions; its adapters are unregistered from vLLM afterwards."""
    import sys

    def run(*extra):
        out = home / f"eval-{len(extra)}"
        done = subprocess.run([sys.executable, "-m", "llm_mcp", "eval", "--model", str(vllm.base),
                               "--data", str(REPO / "examples" / "test.jsonl"), "--tools",
                               str(REPO / "examples" / "tools.json"), "--limit", "6", "--max-new-tokens", "24",
                               "--base", "--adapter", str(home / "adapters" / "alpha"), "--dtype", "float32",
                               "--out", str(out), *extra], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "LLM_MCP_HOME": str(home)})
        assert done.returncode == 0, done.stderr
        report = json.loads((out / "report.json").read_text())
        predictions = [json.loads(line)["raw"] for line in (out / "predictions.jsonl").read_text().splitlines()]
        return report, predictions

    local, local_raw = run()
    remote, remote_raw = run("--engine", "vllm", "--vllm-url", vllm.url)
    assert remote_raw == local_raw
    for column in ("base", "alpha"):
        mine, theirs = local["models"][column]["summary"], remote["models"][column]["summary"]
        for key in ("examples", "well_formed", "tool_name", "exact", "ast", "no_call", "mean_new_tokens"):
            assert theirs[key] == mine[key], (column, key)
    assert remote["dtype"].startswith("vllm")
    assert not [m for m in httpx.get(vllm.url + "/v1/models", headers=AUTH).json()["data"]
                if m["id"].startswith("eval-")]


def _mcp(url: str):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    return Client(streamable_http_client(url + "/mcp", http_client=httpx.AsyncClient(timeout=300)))


def test_serve_fronts_vllm_over_mcp_and_v1(vllm, local, home):
    """A real `llm-mcp serve --engine vllm`: MCP chat and a /v1 stream answer as the local engine
    does; adapters load and unload at run time; vLLM killed mid-request is a clear error to the
    client, the front stays up, an adapter can be unloaded meanwhile, and once vLLM is back
    (forgetting its adapters) the watcher registers the others anew and requests work again."""
    server = Server(vllm.base, home, "--engine", "vllm", "--vllm-url", vllm.url, "--adapter", "alpha",
                    "--max-new-tokens", "1900")
    h = httpx.Client(base_url=server.url, timeout=300)
    try:
        text = (home / f"server-{server.port}.log").read_text()
        assert f"on vllm at {vllm.url}" in text
        base_id = h.get("/v1/models").json()["data"][0]["id"]
        assert [m["id"] for m in h.get("/v1/models").json()["data"]] == [base_id, f"{base_id}:alpha"]

        async def over_mcp():
            async with _mcp(server.url) as c:
                r = await c.call_tool("chat", {"messages": ASK, "tools": TOOLS, "adapter": "alpha",
                                               "max_new_tokens": 24})
                assert not r.is_error, r.content
                assert r.structured_content["content"] == _ask(local, "alpha").content
                loaded = await c.call_tool("load_adapter", {"name": "beta"})
                assert not loaded.is_error, loaded.content
                r = await c.call_tool("chat", {"messages": ASK, "tools": TOOLS, "adapter": "beta",
                                               "max_new_tokens": 24})
                assert r.structured_content["content"] == _ask(local, "beta").content
                gone = await c.call_tool("unload_adapter", {"name": "beta"})
                assert not gone.is_error
                r = await c.call_tool("chat", {"messages": ASK, "adapter": "beta"})
                assert r.is_error and "beta" in r.content[0].text
        asyncio.run(over_mcp())
        assert _held(vllm.url) == {str(vllm.base), "alpha"}  # beta unregistered

        streamed = h.post("/v1/chat/completions", json={"model": f"{base_id}:alpha", "messages": ASK,
                                                        "tools": TOOLS, "max_tokens": 24, "stream": True})
        deltas = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
        said = "".join(d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"])
        assert said.strip() == _ask(local, "alpha").content  # deltas as streamed; content is stripped

        async def mcp_call(tool, arguments):
            async with _mcp(server.url) as c:
                return await c.call_tool(tool, arguments)
        assert not asyncio.run(mcp_call("load_adapter", {"name": "beta"})).is_error

        # vLLM dies during a long reply: the client hears why, the front lives on. The reply is
        # streamed and vLLM killed once its first words arrive, so it cannot finish first: as
        # long as the context allows (2048), since on a loaded machine the tiny model wrote
        # 1000 tokens before the kill reached it (twice in full CI runs).
        with h.stream("POST", "/v1/chat/completions", json={"model": base_id, "messages": ASK,
                                                              "max_tokens": 1900, "stream": True}) as failed:
            assert failed.status_code == 200
            events = []
            for line in failed.iter_lines():
                if line.startswith("data: {"):
                    events.append(json.loads(line[6:]))
                    if len(events) == 2:  # the first after the role: vLLM is generating
                        vllm.kill()
        assert "error" in events[-1], events[-1]
        assert "vLLM" in events[-1]["error"]["message"]
        down = h.post("/v1/chat/completions", json={"model": base_id, "messages": ASK, "max_tokens": 4})
        assert down.status_code == 500 and "did not answer" in down.json()["error"]["message"]
        assert h.get("/v1/models").status_code == 200
        unloaded = asyncio.run(mcp_call("unload_adapter", {"name": "beta"}))  # while vLLM is down
        assert not unloaded.is_error, unloaded.content

        back = VLLM(vllm.base, home / "vllm.log", port=vllm.port)
        vllm.server, vllm.log = back.server, back.log  # the fixture stops this one
        # the watcher registers alpha again on its own (beta, unloaded meanwhile, stays out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            held = _held(vllm.url)
            if "alpha" in held:
                break
            time.sleep(1)
        assert held == {str(vllm.base), "alpha"}
        again = h.post("/v1/chat/completions", json={"model": f"{base_id}:alpha", "messages": ASK,
                                                     "tools": TOOLS, "max_tokens": 24})
        assert again.status_code == 200, again.text
        assert again.json()["choices"][0]["message"]["content"] == _ask(local, "alpha").content
        assert re.search(r"registering (it|them) again", (home / f"server-{server.port}.log").read_text())
    finally:
        h.close()
        server.stop()



def test_serve_launches_vllm_and_stops_it(base, home, local):
    """`serve --engine vllm --vllm-launch`: llm-mcp starts vLLM on the same base, answers through
    it, and stops it when it stops."""
    flags = [f"--vllm-arg={f}" for f in FLAGS]
    server = Server(base, home, "--engine", "vllm", "--vllm-launch", "--vllm-python", str(VLLM_PYTHON),
                    *flags, "--adapter", "alpha", env=ENV, timeout=600)
    try:
        log = (home / f"server-{server.port}.log").read_text()
        url = re.search(r"on vllm at (http://127\.0\.0\.1:\d+)", log).group(1)
        assert httpx.get(url + "/health").status_code == 200
        base_id = httpx.get(server.url + "/v1/models").json()["data"][0]["id"]
        reply = httpx.post(server.url + "/v1/chat/completions", timeout=300, json={
            "model": f"{base_id}:alpha", "messages": ASK, "tools": TOOLS, "max_tokens": 24}).json()
        assert reply["choices"][0]["message"]["content"] == _ask(local, "alpha").content
    finally:
        server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=5)
