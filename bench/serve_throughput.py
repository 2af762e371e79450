"""Serving throughput and latency: llm-mcp's Engine against plain sequential `model.generate`.

All in one process on the same model and the same requests (the held-out questions of
examples/test.jsonl with the eight tools of examples/tools.json in the prompt, greedy):

  plain      one request at a time through `model.generate` (the peer)
  engine@c   the Engine with c requests submitted together (c = 1, 8, 32)
  single     16 requests, all to adapter A, submitted together
  mixed      16 requests, 8 to adapter A and 8 to adapter B, submitted together (both after one
             request to each adapter, so each adapter's prompt prefix is cached, as in a running
             server)
  adapters   load_adapter time; set_adapter (switch) time; a 1-token request right after another
             to the same adapter vs to the other adapter
  mcp        a 1-token `chat` through a real MCP client session over streamable HTTP (a server
             subprocess on loopback) vs the same request straight to an Engine

Generated tokens/s counts the tokens each reply really has (each stops at its end of turn or at
--new-tokens). Adapter A is --adapter (a trained one) if given, else random LoRA weights; B is
random LoRA weights (r 16, all linear layers, like the default recipe's).

`--load`: requests arriving over time instead (Poisson arrivals at --rates × the rate plain
generate can serve; prompts with 2, 4 or 8 tools; reply limits of 8, 24 or 64 tokens; the base,
adapter A and adapter B in turn), the same arrivals against

  plain       one request at a time through `model.generate` (first come, first served)
  static      the Engine gathering a batch and running it to its end (the earlier policy)
  whole       the Engine with requests joining and leaving the running batch, every admitted
              prompt computed before the next decode step (--prefill-chunk 0)
  continuous  the same computing --prefill-chunk prompt tokens per worker iteration, a decode
              step of the running rows between two (the default engine at the default 2048)

with throughput, time to first token and end-to-end latency (p50/p95/p99), and the batch-1
decode ceiling of this machine (the weights' bytes read per token against measured memory
bandwidth) beside plain generate's decode rate.

  LLM_MCP_HOME=... python bench/serve_throughput.py [--model smollm2-135m-instruct]
      [--adapter DIR] [--new-tokens 32] [--json out.json]
  LLM_MCP_HOME=... python bench/serve_throughput.py --load [--rates 0.5,1,2,4] [--requests 24]

`--engine vllm`: the same closed-loop load (8 and 32 clients, each sending its next request when
the last is answered; mixed adapters: the base, A and B in turn; the eight tools, --new-tokens)
against

  local         llm-mcp's own engine (the model in this process)
  front         `serve --engine vllm`'s backend (VLLMEngine, guided calls as served) on a vLLM
                server started for the run (serve/vllm.Launched; --vllm-python)
  front-free    the same front with calls unguided
  vllm          the same prompt token ids straight to vLLM's /v1/completions, no llm-mcp (the peer)

each after the other (the local engine is closed before vLLM starts: one 2-core machine).

  LLM_MCP_HOME=... python bench/serve_throughput.py --engine vllm [--vllm-python .venv-vllm/bin/python]
      [--requests 24] [--vllm-arg=--dtype=float32 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).parent.parent


def random_adapter(spec: str, folder: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    from llm_mcp.models import load_model

    torch.manual_seed(seed)
    model = load_model(spec, dtype="fp32", device="cpu").model
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(folder)
    return folder


def setup(args):
    """The sample tools, the template split's questions, adapters A and B (folders)."""
    from transformers.utils import logging as hf_logging

    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.formats import read_dataset

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    tools = read_tools_file(REPO / "examples" / "tools.json")
    questions = [ex.messages[0].content for ex in read_dataset(REPO / "examples" / "test.jsonl").examples]
    tmp = Path(tempfile.mkdtemp())
    adapter_a = Path(args.adapter) if args.adapter else random_adapter(args.model, tmp / "a", 1)
    adapter_b = random_adapter(args.model, tmp / "b", 2)
    return tools, questions, adapter_a, adapter_b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--adapter", help="adapter A (default: random LoRA weights)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--json")
    ap.add_argument("--load", action="store_true", help="requests arriving over time (see above)")
    ap.add_argument("--rates", default="0.5,1,2,4", help="offered loads, × plain generate's capacity")
    ap.add_argument("--prefill-chunk", type=int, default=2048, help="--load: the continuous engine's prefill "
                    "chunk (prompt tokens per forward pass between decode steps)")
    ap.add_argument("--requests", type=int, default=24, help="requests per offered load (per concurrency "
                    "with --engine vllm)")
    ap.add_argument("--engine", choices=["local", "vllm"], default="local",
                    help="vllm: the local engine against vLLM, with and without llm-mcp in front (see above)")
    ap.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--vllm-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for vLLM (repeatable)")
    args = ap.parse_args()
    if args.load:
        return load(args)
    if args.engine == "vllm":
        return against_vllm(args)

    import torch
    from llm_mcp.serve.engine import Engine, Request

    tools, questions, adapter_a, adapter_b = setup(args)
    engine = Engine(args.model, max_batch=32, max_queue=256)
    n = args.new_tokens
    out: dict = {"model": args.model, "new_tokens": n, "threads": torch.get_num_threads()}

    def msgs(i):
        return [{"role": "user", "content": questions[i % len(questions)]}]

    # plain model.generate, one request at a time
    fmt, model = engine.fmt, engine.model
    started, tokens = time.perf_counter(), 0
    count = 16
    with torch.inference_mode():
        for i in range(count):
            ids = torch.tensor([fmt.prompt_ids(msgs(i), tools)])
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                                 eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id)
            new = gen[0, ids.shape[1]:].tolist()
            cut = next((k + 1 for k, t in enumerate(new) if t in fmt.stop_token_ids), len(new))
            tokens += cut
    plain_s = time.perf_counter() - started
    out["plain"] = {"requests": count, "tokens": tokens, "seconds": round(plain_s, 2),
                    "tokens_per_s": round(tokens / plain_s, 1)}
    print(f"plain generate: {count} requests, {tokens} tokens in {plain_s:.1f}s = {tokens / plain_s:.1f} tok/s",
          flush=True)

    def run(requests: list[Request]) -> tuple[float, int]:
        started = time.perf_counter()
        for r in requests:
            engine.submit(r)
        for r in requests:
            r.done.wait()
            if r.error:
                raise r.error
        return time.perf_counter() - started, sum(r.result.completion_tokens for r in requests)

    for c in (1, 8, 32):
        total = max(c, count)
        seconds, tokens = 0.0, 0
        for start in range(0, total, c):
            s, t = run([Request(msgs(i), tools, None, n) for i in range(start, start + c)])
            seconds, tokens = seconds + s, tokens + t
        out[f"engine@{c}"] = {"requests": total, "tokens": tokens, "seconds": round(seconds, 2),
                              "tokens_per_s": round(tokens / seconds, 1),
                              "vs_plain": round(tokens / seconds / out["plain"]["tokens_per_s"], 2)}
        print(f"engine, {c} concurrent: {total} requests, {tokens} tokens in {seconds:.1f}s = "
              f"{tokens / seconds:.1f} tok/s ({out[f'engine@{c}']['vs_plain']}x plain)", flush=True)

    def one(adapter):
        started = time.perf_counter()
        engine.generate(Request(msgs(0), tools, adapter, 1))
        return time.perf_counter() - started

    direct = [one(None) for _ in range(6)][1:]  # like the MCP server below: no adapter loaded
    out["mcp"] = {"direct_ms": round(1000 * sum(direct) / len(direct), 1)}

    started = time.perf_counter()
    engine.load_adapter("a", adapter_a)
    load_a = time.perf_counter() - started
    started = time.perf_counter()
    engine.load_adapter("b", adapter_b)
    load_b = time.perf_counter() - started
    # each adapter's tool-schema prefix computed once before timing, as a running server has it
    run([Request(msgs(0), tools, "a", 1), Request(msgs(0), tools, "b", 1)])
    single_s, single_t = run([Request(msgs(i), tools, "a", n) for i in range(16)])
    mixed_s, mixed_t = run([Request(msgs(i), tools, "a" if i % 2 else "b", n) for i in range(16)])
    out["single_adapter"] = {"tokens": single_t, "seconds": round(single_s, 2), "tokens_per_s": round(single_t / single_s, 1)}
    out["mixed_adapters"] = {"tokens": mixed_t, "seconds": round(mixed_s, 2), "tokens_per_s": round(mixed_t / mixed_s, 1),
                             "vs_single": round((mixed_t / mixed_s) / (single_t / single_s), 2)}
    print(f"16 requests, one adapter: {single_t / single_s:.1f} tok/s; two adapters mixed: "
          f"{mixed_t / mixed_s:.1f} tok/s ({out['mixed_adapters']['vs_single']}x)", flush=True)

    switches = []
    for k in range(20):
        started = time.perf_counter()
        engine.model.set_adapter("adapter_1" if k % 2 else "adapter_2")
        switches.append(time.perf_counter() - started)

    same = [one("a") for _ in range(6)][1:]
    alternating = [one("a" if k % 2 else "b") for k in range(6)][1:]
    out["adapters"] = {"load_ms": round(1000 * load_a, 1), "load_second_ms": round(1000 * load_b, 1),
                       "set_adapter_ms": round(1000 * sum(switches) / len(switches), 3),
                       "one_token_same_ms": round(1000 * sum(same) / len(same), 1),
                       "one_token_alternating_ms": round(1000 * sum(alternating) / len(alternating), 1)}
    print(f"adapters: load {1000 * load_a:.0f} ms (second {1000 * load_b:.0f} ms), set_adapter "
          f"{out['adapters']['set_adapter_ms']} ms; 1-token request same adapter "
          f"{out['adapters']['one_token_same_ms']} ms vs alternating {out['adapters']['one_token_alternating_ms']} ms",
          flush=True)

    engine.close()

    out["mcp"].update(mcp_round_trip(args.model, msgs(0), tools))
    out["mcp"]["overhead_ms"] = round(out["mcp"]["mcp_ms"] - out["mcp"]["direct_ms"], 1)
    print(f"1-token chat: direct Engine {out['mcp']['direct_ms']} ms, MCP over HTTP {out['mcp']['mcp_ms']} ms "
          f"(overhead {out['mcp']['overhead_ms']} ms)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


def mcp_round_trip(spec: str, messages: list, tools: list) -> dict:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llm_mcp", "serve", "--model", spec, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        for _ in range(600):
            try:
                httpx2.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.2)

        async def calls():
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as c:
                times = []
                for _ in range(6):
                    started = time.perf_counter()
                    r = await c.call_tool("chat", {"messages": messages, "tools": tools, "max_new_tokens": 1})
                    assert not r.is_error, r.content
                    times.append(time.perf_counter() - started)
                return times[1:]
        times = asyncio.run(calls())
        return {"mcp_ms": round(1000 * sum(times) / len(times), 1)}
    finally:
        proc.terminate()
        proc.wait(30)


