"""An MCP client session that teaches the served model a set of tools and then uses them.

Start a server first (`llm-mcp serve`), then:

    python examples/mcp_session.py [--url http://127.0.0.1:8000/mcp] [--name tools] [--limit 40]

It copies examples/train.jsonl and examples/test.jsonl into the server's data directory
($LLM_MCP_HOME/data, so run it on the server's machine with the same LLM_MCP_HOME), validates the
training data, trains an adapter with the default recipe (progress notifications while it runs),
evaluates the base model and the adapter on held-out examples, loads the adapter and asks it
something. Every call and its result are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
from pathlib import Path

from mcp import Client
from mcp.client.streamable_http import streamable_http_client

HERE = Path(__file__).parent


def show(tool: str, args: dict, result) -> dict:
    print(f">>> {tool}({json.dumps(args, ensure_ascii=False)[:200]})")
    data = result.structured_content if not result.is_error else {"error": result.content[0].text}
    print("<<< " + json.dumps(data, ensure_ascii=False)[:600])
    return data


async def session(url: str, name: str, limit: int) -> None:
    home = Path(os.environ.get("LLM_MCP_HOME", Path.home() / ".local" / "share" / "llm-mcp"))
    (home / "data").mkdir(parents=True, exist_ok=True)
    for f in ("train.jsonl", "test.jsonl"):
        shutil.copy(HERE / f, home / "data" / f)
    tools = json.loads((HERE / "tools.json").read_text())
    async with Client(streamable_http_client(url)) as c:
        async def call(tool, args, **kw):
            return show(tool, args, await c.call_tool(tool, args, **kw))

        await call("validate_dataset", {"path": "data/train.jsonl"})
        job = await call("start_training", {"dataset": "data/train.jsonl", "name": name})

        async def progress(done, total, message):
            print(f"    progress {done:g}/{total:g}: {message}")
        await call("wait_for_job", {"job_id": job["id"]}, progress_callback=progress)
        await call("evaluate", {"dataset": "data/test.jsonl", "limit": limit})
        await call("load_adapter", {"name": name})
        await call("evaluate", {"dataset": "data/test.jsonl", "adapter": name, "limit": limit})
        question = [{"role": "user", "content": "Can you get the current weather for a city: location Reykjavik."}]
        await call("chat", {"messages": question, "tools": tools, "max_new_tokens": 64})
        await call("chat", {"messages": question, "tools": tools, "adapter": name, "max_new_tokens": 64})
        await call("list_adapters", {})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8000/mcp")
    ap.add_argument("--name", default="tools")
    ap.add_argument("--limit", type=int, default=40, help="held-out examples evaluated per model")
    args = ap.parse_args()
    asyncio.run(session(args.url, args.name, args.limit))


if __name__ == "__main__":
    main()
