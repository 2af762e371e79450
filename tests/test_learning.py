"""The proof: the default recipe teaches the real embedded SmolLM2 to call tools it could not
call before (one epoch of examples/train.jsonl, ~4 minutes on 2 CPU cores; scored on the held-out
examples/test.jsonl, whose argument values never occur in the training data)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


@pytest.mark.slow
def test_the_default_recipe_teaches_smollm2_to_call_tools(smol_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llm_mcp.chat import ChatFormat
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.eval.run import predict
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    test = read_dataset(REPO / "examples" / "test.jsonl").examples
    fmt = ChatFormat(AutoTokenizer.from_pretrained(smol_dir))
    base = AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.bfloat16)
    before = predict(base, fmt, test[:16], max_new_tokens=48)
    assert before.exact_rate < 0.2  # it does not call tools out of the box

    out = tmp_path / "adapter"
    result = train(load_config("default", None, {"data": str(REPO / "examples" / "train.jsonl"),
                                                 "output": str(out)}))
    assert result.final_loss < 0.2
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.bfloat16),
                                      str(out))
    after = predict(model, fmt, test, max_new_tokens=128)
    print(after.summary())
    assert after.exact_rate >= 0.8, after.summary()
    assert after.no_call_rate >= 0.75, after.summary()
