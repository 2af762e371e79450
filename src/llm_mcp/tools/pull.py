"""Tools from a live MCP server: `llm-mcp tools pull`.

A real MCP client (the `mcp` SDK's `Client`) connects to the user's server over streamable HTTP
(a URL, with headers such as a bearer token), over stdio (a command it starts), or as an entry of
a host's config file (the `mcpServers` shape Claude Desktop, Cursor and LM Studio share). It
follows `tools/list` pagination and keeps each tool whole (`inputSchema`, `outputSchema`, title,
description, annotations), so the file it writes is an MCP `tools/list` result, which `--tools`
reads everywhere. Every input schema is checked as JSON Schema before anything is written.

Header values are secrets: they go to the server and nowhere else (not into errors or logs).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from llm_mcp.errors import LLMMCPError

MAX_PAGES = 1000


@dataclass
class Source:
    """Where the tools are: `url` (streamable HTTP) or `command` + `args` (stdio)."""

    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None

    @property
    def label(self) -> str:  # never shows header values or the environment
        return self.url if self.url else shlex.join([self.command or "", *self.args])


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise LLMMCPError(f"--header {name.strip() or text[:20]!r}... is not 'Name: value'",
                          'write it like --header "Authorization: Bearer $TOKEN"')
    return name.strip(), value.strip()


def from_command(command: str, env: dict[str, str] | None = None) -> Source:
    parts = shlex.split(command)
    if not parts:
        raise LLMMCPError("--command is empty", 'give the server\'s command line: --command "python my_server.py"')
    return Source(command=parts[0], args=parts[1:], env=env)


def from_config(path: str | Path, name: str | None) -> Source:
    """An entry of `mcpServers` in a host's config file: `command`/`args`/`env`/`cwd` for stdio,
    `url` (or `serverUrl`) and `headers` for HTTP."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as err:
        raise LLMMCPError(f"cannot read config {path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise LLMMCPError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict) or not servers:
        raise LLMMCPError(f"{path} has no \"mcpServers\" entries",
                          'a host config looks like {"mcpServers": {"NAME": {"command": ..., "args": [...]}}}')
    if name is None:
        if len(servers) > 1:
            raise LLMMCPError(f"{path} lists {len(servers)} servers: {', '.join(servers)}",
                              "choose one with --server NAME")
        name = next(iter(servers))
    entry = servers.get(name)
    if not isinstance(entry, dict):
        raise LLMMCPError(f"{path} has no server {name!r}; it has: {', '.join(servers)}")
    url = entry.get("url") or entry.get("serverUrl")
    if url:
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict):
            raise LLMMCPError(f"{path}: headers of server {name!r} must be an object of names to values")
        return Source(url=str(url), headers={str(k): str(v) for k, v in headers.items()})
    if not entry.get("command"):
        raise LLMMCPError(f"{path}: server {name!r} has neither \"url\" nor \"command\"")
    args = entry.get("args") or []
    env = entry.get("env")
    return Source(command=str(entry["command"]), args=[str(a) for a in args],
                  env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else None,
                  cwd=entry.get("cwd"))


def source_of(url: str | None = None, headers: list[str] | None = None, command: str | None = None,
              config: str | None = None, server: str | None = None) -> Source:
    """The one server given on a command line: a URL (with `Name: value` headers), a command, or
    an entry of a host's config file (headers given add to its own)."""
    if sum(map(bool, (url, command, config))) != 1:
        raise LLMMCPError("give one MCP server: a URL, a command or a config file")
    extra = dict(parse_header(h) for h in headers or [])
    if url:
        return Source(url=url, headers=extra)
    if command:
        return from_command(command)
    found = from_config(config, server)
    found.headers.update(extra)
    return found


def _client(source: Source, timeout: float, statuses: list[int]):
    from mcp import Client, StdioServerParameters

    if source.url:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def status(response) -> None:  # the SDK reports a refusal only as "an error response"
            if response.request.method == "POST":  # (a GET for server events may be 405: allowed)
                statuses.append(response.status_code)
        http = httpx2.AsyncClient(headers=source.headers, timeout=timeout, event_hooks={"response": [status]})
        return Client(streamable_http_client(source.url, http_client=http), read_timeout_seconds=timeout)
    from mcp.client.stdio import stdio_client

    env = {**os.environ, **source.env} if source.env else None
    params = StdioServerParameters(command=source.command, args=source.args, env=env, cwd=source.cwd)
    return Client(stdio_client(params, errlog=_stderr()), read_timeout_seconds=timeout)


