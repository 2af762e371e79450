"""metrics.jsonl (one line per logged step, flushed at once so a crash loses nothing), the loss
curve PNG, and the trainable-parameter report."""

from __future__ import annotations

import json
from pathlib import Path


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is None:
            path.write_text("")
        elif path.is_file():  # lines a killed run wrote after its last checkpoint go
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self._file = path.open("a")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def append(path: Path, record: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss(metrics: Path, out: Path, title: str = "") -> Path | None:
    """Training (and eval) loss against step; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    records = read_metrics(metrics)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train loss", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (assistant tokens)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


def trainable_report(model) -> dict:
    """Trainable and total parameters, and which module kinds carry adapters."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if p.__class__.__name__ == "Params4bit":  # 4-bit weights pack two values per byte
            n *= 2
        total += n
        if p.requires_grad:
            trainable += n
    adapted: dict[str, int] = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and len(getattr(module, "lora_A", {})):
            kind = name.rsplit(".", 1)[-1]
            adapted[kind] = adapted.get(kind, 0) + 1
    return {"trainable": trainable, "total": total,
            "percent": round(100 * trainable / max(total, 1), 3), "adapted_modules": adapted}


def format_report(report: dict) -> str:
    kinds = ", ".join(f"{k}×{v}" for k, v in sorted(report["adapted_modules"].items()))
    return (f"trainable parameters: {report['trainable']:,} of {report['total']:,} "
            f"({report['percent']:.2f}%); LoRA on {kinds or 'nothing'}")
