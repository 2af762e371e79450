"""The client snippets in docs/clients.md work as written: the JSON configs are parsed and used
(the stdio command started by the SDK's stdio client, the URL reached by its HTTP client) and
the `openai` Python snippet is executed against a live server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import Server, random_adapter

REPO = Path(__file__).parent.parent
DOC = (REPO / "docs" / "clients.md").read_text()


def snippet(name: str) -> str:
    found = re.search(rf"<!-- snippet: {name} -->\s*```\w*\n(.*?)```", DOC, re.S)
    assert found, f"no snippet {name} in docs/clients.md"
    return found.group(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_llama) -> Path:
    home = tmp_path_factory.mktemp("clients-home")
    random_adapter(tiny_llama, home / "adapters" / "tools", 3)
    return home


def test_claude_desktop_config_starts_a_working_stdio_server(tiny_llama, home):
    from mcp import Client, StdioServerParameters

    entry = json.loads(snippet("claude-desktop"))["mcpServers"]["llm-mcp"]
    command = shutil.which(entry["command"], path=str(Path(sys.executable).parent))
    assert command, "the llm-mcp script is installed next to this Python"

    async def main():
        params = StdioServerParameters(command=command, args=[*entry["args"], "--model", str(tiny_llama)],
                                       env={"LLM_MCP_HOME": str(home), "HF_HUB_OFFLINE": "1"})
        async with Client(params) as c:
            r = await c.call_tool("chat", {"messages": [{"role": "user", "content": "hi"}], "adapter": "tools",
                                           "max_new_tokens": 3})
            assert not r.is_error and r.structured_content["adapter"] == "tools"
    asyncio.run(main())


def test_lm_studio_url_and_the_openai_snippet_against_a_live_server(tiny_llama, home):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    server = Server(tiny_llama, home, "--adapter", "tools")
    try:
        url = json.loads(snippet("lm-studio"))["mcpServers"]["llm-mcp"]["url"].replace(":8000", f":{server.port}")

        async def main():
            async with Client(streamable_http_client(url)) as c:
                return [m["id"] for m in (await c.call_tool("list_models", {})).structured_content["result"]]
        ids = asyncio.run(main())
        assert ids[-1].endswith(":tools")

        code = snippet("openai-python").replace(":8000", f":{server.port}")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/clients.md", "exec"), {})
        assert out.getvalue().strip()  # it printed the reply and the stream
    finally:
        server.stop()
