"""`llm-mcp data validate | stats | convert | synth`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_mcp.data.example import Dataset, Issue
from llm_mcp.errors import LLMMCPError


def _load(args: argparse.Namespace) -> Dataset:
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.formats import read_dataset

    tools = read_tools_file(args.tools) if args.tools else None
    return read_dataset(args.file, None if args.format == "auto" else args.format, tools)


def _chat_format(args: argparse.Namespace):
    from llm_mcp.chat import ChatFormat
    from llm_mcp.models import load_tokenizer

    return ChatFormat(load_tokenizer(args.model), None if args.chat_format == "auto" else args.chat_format)


def _parity(ds: Dataset, args: argparse.Namespace) -> tuple[list[Issue], list[int], str]:
    from llm_mcp.data.validate import check_parity

    fmt = _chat_format(args)
    issues, lengths = [], []
    for ex in _progress(ds.examples, "parity check"):
        found, n = check_parity(ex, fmt)
        issues += found
        if n:
            lengths.append(n)
    return issues, lengths, fmt.kind


def _progress(items, label):
    if len(items) < 200 or not sys.stderr.isatty():
        return items
    from rich.progress import track

    return track(items, description=label, console=None, transient=True)


def _report(ds: Dataset, issues: list[Issue], summary: dict, as_json: bool, extra: dict) -> None:
    issues = sorted(issues, key=lambda i: (i.line, i.kind))
    errors = [i for i in issues if i.level == "error"]
    if as_json:
        print(json.dumps({"format": ds.format, "formats": ds.formats, **extra, "summary": summary,
                          "errors": len(errors), "warnings": len(issues) - len(errors),
                          "issues": [i.__dict__ for i in issues]}, indent=2, ensure_ascii=False))
        return
    for issue in issues:
        print(issue)
    formats = ", ".join(f"{k}: {v}" for k, v in ds.formats.items()) or "none"
    print(f"format: {ds.format or '?'} ({formats} records)" +
          "".join(f"; {k}: {v}" for k, v in extra.items()))
    print(f"examples: {summary['examples']}, tools: {summary['tools']}, calls: {summary['calls']}, "
          f"no-call examples: {summary['no_call_examples']}, multi-call examples: "
          f"{summary['multi_call_examples']}")
    if summary["calls_per_tool"]:
        print("calls per tool: " + ", ".join(f"{k} {v}" for k, v in summary["calls_per_tool"].items()))
    if "tokens" in summary:
        t = summary["tokens"]
        print(f"tokens per example: min {t['min']}, p50 {t['p50']}, p90 {t['p90']}, p99 {t['p99']}, "
              f"max {t['max']}; total {t['total']}")
    print(f"{len(errors)} errors, {len(issues) - len(errors)} warnings")


def cmd_validate(args: argparse.Namespace) -> int:
    from llm_mcp.data.validate import check_examples, summarize

    ds = _load(args)
    issues = ds.issues + check_examples(ds.examples)
    lengths: list[int] = []
    extra = {}
    if not args.no_parity and ds.examples:
        found, lengths, kind = _parity(ds, args)
        issues += found
        extra = {"model": args.model, "chat format": kind}
    _report(ds, issues, summarize(ds.examples, lengths), args.json, extra)
    return 1 if any(i.level == "error" for i in issues) else 0


def cmd_stats(args: argparse.Namespace) -> int:
    from llm_mcp.data.validate import summarize

    ds = _load(args)
    fmt = _chat_format(args)
    lengths = [len(fmt.render(ex.messages, ex.tools).input_ids) for ex in _progress(ds.examples, "tokenizing")]
    summary = summarize(ds.examples, lengths)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _report(ds, [], summary, False, {"model": args.model, "chat format": fmt.kind})
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from llm_mcp.data.convert import to_record

    ds = _load(args)
    if ds.errors:
        for issue in ds.errors:
            print(issue, file=sys.stderr)
        raise LLMMCPError(f"{args.file} has {len(ds.errors)} errors; nothing written",
                          f"run `llm-mcp data validate {args.file}`")
    out = Path(args.out)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w") as f:
        for ex in ds.examples:
            f.write(json.dumps(to_record(ex, args.to, not args.no_tools), ensure_ascii=False) + "\n")
    tmp.replace(out)
    print(f"wrote {len(ds.examples)} {args.to} records to {out}", file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.synth import synthesize

    tools = read_tools_file(args.tools)
    records = synthesize(tools, args.n, args.seed, None if args.values == "any" else args.values,
                         no_tool_share=args.no_tool_share, parallel_share=args.parallel_share,
                         made_up_share=args.made_up_share)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    calls = sum(len(r["tool_calls"]) for r in records)
    print(f"wrote {len(records)} examples ({calls} calls, "
          f"{sum(not r['tool_calls'] for r in records)} without a call) to {out}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    from llm_mcp.config import DEFAULT_MODEL

    data = sub.add_parser("data", help="check, describe, convert and synthesize tool-calling datasets")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def common(p, model=True):
        p.add_argument("file", help="a .jsonl/.json file, a .parquet file or a saved HF dataset folder")
        p.add_argument("--tools", help="tool schemas for records that carry none (JSON list or MCP tools/list)")
        p.add_argument("--format", default="auto", choices=["auto", "flat", "openai", "sharegpt", "xlam"])
        if model:
            p.add_argument("--model", default=DEFAULT_MODEL, help="whose tokenizer and chat format to check with")
            p.add_argument("--chat-format", choices=["auto", "native", "hermes"], default="auto")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    v = actions.add_parser("validate", help="every problem with file:line; exit 1 on errors")
    common(v)
    v.add_argument("--no-parity", action="store_true", help="skip the render/parse check (no model needed)")
    v.set_defaults(func=cmd_validate)
    s = actions.add_parser("stats", help="examples, tools, calls, token lengths")
    common(s)
    s.set_defaults(func=cmd_stats)
    c = actions.add_parser("convert", help="rewrite a dataset in another format")
    common(c, model=False)
    c.add_argument("out", help="output .jsonl")
    c.add_argument("--to", required=True, choices=["openai", "flat"])
    c.add_argument("--no-tools", action="store_true", help="do not repeat the tools in every record")
    c.set_defaults(func=cmd_convert)
    y = actions.add_parser("synth", help="examples from tool schemas alone")
    y.add_argument("--tools", required=True, help="tool schemas (JSON list or an MCP tools/list result)")
    y.add_argument("--n", type=int, default=500)
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--values", choices=["any", "train", "test"], default="any",
                   help="train/test draw from disjoint halves of every value pool")
    y.add_argument("--no-tool-share", type=float, default=0.15, help="share of requests that need no tool")
    y.add_argument("--parallel-share", type=float, default=0.1, help="share of requests with two calls")
    y.add_argument("--made-up-share", type=float, default=0.25,
                   help="share of names, cities, emails, tickers... invented to teach copying (not in --values test)")
    y.add_argument("--out", required=True)
    y.set_defaults(func=cmd_synth)