# ---- requests arriving over time ---------------------------------------------------------------

def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)
    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99)}


def bandwidth_gb_s() -> float:
    """Memory bandwidth as a large tensor copy measures it (read + write), GB/s."""
    import torch

    src = torch.ones(64 * 2**20)  # 256 MiB
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - started)
    return 2 * src.numel() * 4 / best / 1e9


def load(args) -> None:
    import random

    import torch
    from llm_mcp.serve.engine import Engine, Request

    tools, questions, adapter_a, adapter_b = setup(args)
    rng = random.Random(0)
    n = args.requests
    # one list of requests, replayed at each load: (question, tools, adapter, reply limit)
    specs = [(questions[i % len(questions)], tools[:rng.choice([2, 4, 8])], [None, "a", "b"][i % 3],
              rng.choice([8, 24, 64])) for i in range(n)]
    gaps = [rng.expovariate(1.0) for _ in range(n)]  # unit-rate Poisson gaps, scaled per load
    out: dict = {"model": args.model, "requests": n, "threads": torch.get_num_threads()}

    def engine(name: str) -> Engine:
        chunk = args.prefill_chunk if name == "continuous" else 0  # the earlier policies prefill whole
        e = Engine(args.model, batching="static" if name == "static" else "continuous", prefill_chunk=chunk,
                   max_batch=16, max_queue=4 * n)
        e.load_adapter("a", adapter_a)
        e.load_adapter("b", adapter_b)
        for a in (None, "a", "b"):  # warm: each adapter's prompt prefix computed once
            e.generate(Request([{"role": "user", "content": "hi"}], tools, a, max_new_tokens=1))
        return e

    def replay_plain(e: Engine, rate: float) -> list[tuple[float, float, int]]:
        """Serve specs one at a time with model.generate: (first token s, total s, tokens) each."""
        model, fmt = e.model, e.fmt

        class First:  # the time of the first generated token
            def __init__(self):
                self.calls, self.at = 0, 0.0

            def put(self, value):
                self.calls += 1
                if self.calls == 2:
                    self.at = time.perf_counter()

            def end(self):
                pass

        start = time.perf_counter()
        arrive, results, t = [], [], 0.0
        for g in gaps:
            t += g / rate
            arrive.append(start + t)
        for (q, tl, adapter, limit), at in zip(specs, arrive):
            time.sleep(max(0.0, at - time.perf_counter()))  # idle until it arrives
            ids = torch.tensor([fmt.prompt_ids([{"role": "user", "content": q}], tl)])
            first = First()
            if adapter is None:
                scope = model.disable_adapter()
            else:
                model.set_adapter(e.adapters[adapter].key)
                scope = torch.inference_mode()
            with torch.inference_mode(), scope:
                gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=limit, do_sample=False,
                                     eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id,
                                     streamer=first)
            done = time.perf_counter()
            new = gen[0, ids.shape[1]:].tolist()
            tokens = next((k + 1 for k, tok in enumerate(new) if tok in fmt.stop_token_ids), len(new))
            results.append((first.at - at, done - at, tokens))
        return results

    def replay_engine(e: Engine, rate: float) -> list[tuple[float, float, int]]:
        reqs, t = [], 0.0
        start = time.perf_counter()
        for (q, tl, adapter, limit), g in zip(specs, gaps):
            t += g / rate
            time.sleep(max(0.0, start + t - time.perf_counter()))
            reqs.append(e.submit(Request([{"role": "user", "content": q}], tl, adapter, limit)))
        for r in reqs:
            r.done.wait()
            if r.error:
                raise r.error
        return [(r.result.first_token_s, r.result.total_s, r.result.completion_tokens) for r in reqs]

    def summary(results, wall: float) -> dict:
        tokens = sum(r[2] for r in results)
        return {"tokens": tokens, "seconds": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
                "ttft_s": percentiles([r[0] for r in results]), "latency_s": percentiles([r[1] for r in results])}

    plain_engine = engine("static")
    # plain generate's capacity (requests/s), from the specs served back to back
    started = time.perf_counter()
    capacity_runs = replay_plain(plain_engine, 1e9)
    capacity = n / (time.perf_counter() - started)
    # decoding alone (after the first token): tokens per second of one request at a time
    decode_rate = sum(r[2] - 1 for r in capacity_runs) / sum(r[1] - r[0] for r in capacity_runs)
    weights = sum(p.numel() * p.element_size() for p in plain_engine.model.parameters())
    bw = bandwidth_gb_s()
    out["capacity_requests_per_s"] = round(capacity, 3)
    ceiling = bw * 1e9 / weights
    out["machine"] = {"bandwidth_gb_s": round(bw, 1), "weight_bytes": weights,
                      "batch1_ceiling_tokens_per_s": round(ceiling, 1),
                      "plain_decode_tokens_per_s": round(decode_rate, 1),
                      "plain_decode_of_ceiling": round(decode_rate / ceiling, 3)}
    print(f"plain generate serves {capacity:.2f} requests/s back to back, decodes {decode_rate:.1f} tok/s; "
          f"memory bandwidth {bw:.1f} GB/s, weights {weights / 1e6:.0f} MB: batch-1 decode ceiling "
          f"{ceiling:.1f} tok/s ({decode_rate / ceiling:.0%} of it)", flush=True)
    engines = {"plain": plain_engine, "static": None, "whole": None, "continuous": None}
    for rate in [float(x) for x in args.rates.split(",")]:
        row = out.setdefault("loads", {}).setdefault(str(rate), {"requests_per_s": round(rate * capacity, 3)})
        for name in engines:
            if engines[name] is None:
                engines[name] = engine(name)
            started, lays = time.perf_counter(), engines[name]._decoder.lays
            results = (replay_plain if name == "plain" else replay_engine)(engines[name], rate * capacity)
            row[name] = summary(results, time.perf_counter() - started)
            row[name]["of_batch1_ceiling"] = round(row[name]["tokens_per_s"] / ceiling, 2)
            # batch caches laid anew (a row that joins into a spare row lays none)
            row[name]["cache_lays"] = engines[name]._decoder.lays - lays if name != "plain" else None
            print(f"load {rate}x ({rate * capacity:.2f} req/s) {name:>10}: {row[name]['tokens_per_s']} tok/s, "
                  f"TTFT p50/p95 {row[name]['ttft_s']['p50']}/{row[name]['ttft_s']['p95']} s, "
                  f"latency p50/p95/p99 {row[name]['latency_s']['p50']}/{row[name]['latency_s']['p95']}/"
                  f"{row[name]['latency_s']['p99']} s"
                  + (f", caches laid {row[name]['cache_lays']}" if name != "plain" else ""), flush=True)
        row["continuous_vs_static"] = {
            "throughput": round(row["continuous"]["tokens_per_s"] / row["static"]["tokens_per_s"], 2),
            "ttft_p95": round(row["continuous"]["ttft_s"]["p95"] / max(row["static"]["ttft_s"]["p95"], 1e-9), 2),
            "latency_p50": round(row["continuous"]["latency_s"]["p50"] / max(row["static"]["latency_s"]["p50"], 1e-9), 2)}
    for e in engines.values():
        e.close()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


