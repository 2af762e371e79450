"""The `llm-mcp` command line. torch and transformers are imported inside the commands that need
them, so `llm-mcp --help` starts fast and the stdio transport writes nothing but protocol."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from llm_mcp import __version__
from llm_mcp.config import DEFAULT_MODEL, REPLY_TOKENS
from llm_mcp.errors import LLMMCPError

log = logging.getLogger("llm_mcp")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"alias, hub id, model folder or .gguf file (default: {DEFAULT_MODEL})")
    p.add_argument("--gguf-file", help="which .gguf file, when --model is a folder holding several")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on capable GPUs, else fp32), fp32, bf16, fp16")
    p.add_argument("--chat-format", choices=["auto", "native", "hermes"], default="auto",
                   help="how tools and calls are written to the model (default: native template "
                        "when it handles tools, else the built-in Hermes format)")


def cmd_chat(args: argparse.Namespace) -> int:
    from llm_mcp.chat import CallEvent, ChatFormat, ErrorEvent, TextDelta
    from llm_mcp.chat.types import read_tools_file
    from llm_mcp.models import load_model
    from llm_mcp.models.load import quiet_transformers
    from llm_mcp.serve.generate import generate_reply

    tools = read_tools_file(args.tools) if args.tools else []
    quiet_transformers(args.verbose)
    loaded = load_model(args.model, dtype=args.dtype, device=args.device, gguf_file=args.gguf_file)
    model, card = loaded.model, {}
    if args.adapter:
        model, card = _load_adapter(model, args.adapter)
    # an adapter is spoken to in the format it learned (its card's), unless one is asked for
    fmt = ChatFormat(loaded.tokenizer, card.get("chat_format") if args.chat_format == "auto" else args.chat_format)
    messages = ([{"role": "system", "content": args.system}] if args.system else [])
    messages.append({"role": "user", "content": args.prompt})

    def show(event) -> None:
        if args.json:
            return
        if isinstance(event, TextDelta):
            sys.stdout.write(event.text)
        elif isinstance(event, CallEvent):
            sys.stdout.write("\n" + json.dumps({"tool_call": event.call.to_dict()},
                                               ensure_ascii=False) + "\n")
        elif isinstance(event, ErrorEvent):
            print(f"\n[unreadable tool call: {event.error.reason}] {event.error.raw}", file=sys.stderr)
        sys.stdout.flush()

    reply = generate_reply(model, fmt, messages, tools, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, on_event=show, guided=not args.no_guide,
                           grounded=not args.no_ground)
    if args.json:
        print(json.dumps({
            "content": reply.parsed.content,
            "tool_calls": [c.to_dict() for c in reply.parsed.calls],
            "errors": [e.__dict__ for e in reply.parsed.errors],
            "withheld": [c.to_dict() for c in reply.parsed.withheld],
            "taken": [c.to_dict() for c in reply.parsed.taken],
            "redone": reply.redone,
            "added": reply.added,
            "filled": reply.filled,
            "usage": {"prompt_tokens": reply.prompt_tokens,
                      "completion_tokens": reply.completion_tokens},
            "chat_format": fmt.kind,
        }, ensure_ascii=False))
    else:
        print(flush=True)
        log.info("%d prompt tokens, %d generated in %.1fs (%s format)", reply.prompt_tokens,
                 reply.completion_tokens, reply.seconds, fmt.kind)
    return 0


def _load_adapter(model, name_or_dir: str):
    from peft import PeftModel

    from llm_mcp.adapters.card import find_adapter, read_card

    adapter = find_adapter(name_or_dir)
    return PeftModel.from_pretrained(model, str(adapter)).eval(), read_card(adapter)


def cmd_models_list(args: argparse.Namespace) -> int:
    from llm_mcp.models import ALIASES, cached_models, resolve

    rows = []
    for name, alias in ALIASES.items():
        source = resolve(name)
        where = {"gguf": f"package {alias.package}", "folder": "converted cache",
                 "hub": f"hub {alias.hub_id} (offline: {alias.install})"}[source.kind]
        rows.append({"name": name, "kind": "alias", "source": where})
    for m in cached_models():
        rows.append({"name": m["name"], "kind": "cached", "source": f"{m['path']} ({m['size_mb']} MB)"})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:<32} {r['kind']:<7} {r['source']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-mcp",
        description="Serve a local language model over MCP and teach it your tools with LoRA.",
    )
    parser.add_argument("--version", action="version", version=f"llm-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="answer one prompt, streaming; tool calls print as JSON")
    _add_model_args(chat)
    chat.add_argument("prompt", help="the user's message")
    chat.add_argument("--adapter", help="a PEFT adapter: a folder, or a name in $LLM_MCP_HOME/adapters")
    chat.add_argument("--tools", help="tools file: a JSON list (OpenAI or MCP shapes) or an MCP "
                                      "tools/list result")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-new-tokens", type=int, default=REPLY_TOKENS)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--no-guide", action="store_true", help="do not hold calls to the tools' "
                      "JSON Schemas (xgrammar)")
    chat.add_argument("--no-ground", action="store_true", help="make calls as the model wrote them: "
                      "no values taken from the conversation, and calls whose identifiers (order numbers, "
                      "emails, …) are nowhere in it made instead of asked about")
    chat.add_argument("--json", action="store_true", help="print one JSON object at the end")
    chat.set_defaults(func=cmd_chat)

    from llm_mcp.data.commands import add_parser as add_data_parser

    add_data_parser(sub)
    from llm_mcp.train.commands import add_parser as add_train_parser

    add_train_parser(sub)
    from llm_mcp.serve.app import add_parser as add_serve_parser

    add_serve_parser(sub)
    from llm_mcp.eval.commands import add_parser as add_eval_parser

    add_eval_parser(sub)
    from llm_mcp.adapters.commands import add_parser as add_adapters_parser

    add_adapters_parser(sub)
    from llm_mcp.tools.commands import add_parser as add_tools_parser

    add_tools_parser(sub)
    from llm_mcp.teach.commands import add_parser as add_teach_parser

    add_teach_parser(sub)

    models = sub.add_parser("models", help="known and cached models")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    mlist = models_sub.add_parser("list", help="aliases and cached conversions")
    mlist.add_argument("--json", action="store_true")
    mlist.set_defaults(func=cmd_models_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` overrides may come after options (argparse only takes them before)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        for noisy in ("transformers", "httpx", "httpx2", "huggingface_hub"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except LLMMCPError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `llm-mcp … | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