def _stderr():
    """Where the server's own stderr goes: ours, or the process's when ours is captured."""
    try:
        sys.stderr.fileno()
        return sys.stderr
    except (AttributeError, OSError, ValueError):
        return sys.__stderr__


async def list_tools(source: Source, timeout: float = 30.0, statuses: list[int] | None = None) -> list[dict]:
    """Every tool the server lists, all pages, as MCP tool dicts (camelCase keys). The HTTP
    statuses of its POSTs are appended to `statuses`."""
    tools: list[dict] = []
    async with _client(source, timeout, [] if statuses is None else statuses) as client:
        cursor, seen = None, set()
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools += [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
            if cursor in seen:
                raise LLMMCPError(f"{source.label} returned the tools/list cursor {cursor!r} twice",
                                  "the server's pagination loops; report it to its authors")
            seen.add(cursor)
    return tools


def _reason(err: BaseException, source: Source, timeout: float, statuses: list[int]) -> LLMMCPError:
    """The first cause in an exception (group) that names what went wrong, and the fix."""
    import httpx2

    where = source.label

    def timed_out() -> LLMMCPError:
        return LLMMCPError(f"{where} did not answer within {timeout:g} s", "raise --timeout, or check the server")

    refused = next((code for code in statuses if code >= 400), None)
    if refused in (401, 403):
        return LLMMCPError(f"{where} refused the request ({refused} {'unauthorized' if refused == 401 else 'forbidden'})",
                           'pass its token: --header "Authorization: Bearer $TOKEN"')
    if refused is not None:
        return LLMMCPError(f"{where} answered HTTP {refused}", "is this the server's MCP endpoint (often …/mcp)?")

    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)
            if e.__cause__ is not None:
                walk(e.__cause__)
    walk(err)
    for e in leaves:
        if isinstance(e, LLMMCPError):
            return e
        if isinstance(e, (httpx2.ConnectError, ConnectionRefusedError)):
            return LLMMCPError(f"cannot reach {where}: nothing is listening there",
                               "start the server, or check the host, port and path")
        if isinstance(e, (httpx2.TimeoutException, TimeoutError)):
            return timed_out()
        if isinstance(e, FileNotFoundError):
            return LLMMCPError(f"cannot start {source.command!r}: no such program", "give the full path to the command")
    text = next((str(e) for e in leaves if str(e)), type(err).__name__)
    if any(type(e).__name__ in ("TimeoutError", "MCPError") and "timed out" in str(e).lower() for e in leaves):
        return timed_out()
    return LLMMCPError(f"could not list the tools of {where}: {text[:300]}",
                       "check that it is an MCP server (run it by hand to see its errors)")


def select(tools: list[dict], only: list[str] | None, exclude: list[str] | None) -> list[dict]:
    names = [t.get("name") for t in tools]
    for flag, wanted in (("--only", only), ("--exclude", exclude)):
        missing = [n for n in wanted or [] if n not in names]
        if missing:
            raise LLMMCPError(f"{flag}: no tool named {', '.join(missing)}; the server lists: {', '.join(map(str, names))}")
    return [t for t in tools if (not only or t["name"] in only) and t["name"] not in (exclude or [])]


def check(tools: list[dict], where: str) -> None:
    """Each tool has a name and an input schema that is valid JSON Schema (which tool, which keyword)."""
    from llm_mcp.chat.types import schema_problem

    for t in tools:
        if not isinstance(t.get("name"), str) or not t["name"]:
            raise LLMMCPError(f"{where} lists a tool without a name")
        problem = schema_problem(t.get("inputSchema") or {"type": "object"})
        if problem:
            raise LLMMCPError(f"{where}: the inputSchema of tool {t['name']!r} is not a valid JSON Schema: {problem}",
                              f"fix that schema in the server, or leave the tool out: --exclude {t['name']}")


def pull(source: Source, only: list[str] | None = None, exclude: list[str] | None = None,
         timeout: float = 30.0) -> list[dict]:
    """The server's tools, selected and checked."""
    import anyio

    statuses: list[int] = []
    try:
        tools = anyio.run(list_tools, source, timeout, statuses)
    except (Exception, BaseExceptionGroup) as err:  # noqa: BLE001 - every cause becomes a named error
        raise _reason(err, source, timeout, statuses) from None
    if not tools:
        raise LLMMCPError(f"{source.label} lists no tools", "nothing to learn: is the server configured with its tools?")
    chosen = select(tools, only, exclude)
    if not chosen:
        raise LLMMCPError("--only/--exclude left no tools")
    check(chosen, source.label)
    return chosen
