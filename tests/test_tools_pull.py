"""`llm-mcp tools pull` against a real MCP server (tests/assets/tool_server.py, written with the SDK's
low-level server, three tools a page): over streamable HTTP with a bearer token, over stdio, and
from a host's config file; every refusal is a named error."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import _port
from llm_mcp.chat.types import read_tools_file
from llm_mcp.cli import main

SERVER = Path(__file__).parent / "assets" / "tool_server.py"
NAMES = ["list_files", "create_ticket", "get_invoice", "book_room", "set_thermostat", "ping", "lookup_customer"]


class ToolServer:
    def __init__(self, *args: str):
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen([sys.executable, str(SERVER), args[0], str(self.port), *args[1:]],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the tool server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def guarded():
    server = ToolServer("http", "s3cret-token")
    yield server
    server.stop()


def pull(capsys, *args: str) -> tuple[int, str]:
    code = main(["tools", "pull", *args])
    err = capsys.readouterr().err
    return code, err


def test_http_with_a_token_follows_every_page_and_keeps_whole_tools(guarded, tmp_path, capsys):
    out = tmp_path / "tools.json"
    code, err = pull(capsys, guarded.url, "--out", str(out))
    assert code == 2 and "refused the request (401 unauthorized)" in err and "--header" in err
    assert not out.exists()

    code, err = pull(capsys, guarded.url, "--header", "Authorization: Bearer s3cret-token", "--out", str(out))
    assert code == 0, err
    assert "s3cret-token" not in err  # the secret is never printed
    tools = json.loads(out.read_text())["tools"]
    assert [t["name"] for t in tools] == NAMES  # three pages of three, three and one
    ticket = tools[1]
    assert ticket["inputSchema"]["properties"]["priority"]["enum"] == ["low", "normal", "high", "urgent"]
    assert ticket["inputSchema"]["properties"]["reporter"]["required"] == ["email"]
    assert ticket["outputSchema"]["required"] == ["ticket_id"]
    assert tools[0]["annotations"] == {"readOnlyHint": True}
    assert tools[6]["inputSchema"]["$defs"]["account"]["pattern"] == "^AC[0-9]{6}$"
    # the file is what --tools reads everywhere
    assert [t["name"] for t in read_tools_file(out)] == NAMES
    assert read_tools_file(out)[3]["parameters"]["required"] == ["room", "date", "start"]


def test_only_exclude_and_stdout(guarded, capsys):
    auth = ["--header", "Authorization: Bearer s3cret-token"]
    assert main(["tools", "pull", guarded.url, *auth, "--only", "ping,get_invoice", "--out", "-"]) == 0
    assert [t["name"] for t in json.loads(capsys.readouterr().out)["tools"]] == ["get_invoice", "ping"]
    assert main(["tools", "pull", guarded.url, *auth, "--exclude", "ping", "--out", "-"]) == 0
    assert "ping" not in [t["name"] for t in json.loads(capsys.readouterr().out)["tools"]]
    code, err = pull(capsys, guarded.url, *auth, "--only", "pong")
    assert code == 2 and "no tool named pong" in err and "list_files" in err


def test_stdio_command_and_host_config_files(tmp_path, capsys):
    out = tmp_path / "t.json"
    code, err = pull(capsys, "--command", f"{sys.executable} {SERVER} stdio", "--out", str(out))
    assert code == 0, err
    assert [t["name"] for t in json.loads(out.read_text())["tools"]] == NAMES

    # Claude Desktop's shape (command/args/env), with a second entry: --server picks it
    config = tmp_path / "claude_desktop_config.json"
    config.write_text(json.dumps({"mcpServers": {
        "files": {"command": sys.executable, "args": [str(SERVER), "stdio"], "env": {"X_SOME_VAR": "1"}},
        "other": {"command": "nowhere"}}}))
    code, err = pull(capsys, "--config", str(config), "--out", str(out))
    assert code == 2 and "lists 2 servers: files, other" in err and "--server" in err
    code, err = pull(capsys, "--config", str(config), "--server", "files", "--out", str(out), "--only", "ping")
    assert code == 0, err
    assert [t["name"] for t in json.loads(out.read_text())["tools"]] == ["ping"]
    code, err = pull(capsys, "--config", str(config), "--server", "other")
    assert code == 2 and "cannot start 'nowhere'" in err


def test_http_entry_of_a_config_with_headers(guarded, tmp_path, capsys):
    config = tmp_path / "mcp.json"  # LM Studio / Cursor: url and headers
    config.write_text(json.dumps({"mcpServers": {"desk": {"url": guarded.url,
                                                          "headers": {"Authorization": "Bearer s3cret-token"}}}}))
    assert main(["tools", "pull", "--config", str(config), "--out", "-", "--only", "book_room"]) == 0
    assert json.loads(capsys.readouterr().out)["tools"][0]["inputSchema"]["properties"]["room"]["enum"][0] == "Atlas"


def test_each_failure_is_named(tmp_path, capsys):
    broken, empty = ToolServer("broken-http"), ToolServer("empty-http")
    try:
        code, err = pull(capsys, broken.url)
        assert code == 2 and "inputSchema of tool 'bad_tool' is not a valid JSON Schema" in err
        assert "properties/n/type" in err and "--exclude bad_tool" in err
        out = tmp_path / "ok.json"
        assert pull(capsys, broken.url, "--exclude", "bad_tool", "--out", str(out))[0] == 0
        assert len(json.loads(out.read_text())["tools"]) == 2
        code, err = pull(capsys, empty.url)
        assert code == 2 and "lists no tools" in err
        code, err = pull(capsys, broken.url.replace("/mcp", "/nope"))
        assert code == 2 and "answered HTTP 404" in err
    finally:
        broken.stop()
        empty.stop()
    code, err = pull(capsys, f"http://127.0.0.1:{_port()}/mcp")
    assert code == 2 and "nothing is listening there" in err
    code, err = pull(capsys, "--command", f"{sys.executable} -c 'import time; time.sleep(60)'", "--timeout", "2")
    assert code == 2 and "did not answer within 2 s" in err
    code, err = pull(capsys, "http://x/mcp", "--header", "no colon here")
    assert code == 2 and "is not 'Name: value'" in err
    code, err = pull(capsys)
    assert code == 2 and "give one server" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"mcpServers": {\n  "a": }')
    code, err = pull(capsys, "--config", str(bad))
    assert code == 2 and f"{bad}:2: not valid JSON" in err
