"""`llm-mcp data validate | stats | convert | synth | from-log | clear-log`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_mcp.data.example import Dataset, Issue
from llm_mcp.errors import LLMMCPError

ONLY = {"corrected": "marked wrong, with corrected calls",  # from-log --only (data/fromlog.selected)
        "failed": "marked wrong (those without corrections are shown, not written)",
        "all": "every request with feedback: confirmed replies and corrections"}


def _load(args: argparse.Namespace) -> Dataset:
    from llm_mcp.data.formats import read_dataset

    return read_dataset(args.file, None if args.format == "auto" else args.format, _tools(args))


def _tools(args: argparse.Namespace):
    from llm_mcp.chat.types import read_tools_file

    return read_tools_file(args.tools) if args.tools else None


def _chat_format(args: argparse.Namespace):
    from llm_mcp.chat import ChatFormat
    from llm_mcp.models import load_tokenizer

    return ChatFormat(load_tokenizer(args.model), None if args.chat_format == "auto" else args.chat_format)


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


def _train_max_length() -> int:
    from llm_mcp.train.config import TrainConfig

    return TrainConfig.model_fields["max_length"].default


def cmd_validate(args: argparse.Namespace) -> int:
    from llm_mcp.data.validate import check_dataset, summarize

    fmt = None if args.no_parity else _chat_format(args)
    ds, issues, lengths = check_dataset(args.file, fmt, data_format=None if args.format == "auto" else args.format,
                                        tools=_tools(args), progress=_progress, max_length=args.max_length or _train_max_length())
    extra = {"model": args.model, "chat format": fmt.kind} if fmt is not None and ds.examples else {}
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
    from llm_mcp.data.records import write_jsonl

    ds = _load(args)
    if ds.errors:
        for issue in ds.errors:
            print(issue, file=sys.stderr)
        raise LLMMCPError(f"{args.file} has {len(ds.errors)} errors; nothing written",
                          f"run `llm-mcp data validate {args.file}`")
    write_jsonl(args.out, (to_record(ex, args.to, not args.no_tools) for ex in ds.examples))
    print(f"wrote {len(ds.examples)} {args.to} records to {args.out}", file=sys.stderr)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.data.records import write_jsonl
    from llm_mcp.data.synth import Options, own_summary, read_own, synthesize

    if not args.out and not args.show:
        raise LLMMCPError("nothing to do", "give --out FILE to write the examples, or --show N to read a sample")
    tools = read_tools_file(args.tools)
    options = Options(no_tool_share=args.no_tool_share, refusal_share=args.refusal_share,
                      parallel_share=args.parallel_share, same_tool_share=args.same_tool_share,
                      shared_share=args.shared_share, linked_share=args.linked_share,
                      distractors=args.distractors, mask_share=args.mask_share,
                      bank_call_share=args.bank_call_share, group=args.group, rough_rate=args.rough_rate,
                      max_tools=args.max_tools, shuffle_share=args.shuffle_share,
                      optional_share=args.optional_share)
    own = read_own(args.examples, tools) if args.examples else []
    if own:
        print(own_summary(own, tools), file=sys.stderr)
    result = synthesize(tools, args.n, args.seed, options, own, args.repeat)
    records = result.records
    if args.teacher:
        from llm_mcp.data.synth.teacher import rewrite

        if not args.teacher_model:
            raise LLMMCPError("--teacher needs --teacher-model", "the model name the endpoint serves")
        report = rewrite(records, args.teacher, args.teacher_model, args.teacher_key_env,
                         args.teacher_share, args.seed)
        print(report.line(), file=sys.stderr)
    for name, count in result.skipped.items():
        print(f"warning: {count} requests for {name!r} were dropped: no arguments valid against its "
              "schema could be drawn (a pattern or a constraint the synthesizer cannot meet?)", file=sys.stderr)
    if args.show:
        step = max(1, len(records) // args.show)
        for r in records[::step][:args.show]:
            calls = "; ".join(f"{c['name']}({json.dumps(c['arguments'], ensure_ascii=False)})"
                              for c in r["tool_calls"]) or f"(no call) {r['output']}"
            print(f"{r['input']}\n    → {calls}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(out, records)
        calls = sum(len(r["tool_calls"]) for r in records)
        print(f"wrote {len(records)} examples ({calls} calls, "
              f"{sum(not r['tool_calls'] for r in records)} without a call) to {out}", file=sys.stderr)
    return 0


def _moment(text: str | None, flag: str) -> str | None:
    """A date or time the user typed (ISO, UTC unless it names a zone) → the store's form."""
    import datetime as dt

    from llm_mcp.store import TIME_FORMAT

    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as err:
        raise LLMMCPError(f"{flag} {text!r} is not a date or time", "write it as 2026-12-01 or "
                          "2026-12-01T14:30") from err
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime(TIME_FORMAT)


def cmd_from_log(args: argparse.Namespace) -> int:
    from llm_mcp.data.convert import to_record
    from llm_mcp.data.fromlog import collect, show
    from llm_mcp.data.records import write_jsonl
    from llm_mcp.data.validate import check_dataset
    from llm_mcp.store import open_store

    if not args.out and not args.show:
        raise LLMMCPError("nothing to do", "give --out FILE to write the examples, or --show to review them")
    store = open_store()
    try:
        rows = store.conversations(_moment(args.since, "--since"), args.adapter)
    finally:
        store.close()
    entries = collect(rows, args.only)
    if args.show:
        for e in entries:
            print(show(e) + "\n")
    kept = [e for e in entries if e.example is not None]
    skipped = len(entries) - len(kept)
    print(f"{len(rows)} recorded requests, {len(entries)} selected ({args.only}), {len(kept)} usable"
          + (f", {skipped} not usable (--show says why)" if skipped else ""), file=sys.stderr)
    if args.out:
        if not kept:
            raise LLMMCPError("no recorded request can be written as an example; nothing written",
                              "give feedback (MCP record_feedback or POST /v1/feedback), or widen "
                              "--only/--since/--adapter")
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(out, (to_record(e.example, "openai") for e in kept))
        ds, issues, _ = check_dataset(out)  # read back and checked like any dataset
        for issue in issues:
            print(issue, file=sys.stderr)
        print(f"wrote {len(ds.examples)} OpenAI records to {out}; next: llm-mcp teach --data {out} …",
              file=sys.stderr)
        return 1 if any(i.level == "error" for i in issues) else 0
    return 0


