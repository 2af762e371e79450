"""The loss: summed cross-entropy over labelled (assistant) tokens, with the output head computed
only where a target exists.

A tool-calling example is ~95% prompt; computing full-vocabulary logits (49k wide for SmolLM2)
for every prompt position and then ignoring them is most of the memory and a good share of the
time of a naive trainer. `logits_to_keep` (transformers) takes the positions where some row has a
target, and a hook on the head keeps only each row's labelled ones.

The sum, not the mean, is returned with the token count: the recipe divides by the number of
labelled tokens in the whole optimizer step (all micro-batches, all processes), so splitting a
step into more micro-batches (OOM back-off) or packing it differently changes nothing.
"""

from __future__ import annotations

from llm_mcp.data.tokenize import IGNORE


def token_loss_sum(model, batch: dict):
    """→ (sum of per-token cross-entropy, number of labelled tokens) for one collated batch
    (`data.packing.collate`)."""
    import torch

    targets = batch["targets"]  # (batch, seq), pre-shifted: the label that follows each position
    labelled = targets != IGNORE
    keep = labelled.any(dim=0).nonzero().squeeze(-1)  # (kept,) positions where any row has a target
    if keep.numel() == 0:
        zero = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
        return zero, 0
    where = labelled[:, keep]  # (batch, kept)
    # Rows of different lengths have their targets at different positions, so `keep` spans many
    # positions that are labelled in one row only. The head is given just the labelled ones:
    # (batch, kept, hidden) → (1, labelled, hidden). Inside the model's own forward, so whatever
    # the model does to its logits after the head (scaling, soft-capping) still happens.
    head = getattr(model, "module", model).get_output_embeddings()
    hook = head.register_forward_pre_hook(lambda _, args: (args[0][where].unsqueeze(0), *args[1:])) \
        if head is not None else None
    try:
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                    attention_mask=batch["attention_mask"], logits_to_keep=keep, use_cache=False)
    finally:
        if hook is not None:
            hook.remove()
    # (labelled, vocab), in fp32 at least (bf16 logits lose the loss; fp64 ones stay fp64)
    logits = out.logits.to(torch.promote_types(out.logits.dtype, torch.float32))
    logits = logits.reshape(-1, logits.shape[-1])
    kept = targets[:, keep][where] if hook is not None else targets[:, keep].reshape(-1)
    loss = torch.nn.functional.cross_entropy(logits, kept, ignore_index=IGNORE, reduction="sum")
    return loss, int((kept != IGNORE).sum())
