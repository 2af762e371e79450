"""The decode core (serve/decode.py) under the engine, `llm-mcp eval` and `llm-mcp chat`:
continuous batching (requests join a running batch and leave it when they end, their replies
unchanged), each adapter in its card's chat format, unload and cancel while requests decode.
Tiny random models; their random adapters make every reply traceable to who made it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import random_adapter

REPO = Path(__file__).parent.parent
TOOLS = json.loads((REPO / "examples" / "tools.json").read_text())
PROMPTS = ["What's the weather in Oslo?", "Email bob@example.com", "Hello!", "Convert 5 USD to JPY"]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def plain_generate(model, fmt, text: str, tokens: int, tools: list = TOOLS) -> str:
    import torch

    ids = torch.tensor([fmt.prompt_ids(user(text), tools)])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False,
                         eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id)
    return fmt.reply_text(out[0, ids.shape[1]:].tolist())


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decode-adapters")
    return {"alpha": random_adapter(tiny_llama, root / "alpha", 1),
            "beta": random_adapter(tiny_llama, root / "beta", 2, layers=[1])}


def test_requests_join_a_running_batch_and_leave_it_with_the_replies_of_plain_generate(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM

    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    long_text, short = PROMPTS[0], PROMPTS[1:]
    want_long = plain_generate(model, engine.fmt, long_text, 80)
    want_short = [plain_generate(model, engine.fmt, p, 6) for p in short]
    first = engine.submit(Request(user(long_text), TOOLS, max_new_tokens=80))
    while first.row is None or first.row.tokens < 10:  # decoding
        time.sleep(0.01)
    later = [engine.submit(Request(user(p), TOOLS, max_new_tokens=6)) for p in short]
    for req in later:
        assert req.done.wait(60)
    assert not first.done.is_set()  # the short ones were delivered while the long one still ran
    assert first.done.wait(120)
    assert first.result.finish_reason == "length" and first.result.raw == want_long
    assert [r.result.raw for r in later] == want_short
    assert max(engine.batches) >= 2  # they ran beside it, not after it
    engine.close()


@pytest.mark.parametrize("static", [True, False], ids=["static-cache", "dynamic-cache"])
def test_joining_prompts_are_computed_in_chunks_while_the_running_rows_decode(tiny_llama, static):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_mcp.chat import ChatFormat
    from llm_mcp.serve.decode import Decoder, Row

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama))
    decoder = Decoder(lambda: model, chunk=64)
    decoder.static = None if static else False  # None: StaticCache where the model allows (this one does)
    running = Row(fmt.prompt_ids(user(PROMPTS[0]), TOOLS), fmt, max_new_tokens=200)
    decoder.join([running])
    # prompts of 2, 5 and 8 tools: a shared prefix, then rests of very different lengths (padded)
    asks = [(PROMPTS[1], TOOLS[:2]), (PROMPTS[2], TOOLS[:5]), (PROMPTS[3], TOOLS)]
    joining = [Row(fmt.prompt_ids(user(p), tools), fmt, max_new_tokens=12) for p, tools in asks]
    short = Row([fmt.stop_token_ids[0]], fmt)  # a one-token prompt: no token to feed after it
    decoder.admit(joining + [short])
    assert short.finish_reason == "error" and short not in decoder.pending
    before, chunks, lays = running.tokens, 0, decoder.lays
    while decoder.pending:
        decoder.prefill()
        decoder.step()
        chunks += 1
    assert chunks >= 3  # hundreds of new prompt tokens, 64 at a time
    assert running.tokens == before + chunks  # it decoded a token between every two chunks
    # no longer than the running row's: a StaticCache takes them into its spare rows, in place
    assert decoder.lays == lays if static else decoder.lays > lays
    joining[1].cancelled = True  # a row from the middle leaves: the rows after it move up
    while decoder.rows:
        decoder.step()
    assert decoder.static is static
    assert joining[1].finish_reason == "cancelled"
    joining.pop(1)
    asks.pop(1)
    assert running.stream.text() == plain_generate(model, fmt, PROMPTS[0], 200)
    assert [r.stream.text() for r in joining] == [plain_generate(model, fmt, p, 12, tools) for p, tools in asks]


def test_static_batching_keeps_the_earlier_policy(tiny_llama):
    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.engine import Engine, Request

    with pytest.raises(LLMMCPError, match="batching"):
        Engine(str(tiny_llama), batching="sometimes")
    engine = Engine(str(tiny_llama), batching="static")
    first = engine.submit(Request(user(PROMPTS[0]), TOOLS, max_new_tokens=60))
    while first.row is None or first.row.tokens < 5:
        time.sleep(0.01)
    later = engine.submit(Request(user(PROMPTS[1]), TOOLS, max_new_tokens=3))
    assert later.done.wait(120)
    assert first.done.is_set()  # it waited for the running batch to end
    engine.close()


def test_the_batch_respects_its_row_and_token_caps(tiny_llama):
    from llm_mcp.serve.engine import Engine, Request

    engine = Engine(str(tiny_llama), max_batch=3)
    reqs = [engine.submit(Request(user(p), TOOLS, max_new_tokens=8)) for p in PROMPTS * 3]
    for req in reqs:
        assert req.done.wait(120) and req.error is None
    assert max(engine.batches) == 3
    need = max(len(r.prompt) for r in reqs) + 8
    engine.close()
    engine = Engine(str(tiny_llama), max_batch_tokens=need + 1)  # room for one row only
    reqs = [engine.submit(Request(user(p), TOOLS, max_new_tokens=8)) for p in PROMPTS]
    for req in reqs:
        assert req.done.wait(120) and req.error is None
    assert set(engine.batches) == {1}
    engine.close()


def test_unloading_an_adapter_lets_its_running_request_finish_and_fails_its_queued_ones(tiny_llama, adapters):
    from llm_mcp.serve.engine import Engine, Gone, Request

    engine = Engine(str(tiny_llama), max_batch=2)
    engine.load_adapter("alpha", adapters["alpha"])
    engine.load_adapter("beta", adapters["beta"])
    want = engine.generate(Request(user(PROMPTS[0]), TOOLS, "alpha", max_new_tokens=40)).raw
    running = engine.submit(Request(user(PROMPTS[0]), TOOLS, "alpha", max_new_tokens=40))
    other = engine.submit(Request(user(PROMPTS[1]), TOOLS, "beta", max_new_tokens=40))
    while running.row is None or running.row.tokens < 3:
        time.sleep(0.01)
    queued = engine.submit(Request(user(PROMPTS[2]), TOOLS, "alpha", max_new_tokens=4))  # no free row
    unloading = threading.Thread(target=engine.unload_adapter, args=("alpha",))
    unloading.start()
    assert running.done.wait(120) and running.error is None
    assert running.result.raw == want  # it finished under its own adapter
    unloading.join(120)
    assert not unloading.is_alive() and "alpha" not in engine.adapters
    assert queued.done.wait(60) and isinstance(queued.error, Gone)
    assert other.done.wait(60) and other.error is None and other.result.adapter == "beta"
    engine.close()


def test_a_cancelled_stream_frees_its_row(tiny_llama):
    from llm_mcp.serve.engine import Cancelled, Engine, Request

    engine = Engine(str(tiny_llama))
    req = Request(user(PROMPTS[0]), TOOLS, max_new_tokens=500)

    async def go():
        task = asyncio.create_task(engine.agenerate(req, on_event=lambda _: None))
        while req.row is None or req.row.tokens < 5:  # decoding
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert req.done.wait(30) and isinstance(req.error, Cancelled)
    assert not engine._decoder.rows
    assert req.result is None  # it did not run to its 500 tokens
    assert engine.generate(Request(user("hi"), max_new_tokens=3)).completion_tokens <= 3  # still serving
    engine.close()


def test_closing_the_engine_ends_its_worker_and_cancels_what_outlasts_the_drain(tiny_llama):
    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.engine import Cancelled, Engine, Request

    engine = Engine(str(tiny_llama), max_batch=1)
    running = engine.submit(Request(user(PROMPTS[0]), TOOLS, max_new_tokens=1000))
    queued = engine.submit(Request(user(PROMPTS[1]), TOOLS, max_new_tokens=3))  # no free row
    while running.row is None or running.row.tokens < 3:  # decoding
        time.sleep(0.005)
    engine.close(drain_s=0.2)
    assert not engine._worker.is_alive()  # no forward pass outlives close()
    assert running.done.is_set() and queued.done.is_set()
    if running.result is None:  # still decoding when the drain ended (a random model rarely stops)
        assert isinstance(running.error, Cancelled) and isinstance(queued.error, Cancelled)
    with pytest.raises(LLMMCPError, match="shutting down"):
        engine.submit(Request(user("hi"), max_new_tokens=3))


# ---- each adapter in its card's chat format ------------------------------------------------------

@pytest.fixture(scope="module")
def two_formats(tiny_qwen2, tmp_path_factory) -> dict[str, Path]:
    """Adapters of a native-template model: one learned the Hermes format, one the native."""
    root = tmp_path_factory.mktemp("format-adapters")
    out = {}
    for seed, kind in ((3, "hermes"), (4, "native")):
        folder = random_adapter(tiny_qwen2, root / kind, seed)
        (folder / "adapter_card.json").write_text(json.dumps({"chat_format": kind}))
        out[kind] = folder
    return out


def test_each_adapter_is_rendered_guided_and_parsed_in_its_cards_format(tiny_qwen2, two_formats):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from llm_mcp.chat import ChatFormat
    from llm_mcp.chat.types import Message, normalize_tools
    from llm_mcp.eval.cases import Case
    from llm_mcp.serve.engine import Engine, Request
    from llm_mcp.serve.generate import generate_reply

    engine = Engine(str(tiny_qwen2))
    assert engine.fmt.kind == "native"
    for kind, folder in two_formats.items():
        engine.load_adapter(kind, folder)
    hermes = ChatFormat(engine.tokenizer, "hermes")
    native = ChatFormat(engine.tokenizer, "native")
    # alone, through the single-request path, each adapter in its own format
    alone = {}
    for kind, fmt in (("hermes", hermes), ("native", native)):
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_qwen2), str(two_formats[kind])).eval()
        alone[kind] = [generate_reply(model, fmt, user(p), TOOLS, max_new_tokens=10).raw for p in PROMPTS]
    reqs = [engine.submit(Request(user(p), TOOLS, kind, max_new_tokens=10))
            for p in PROMPTS for kind in ("hermes", "native")]  # one mixed batch
    for req in reqs:
        assert req.done.wait(120) and req.error is None
    for req in reqs:
        fmt = hermes if req.adapter == "hermes" else native
        assert req.fmt.kind == req.adapter
        assert req.prompt == fmt.prompt_ids(req.messages, TOOLS)
        assert req.result.raw == alone[req.adapter][PROMPTS.index(req.messages[0]["content"])]
        assert (req.guide is None) == (req.adapter == "native")  # the built-in format is guided
    # the engine's evaluation also judges each adapter in its own format
    cases = [Case([Message.from_any(m) for m in user(PROMPTS[0])], normalize_tools(TOOLS), [])]
    for kind in ("hermes", "native"):
        score = engine.evaluate(cases, kind, max_new_tokens=10)
        assert score.predictions[0].raw == alone[kind][0]
    engine.close()


def test_llm_mcp_chat_speaks_to_an_adapter_in_its_cards_format(tiny_qwen2, two_formats):
    out = subprocess.run([sys.executable, "-m", "llm_mcp", "chat", "--model", str(tiny_qwen2), "--adapter",
                          str(two_formats["hermes"]), "--max-new-tokens", "4", "--json", "hi"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["chat_format"] == "hermes"


def test_incremental_decoding_streams_the_same_text_as_decoding_the_whole_reply(smol_tokenizer):
    from llm_mcp.chat import ChatFormat
    from llm_mcp.serve.generate import ReplyStream

    fmt = ChatFormat(smol_tokenizer)
    text = 'Voilà: <tool_call>{"name": "get_weather", "arguments": {"location": "Zürich 東京 🌧"}}</tool_call> ok'
    ids = smol_tokenizer(text, add_special_tokens=False)["input_ids"] + list(fmt.stop_token_ids)[:1]
    seen = []
    stream = ReplyStream(fmt, seen.append)
    for i in ids:
        stream.add([i])
        assert fmt.reply_text(stream.ids).startswith(stream.seen)  # never ahead of the whole decode
    assert stream.seen == fmt.reply_text(ids) == text
    parsed = stream.finish()
    assert [c.name for c in parsed.calls] == ["get_weather"]
    assert parsed.calls[0].arguments["location"] == "Zürich 東京 🌧"


def test_prompts_computed_lately_are_kept_so_two_conversations_can_alternate(tiny_llama):
    """Two conversations on the same tools take turns: each turn computes only its new words,
    not the other conversation's history again; the oldest prompts go first past the caps."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_mcp.chat import ChatFormat
    from llm_mcp.serve.decode import BASE, Prefixes

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    fmt = ChatFormat(AutoTokenizer.from_pretrained(tiny_llama))
    prefixes = Prefixes(lambda: model, keep=3)
    a = fmt.prompt_ids(user(PROMPTS[0]), TOOLS)
    b = fmt.prompt_ids(user(PROMPTS[1]), TOOLS)
    shared = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert shared > 100  # the tool schemas
    assert prefixes.grow(a, BASE) == len(a)
    assert prefixes.grow(b, BASE) == len(b) - shared  # branches off a: a stays
    a2 = a + fmt.prompt_ids(user(PROMPTS[2]))[:20]
    assert prefixes.grow(a2, BASE) == 20  # a's next turn goes on from a
    assert prefixes.holds(b, BASE) and prefixes.holds(a2, BASE) and not prefixes.holds(a, BASE)
    assert prefixes.grow(b, "other") == len(b)  # another adapter shares nothing with these
    assert prefixes.grow(a2[:shared], BASE) == 0 and prefixes.holds(a2[:shared], BASE)
    assert not prefixes.holds(b, BASE)  # the least recently used went (keep=3)
    # a copy for a row of the batch equals computing the prompt alone
    with torch.inference_mode():
        alone = model(torch.tensor([a2]), use_cache=True).past_key_values
    copied = prefixes.copy(a2, BASE)
    for mine, theirs in zip(copied.layers, alone.layers):
        assert torch.allclose(mine.keys, theirs.keys, atol=1e-5)
        assert torch.allclose(mine.values, theirs.values, atol=1e-5)
    prefixes.max_bytes = 1
    prefixes.grow(b, BASE)
    assert [prefixes.holds(p, BASE) for p in (a2, b)] == [False, True]  # all but the newest went
