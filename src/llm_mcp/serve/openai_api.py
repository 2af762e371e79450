"""OpenAI-compatible HTTP: `GET /v1/models`, `POST /v1/chat/completions` (tools, tool_choice,
streaming with tool calls as deltas, usage), and `POST /v1/feedback` (a verdict on a recorded
reply, by its `id`). Errors come in OpenAI's shape with a 4xx status."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from llm_mcp.chat import CallEvent, TextDelta
from llm_mcp.errors import LLMMCPError
from llm_mcp.serve.engine import Busy, Fault, Gone, Request
from llm_mcp.serve.state import State, UnknownRequest, request_id


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


class ChatBody(BaseModel):
    """What `POST /v1/chat/completions` reads (other OpenAI fields are accepted and ignored);
    every type is held strictly: `"stream": "false"` or `"max_tokens": true` is an error, not a guess."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str | None = None
    messages: list[Any] = Field(min_length=1)
    tools: list[Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=5, allow_inf_nan=False)
    n: int = 1
    stop: str | list[str] | None = None

    @field_validator("temperature", mode="before")
    @classmethod
    def _whole_numbers_too(cls, value):
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class FeedbackBody(BaseModel):
    """What `POST /v1/feedback` reads: the reply's `id`, whether it was right, and when not the
    calls it should have made ([] for none)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str = Field(min_length=1)
    correct: bool
    corrected_calls: list[Any] | None = None
    note: str | None = None


async def _body(http: HTTPRequest, model: type[BaseModel]) -> BaseModel | JSONResponse:
    """The request's JSON read into `model`, or the 400 answer saying what is wrong with it."""
    try:
        return model.model_validate(json.loads(await http.body()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "the request body is not valid JSON")
    except RecursionError:
        return error(400, "the request body is nested too deeply")
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return error(400, f"{where}: {first['msg']}" + (f" ({len(err.errors())} problems)"
                                                        if len(err.errors()) > 1 else ""),
                     param=str(first["loc"][0]) if first["loc"] else None)


def routes(state: State, security: TransportSecuritySettings | None = None) -> list[Route]:
    """The /v1 routes; `security`: the Host/Origin rules of the MCP endpoint, held here too (and
    a JSON Content-Type on POST), so a web page the user visits cannot drive the model."""
    checks = TransportSecurityMiddleware(security)

    async def refused(http: HTTPRequest, post: bool) -> JSONResponse | None:
        answer = await checks.validate_request(http, is_post=post)
        if answer is None:
            return None
        return error(answer.status_code, bytes(answer.body).decode(), kind="permission_error"
                     if answer.status_code in (403, 421) else "invalid_request_error")

    async def models(http: HTTPRequest) -> JSONResponse:
        if (no := await refused(http, post=False)) is not None:
            return no
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": m["id"], "object": "model", "created": created, "owned_by": "llm-mcp"}
            for m in state.model_ids()]})

    async def completions(http: HTTPRequest):
        if (no := await refused(http, post=True)) is not None:
            return no
        body = await _body(http, ChatBody)
        if isinstance(body, JSONResponse):
            return body
        if body.n != 1:
            return error(400, "only n=1 is supported", param="n")
        if body.stop:
            return error(400, "stop sequences are not supported by this server", param="stop")
        try:
            adapter = state.adapter_for(body.model)
        except LLMMCPError as err:
            return error(404, str(err), param="model", code="model_not_found")
        req = Request(body.messages, body.tools or [], adapter,
                      body.max_completion_tokens or body.max_tokens,  # None: the engine's default
                      body.temperature or 0.0, body.tool_choice or "auto")
        model_id, rid = body.model or state.engine.name, request_id()
        try:  # a bad request fails here, before anything is sent; rendering is off the event loop
            await asyncio.to_thread(state.engine.prepare, req)
        except LLMMCPError as err:
            return error(400, str(err))
        if body.stream:
            usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_stream(state, req, model_id, rid, usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            result = await state.engine.agenerate(req)
        except LLMMCPError as err:
            return failed(err)
        state.log("openai", rid, req, result)
        message: dict[str, Any] = {"role": "assistant", "content": result.content or None}
        if result.tool_calls:
            message["tool_calls"] = [c.to_openai(i) | {"id": _call_id()} for i, c in enumerate(result.tool_calls)]
        return JSONResponse({"id": rid, "object": "chat.completion",
                             "created": int(time.time()), "model": model_id,
                             "choices": [{"index": 0, "message": message, "logprobs": None,
                                          "finish_reason": result.finish_reason}],
                             "usage": result.usage()})

    async def feedback(http: HTTPRequest) -> JSONResponse:
        if (no := await refused(http, post=True)) is not None:
            return no
        body = await _body(http, FeedbackBody)
        if isinstance(body, JSONResponse):
            return body
        try:
            return JSONResponse(state.feedback(body.request_id, body.correct, body.corrected_calls, body.note))
        except UnknownRequest as err:
            return error(404, str(err), param="request_id")
        except LLMMCPError as err:
            return error(400, str(err))

    return [Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/feedback", feedback, methods=["POST"])]


async def _stream(state: State, req: Request, model_id: str, chunk_id: str, include_usage: bool):
    """Server-sent events: the role, text deltas, each tool call whole as one delta (its index,
    id, name and the JSON arguments), the finish reason, [DONE]. Every chunk carries `chunk_id`,
    the request's id."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return "data: " + json.dumps({"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                                      "model": model_id, "choices": [{"index": 0, "delta": delta,
                                                                      "logprobs": None, "finish_reason": finish}],
                                      **extra}, ensure_ascii=False) + "\n\n"

    queue: asyncio.Queue = asyncio.Queue()
    calls = 0

    async def run():
        try:
            await queue.put(("done", await state.engine.agenerate(req, on_event=queue.put)))
        except LLMMCPError as err:
            await queue.put(("error", err))

    task = asyncio.create_task(run())
    yield chunk({"role": "assistant", "content": ""})
    try:
        while True:
            item = await queue.get()
            if isinstance(item, TextDelta):
                if item.text:
                    yield chunk({"content": item.text})
            elif isinstance(item, CallEvent):
                if req.tool_choice == "none":
                    continue
                call = item.call.to_openai(calls)
                yield chunk({"tool_calls": [{"index": calls, "id": _call_id(), "type": "function",
                                             "function": call["function"]}]})
                calls += 1
            elif isinstance(item, tuple) and item[0] == "error":
                yield "data: " + json.dumps({"error": json.loads(failed(item[1]).body)["error"]}) + "\n\n"
                break
            elif isinstance(item, tuple) and item[0] == "done":
                result = item[1]
                state.log("openai", chunk_id, req, result)
                yield chunk({}, result.finish_reason)
                if include_usage:
                    yield "data: " + json.dumps({"id": chunk_id, "object": "chat.completion.chunk",
                                                 "created": created, "model": model_id, "choices": [],
                                                 "usage": result.usage()}) + "\n\n"
                break
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # the client went away: its row leaves the batch (Engine.cancel)
            task.cancel()
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


def failed(err: LLMMCPError) -> JSONResponse:
    """An engine error as OpenAI's error: 429 busy, 404 adapter gone, 500 a server fault, else 400."""
    if isinstance(err, Busy):
        return error(429, str(err), kind="rate_limit_error")
    if isinstance(err, Gone):
        return error(404, str(err), param="model", code="model_not_found")
    if isinstance(err, Fault):
        return error(500, str(err), kind="server_error")
    return error(400, str(err))


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
