"""`llm-mcp train`."""

from __future__ import annotations

import argparse
import os
import sys


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llm_mcp.train.config import describe, load_config

    if args.help_config:
        print(describe())
        return 0
    flags = {"data": args.data, "output": args.output, "eval_data": args.eval_data,
             "tools": args.tools, "model": args.model, "gguf_file": args.gguf_file}
    if args.skip_invalid:
        flags["skip_invalid"] = True
    config = load_config(args.preset, args.config, flags, args.overrides)
    if args.resume and not args.config:  # continue with the settings the run started with
        from llm_mcp.train.recipe import default_output

        saved = Path(config.output or default_output(config)) / "train_config.json"
        if saved.is_file():
            config = load_config(None, str(saved), flags, args.overrides)
    if args.print_config:
        print(config.model_dump_json(indent=1))
        return 0
    from llm_mcp.models.load import quiet_transformers

    quiet_transformers(args.verbose)
    from llm_mcp.train.recipe import train

    result = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # one line from a multi-process run
        print(f"{result.output}", file=sys.stdout)
    return 0


def add_parser(sub) -> None:
    from pathlib import Path

    # listed without importing config.py: pydantic would slow down `llm-mcp --help`
    presets = sorted(p.stem for p in (Path(__file__).parent / "presets").glob("*.yaml"))
    p = sub.add_parser("train", help="train a LoRA adapter on tool-calling examples",
                       description="Train a LoRA adapter. Settings come from a preset, then "
                                   "--config, then the flags, then key=value overrides "
                                   "(e.g. lora.r=16 learning_rate=1e-3 max_steps=50).")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides; `--help-config` lists every key")
    p.add_argument("--data", help="training dataset (.jsonl/.json/.parquet/HF dataset folder)")
    p.add_argument("--output", help="adapter folder (default $LLM_MCP_HOME/adapters/<data stem>)")
    p.add_argument("--eval-data", help="held-out dataset for the eval loss")
    p.add_argument("--tools", help="tool schemas for records that carry none")
    p.add_argument("--model", help="base model (default smollm2-135m-instruct)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="train on the valid examples, listing the dropped ones (default: refuse the file)")
    p.add_argument("--gguf-file", help="which .gguf file, when --model is a folder holding several")
    p.add_argument("--preset", default="default", choices=presets,
                   help="starting settings (default: the measured recipe for small models)")
    p.add_argument("--config", help="a YAML file of settings, over the preset")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in the output folder")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and stop")
    p.add_argument("--help-config", action="store_true", help="list every config key and stop")
    p.set_defaults(func=cmd_train)
