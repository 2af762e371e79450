"""`llm-mcp adapters merge` (list, show and delete come with the store)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_merge(args: argparse.Namespace) -> int:
    from llm_mcp.adapters.merge import merge

    from llm_mcp.cli import quiet_transformers

    quiet_transformers(args)
    out = merge(Path(args.adapter), Path(args.out), args.model, args.dtype)
    print(out)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("adapters", help="work with trained adapters")
    actions = p.add_subparsers(dest="adapters_command", metavar="ACTION", required=True)
    m = actions.add_parser("merge", help="fold an adapter into its base model; write a full model")
    m.add_argument("adapter", help="adapter folder")
    m.add_argument("--out", required=True, help="folder for the merged model")
    m.add_argument("--model", help="base model (default: the one in the adapter card)")
    m.add_argument("--dtype", default="auto", help="auto (fp32), fp32, bf16, fp16")
    m.set_defaults(func=cmd_merge)
