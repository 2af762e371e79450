"""`llm-mcp teach`: the whole loop in one command (teach/loop.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError


def cmd_teach(args: argparse.Namespace) -> int:
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.models.load import quiet_transformers
    from llm_mcp.serve.app import TOKEN_ENV
    from llm_mcp.teach.loop import Plan, teach
    from llm_mcp.tools.commands import names
    from llm_mcp.tools.pull import pull, select, source_of

    servers = sum(map(bool, (args.mcp, args.mcp_command, args.mcp_config)))
    if servers + bool(args.tools) != 1:
        raise LLMMCPError("give the tools once: --mcp URL, --mcp-command CMD, --mcp-config FILE or --tools FILE",
                          "llm-mcp teach --mcp http://127.0.0.1:9000/mcp --name my-tools")
    only, exclude = names(args.only), names(args.exclude)
    if args.tools:
        tools = select(read_tools_file(args.tools), only, exclude)
        where = args.tools
    else:
        source = source_of(args.mcp, args.header, args.mcp_command, args.mcp_config, args.server)
        tools = pull(source, only=only, exclude=exclude, timeout=args.timeout)
        where = source.label
        print(f"tools: {len(tools)} from {where}: {', '.join(t['name'] for t in tools)}", file=sys.stderr)
    quiet_transformers(args.verbose)
    plan = Plan(name=args.name, tools=tools, data=args.data or [], examples=args.examples, repeat=args.repeat,
                natural=args.natural, n=args.n,
                seed=args.seed, held_out=args.held_out, metric=args.metric, margin=args.margin,
                force=args.force, model=args.model, preset=args.preset, overrides=args.overrides,
                server_url=args.serve, server_token=os.environ.get(TOKEN_ENV) or None,
                tools_source=where, eval_limit=args.eval_limit, max_new_tokens=args.max_new_tokens,
                candidate=args.candidate)
    outcome = teach(plan, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps({"promoted": outcome.promoted, "adapter": outcome.adapter, "path": str(outcome.path),
                      "reason": outcome.reason, "served": outcome.served, "run": str(outcome.run_dir)}))
    return 0 if outcome.promoted else 1


def add_parser(sub) -> None:
    from llm_mcp.teach.loop import METRICS

    p = sub.add_parser("teach", help="tools → data → train → eval → promote the adapter only if it is better",
                       description="Pull the tools (or read them), make training data (your files, "
                                   "synthesized examples for the tools they miss), train a candidate, "
                                   "score it against the base and the current adapter NAME, and promote "
                                   "it to NAME only if it wins. Exit status 1 when it is not promoted.")
    p.add_argument("--name", required=True, help="the adapter to teach (served as base:NAME)")
    src = p.add_argument_group("tools (one of)")
    src.add_argument("--mcp", metavar="URL", help="a live MCP server's streamable HTTP endpoint")
    src.add_argument("--mcp-command", metavar="CMD", help="an MCP server started over stdio")
    src.add_argument("--mcp-config", metavar="FILE", help="a host's config file with \"mcpServers\"")
    src.add_argument("--server", help="which entry of --mcp-config")
    src.add_argument("--header", action="append", metavar="'NAME: VALUE'", help="HTTP header for --mcp (repeatable)")
    src.add_argument("--tools", help="a tools file instead of a server")
    src.add_argument("--only", help="teach only these tools (comma-separated)")
    src.add_argument("--exclude", help="leave these tools out (comma-separated)")
    src.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the MCP server")
    d = p.add_argument_group("data and the decision")
    d.add_argument("--data", action="append", metavar="FILE", help="your own examples (repeatable; any format)")
    d.add_argument("--examples", metavar="FILE", help="requests you wrote, with their calls (any format): "
                   "each repeated --repeat times among examples synthesized for every tool")
    d.add_argument("--repeat", type=int, default=4, help="copies of each of --examples (default 4)")
    d.add_argument("--natural", metavar="FILE", help="requests people wrote (BFCL-style records): "
                   "the decision is made on them when given")
    d.add_argument("--n", type=int, default=1280, help="synthesized examples (default 1280; with --data, "
                   "a share for the tools your files never call)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--held-out", type=float, default=0.1, help="share of the data kept for scoring (default 0.1, at most 200)")
    d.add_argument("--eval-limit", type=int, help="score at most this many held-out examples")
    d.add_argument("--max-new-tokens", type=int, default=REPLY_TOKENS, help=f"reply limit when scoring (default {REPLY_TOKENS})")
    d.add_argument("--metric", choices=METRICS, default="ast", help="what the candidate must beat the others on")
    d.add_argument("--margin", type=float, default=0.05, help="no-call accuracy the candidate may lose (default 0.05)")
    d.add_argument("--force", action="store_true", help="promote even when it does not win (said in the card)")
    d.add_argument("--serve", metavar="URL", help="a running `llm-mcp serve` to load the promoted adapter "
                   "into (its token from $LLM_MCP_TOKEN)")
    t = p.add_argument_group("training")
    t.add_argument("--model", help="base model (default smollm2-135m-instruct)")
    t.add_argument("--preset", default="default", help="a training preset (default: the default recipe)")
    t.add_argument("--candidate", help="the candidate's folder name (default: the next NAME.candidate-<n>)")
    t.add_argument("overrides", nargs="*", metavar="key=value", help="training settings, as for `llm-mcp train`")
    p.set_defaults(func=cmd_teach)
