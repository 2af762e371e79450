"""Scores of several models on the same cases → a table, report.json, report.md and
predictions.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from llm_mcp.eval.run import Prediction, Score
from llm_mcp.store import now

# (key in Score.summary(), row label, kind): rate → %, else the number as it is
ROWS = [
    ("examples", "examples", "n"),
    ("well_formed", "well-formed call", "rate"),
    ("tool_name", "tool name", "rate"),
    ("ast", "AST match (BFCL)", "rate"),
    ("exact", "exact match", "rate"),
    ("no_call", "no-call accuracy", "rate"),
    ("missed_calls", "missed calls", "n"),
    ("false_calls", "false calls", "n"),
    ("withheld_calls", "calls withheld (values said nowhere)", "n"),
    ("taken_calls", "calls with values taken from the request", "n"),
    ("redone_calls", "calls decoded again (wrong tool by its ids)", "n"),
    ("added_calls", "calls asked for and kept (one more)", "n"),
    ("filled_arguments", "arguments asked for and kept (one more)", "n"),
    ("mean_latency_s", "mean latency s", "n"),
    ("mean_new_tokens", "mean new tokens", "n"),
]


def _cell(summary: dict, key: str, kind: str) -> str:
    """A rate over no cases is "n/a" (a file without no-call cases has no no-call accuracy)."""
    if kind != "rate":
        return f"{summary[key]:g}"
    cases = summary["no_call_examples"] if key == "no_call" else summary["call_examples"]
    return f"{100 * summary[key]:.1f}%" if cases else "n/a"


def table(scores: dict[str, Score], markdown: bool = False) -> str:
    """One row per metric, one column per model; then AST match per expected tool."""
    names = list(scores)
    summaries = {n: s.summary() for n, s in scores.items()}
    rows = [[label] + [_cell(summaries[n], key, kind) for n in names] for key, label, kind in ROWS]
    per_tool = {n: s.per_tool() for n, s in scores.items()}
    tools = sorted({t for p in per_tool.values() for t in p})
    for tool in tools:
        cells = []
        for n in names:
            row = per_tool[n].get(tool)
            cells.append(f"{100 * row['ast']:.1f}% of {row['examples']}" if row else "-")
        rows.append([f"  {tool}"] + cells)
    head = ["metric"] + names
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    split = 1 + len(ROWS)
    out = [fmt(head)] + [fmt(r) for r in rows[:split - 1]]
    if tools:
        out.append("AST match per expected tool:")
        out += [fmt(r) for r in rows[split - 1:]]
    return "\n".join(out)


def _failure(p: Prediction) -> dict:
    asked = next((m.content for m in reversed(p.case.prompt) if m.role == "user"), "")
    return {"where": p.case.where, "kind": p.kind, "detail": p.ast.detail, "request": asked,
            "expected": [{"name": e.name, "arguments": e.arguments} for e in p.case.expected],
            "raw": p.raw}


def failures_text(scores: dict[str, Score], per_kind: int = 2, width: int = 160) -> str:
    out = []
    for name, score in scores.items():
        fails = score.failures(per_kind)
        if not fails:
            continue
        out.append(f"{name}: first failures of each kind")
        for kind, preds in fails.items():
            for p in preds:
                raw = p.raw.replace("\n", "\\n")
                raw = raw if len(raw) <= width else raw[:width] + "…"
                out.append(f"  [{kind}] {p.case.where}: {p.ast.detail}\n      output: {raw}")
    return "\n".join(out)


def write(out: Path, scores: dict[str, Score], meta: dict, per_kind: int = 3) -> Path:
    """report.json (metrics, per tool, first failures), report.md, predictions.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    report = {"created": now(), **meta, "models": {
        name: {"summary": s.summary(), "per_tool": s.per_tool(),
               "failures": {k: [_failure(p) for p in ps] for k, ps in s.failures(per_kind).items()}}
        for name, s in scores.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    md = [f"# Tool-call eval: {meta.get('data')}", "",
          f"{meta.get('created', report['created'])}; base model `{meta.get('model')}`; "
          f"greedy decoding, at most {meta.get('max_new_tokens')} new tokens.", "",
          table(scores, markdown=True), "", "Rates are over the examples that expect calls "
          "(no-call accuracy: over those that expect none). AST match follows BFCL's rules; exact "
          "match needs equal JSON values.", ""]
    fails = failures_text(scores, per_kind, width=400)
    if fails:
        md += ["## First failures", "```", fails, "```", ""]
    (out / "report.md").write_text("\n".join(md))
    with (out / "predictions.jsonl").open("w") as f:
        for name, s in scores.items():
            for p in s.predictions:
                f.write(json.dumps({"model": name, "where": p.case.where, "kind": p.kind,
                                    "exact": p.exact, "detail": p.ast.detail, "raw": p.raw,
                                    "calls": [c.to_dict() for c in p.calls],
                                    "withheld": [c.to_dict() for c in p.withheld],
                                    "taken": [c.to_dict() for c in p.taken], "redone": p.redone,
                                    "added": p.added, "filled": p.filled,
                                    "tokens": p.tokens, "seconds": round(p.seconds, 3)},
                                   ensure_ascii=False) + "\n")
    return out
