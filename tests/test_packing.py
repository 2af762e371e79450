"""Shared-prefix packing: rows, masks, and the proof that packing changes neither the loss nor the
gradients (fp32, tiny model and the real SmolLM2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_mcp.chat import ChatFormat
from llm_mcp.chat.types import read_tools_file
from llm_mcp.data.formats import read_dataset
from llm_mcp.data.packing import build_rows, collate, micro_batches, passes, shared_prefixes
from llm_mcp.data.tokenize import IGNORE, tokenize_examples
from llm_mcp.train.loss import token_loss_sum

REPO = Path(__file__).parent.parent
TOOLS = read_tools_file(REPO / "examples" / "tools.json")


@pytest.fixture(scope="module")
def items(smol_tokenizer):
    """Six examples with all eight tools, three with two tools (a second prefix), in one list."""
    fmt = ChatFormat(smol_tokenizer)
    ds = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS)
    few = read_dataset(REPO / "examples" / "test.jsonl", tools=TOOLS[:2])
    tokenized, _ = tokenize_examples(ds.examples[:6] + few.examples[10:13], fmt, 4096)
    return tokenized


def test_examples_with_the_same_tools_share_one_prefix(items):
    units = shared_prefixes(items)
    assert sorted(len(u.members) for u in units) == [3, 6]
    for unit in units:
        first = items[unit.members[0]]
        assert unit.prefix_len > 100
        for i in unit.members:
            assert items[i].input_ids[:unit.prefix_len] == first.input_ids[:unit.prefix_len]
            assert unit.prefix_len < items[i].first_label  # never the token that predicts a label


def test_rows_keep_every_target_and_positions_continue_from_the_prefix(items):
    rows = build_rows(items, list(range(len(items))), packing=True, row_tokens=4096)
    assert len(rows) == 1
    row = rows[0]
    assert len(row) < sum(len(it) for it in items) * 0.5  # the prefixes are stored once
    assert sum(t != IGNORE for t in row.targets) == sum(
        sum(t != IGNORE for t in it.labels[1:]) for it in items)
    for start, plen, conts in row.blocks:
        for cstart, _ in conts:
            assert row.position_ids[cstart] == plen
    # a row too small for one unit splits it; every split part keeps the prefix
    small = build_rows(items, list(range(6)), packing=True, row_tokens=1200)
    assert len(small) > 1 and all(len(r) <= 1200 for r in small)
    assert sorted(m for r in small for m in r.members) == list(range(6))


def test_continuations_attend_to_their_prefix_and_themselves_only(items):
    batch = collate(build_rows(items, [0, 1, 2], packing=True), pad_id=0)
    mask = batch["attention_mask"][0, 0]
    (start, plen, conts), = build_rows(items, [0, 1, 2], packing=True)[0].blocks
    (c1, n1), (c2, n2), _ = conts
    assert mask[c2, :plen].all() and not mask[c2, c1:c1 + n1].any()
    assert mask[c2 + 1, c2] and not mask[c2, c2 + 1]  # causal inside a continuation
    assert not mask[:plen, plen:].any()  # the prefix sees nothing after it


def _lora(folder, dtype="float32"):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    # random A and B (B is zero by default, which would make A's gradient zero and the test weak)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0,
                        init_lora_weights=False)
    return get_peft_model(model, config).train()


def _loss_and_grads(model, batches):
    model.zero_grad()
    total, count = 0.0, 0
    for batch in batches:
        s, n = token_loss_sum(model, batch)
        s.backward()
        total, count = total + s.item(), count + n
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
    return total, count, grads


def _assert_packing_changes_nothing(model, items, indices, tol):
    alone = [collate(build_rows(items, [i], packing=False), 0) for i in indices]
    packed = [collate(build_rows(items, indices, packing=True), 0)]
    s1, n1, g1 = _loss_and_grads(model, alone)
    s2, n2, g2 = _loss_and_grads(model, packed)
    assert n1 == n2 > 0
    assert abs(s1 - s2) / abs(s1) < tol
    worst = max(((g1[k] - g2[k]).abs().max() / g1[k].abs().max().clamp_min(1e-12)).item() for k in g1)
    assert worst < tol, f"LoRA gradients differ by {worst:.2e} (relative)"
    return s1 / n1


def test_packed_loss_and_lora_gradients_equal_one_by_one(tiny_llama, items):
    _assert_packing_changes_nothing(_lora(tiny_llama), items, list(range(len(items))), 1e-5)


def test_loss_equals_transformers_own_shifted_loss(tiny_llama, items):
    import torch

    model = _lora(tiny_llama).eval()
    it = items[0]
    with torch.no_grad():
        s, n = token_loss_sum(model, collate(build_rows(items, [0], packing=False), 0))
        reference = model(input_ids=torch.tensor([it.input_ids]), labels=torch.tensor([it.labels])).loss
    assert abs(s.item() / n - reference.item()) < 1e-5


def test_rows_of_different_lengths_in_passes_change_nothing(tiny_llama, items):
    """Examples alone in rows of ~1,000 and ~350 tokens: several forward passes, each padded to
    its own longest row, plain causal attention (no mask tensor), the padding after the example; the
    loss and the LoRA gradients equal those of each example alone."""
    model = _lora(tiny_llama)
    indices = list(range(len(items)))
    batches = micro_batches(items, indices, 0, packing=False)
    assert len(batches) > 1 and all(b["attention_mask"] is None for b in batches)
    assert sum(b["input_ids"].shape[0] for b in batches) == len(items)
    assert batches[0]["input_ids"].shape[1] < 500 < batches[-1]["input_ids"].shape[1]
    alone = [collate(build_rows(items, [i], packing=False), 0) for i in indices]
    s1, n1, g1 = _loss_and_grads(model, alone)
    s2, n2, g2 = _loss_and_grads(model, batches)
    assert n1 == n2 > 0 and abs(s1 - s2) / abs(s1) < 1e-5
    worst = max(((g1[k] - g2[k]).abs().max() / g1[k].abs().max().clamp_min(1e-12)).item() for k in g1)
    assert worst < 1e-5, f"LoRA gradients differ by {worst:.2e} (relative)"


def test_a_long_packed_row_gets_a_pass_of_its_own():
    """Four examples share a long prompt (one packed row of 550 tokens); six others share nothing
    (rows of 400). One pass would pad the six to 550; the packed row runs in a pass of its own."""
    from llm_mcp.data.tokenize import Tokenized

    def item(prefix: list[int], own: int, seed: int) -> Tokenized:
        ids = prefix + [1000 + seed * 10_000 + k for k in range(own)]
        return Tokenized(ids, [IGNORE] * (len(ids) - 5) + ids[-5:])

    shared = [item(list(range(350)), 50, s) for s in range(4)]
    apart = [item([], 400, s) for s in range(4, 10)]
    rows = build_rows(shared + apart, list(range(10)), packing=True)
    groups = passes(rows)
    assert [sorted(len(r) for r in g) for g in groups] == [[400] * 6, [550]]


@pytest.mark.slow
def test_packing_changes_nothing_on_smollm2(smol_dir, items):
    # float64 weights: in fp32, on 30 layers and ~800-token rows, summation order alone moved the
    # smallest LoRA gradients by 1.8e-5 relative (measured); in float64 the gap is 9e-7 (what
    # is left comes from transformers' RMSNorm and rotary maths, which run in fp32 regardless)
    _assert_packing_changes_nothing(_lora(smol_dir, "float64"), items, [0, 1, 2, 6, 7], 1e-5)


def test_packing_only_where_sharing_pays():
    """Examples that share only a short preamble and have long continuations stay apart (one row
    each: a long packed row's attention would cost more than the preamble saves); examples that
    share a long prompt and have short continuations share it."""
    from llm_mcp.data.tokenize import Tokenized

    def item(prefix: list[int], own: int, seed: int) -> Tokenized:
        ids = prefix + [1000 + seed * 10_000 + k for k in range(own)]
        return Tokenized(ids, [IGNORE] * (len(ids) - 5) + ids[-5:])

    preamble, prompt = list(range(60)), list(range(900))
    apart = [item(preamble, 900, s) for s in range(8)]
    rows = build_rows(apart, list(range(8)), packing=True)
    assert sorted(len(r) for r in rows) == [960] * 8
    together = [item(prompt, 60, s) for s in range(8)]
    (row,) = build_rows(together, list(range(8)), packing=True)
    assert len(row) == 900 + 8 * 60
