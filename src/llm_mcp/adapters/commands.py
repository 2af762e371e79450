"""`llm-mcp adapters list | show | delete | merge | export-check`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _known() -> dict[str, dict]:
    """Every adapter (adapters/registry.py), by name."""
    from llm_mcp.adapters.registry import known
    from llm_mcp.config import home_dir
    from llm_mcp.store import open_store

    store = open_store()
    try:
        return known(store, home_dir())
    finally:
        store.close()


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for name, a in sorted(_known().items()):
        m = a["card"].get("metrics", {})
        calls = m.get("eval_calls") or {}
        rows.append({"name": name, "path": a["path"], "base": a["card"].get("base_model", {}).get("spec"),
                     "steps": m.get("steps"), "final_loss": m.get("final_loss"),
                     "eval_ast": calls.get("ast"), "created": a["card"].get("created")})
    if args.json:
        print(json.dumps(rows, indent=1))
    elif not rows:
        print("no adapters yet: llm-mcp train --data FILE --output NAME")
    else:
        for r in rows:
            score = f"AST {r['eval_ast']:.1%}" if r["eval_ast"] is not None else ""
            print(f"{r['name']:<24} {r['base'] or '?':<24} {r['steps'] or '?':>5} steps  {score:<11} {r['path']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from llm_mcp.adapters.card import find_adapter, read_card

    print(json.dumps(read_card(find_adapter(args.name)), indent=1, ensure_ascii=False))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from llm_mcp.adapters import registry
    from llm_mcp.config import home_dir
    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.engine import NAME
    from llm_mcp.store import open_store

    if not NAME.fullmatch(args.name):
        raise LLMMCPError(f"{args.name!r} is not an adapter name; not deleting files elsewhere",
                          "give the name `llm-mcp adapters list` shows, or delete that folder yourself")
    store = open_store()
    try:
        row = registry.known(store, home_dir()).get(args.name)
        if row is None:
            registry.delete(store, home_dir(), args.name)  # the error, with the names known
        if not args.yes:
            raise LLMMCPError(f"this deletes adapter {args.name} ({row['path']})",
                              f"run again with --yes: llm-mcp adapters delete {args.name} --yes")
        deleted = registry.delete(store, home_dir(), args.name)
    finally:
        store.close()
    print(f"deleted {row['path']}" if deleted else f"forgot {args.name} (its files at {row['path']} "
          "are outside the data directory's adapters folder and stay)")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from llm_mcp.adapters.merge import merge

    from llm_mcp.models.load import quiet_transformers

    quiet_transformers(args.verbose)
    out = merge(Path(args.adapter), Path(args.out), args.model, args.dtype)
    print(out)
    return 0


def cmd_export_check(args: argparse.Namespace) -> int:
    from llm_mcp.adapters.card import find_adapter
    from llm_mcp.adapters.export import TARGETS, as_json, export_check, render

    folder = find_adapter(args.adapter)
    targets = tuple(args.target) if args.target else TARGETS
    found = [f for f in export_check(folder) if f.target in targets]
    print(json.dumps(as_json(found), indent=1) if args.json else f"{folder}\n{render(found, targets)}")
    return 1 if any(f.level == "fail" for f in found) else 0


def add_parser(sub) -> None:
    from llm_mcp.adapters.export import TARGETS  # (no torch: json, re and dataclasses)

    p = sub.add_parser("adapters", help="list, show, delete, merge and export-check trained adapters")
    actions = p.add_subparsers(dest="adapters_command", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="adapters in $LLM_MCP_HOME (trained, registered by the server)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    show = actions.add_parser("show", help="an adapter's card (JSON)")
    show.add_argument("name", help="a name in $LLM_MCP_HOME/adapters or a folder")
    show.set_defaults(func=cmd_show)
    delete = actions.add_parser("delete", help="delete an adapter in $LLM_MCP_HOME/adapters")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="really delete")
    delete.set_defaults(func=cmd_delete)
    m = actions.add_parser("merge", help="fold an adapter into its base model; write a full model")
    m.add_argument("adapter", help="adapter folder or name")
    m.add_argument("--out", required=True, help="folder for the merged model")
    m.add_argument("--model", help="base model (default: the one in the adapter card)")
    m.add_argument("--dtype", default="auto", help="auto (fp32), fp32, bf16, fp16")
    m.set_defaults(func=cmd_merge)
    check = actions.add_parser("export-check", help="will plain PEFT, vLLM and Ollama load it as it "
                               "is? what to do where not (exit 1 when one refuses it)")
    check.add_argument("adapter", help="adapter folder or name")
    check.add_argument("--target", action="append", choices=TARGETS,
                       help="only this target (repeatable; default all)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_export_check)
