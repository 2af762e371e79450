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

  LLM_MCP_HOME=... python bench/serve_throughput.py [--model smollm2-135m-instruct]
      [--adapter DIR] [--new-tokens 32] [--json out.json]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--adapter", help="adapter A (default: random LoRA weights)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--json")
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.serve.engine import Engine, Request

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    tools = read_tools_file(REPO / "examples" / "tools.json")
    questions = [ex.messages[0].content for ex in read_dataset(REPO / "examples" / "test.jsonl").examples]
    tmp = Path(tempfile.mkdtemp())
    adapter_a = Path(args.adapter) if args.adapter else random_adapter(args.model, tmp / "a", 1)
    adapter_b = random_adapter(args.model, tmp / "b", 2)
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


if __name__ == "__main__":
    main()
