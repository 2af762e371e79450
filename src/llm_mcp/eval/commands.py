"""`llm-mcp eval`: the base model and adapters on the same examples, side by side."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from llm_mcp.config import REPLY_TOKENS

log = logging.getLogger(__name__)


def cmd_eval(args: argparse.Namespace) -> int:
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.config import home_dir
    from llm_mcp.eval import report
    from llm_mcp.eval.cases import read_cases
    from llm_mcp.eval.run import columns, compare
    from llm_mcp.models.load import quiet_transformers

    # everything that can be wrong with the input is found before any weights load
    if args.engine == "vllm" and not args.vllm_url:
        from llm_mcp.errors import LLMMCPError

        raise LLMMCPError("--engine vllm needs --vllm-url URL (a running vLLM server's OpenAI API)")
    tools = read_tools_file(args.tools) if args.tools else None
    cases = read_cases(args.data, tools)[:args.limit or None]
    quiet_transformers(args.verbose)
    runs = columns(args.adapter or [], args.base)
    with _Bars(len(cases)) as bars:
        compared = compare({"data": cases}, runs, model=args.model, dtype=args.dtype, device=args.device,
                           gguf_file=args.gguf_file, chat_format=args.chat_format,
                           max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                           guided=not args.no_guide, grounded=not args.no_ground, progress=bars.task,
                           vllm_url=args.vllm_url if args.engine == "vllm" else None)
    scores = compared.scores["data"]

    out = Path(args.out) if args.out else (
        home_dir() / "evals" / f"{Path(args.data).stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    meta = {"data": str(args.data), "model": compared.model, "examples": len(cases),
            "max_new_tokens": args.max_new_tokens, "dtype": compared.dtype, "guided": not args.no_guide,
            "grounded": not args.no_ground,
            "adapters": {name: str(folder) for name, folder in runs if folder}}
    report.write(out, scores, meta, per_kind=args.failures)
    if args.json:
        print((out / "report.json").read_text())
        return 0
    print(report.table(scores))
    fails = report.failures_text(scores, per_kind=args.failures)
    if fails:
        print("\n" + fails)
    print(f"\nreport: {out / 'report.md'} (also report.json, predictions.jsonl)")
    return 0


class _Bars:
    """One rich progress bar per model on a terminal; nothing otherwise."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))

    def __enter__(self):
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()

    def task(self, name: str):
        if not self.bar:
            return None
        task = self.bar.add_task(name, total=self.total)
        return lambda done, total: self.bar.update(task, completed=done)


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="tool-call accuracy of the base model and adapters, side by side",
                       description="Run the base model and each adapter on the same examples "
                                   "(greedy, batched) and compare their tool calls with the "
                                   "expected ones by BFCL's rules. Prints a table; writes "
                                   "report.json, report.md and predictions.jsonl.")
    p.add_argument("--data", required=True, help="examples: any dataset format `llm-mcp data` "
                   "reads (the last assistant turn is the answer), or BFCL-style records with "
                   "\"expected\" calls")
    p.add_argument("--adapter", action="append", metavar="NAME_OR_DIR",
                   help="an adapter folder or a name in $LLM_MCP_HOME/adapters; repeat for "
                        "several; `base` for the base model")
    p.add_argument("--base", action="store_true", help="also run the base model (the default "
                                                       "when no adapter is given)")
    p.add_argument("--model", help="base model (default: the adapters' base from their card, "
                                   "else smollm2-135m-instruct)")
    p.add_argument("--gguf-file", help="which .gguf file, when --model is a folder holding several")
    p.add_argument("--tools", help="tool schemas for records that carry none")
    p.add_argument("--limit", type=int, help="only the first N examples")
    p.add_argument("--batch-size", type=int, default=16, help="replies decoded together (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=REPLY_TOKENS)
    p.add_argument("--no-guide", action="store_true", help="decode without holding calls to the "
                   "tools' JSON Schemas (the model alone; the server holds them)")
    p.add_argument("--no-ground", action="store_true", help="judge calls as the model made them (the "
                   "server takes miscopied values from the request and withholds calls whose ids it never said)")
    p.add_argument("--out", help="report folder (default $LLM_MCP_HOME/evals/<data>-<time>)")
    p.add_argument("--failures", type=int, default=2, help="failures shown per kind and model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on capable GPUs, else fp32), fp32, bf16, fp16")
    p.add_argument("--chat-format", choices=["auto", "native", "hermes"], default="auto",
                   help="auto: the adapter's (from its card), else as for `llm-mcp chat`")
    p.add_argument("--engine", choices=["local", "vllm"], default="local",
                   help="vllm: decode on the vLLM server at --vllm-url (scores comparable with local)")
    p.add_argument("--vllm-url", metavar="URL", help="a vLLM server's OpenAI API (its key in $LLM_MCP_VLLM_KEY)")
    p.add_argument("--json", action="store_true", help="print report.json instead of the table")
    p.set_defaults(func=cmd_eval)
