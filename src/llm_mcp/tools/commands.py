"""`llm-mcp tools pull`: a tools file from a live MCP server."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_mcp.errors import LLMMCPError


def names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def cmd_pull(args: argparse.Namespace) -> int:
    from llm_mcp.tools.pull import pull, source_of

    if sum(map(bool, (args.url, args.command_line, args.config))) != 1:
        raise LLMMCPError("give one server: a URL, --command \"...\" or --config FILE [--server NAME]",
                          "llm-mcp tools pull http://127.0.0.1:9000/mcp --out tools.json")
    source = source_of(args.url, args.header, args.command_line, args.config, args.server)
    tools = pull(source, only=names(args.only), exclude=names(args.exclude), timeout=args.timeout)
    text = json.dumps({"tools": tools}, indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out)  # a crash never leaves half a tools file
        print(f"{len(tools)} tools from {source.label} -> {out}", file=sys.stderr)
        for t in tools:
            params = (t.get("inputSchema") or {}).get("properties") or {}
            print(f"  {t['name']:<28} {len(params)} parameters  {(t.get('description') or '')[:60]}", file=sys.stderr)
        print(f"next: llm-mcp data synth --tools {out} --n 1280 --out data.jsonl", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("tools", help="tool schemas: pull them from a running MCP server")
    actions = p.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    pl = actions.add_parser("pull", help="write the tools a live MCP server lists (all pages) to a file "
                                         "that --tools reads")
    pl.add_argument("url", nargs="?", help="streamable HTTP endpoint, like http://127.0.0.1:9000/mcp")
    pl.add_argument("--header", action="append", metavar="'NAME: VALUE'",
                    help="HTTP header for the server (repeatable), e.g. \"Authorization: Bearer $TOKEN\"; "
                         "never printed or stored")
    pl.add_argument("--command", dest="command_line", metavar="CMD",
                    help="start the server over stdio: --command \"python my_server.py\"")
    pl.add_argument("--config", help="a host's config file with \"mcpServers\" (Claude Desktop, Cursor, LM Studio)")
    pl.add_argument("--server", help="which entry of --config (needed when it has several)")
    pl.add_argument("--only", help="keep only these tools (comma-separated names)")
    pl.add_argument("--exclude", help="leave these tools out (comma-separated names)")
    pl.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    pl.add_argument("--out", default="tools.json", help="where to write (default tools.json; - for stdout)")
    pl.set_defaults(func=cmd_pull)
