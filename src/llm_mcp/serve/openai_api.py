"""OpenAI-compatible HTTP: `GET /v1/models`, `POST /v1/chat/completions` (tools, tool_choice,
streaming with tool calls as deltas, usage). Errors come in OpenAI's shape with a 4xx status."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from llm_mcp.chat import CallEvent, TextDelta
from llm_mcp.errors import LLMMCPError
from llm_mcp.serve.engine import Busy, Request
from llm_mcp.serve.state import State


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
          code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


def routes(state: State) -> list[Route]:
    async def models(_: HTTPRequest) -> JSONResponse:
        created = int(time.time())
        return JSONResponse({"object": "list", "data": [
            {"id": m["id"], "object": "model", "created": created, "owned_by": "llm-mcp"}
            for m in state.model_ids()]})

    async def completions(http: HTTPRequest):
        try:
            body = await http.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(400, "the request body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "the request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return error(400, "'messages' must be a non-empty list", param="messages")
        if body.get("n", 1) != 1:
            return error(400, "only n=1 is supported", param="n")
        try:
            adapter = state.adapter_for(body.get("model"))
        except LLMMCPError as err:
            return error(404, str(err), param="model", code="model_not_found")
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")  # None: the engine's default
        temperature = body.get("temperature")
        if not isinstance(max_tokens, (int, type(None))) or (
                temperature is not None and not isinstance(temperature, (int, float))):
            return error(400, "max_tokens must be an integer and temperature a number")
        tools = body.get("tools") or []
        req = Request(messages, tools, adapter, max_tokens, float(temperature or 0.0),
                      body.get("tool_choice") or "auto")
        model_id = body.get("model") or state.engine.name
        stream = bool(body.get("stream"))
        try:
            state.engine.prepare(req)  # a bad request fails here, before anything is sent
        except LLMMCPError as err:
            return error(400, str(err))
        if stream:
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_stream(state, req, model_id, usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            result = await state.engine.agenerate(req)
        except Busy as err:
            return error(429, str(err), kind="rate_limit_error")
        except LLMMCPError as err:
            return error(400, str(err))
        _log(state, model_id, result)
        message: dict[str, Any] = {"role": "assistant", "content": result.content or None}
        if result.tool_calls:
            message["tool_calls"] = [c.to_openai(i) | {"id": _call_id()} for i, c in enumerate(result.tool_calls)]
        return JSONResponse({"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                             "created": int(time.time()), "model": model_id,
                             "choices": [{"index": 0, "message": message, "logprobs": None,
                                          "finish_reason": result.finish_reason}],
                             "usage": result.usage()})

    return [Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"])]


async def _stream(state: State, req: Request, model_id: str, include_usage: bool):
    """Server-sent events: the role, text deltas, each tool call whole as one delta (its index,
    id, name and the JSON arguments), the finish reason, [DONE]."""
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

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
                err = item[1]
                yield "data: " + json.dumps({"error": {"message": str(err), "type": "invalid_request_error"
                                                       if not isinstance(err, Busy) else "rate_limit_error"}}) + "\n\n"
                break
            elif isinstance(item, tuple) and item[0] == "done":
                result = item[1]
                _log(state, model_id, result)
                yield chunk({}, result.finish_reason)
                if include_usage:
                    yield "data: " + json.dumps({"id": chunk_id, "object": "chat.completion.chunk",
                                                 "created": created, "model": model_id, "choices": [],
                                                 "usage": result.usage()}) + "\n\n"
                break
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # the client went away: let the request finish in the engine
            task.add_done_callback(lambda t: t.exception())


def _log(state: State, model_id: str, result) -> None:
    if state.log_requests:
        state.store.log_request("openai", model_id, result.prompt_tokens, result.completion_tokens, result.seconds)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