# ---- the local engine against vLLM ---------------------------------------------------------------

def against_vllm(args) -> None:
    """Closed-loop load at 8 and 32 clients, mixed adapters: local engine, vLLM behind llm-mcp,
    vLLM alone."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx2

    from llm_mcp.serve.engine import Engine, Request
    from llm_mcp.serve.vllm import Launched, VLLMEngine, base_for_vllm

    tools, questions, adapter_a, adapter_b = setup(args)
    n = args.new_tokens
    adapters = [None, "a", "b"]
    out: dict = {"model": args.model, "new_tokens": n, "requests": args.requests, "concurrency": {}}

    def asks(count: int) -> list[tuple[str, str | None]]:
        return [(questions[i % len(questions)], adapters[i % 3]) for i in range(count)]

    def closed_loop(send, clients: int) -> dict:
        """`clients` threads, each sending its next request when the last is answered."""
        work = asks(max(args.requests, clients))
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(send, work))  # (first token s, total s, tokens) each
        wall = time.perf_counter() - started
        tokens = sum(r[2] for r in results)
        return {"tokens": tokens, "seconds": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
                "ttft_s": percentiles([r[0] for r in results]), "latency_s": percentiles([r[1] for r in results])}

    def through(engine, guided: bool = True):
        def send(ask):
            engine.guided = guided
            r = engine.generate(Request([{"role": "user", "content": ask[0]}], tools, ask[1], n), timeout=1800)
            return r.first_token_s, r.total_s, r.completion_tokens
        return send

    def report(name: str, clients: int, row: dict) -> None:
        out["concurrency"].setdefault(str(clients), {})[name] = row
        print(f"{clients:>2} clients {name:>10}: {row['tokens_per_s']} tok/s, TTFT p50/p95 "
              f"{row['ttft_s']['p50']}/{row['ttft_s']['p95']} s, latency p50/p95 "
              f"{row['latency_s']['p50']}/{row['latency_s']['p95']} s", flush=True)

    local = Engine(args.model, dtype="fp32", max_batch=32, max_queue=256)
    for name, folder in (("a", adapter_a), ("b", adapter_b)):
        local.load_adapter(name, folder)
    through(local)(("hi", None))  # warm: the tool prompt's prefix cached, as in a running server
    for clients in (8, 32):
        report("local", clients, closed_loop(through(local), clients))
    fmt = local.fmt
    local.close()

    flags = ["--dtype", "float32", "--max-model-len", "2048", "--max-num-seqs", "32", *args.vllm_arg]
    started = time.perf_counter()
    server = Launched(base_for_vllm(args.model), args.vllm_python, extra=flags,
                      env={"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4")})
    out["vllm_start_s"] = round(time.perf_counter() - started, 1)
    try:
        front = VLLMEngine(args.model, server.url, max_batch=32, max_queue=256, launched=server)
    except BaseException:
        server.stop()
        raise
    http = httpx2.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}, timeout=1800)
    try:
        for name, folder in (("a", adapter_a), ("b", adapter_b)):
            front.load_adapter(name, folder)
        through(front)(("hi", None))

        def direct(ask):
            """The front's prompt ids, sent to vLLM as a plain client would (no grammar)."""
            ids = fmt.prompt_ids([{"role": "user", "content": ask[0]}], tools)
            body = {"model": front.adapters[ask[1]].key if ask[1] else front.served, "prompt": ids, "max_tokens": n, "temperature": 0,
                    "stream": True, "stop_token_ids": fmt.stop_token_ids, "skip_special_tokens": False,
                    "stream_options": {"include_usage": True}}
            sent, first, tokens = time.perf_counter(), None, 0
            with http.stream("POST", "/v1/completions", json=body) as answer:
                if answer.status_code != 200:
                    raise RuntimeError(f"vLLM answered {answer.status_code}: {answer.read()[:300]!r}")
                for line in answer.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    chunk = json.loads(line[6:])
                    if chunk.get("choices") and chunk["choices"][0].get("text"):
                        first = first or time.perf_counter()
                    tokens = (chunk.get("usage") or {}).get("completion_tokens", tokens)
            done = time.perf_counter()
            return (first or done) - sent, done - sent, tokens

        for clients in (8, 32):
            report("front", clients, closed_loop(through(front, True), clients))
            report("front-free", clients, closed_loop(through(front, False), clients))
            report("vllm", clients, closed_loop(direct, clients))
    finally:
        http.close()
        front.close()  # stops the launched vLLM
    for row in out["concurrency"].values():
        row["vllm_vs_local"] = round(row["vllm"]["tokens_per_s"] / row["local"]["tokens_per_s"], 2)
        row["front_vs_vllm"] = round(row["front-free"]["tokens_per_s"] / row["vllm"]["tokens_per_s"], 2)
        row["guided_vs_free"] = round(row["front"]["tokens_per_s"] / row["front-free"]["tokens_per_s"], 2)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
