"""`llm-mcp serve`: one process, one engine; MCP over streamable HTTP at /mcp, the OpenAI API
at /v1 and the web page (/ui, its JSON under /api) on the same port, or MCP over stdio.

    Starlette ─ BearerAuth (when a token is set) ─┬─ /v1/models, /v1/chat/completions, /v1/feedback
                                                  ├─ /api/…  (the page's data; /ui itself holds none)
                                                  └─ /mcp  (the SDK's app; Host/Origin checks on)
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path

from llm_mcp.errors import LLMMCPError

log = logging.getLogger(__name__)

TOKEN_ENV = "LLM_MCP_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """Pure ASGI (streams pass through untouched): /mcp, /v1 and /api need `Authorization: Bearer T`.
    The page at /ui is static and holds no data: it asks for the token and sends it to /api."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(("/mcp", "/v1", "/api")):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.token):
                return await _refuse(send, 401, "missing or wrong bearer token", "authentication_error",
                                     "invalid_api_key", [(b"www-authenticate", b"Bearer")])
        await self.app(scope, receive, send)


def build_state(model: str, *, adapters: dict[str, str], allow_dirs: list[str], dtype: str = "auto",
                device: str = "auto", chat_format: str = "auto", max_new_tokens: int = 1024,
                max_batch: int = 16, max_queue: int = 64, guided: bool = True, grounded: bool = True,
                max_batch_tokens: int = 65536, batching: str = "continuous", prefill_chunk: int = 2048,
                prompt_cache_mb: int = 512, record_days: float | None = None, engine: str = "local",
                vllm_url: str | None = None,
                vllm_python: str | None = None, vllm_args: list[str] | None = None):
    from llm_mcp.config import home_dir
    from llm_mcp.serve.engine import Engine
    from llm_mcp.serve.jobs import Jobs
    from llm_mcp.serve.state import State
    from llm_mcp.store import open_store

    home = home_dir()
    dirs = []
    for d in allow_dirs:
        if not Path(d).is_dir():
            raise LLMMCPError(f"--allow-dir {d} is not a folder")
        dirs.append(Path(d).resolve())
    store = open_store(home)
    if engine == "vllm":
        from llm_mcp.serve.vllm import VLLMEngine

        launched = None
        if vllm_url is None:  # --vllm-launch: start one on the same base
            from llm_mcp.serve.vllm import Launched, base_for_vllm

            launched = Launched(base_for_vllm(model), vllm_python or "python", extra=vllm_args or [])
            vllm_url = launched.url
        try:
            backend = VLLMEngine(model, vllm_url, chat_format=chat_format, max_new_tokens=max_new_tokens,
                                 max_batch=max_batch, max_queue=max_queue, guided=guided, launched=launched, grounded=grounded,
                                 store=None if launched else store)  # a launched one starts empty
        except BaseException:
            if launched:
                launched.stop()
            raise
    else:
        backend = Engine(model, dtype=dtype, device=device, chat_format=chat_format,
                         max_new_tokens=max_new_tokens, max_batch=max_batch, max_queue=max_queue,
                         max_batch_tokens=max_batch_tokens, guided=guided, batching=batching,
                         prefill_chunk=prefill_chunk, prompt_cache_mb=prompt_cache_mb, grounded=grounded)
    try:
        state = State(backend, store, Jobs(store, home, model), home, dirs, record_days=record_days)
    except BaseException:
        backend.close()
        raise
    try:
        if record_days is not None:
            from llm_mcp.store import ago

            store.delete_conversations(before=ago(record_days))
        state.discover()
        state.jobs.on_promoted = state.reload_adapter
        if engine == "vllm":  # what this front had registered with the same vLLM server, by the path rules
            backend.replay(lambda name, folder: state.add_adapter(name, state.safe_path(str(folder))),
                           skip=set(adapters))
        from llm_mcp.adapters.card import find_adapter

        for name, folder in adapters.items():
            state.add_adapter(name, find_adapter(folder))
    except BaseException:  # a launched vLLM is not left behind
        state.close()
        raise
    return state


def build_app(state, host: str, port: int, token: str | None, body_timeout: float = 30.0):
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from llm_mcp.serve.mcp_server import build_mcp
    from llm_mcp.serve import web
    from llm_mcp.serve.openai_api import routes

    mcp = build_mcp(state)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    if not is_loopback(host):  # listening elsewhere (token required): that host name too
        hosts += [f"{host}:*", host]
        origins += [f"http://{host}:*", f"https://{host}:*"]
    security = TransportSecuritySettings(enable_dns_rebinding_protection=host not in ("0.0.0.0", "::"),
                                         allowed_hosts=hosts, allowed_origins=origins)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=host)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        async with mcp.session_manager.run():
            yield

    app = Starlette(routes=[*routes(state, security), *web.routes(state, security), Mount("/", app=mcp_app)],
                    lifespan=lifespan)
    app = RequestLimits(app, seconds=body_timeout)
    return BearerAuth(app, token) if token else app


