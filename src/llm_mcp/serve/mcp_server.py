"""The MCP face of the server, on the official SDK (v2 `MCPServer`): typed tools whose
docstrings are their descriptions, two resource templates, progress notifications while a
training job runs. Expected failures raise the SDK's ToolError (the client sees `isError`)."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from anyio import to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from pydantic import BaseModel, Field

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError
from llm_mcp.serve.engine import Request
from llm_mcp.serve.state import State, job_view, request_id
from llm_mcp.store import TERMINAL

INSTRUCTIONS = """A local language model with LoRA adapters that teach it tools. `chat` asks the
base model or an adapter; `start_training` makes a new adapter from a dataset in the server's data
directory and `wait_for_job` follows it; `evaluate` measures tool-call accuracy; `record_feedback`
marks a recorded reply right or wrong (with the calls it should have made)."""


class ChatResult(BaseModel):
    content: str = Field(description="the assistant's text (empty when it only calls tools)")
    tool_calls: list[dict[str, Any]] = Field(description="calls as {name, arguments}")
    adapter: str | None = Field(description="the adapter that answered (null: the base model)")
    finish_reason: str = Field(description="stop, length or tool_calls")
    usage: dict[str, int]
    request_id: str = Field(description="this reply's id: give it to record_feedback")


def _errors(fn):
    """LLMMCPError → ToolError (isError for the client, the server lives on)."""
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except LLMMCPError as err:
            raise ToolError(str(err)) from err
    return wrapper


def build_mcp(state: State) -> MCPServer:
    mcp = MCPServer("llm-mcp", instructions=INSTRUCTIONS, log_level="WARNING")
    engine, jobs = state.engine, state.jobs

    @mcp.tool()
    @_errors
    async def chat(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                   adapter: str | None = None, max_new_tokens: int | None = None,
                   temperature: float = 0.0) -> ChatResult:
        """Ask the model: OpenAI-style messages, optional tool schemas (OpenAI or MCP shape), an optional adapter name (else the base model), max_new_tokens (default 256 or the server's limit). Returns the text and structured tool calls."""
        req = Request(messages, tools or [], adapter, max_new_tokens, temperature)
        result, rid = await engine.agenerate(req), request_id()
        state.log("mcp", rid, req, result)
        return ChatResult(content=result.content, tool_calls=[c.to_dict() for c in result.tool_calls],
                          adapter=adapter, finish_reason=result.finish_reason, usage=result.usage(),
                          request_id=rid)

    @mcp.tool()
    @_errors
    async def record_feedback(request_id: str, correct: bool,
                              corrected_calls: list[dict[str, Any]] | None = None,
                              note: str | None = None) -> dict[str, Any]:
        """Mark a chat reply right or wrong (servers started with --record-conversations): its `request_id`, `correct`, and when wrong the calls it should have made as [{name, arguments}] ([] for none); `note` is free text. `llm-mcp data from-log` turns marked replies into training data."""
        return state.feedback(request_id, correct, corrected_calls, note)

    @mcp.tool()
    async def list_models() -> list[dict[str, Any]]:
        """The base model and each loaded adapter, with the model id OpenAI clients use for it."""
        return state.model_ids()

    @mcp.tool()
    async def list_adapters() -> list[dict[str, Any]]:
        """Every adapter the server knows (trained here, found in the data directory, or loaded), with whether it is loaded and its held-out tool-call scores."""
        return state.adapters_listed()

    @mcp.tool()
    @_errors
    async def load_adapter(name: str, path: str | None = None) -> dict[str, Any]:
        """Load an adapter for serving under `name`: a known one, or the PEFT folder at `path` (inside the data directory)."""
        return await to_thread.run_sync(state.load_adapter, name, path)

    @mcp.tool()
    @_errors
    async def unload_adapter(name: str) -> dict[str, Any]:
        """Stop serving an adapter (its files stay)."""
        return await to_thread.run_sync(state.unload_adapter, name)

    @mcp.tool()
    @_errors
    async def delete_adapter(name: str) -> dict[str, Any]:
        """Unload an adapter and forget it; its files are deleted when they are in the data directory's adapters folder."""
        return await to_thread.run_sync(state.delete_adapter, name)

    @mcp.tool()
    @_errors
    async def validate_dataset(path: str, tools_path: str | None = None) -> dict[str, Any]:
        """Check a dataset file in the data directory: every problem with file:line, the train/serve parity check, and a summary."""
        found = await to_thread.run_sync(state.validate_dataset, path, tools_path)
        return {k: v for k, v in found.items() if k != "issues"}

    @mcp.tool()
    @_errors
    async def start_training(dataset: str, name: str, options: dict[str, Any] | None = None,
                             preset: str = "default") -> dict[str, Any]:
        """Train a LoRA adapter called `name` on a dataset in the data directory, in a separate process; returns the job (follow it with wait_for_job). `options` are training config keys over the `preset` (default, classic, qlora), e.g. {"max_steps": 50, "lora.r": 8, "eval_data": "test.jsonl"}."""
        return await to_thread.run_sync(state.start_training, dataset, name, options, preset)

    @mcp.tool()
    @_errors
    async def teach(name: str, tools: list[dict[str, Any]], natural: str | None = None,
                    data: list[str] | None = None, n: int = 1280, force: bool = False,
                    options: dict[str, Any] | None = None, examples: str | None = None,
                    repeat: int = 4) -> dict[str, Any]:
        """Teach adapter `name` these tools (MCP or OpenAI shapes) in a separate process: your example files in the data directory (`data`) plus synthesized examples for the tools they miss (`n`; with `examples`, a file of requests you wrote, for every tool, each of yours repeated `repeat` times under other tool lists), a candidate trained, base vs current `name` vs candidate scored on a held-out split and on `natural` (requests people wrote) when given, and the candidate promoted to `name` only if it wins (`force`: anyway). A promoted adapter this server serves is reloaded. Returns the job: follow it with wait_for_job; its progress ends with the decision and the reason."""
        from llm_mcp.chat.types import normalize_tools

        normalize_tools(tools)  # a bad schema is this call's error, not the job's
        options = state.training_options(options)
        found = [state.safe_path(d) for d in data or []]
        asked = state.safe_path(natural) if natural else None
        mine = state.safe_path(examples) if examples else None
        return job_view(await to_thread.run_sync(functools.partial(
            jobs.start_teach, tools, name, options, natural=asked, data=found, n=n, force=force, examples=mine,
            repeat=repeat)))

    @mcp.tool()
    @_errors
    async def get_job(job_id: str) -> dict[str, Any]:
        """A training job: status (queued, running, completed, failed, cancelled, interrupted), progress (step, total_steps, loss, eta_s), error."""
        return job_view(jobs.get(job_id))

    @mcp.tool()
    async def list_jobs() -> list[dict[str, Any]]:
        """Every training job, oldest first."""
        return [job_view(j) for j in state.store.jobs()]

    @mcp.tool()
    @_errors
    async def cancel_job(job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (its checkpoints stay; resume_job continues it)."""
        return job_view(await to_thread.run_sync(jobs.cancel, job_id))

    @mcp.tool()
    @_errors
    async def resume_job(job_id: str) -> dict[str, Any]:
        """Continue an interrupted, cancelled or failed job from its last checkpoint."""
        return job_view(await to_thread.run_sync(jobs.resume, job_id))

    @mcp.tool()
    @_errors
    async def wait_for_job(job_id: str, ctx: Context, timeout_s: float = 3600) -> dict[str, Any]:
        """Wait until a job ends (or timeout_s passes), sending progress notifications (step of total, loss, ETA) as it trains."""
        if not 0 <= timeout_s <= 7 * 86400:  # NaN too
            raise LLMMCPError(f"timeout_s {timeout_s} is not a number of seconds in 0..604800")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sent = None
        while True:
            job = jobs.get(job_id)
            p = job["progress"]
            if p and p != sent and "step" in p:
                sent = p
                await ctx.report_progress(p["step"], p["total_steps"],
                                          f"step {p['step']}/{p['total_steps']} loss {p['loss']:.4f} "
                                          f"eta {p['eta_s']:.0f}s")
            if job["status"] in TERMINAL or loop.time() > deadline:
                return job_view(job)
            await asyncio.sleep(0.25)

    @mcp.tool()
    @_errors
    async def evaluate(dataset: str, adapter: str | None = None, limit: int = 100,
                       max_new_tokens: int = REPLY_TOKENS) -> dict[str, Any]:
        """Tool-call accuracy (BFCL rules) of the base model or a loaded adapter on a dataset in the data directory: AST and exact match, no-call accuracy, per tool. Serving pauses while it runs."""
        score = await to_thread.run_sync(state.evaluate, dataset, adapter, limit, max_new_tokens)
        return {"model": adapter or engine.name, "summary": score.summary(), "per_tool": score.per_tool()}

    @mcp.resource("llm-mcp://adapters/{name}", mime_type="application/json")
    def adapter_card(name: str) -> str:
        """An adapter's card: base model, chat format, tools, LoRA and training config, metrics."""
        try:
            return json.dumps(state.card(name), indent=1)
        except LLMMCPError as err:
            raise ResourceError(err.message) from err

    @mcp.resource("llm-mcp://jobs/{job_id}", mime_type="application/json")
    def job_status(job_id: str) -> str:
        """A training job's status, progress and the tail of its log."""
        try:
            job = jobs.get(job_id)
        except LLMMCPError as err:
            raise ResourceError(err.message) from err
        return json.dumps({**job_view(job), "log_tail": jobs.log_tail(job_id)}, indent=1)

    return mcp

