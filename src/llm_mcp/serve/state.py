"""What the MCP tools and the OpenAI routes share: the engine, the store, the jobs, the rules
for paths and adapter names, and the request log (recorded conversations and their feedback)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError, NotFound
from llm_mcp.serve.engine import Engine, Request, Result, check_name
from llm_mcp.serve.jobs import Jobs
from llm_mcp.store import Store

log = logging.getLogger(__name__)

RESERVED_OPTIONS = {"data", "output", "model", "gguf_file"}  # a server's jobs: it sets these itself
PATH_OPTIONS = ("eval_data", "tools")  # options naming files: held to the data directory
MAX_NOTE = 2000  # characters of a feedback note


class UnknownRequest(NotFound):
    """Feedback on a request id this server has not recorded (HTTP 404)."""


def request_id() -> str:
    """The id a chat reply carries, in both APIs (OpenAI's `chatcmpl-…` shape)."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


@dataclass
class State:
    engine: Engine
    store: Store
    jobs: Jobs
    home: Path
    allow_dirs: list[Path] = field(default_factory=list)
    log_requests: bool = True
    record_days: float | None = None  # recording conversations, kept this many days (None: off)
    record_rows: int = 100_000  # and at most this many

    @property
    def roots(self) -> list[Path]:
        return [self.home.resolve(), *(d.resolve() for d in self.allow_dirs)]

    def safe_path(self, path: str, must_exist: bool = True) -> Path:
        """A path a client sent, resolved (symlinks too) relative to $LLM_MCP_HOME; refused unless
        it ends up inside $LLM_MCP_HOME or an --allow-dir folder."""
        if not isinstance(path, str) or not path or "\0" in path:
            raise LLMMCPError("a path must be a non-empty string")
        raw = Path(path).expanduser()
        resolved = (raw if raw.is_absolute() else self.home / raw).resolve()
        if not any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            roots = ", ".join(str(r) for r in self.roots)
            raise LLMMCPError(f"path {path!r} is outside the folders this server may read ({roots})",
                              "copy the file into the data directory, or start the server with "
                              "--allow-dir FOLDER")
        if must_exist and not resolved.exists():
            raise LLMMCPError(f"{path!r} does not exist (looked at {resolved})")
        return resolved

    def training_options(self, options) -> dict:
        """A client's training options, checked as the config will read them: keys normalised
        (` output`, `lora.r`/`r`), none the server sets itself, paths inside the data directory."""
        from llm_mcp.train.config import option_key

        if options is None:
            return {}
        if not isinstance(options, dict):
            raise LLMMCPError("options must be an object of training config keys")
        out: dict = {}
        for key, value in options.items():
            name = option_key(key)
            if name in out:
                raise LLMMCPError(f"option {name} is given twice")
            out[name] = value
        bad = sorted(RESERVED_OPTIONS & set(out))
        if bad:
            raise LLMMCPError(f"options may not set {', '.join(bad)}: the server chooses them",
                              "pass the dataset as `dataset` and the adapter name as `name`")
        for key in PATH_OPTIONS:
            if out.get(key) is not None:
                out[key] = str(self.safe_path(out[key]))
        return out

    def model_ids(self) -> list[dict]:
        """The base and each loaded adapter as OpenAI-style model ids (`base:adapter`)."""
        base = self.engine.name
        out = [{"id": base, "base": base, "adapter": None}]
        out += [{"id": f"{base}:{name}", "base": base, "adapter": name} for name in sorted(self.engine.adapters)]
        return out

    def adapter_for(self, model_id: str | None) -> str | None:
        """An OpenAI model id → the adapter name (None: the base)."""
        base = self.engine.name
        if not model_id or model_id in (base, self.engine.spec, "default"):
            return None
        name = model_id.split(":", 1)[1] if model_id.startswith(base + ":") else model_id
        if name not in self.engine.adapters:
            known = ", ".join(m["id"] for m in self.model_ids())
            raise LLMMCPError(f"unknown model {model_id!r}", f"models: {known}")
        return name

    def load_adapter(self, name: str, path: str | None = None) -> dict:
        """Load a registered adapter, one in $LLM_MCP_HOME/adapters/<name>, or one at `path`."""
        check_name(name)
        if path:
            folder = self.safe_path(path)
        else:
            known = self.store.adapter(name)
            folder = Path(known["path"]) if known else self.home / "adapters" / name
            if not folder.exists():
                raise NotFound(f"no adapter {name!r} is known",
                                  "give its folder as path, or train it with start_training")
            if not known and not self.is_own_folder(folder):
                raise LLMMCPError(f"adapters/{name} is a symlink or holds one: not served",
                                  "copy the adapter's files into the data directory")
        return self.add_adapter(name, folder)

    def reload_adapter(self, name: str) -> None:
        """An adapter whose folder now holds other weights (a teach job promoted it): served again
        from its folder if it is being served; otherwise nothing to do."""
        if name in self.engine.adapters:
            self.load_adapter(name)

    def add_adapter(self, name: str, folder: Path) -> dict:
        """Load the adapter in `folder` for serving and register it (no path rules: the caller
        checked the folder)."""
        loaded = self.engine.load_adapter(name, folder)
        self.store.put_adapter(name, folder, loaded.card)
        return self.describe_adapter(name)

    def describe_adapter(self, name: str) -> dict:
        row = self.store.adapter(name)
        loaded = self.engine.adapters.get(name)
        if row is None and loaded is None:
            raise NotFound(f"no adapter {name!r}", "list_adapters shows the known ones")
        card = (row or {}).get("card") or (loaded.card if loaded else {})
        metrics = card.get("metrics", {})
        return {"name": name, "path": str(loaded.path if loaded else row["path"]),
                "loaded": loaded is not None, "model_id": f"{self.engine.name}:{name}",
                "base": card.get("base_model", {}).get("spec"),
                "chat_format": card.get("chat_format"),
                "tools": [t["name"] for t in card.get("tools", [])],
                "final_loss": metrics.get("final_loss"), "eval_calls": metrics.get("eval_calls"),
                # what `teach` decided, from the weights being served when they are
                "teach": {k: v for k, v in ((loaded.card if loaded else card).get("teach") or {}).items()
                          if k in ("decision", "reason", "decided", "previous")} or None}

    def adapters_listed(self) -> list[dict]:
        """Every adapter the server knows (the store's and the loaded ones), described."""
        self.discover()
        names = sorted({a["name"] for a in self.store.adapters()} | set(self.engine.adapters))
        return [self.describe_adapter(n) for n in names]

    def card(self, name: str) -> dict:
        """The card in the folder being served (or the registered one); NotFound as describe_adapter."""
        from llm_mcp.adapters.card import read_card

        return read_card(Path(self.describe_adapter(name)["path"]))

    def unload_adapter(self, name: str) -> dict:
        self.engine.unload_adapter(name)
        return self.describe_adapter(name) if self.store.adapter(name) else {"name": name, "loaded": False}

    def delete_adapter(self, name: str) -> dict:
        """Unload and forget an adapter; its files go when they are the data directory's own."""
        from llm_mcp.adapters import registry

        check_name(name)
        self.discover()
        if self.store.adapter(name) is None and name not in self.engine.adapters:
            raise NotFound(f"no adapter {name!r}", "list_adapters shows the known ones")
        if self.jobs.busy(name):
            raise LLMMCPError(f"a training job is making {name!r}", "cancel_job it first")
        if name in self.engine.adapters:
            self.engine.unload_adapter(name)
        deleted = self.store.adapter(name) is not None and registry.delete(self.store, self.home, name)
        return {"name": name, "deleted_files": deleted}

    def validate_dataset(self, path: str, tools_path: str | None = None) -> dict:
        """Every problem of a dataset in the data directory (file:line), the parity check, a summary."""
        from llm_mcp.chat.types import read_tools_file
        from llm_mcp.data.validate import check_dataset, summarize

        file = self.safe_path(path)
        tools = read_tools_file(self.safe_path(tools_path)) if tools_path else None
        ds, issues, lengths = check_dataset(file, self.engine.fmt, tools=tools)
        errors = [i for i in issues if i.level == "error"]
        warnings = [i for i in issues if i.level != "error"]
        return {"path": str(file), "examples": len(ds.examples), "formats": ds.formats,
                "ok": not errors, "errors": [str(i) for i in errors[:100]],
                "warnings": [str(i) for i in warnings[:100]],
                "issues": [{"line": i.line, "level": i.level, "kind": i.kind, "message": i.message,
                            "hint": i.hint} for i in (errors + warnings)[:200]],
                "error_count": len(errors), "warning_count": len(warnings),
                "stats": summarize(ds.examples, lengths)}

    def start_training(self, dataset: str, name: str, options: dict | None = None,
                       preset: str = "default") -> dict:
        options = self.training_options(options)
        return job_view(self.jobs.start(self.safe_path(dataset), name, options, preset))

    def evaluate(self, dataset: str, adapter: str | None = None, limit: int = 100,
                 max_new_tokens: int = REPLY_TOKENS):
        """Score (eval.run) of the base or a loaded adapter on a dataset in the data directory."""
        from llm_mcp.eval.cases import read_cases

        if not 1 <= max_new_tokens <= self.engine.max_new_tokens or limit < 1:
            raise LLMMCPError(f"max_new_tokens must be in 1..{self.engine.max_new_tokens} and limit at least 1")
        cases = read_cases(self.safe_path(dataset))[:limit]
        return self.engine.evaluate(cases, adapter, max_new_tokens)

    def discover(self) -> None:
        """Register adapters found in $LLM_MCP_HOME/adapters that the store does not know."""
        from llm_mcp.adapters.registry import discover

        discover(self.store, self.home)

    def is_own_folder(self, folder: Path) -> bool:
        from llm_mcp.adapters.registry import own_folder

        return own_folder(self.home, folder)

    # ---- the request log

    def log(self, api: str, rid: str, req: Request, result: Result) -> None:
        """A request answered: its sizes and times; and, when the operator turned recording on,
        the conversation itself (messages, tools, adapter, the reply and its calls)."""
        from llm_mcp.chat.types import normalize_tools

        model = f"{self.engine.name}:{req.adapter}" if req.adapter else self.engine.name
        if self.log_requests:
            self.store.log_request(api, model, result.prompt_tokens, result.completion_tokens, result.seconds)
        if self.record_days is None:
            return
        try:
            self.store.add_conversation(
                {"id": rid, "api": api, "base": self.engine.name, "adapter": req.adapter,
                 "messages": req.messages, "tools": normalize_tools(req.tools) if req.tools else [],
                 "content": result.content, "tool_calls": [c.to_dict() for c in result.tool_calls]},
                self.record_days, self.record_rows)
        except Exception:  # the client still gets its reply; the operator sees why it was not kept
            log.exception("request %s was answered but could not be recorded", rid)

    def feedback(self, rid: str, correct: bool, corrected_calls: list | None = None,
                 note: str | None = None) -> dict:
        """A client's verdict on a recorded reply; corrected calls are checked against that
        request's tools. Given again, it replaces the earlier one."""
        from llm_mcp.chat.types import ToolCall
        from llm_mcp.data.fromlog import call_problems

        if self.record_days is None:
            raise UnknownRequest("this server does not record conversations, so no request can take feedback",
                                 "start it with `llm-mcp serve --record-conversations`")
        row = self.store.conversation(rid) if isinstance(rid, str) else None
        if row is None:
            raise UnknownRequest(f"no recorded request {rid!r}",
                                 "use the id of a chat reply (`id` in /v1, `request_id` in MCP); "
                                 f"requests older than {self.record_days:g} days are deleted")
        if correct is not True and correct is not False:
            raise LLMMCPError("correct must be true or false")
        # (a lone surrogate is not printable: it could not be stored as UTF-8)
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE
                                 or not note.replace("\n", " ").replace("\t", " ").isprintable()):
            raise LLMMCPError(f"note must be printable text of at most {MAX_NOTE} characters")
        calls = None
        if corrected_calls is not None:
            if correct:
                raise LLMMCPError("corrected_calls go with correct: false",
                                  "a right reply needs no correction; send correct: false with the calls it should have made")
            if not isinstance(corrected_calls, list):
                raise LLMMCPError("corrected_calls must be a list of calls ({name, arguments})")
            calls = [ToolCall.from_any(c) for c in corrected_calls]
            problems = call_problems(row, calls)
            if problems:
                raise LLMMCPError("corrected_calls do not fit the request's tools: " + "; ".join(problems))
        fixed = None if calls is None else [c.to_dict() for c in calls]
        self.store.set_feedback(rid, correct, fixed, note)
        return {"request_id": rid, "correct": correct, "corrected_calls": fixed, "note": note}

    def close(self) -> None:
        try:
            self.jobs.close()
        finally:
            try:
                self.engine.close()  # a launched vLLM stops here
            finally:
                self.store.close()


def job_view(job: dict) -> dict:
    """A job as clients see it (MCP tools and the web page's /api)."""
    c = job["config"]
    return {"id": job["id"], "name": job["name"], "status": job["status"], "progress": job["progress"],
            "error": job["error"], "dataset": c["dataset"], "output": c["output"],
            "options": c["overrides"], "preset": c.get("preset", "default"),
            "resumed": c.get("resume", False), "created": job["created"],
            "started": job["started"], "ended": job["ended"], "kind": c.get("kind", "train")}