class RequestLimits:
    """Pure ASGI, on every route: a request body over `max_bytes` gets 413, one that has not
    arrived whole within `seconds` of the request's start gets 408 (a slow client cannot hold
    the server). The body is read here and handed on whole; the rest of the stream (a client
    going away) passes through."""

    def __init__(self, app, max_bytes: int = 4 * 1024 * 1024, seconds: float = 30.0):
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    async def __call__(self, scope, receive, send):
        import anyio

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await _refuse(send, 413, "request body too large", headers=[(b"connection", b"close")])
        body, first = bytearray(), None
        try:
            with anyio.fail_after(self.seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        first = message  # the client went away: the app learns it on its first read
                        break
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        return await _refuse(send, 413, "request body too large", headers=[(b"connection", b"close")])
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return await _refuse(send, 408, f"the request body did not arrive within {self.seconds:g} s",
                                 headers=[(b"connection", b"close")])
        queued = [{"type": "http.request", "body": bytes(body), "more_body": False}] if first is None else [first]

        async def replay():
            return queued.pop() if queued else await receive()

        await self.app(scope, replay, send)


async def _refuse(send, status: int, text: str, kind: str = "invalid_request_error",
                  code: str | None = None, headers: list | None = None) -> None:
    """An OpenAI-shaped error answered straight from ASGI (before any app has run)."""
    body = json.dumps({"error": {"message": text, "type": kind, "param": None, "code": code}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def serve(args) -> int:
    """The `llm-mcp serve` command."""
    token = os.environ.get(TOKEN_ENV) or None
    if args.transport == "http" and not is_loopback(args.host) and not token:
        raise LLMMCPError(f"listening on {args.host} needs a token",
                          f"set {TOKEN_ENV}=<a long random string>; clients send it as "
                          "`Authorization: Bearer <token>`")
    if args.engine == "vllm" and not (args.vllm_url or args.vllm_launch):
        raise LLMMCPError("--engine vllm needs --vllm-url URL (a running vLLM server's OpenAI API) "
                          "or --vllm-launch (llm-mcp starts one)",
                          "start one: python -m vllm.entrypoints.openai.api_server --model BASE "
                          "--enable-lora (docs/serving.md, 'vLLM backend')")
    if args.vllm_url and args.vllm_launch:
        raise LLMMCPError("give --vllm-url or --vllm-launch, not both")
    import signal

    # SIGTERM as an exit (an MCP host stopping a stdio server; uvicorn, which shuts down on it and
    # then raises it again for the handler it found): the `finally` below stops jobs and a
    # launched vLLM, also while starting
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    adapters = {}
    for spec in args.adapter or []:
        name, _, folder = spec.partition("=")
        adapters[name] = folder or name
    state = build_state(args.model, adapters=adapters, allow_dirs=args.allow_dir or [], dtype=args.dtype,
                        device=args.device, chat_format=args.chat_format,
                        max_new_tokens=args.max_new_tokens, max_batch=args.max_batch,
                        max_batch_tokens=args.max_batch_tokens, batching=args.batching,
                        prefill_chunk=args.prefill_chunk, prompt_cache_mb=args.prompt_cache_mb,
                        guided=not args.no_guide, grounded=not args.no_ground, engine=args.engine, vllm_url=args.vllm_url,
                        vllm_python=args.vllm_python, vllm_args=args.vllm_arg,
                        record_days=args.record_days if args.record_conversations else None)
    try:
        if args.transport == "stdio":
            from llm_mcp.serve.mcp_server import build_mcp

            print(f"llm-mcp: serving {state.engine.name} over stdio", file=sys.stderr)
            if state.record_days is not None:
                print(recording_text(state), file=sys.stderr)
            build_mcp(state).run("stdio")
            return 0
        import uvicorn

        app = build_app(state, args.host, args.port, token, args.body_timeout)
        shown = f"[{args.host}]" if ":" in args.host else args.host
        print(connect_text(state, f"http://{shown}:{args.port}", token is not None), file=sys.stderr, flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        return 0
    finally:
        state.close()


def connect_text(state, url: str, token: bool) -> str:
    """What the server prints at start: where it listens and how clients connect."""
    models = ", ".join(m["id"] for m in state.model_ids())
    auth = ' -H "Authorization: Bearer $LLM_MCP_TOKEN"' if token else ""
    return "\n".join([
        f"llm-mcp: serving {state.engine.name} on {state.engine.device} with {len(state.engine.adapters)} adapter(s) "
        f"(data directory {state.home})",
        f"  MCP (streamable HTTP): {url}/mcp      e.g. LM Studio mcp.json: "
        f'{{"mcpServers": {{"llm-mcp": {{"url": "{url}/mcp"}}}}}}',
        f"  OpenAI API:            {url}/v1       models: {models}",
        f"  web page:              {url}/ui" + ("  (it asks for the token)" if token else ""),
        f"  try: curl{auth} -H 'Content-Type: application/json' {url}/v1/chat/completions -d '{{\"model\": \"{state.model_ids()[-1]['id']}\", "
        '"messages": [{"role": "user", "content": "Hi"}]}\'',
        "  Claude Desktop (stdio): see docs/clients.md" + ("\n  auth: Bearer token from $LLM_MCP_TOKEN" if token else ""),
        *([recording_text(state)] if state.record_days is not None else []),
    ])


def recording_text(state) -> str:
    return (f"  recording conversations in {state.store.path} (kept {state.record_days:g} days; "
            "feedback: MCP record_feedback or POST /v1/feedback; review: llm-mcp data from-log --show; "
            "delete: llm-mcp data clear-log)")


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the model over MCP (HTTP or stdio) and an OpenAI-compatible API",
                       description="MCP at http://HOST:PORT/mcp and the OpenAI API at /v1 (or MCP "
                                   "over stdio). Binds 127.0.0.1; another --host needs $LLM_MCP_TOKEN.")
    p.add_argument("--model", default="smollm2-135m-instruct", help="base model (alias, hub id, folder, .gguf)")
    p.add_argument("--adapter", action="append", metavar="NAME=DIR",
                   help="load an adapter at start (repeatable); NAME alone loads $LLM_MCP_HOME/adapters/NAME")
    p.add_argument("--transport", choices=["http", "stdio"], default="http")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--allow-dir", action="append", metavar="DIR",
                   help="a folder (besides $LLM_MCP_HOME) whose files MCP tools may read")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--chat-format", choices=["auto", "native", "hermes"], default="auto")
    p.add_argument("--max-new-tokens", type=int, default=1024, help="the most tokens a request may ask for")
    p.add_argument("--max-batch", type=int, default=16, help="rows decoded together, at most")
    p.add_argument("--max-batch-tokens", type=int, default=65536, metavar="N",
                   help="KV-cache tokens in flight, at most (rows × their padded length)")
    p.add_argument("--batching", choices=["continuous", "static"], default="continuous",
                   help="continuous: requests join and leave the running batch at every step; "
                        "static: a batch runs to its end before the next (the earlier policy)")
    p.add_argument("--prefill-chunk", type=int, default=2048, metavar="N",
                   help="joining prompts are prefilled N tokens per forward pass, a decode step of "
                        "the running requests between two (0: a whole prompt at once)")
    p.add_argument("--prompt-cache-mb", type=int, default=512, metavar="MB",
                   help="KV caches of prompts computed lately (tool schemas, conversations so far) kept "
                        "for the next requests that start the same way, at most (0: only the newest)")
    p.add_argument("--engine", choices=["local", "vllm"], default="local",
                   help="local: the model in this process; vllm: generation on the vLLM server at "
                        "--vllm-url, adapters registered through its LoRA API")
    p.add_argument("--vllm-url", metavar="URL", help="a vLLM server's OpenAI API (e.g. "
                   "http://gpu-box:8000); its key, if any, in $LLM_MCP_VLLM_KEY")
    p.add_argument("--vllm-launch", action="store_true",
                   help="start a vLLM server on the same base (loopback, a free port, LoRA at run "
                        "time), forward its output, stop it on exit")
    p.add_argument("--vllm-python", metavar="PATH", help="the Python of vLLM's environment for "
                   "--vllm-launch (default: python on PATH; `make vllm-env` builds .venv-vllm)")
    p.add_argument("--vllm-arg", action="append", metavar="ARG", help="one more argument for the "
                   "launched vLLM (repeatable), e.g. --vllm-arg=--max-lora-rank=64")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="seconds a request body may take to arrive (slower: HTTP 408)")
    p.add_argument("--record-conversations", action="store_true",
                   help="store every chat request and its reply in the data directory's SQLite, for "
                        "feedback and `llm-mcp data from-log` (off by default: conversations are private)")
    p.add_argument("--record-days", type=_days, default=30.0, metavar="DAYS",
                   help="delete recorded conversations older than this (default 30)")
    p.add_argument("--no-guide", action="store_true", help="do not hold calls to the request's "
                   "tool JSON Schemas (xgrammar)")
    p.add_argument("--no-ground", action="store_true", help="send calls as the model wrote them: "
                   "no values taken from the conversation, and calls whose identifiers (order numbers, "
                   "emails, …) are nowhere in it sent instead of asked about")
    p.set_defaults(func=lambda args: _run(args))


def _days(text: str) -> float:
    import argparse
    import math

    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not 0 < days <= 36500:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days in (0, 36500]")
    return days


def _run(args) -> int:
    from llm_mcp.models.load import quiet_transformers

    quiet_transformers(args.verbose)
    return serve(args)