def cmd_clear_log(args: argparse.Namespace) -> int:
    from llm_mcp.store import open_store

    store = open_store()
    try:
        gone = store.delete_conversations(before=_moment(args.before, "--before"))
    finally:
        store.close()
    print(f"deleted {gone} recorded conversation(s) from {store.path}", file=sys.stderr)
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
    v.add_argument("--max-length", type=int,
                   help="warn of examples longer than this many tokens: training drops them (default: train's "
                        "max_length, 2048)")
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
    y = actions.add_parser("synth", help="examples from tool schemas alone, phrased the ways people ask")
    y.add_argument("--tools", required=True, help="tool schemas (JSON list or an MCP tools/list result)")
    y.add_argument("--n", type=int, default=1280, help="examples to write (1280: the sample data's "
                   "size, measured in docs/benchmarks.md; 640 trains in half the time, less well)")
    y.add_argument("--seed", type=int, default=0)
    y.add_argument("--no-tool-share", type=float, default=None,
                   help="requests that need no tool: small talk, near misses, asks no tool serves "
                        "(0.2; 0.3 with --examples, measured in docs/benchmarks.md)")
    y.add_argument("--refusal-share", type=float, default=0.35,
                   help="of the no-call requests: asks for a tool the prompt does not list, refused")
    y.add_argument("--parallel-share", type=float, default=0.25, help="requests with two or three intents")
    y.add_argument("--same-tool-share", type=float, default=0.3,
                   help="of the second and third intents: the same tool as the one before")
    y.add_argument("--shared-share", type=float, default=0.6,
                   help="of the same tool asked again: calls that keep every value but one "
                        "(\"weather in Lisbon and Porto\", \"... then the same for Sopot\")")
    y.add_argument("--linked-share", type=float, default=0.8,
                   help="of intents after another tool's: the call takes over its identifier "
                        "(\"where is PX-1, and move its delivery to Friday\")")
    y.add_argument("--distractors", type=int, default=4, help="at most this many other tools in each prompt")
    y.add_argument("--mask-share", type=float, default=0.12,
                   help="share of prompts whose tool and parameter names are replaced (descriptions kept)")
    y.add_argument("--shuffle-share", type=float, default=0.7, help="share of prompts listing the tools in a shuffled order")
    y.add_argument("--bank-call-share", type=float, default=0.12, help="share of calls to a distractor tool")
    y.add_argument("--group", type=int, default=16, help="examples that share one prompt (packed together)")
    y.add_argument("--max-tools", type=int, default=12,
                   help="tools in a prompt, distractors included (a subset of a larger tool set)")
    y.add_argument("--optional-share", type=float, default=0.45,
                   help="chance that a request states each optional argument (the rest are left out)")
    y.add_argument("--rough-rate", type=float, default=0.25,
                   help="rate of typing habits: lower case, no punctuation, shorthand, typos")
    y.add_argument("--examples", metavar="FILE",
                   help="requests you wrote yourself, with their calls (any dataset format, checked "
                        "against --tools): each is repeated under other tool lists among the drawn ones")
    y.add_argument("--repeat", type=int, default=4, help="copies of each of your --examples, each under another prompt")
    y.add_argument("--show", type=int, default=0, metavar="N", help="print N examples to read")
    y.add_argument("--teacher", metavar="URL",
                   help="an OpenAI-compatible endpoint (up to /v1) that rewrites the requests; "
                        "only rewrites that pass verification are kept")
    y.add_argument("--teacher-model", help="the model the teacher endpoint serves")
    y.add_argument("--teacher-share", type=float, default=1.0, help="share of call examples to rewrite")
    y.add_argument("--teacher-key-env", default="LLM_MCP_TEACHER_KEY",
                   help="environment variable holding the teacher's API key (never logged)")
    y.add_argument("--out", help="the .jsonl to write")
    y.set_defaults(func=cmd_synth)
    f = actions.add_parser("from-log", help="recorded conversations with feedback → OpenAI training records",
                           description="Requests a server recorded (serve --record-conversations) and "
                                       "clients marked (record_feedback, POST /v1/feedback), as training "
                                       "examples: corrected calls in place of wrong ones.")
    f.add_argument("--since", metavar="DATE", help="only requests from then on (2026-12-01 or 2026-12-01T14:30, UTC)")
    f.add_argument("--adapter", metavar="NAME", help="only requests answered by this adapter ('base': the base model)")
    f.add_argument("--only", choices=list(ONLY), default="corrected",
                   help="; ".join(f"{k}: {v}" for k, v in ONLY.items()))
    f.add_argument("--out", help="the .jsonl to write (checked like any dataset)")
    f.add_argument("--show", action="store_true", help="print each selected request for review")
    f.set_defaults(func=cmd_from_log)
    x = actions.add_parser("clear-log", help="delete recorded conversations")
    x.add_argument("--before", metavar="DATE", help="only those recorded before this (default: all)")
    x.set_defaults(func=cmd_clear_log)
