"""BFCL-style call matching, and batched prefix-sharing prediction equal to plain generate()."""

from __future__ import annotations

from pathlib import Path

from llm_mcp.chat.types import ToolCall, read_tools_file
from llm_mcp.eval.match import calls_match

REPO = Path(__file__).parent.parent


def test_calls_match_by_name_and_value_in_any_order():
    a = ToolCall("get_weather", {"location": "Tokyo", "days": 3})
    b = ToolCall("get_time", {"tz": "UTC"})
    assert calls_match([b, a], [a, b])
    assert calls_match([ToolCall("get_weather", {"location": "Tokyo", "days": 3.0})], [a])
    assert not calls_match([ToolCall("get_weather", {"location": "Tokyo", "days": "3"})], [a])
    assert not calls_match([ToolCall("get_weather", {"location": "tokyo", "days": 3})], [a])
    assert not calls_match([a, a], [a, b]) and not calls_match([a], [a, b]) and not calls_match([], [a])
    assert calls_match([], [])
    assert not calls_match([ToolCall("f", {"x": True})], [ToolCall("f", {"x": 1})])


def test_batched_prediction_equals_plain_greedy_generate(tiny_llama, smol_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from llm_mcp.chat import ChatFormat
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.eval.run import _split, predict

    tools = read_tools_file(REPO / "examples" / "tools.json")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
    fmt = ChatFormat(smol_tokenizer)
    examples = (read_dataset(REPO / "examples" / "test.jsonl", tools=tools).examples[:5]
                + read_dataset(REPO / "examples" / "test.jsonl", tools=tools[:3]).examples[5:8])
    batched = predict(model, fmt, examples, max_new_tokens=12, batch_size=4)
    single = predict(model, fmt, examples, max_new_tokens=12, batch_size=1)
    for ex, a, b in zip(examples, batched.predictions, single.predictions):
        prompt = fmt.prompt_ids(_split(ex)[0], ex.tools)
        out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                             eos_token_id=fmt.stop_token_ids, pad_token_id=fmt.tokenizer.pad_token_id)
        want = fmt.reply_text([t for t in out[0, len(prompt):].tolist() if t not in fmt.stop_token_ids])
        assert a.raw == b.raw == want
    assert batched.examples == 8 and batched.call_examples + batched.no_call_examples == 8
