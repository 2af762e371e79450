"""The web page of `llm-mcp serve` and the JSON routes behind it (`/api/…`).

The page (`/`, `/ui`: plain HTML, CSS and JS in `static/`, no build step) holds no data: every
figure it shows comes from `/api`, which sits behind the same bearer token, Host/Origin checks
and JSON Content-Type rule as `/mcp` and `/v1`. Each route calls what the MCP tools call
(`State`, `Jobs`, `Engine`, `eval.report`); the chat playground talks to `/v1/chat/completions`
itself. A training job's steps stream as Server-Sent Events, the step number as the event id, so
a client that reconnects with `Last-Event-ID` gets only what it missed.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request as HTTPRequest
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError, NotFound
from llm_mcp.serve.jobs import step_records
from llm_mcp.serve.state import State, job_view
from llm_mcp.store import TERMINAL

STATIC = Path(__file__).parent / "static"
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(jsonl|json)$")
MAX_UPLOAD = 2 * 1024 * 1024  # characters of an uploaded dataset (the body limit is 4 MiB)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


class Evaluations:
    """Evaluations started from the page: one at a time in a thread, each written by
    `eval.report.write` into $LLM_MCP_HOME/evals/<id>/ (the files `llm-mcp eval --out` writes)."""

    def __init__(self, state: State):
        self.state, self.folder = state, state.home / "evals"
        self.running: dict[str, dict] = {}
        self._lock = threading.Lock()

    def start(self, dataset: str, models: list, limit: int, max_new_tokens: int) -> dict:
        if not isinstance(models, list) or not models or not all(m is None or isinstance(m, str) for m in models):
            raise LLMMCPError("models must be a non-empty list of adapter names (null: the base model)")
        for m in models:
            if m is not None and m not in self.state.engine.adapters:
                raise LLMMCPError(f"adapter {m!r} is not loaded", "load it first")
        self.state.safe_path(dataset)
        if len({m or "base" for m in models}) != len(models) or "base" in models:
            raise LLMMCPError("models must be different, and no adapter may be called base")
        with self._lock:
            if any(r["status"] == "running" for r in self.running.values()):
                raise LLMMCPError("an evaluation is already running", "wait for it to end")
            eval_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
            self.running[eval_id] = {"id": eval_id, "status": "running", "data": dataset, "models": models,
                                     "done": 0, "error": None}
        threading.Thread(target=self._run, args=(eval_id, dataset, models, limit, max_new_tokens),
                         daemon=True, name=f"llm-mcp-eval-{eval_id}").start()
        return self.running[eval_id]

    def _run(self, eval_id: str, dataset: str, models: list, limit: int, max_new_tokens: int) -> None:
        from llm_mcp.eval.report import write

        entry = self.running[eval_id]
        try:
            scores = {}
            for m in models:
                scores[m or "base"] = self.state.evaluate(dataset, m, limit, max_new_tokens)
                entry["done"] += 1
            write(self.folder / eval_id, scores, {"data": dataset, "model": self.state.engine.name,
                                                  "max_new_tokens": max_new_tokens, "limit": limit})
            entry["status"] = "completed"
        except Exception as err:  # noqa: BLE001 - shown on the page; the server lives on
            entry.update(status="failed", error=str(err))

    def listed(self) -> list[dict]:
        with self._lock:
            out = {k: dict(v) for k, v in self.running.items()}
        for report in sorted(self.folder.glob("*/report.json")) if self.folder.is_dir() else []:
            try:
                data = json.loads(report.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            out[report.parent.name] = {"id": report.parent.name, "status": "completed", "data": data.get("data"),
                                       "models": list(data.get("models", {})), "created": data.get("created")}
        return sorted(out.values(), key=lambda r: r["id"], reverse=True)

    def report(self, eval_id: str) -> dict:
        running = self.running.get(eval_id)
        if running is not None and running["status"] != "completed":
            return running  # its report.json may be being written
        path = self.folder / eval_id / "report.json"
        if not re.fullmatch(r"\w[\w.-]*", eval_id) or not path.is_file():
            raise NotFound(f"no evaluation {eval_id!r}")
        return json.loads(path.read_text())


def routes(state: State, security: TransportSecuritySettings | None = None) -> list[Route]:
    checks = TransportSecurityMiddleware(security)
    evals = Evaluations(state)

    def api(handler, post: bool = False):
        """A JSON route: Host/Origin (and for writes a JSON Content-Type) checked as for /mcp;
        LLMMCPError → 400 (404 for what does not exist), its message and hint in the body."""
        async def route(http: HTTPRequest):
            answer = await checks.validate_request(http, is_post=post)
            if answer is not None:
                return _error(answer.status_code, bytes(answer.body).decode())
            body: dict = {}
            if post:
                try:
                    body = json.loads(await http.body() or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    return _error(400, "the request body is not valid JSON")
                if not isinstance(body, dict):
                    return _error(400, "the request body must be a JSON object")
            try:
                result = await asyncio.to_thread(handler, http.path_params, body, http)
            except LLMMCPError as err:
                return _error(404 if isinstance(err, NotFound) else 400, str(err))
            return result if isinstance(result, (JSONResponse, StreamingResponse)) else JSONResponse(result)
        return route

    def info(params, body, http):
        from llm_mcp.train.config import preset_names

        engine = state.engine
        return {"model": engine.name, "chat_format": engine.fmt.kind, "device": str(engine.device),
                "home": str(state.home), "max_new_tokens": engine.max_new_tokens,
                "models": state.model_ids(), "recording": state.record_days is not None,
                "presets": preset_names()}

    def adapter(params, body, http):
        """The description, the card (none for a folder trained elsewhere) and PEFT's own config."""
        name = params["name"]
        described = state.describe_adapter(name)
        try:
            peft = json.loads((Path(described["path"]) / "adapter_config.json").read_text())
        except (OSError, json.JSONDecodeError):
            peft = None
        return {**described, "card": state.card(name), "peft_config": peft}

    def load(params, body, http):
        return state.load_adapter(params["name"], body.get("path"))

    def datasets(params, body, http):
        folder = state.home / "data"
        files = sorted(folder.glob("*.json*")) if folder.is_dir() else []
        return [{"path": f"data/{f.name}", "bytes": f.stat().st_size} for f in files
                if f.is_file() and not f.name.startswith(".")]

    def upload(params, body, http):
        name, text = body.get("name"), body.get("text")
        if not isinstance(name, str) or not DATASET_NAME.fullmatch(name):
            raise LLMMCPError("name must be a file name ending in .jsonl or .json (letters, digits, . _ -)")
        if not isinstance(text, str) or len(text) > MAX_UPLOAD:
            raise LLMMCPError(f"text must be the file's content, at most {MAX_UPLOAD} characters")
        folder = state.home / "data"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists() and not body.get("replace"):
            raise LLMMCPError(f"data/{name} exists", "choose another name, or send replace: true")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise LLMMCPError("text must be valid Unicode (it holds a lone surrogate)") from None
        partial = folder / f".{name}.part"
        try:
            partial.write_bytes(data)
            partial.replace(target)  # whole or not at all
        finally:
            partial.unlink(missing_ok=True)
        return {"path": f"data/{name}", "bytes": target.stat().st_size}

    def validate(params, body, http):
        return state.validate_dataset(body.get("path"), body.get("tools_path") or None)

    def tools(params, body, http):
        from llm_mcp.chat.types import read_tools_file

        return {"tools": read_tools_file(state.safe_path(body.get("path")))}

    def jobs(params, body, http):
        return [job_view(j) for j in state.store.jobs()]

    def job(params, body, http):
        job_id = params["job_id"]
        return {**job_view(state.jobs.get(job_id)), "log_tail": state.jobs.log_tail(job_id),
                "steps": [_clean(r) for r in step_records(Path(state.jobs.get(job_id)["config"]["output"]))]}

    def check(params, body, http):
        """The training form's options read as the config will read them, before anything starts."""
        try:
            options = state.training_options(body.get("options") or {})
            state.jobs.check(options, body.get("preset") or "default")
        except LLMMCPError as err:
            return {"ok": False, "error": str(err)}
        return {"ok": True, "error": None}

    def start(params, body, http):
        return state.start_training(body.get("dataset"), body.get("name"), body.get("options") or {},
                                    body.get("preset") or "default")

    def cancel(params, body, http):
        return job_view(state.jobs.cancel(params["job_id"]))

    def resume(params, body, http):
        return job_view(state.jobs.resume(params["job_id"]))

    def evaluate(params, body, http):
        limit, tokens = body.get("limit", 100), body.get("max_new_tokens", REPLY_TOKENS)
        whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
        if not whole(limit) or not whole(tokens) or limit < 1 or not 1 <= tokens <= state.engine.max_new_tokens:
            raise LLMMCPError(f"limit must be a whole number ≥ 1 and max_new_tokens one in "
                              f"1..{state.engine.max_new_tokens}")
        return evals.start(body.get("dataset"), body.get("models", [None]), limit, tokens)

    def events(params, body, http):
        job_id = params["job_id"]
        state.jobs.get(job_id)  # 404 before the stream starts
        given = http.headers.get("last-event-id") or http.query_params.get("after") or "0"
        after = int(given) if given.isascii() and given.isdigit() else 0
        return StreamingResponse(_job_events(state, job_id, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def page(http: HTTPRequest):
        return await _static(http, "index.html")

    async def asset(http: HTTPRequest):
        name = http.path_params["name"]
        if name not in ("app.js", "style.css"):
            return _error(404, f"no file {name!r}")
        return await _static(http, name)

    async def _static(http: HTTPRequest, name: str):
        """The page's files: Host checked as everywhere, never framed by another site."""
        answer = await checks.validate_request(http, is_post=False)
        if answer is not None:
            return _error(answer.status_code, bytes(answer.body).decode())
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY",
                                                    "Content-Security-Policy": "default-src 'self'; "
                                                    "frame-ancestors 'none'"})

    get = lambda path, fn: Route(path, api(fn), methods=["GET"])  # noqa: E731
    post = lambda path, fn: Route(path, api(fn, post=True), methods=["POST"])  # noqa: E731
    return [
        Route("/", lambda http: RedirectResponse("/ui"), methods=["GET"]),
        Route("/ui", page, methods=["GET"]),
        Route("/ui/{name}", asset, methods=["GET"]),
        get("/api/info", info),
        get("/api/adapters", lambda p, b, h: state.adapters_listed()),
        get("/api/adapters/{name}", adapter),
        post("/api/adapters/{name}/load", load),
        post("/api/adapters/{name}/unload", lambda p, b, h: state.unload_adapter(p["name"])),
        post("/api/adapters/{name}/delete", lambda p, b, h: state.delete_adapter(p["name"])),
        get("/api/datasets", datasets),
        post("/api/datasets", upload),
        post("/api/datasets/validate", validate),
        post("/api/tools", tools),
        get("/api/jobs", jobs),
        post("/api/jobs", start),
        post("/api/jobs/check", check),
        get("/api/jobs/{job_id}", job),
        get("/api/jobs/{job_id}/events", events),
        post("/api/jobs/{job_id}/cancel", cancel),
        post("/api/jobs/{job_id}/resume", resume),
        get("/api/evals", lambda p, b, h: evals.listed()),
        post("/api/evals", evaluate),
        get("/api/evals/{eval_id}", lambda p, b, h: evals.report(p["eval_id"])),
    ]


async def _job_events(state: State, job_id: str, after: int, poll_s: float = 0.5):
    """`event: step` per logged step after `after` (id: the step), `event: status` when the
    status changes, `event: end` with the job once it has ended; a comment every ~15 s keeps
    proxies from closing a quiet stream."""
    sent, status, quiet = after, None, 0.0
    while True:
        job = await asyncio.to_thread(state.jobs.get, job_id)
        if job["status"] != status:
            status = job["status"]
            yield f"event: status\ndata: {json.dumps(job_view(job))}\n\n"
        for record in await asyncio.to_thread(step_records, Path(job["config"]["output"])):
            if record["step"] > sent:
                sent, quiet = record["step"], 0.0
                yield f"id: {sent}\nevent: step\ndata: {json.dumps(_clean(record))}\n\n"
        if status in TERMINAL:
            yield f"event: end\ndata: {json.dumps(job_view(job))}\n\n"
            return
        quiet += poll_s
        if quiet >= 15:
            quiet = 0.0
            yield ": still running\n\n"
        await asyncio.sleep(poll_s)


def _clean(record: dict) -> dict[str, Any]:
    """A metrics line as JSON a browser reads (NaN and infinities are not JSON)."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
