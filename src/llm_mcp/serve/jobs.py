"""Training jobs beside the server: each one is `llm-mcp train` in its own process.

A job's row in SQLite holds its state; its adapter folder holds its checkpoints and
metrics.jsonl, from which the progress (step, total, loss, ETA) is read. One job runs at a time by
default, the rest wait in order. A server that stops or dies leaves its running job
`interrupted`; `resume` continues it from its last checkpoint (`llm-mcp train --resume`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from llm_mcp.errors import LLMMCPError, NotFound
from llm_mcp.serve.engine import check_name
from llm_mcp.store import Store, now

log = logging.getLogger(__name__)

INTERRUPTED = "the server stopped while the job ran; resume_job continues it"


class Jobs:
    def __init__(self, store: Store, home: Path, model: str, max_running: int = 1, poll_s: float = 0.5):
        self.store, self.home, self.model = store, Path(home), model
        self.max_running, self.poll_s = max_running, poll_s
        self._procs: dict[str, subprocess.Popen] = {}
        self._cancelling: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.on_promoted = None  # called with an adapter name that a teach job promoted
        self.recover()
        self._thread = threading.Thread(target=self._watch, name="llm-mcp-jobs", daemon=True)
        self._thread.start()

    # ---- what the tools call ------------------------------------------------------------------

    def start(self, dataset: Path, name: str, options: dict | None = None, preset: str = "default") -> dict:
        """Queue a training job making adapter `name` from `dataset` (already a checked path),
        `options` over the training `preset`."""
        from llm_mcp.train import checkpoint

        check_name(name)
        output = self.home / "adapters" / name
        if (output / "adapter_config.json").is_file() or checkpoint.checkpoints(output):
            raise LLMMCPError(f"adapter {name!r} already exists in {output}",
                              "choose another name, delete it (delete_adapter), or resume its job")
        if self.busy(name):
            raise LLMMCPError(f"a job making {name!r} is already queued or running")
        overrides = self._overrides(options, {"data": str(dataset), "output": str(output)}, preset)
        return self._queue(uuid.uuid4().hex[:12], name, {"dataset": str(dataset), "output": str(output),
                                                         "model": self.model, "overrides": overrides,
                                                         "preset": preset, "resume": False})

    def check(self, options: dict | None, preset: str = "default") -> list[str]:
        """Options as a training job would read them; every problem in one error."""
        return self._overrides(options, {"data": "-", "output": "-"}, preset)

    def _overrides(self, options: dict | None, flags: dict, preset: str = "default") -> list[str]:
        """`key=value` overrides from MCP options; every bad option is an error before anything starts."""
        from llm_mcp.train.config import load_config, option_key, preset_names

        if preset not in preset_names():  # a name, never a path
            raise LLMMCPError(f"no preset named {preset!r}", f"choose one of {', '.join(preset_names())}")
        overrides = [f"{option_key(k)}={_scalar(v)}" for k, v in (options or {}).items()]
        load_config(preset, None, {**flags, "model": self.model}, overrides)
        return overrides

    def _logs(self) -> Path:
        logs = self.home / "jobs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs

    def _queue(self, job_id: str, name: str, config: dict) -> dict:
        job = self.store.add_job(job_id, name, config, self._logs() / f"{job_id}.log")
        self._kick()
        return self.store.job(job_id) or job

    def start_teach(self, tools: list[dict], name: str, options: dict | None = None, *,
                    natural: Path | None = None, data: list[Path] | None = None, n: int = 1280,
                    force: bool = False, examples: Path | None = None, repeat: int = 4) -> dict:
        """Queue `llm-mcp teach` for adapter `name` on these tools (paths already checked). Its
        progress is the candidate's training; at the end the job's progress holds the decision,
        and a promoted adapter that the server serves is reloaded (`on_promoted`)."""
        from llm_mcp.teach.loop import candidate_name

        check_name(name)
        if self.busy(name):
            raise LLMMCPError(f"a job making {name!r} is already queued or running")
        if not 1 <= n <= 100_000:
            raise LLMMCPError(f"n {n} is not a number of examples in 1..100000")
        if not 1 <= repeat <= 100:
            raise LLMMCPError(f"repeat {repeat} is not a number of copies in 1..100")
        overrides = self._overrides(options, {"data": "-"})
        job_id = uuid.uuid4().hex[:12]
        tools_file = self._logs() / f"{job_id}-tools.json"
        tools_file.write_text(json.dumps({"tools": tools}, ensure_ascii=False))
        output = self.home / "adapters" / candidate_name(self.home / "adapters", name)
        return self._queue(job_id, name, {
            "kind": "teach", "dataset": str(tools_file), "output": str(output), "model": self.model,
            "overrides": overrides, "resume": False,
            "teach": {"natural": str(natural) if natural else None, "data": [str(d) for d in data or []],
                      "examples": str(examples) if examples else None, "repeat": repeat,
                      "n": n, "force": force}})

    def busy(self, name: str) -> bool:
        """Is a job making adapter `name` queued or running?"""
        return any(j["name"] == name and j["status"] in ("queued", "running") for j in self.store.jobs())

    def get(self, job_id: str) -> dict:
        job = self.store.job(job_id)
        if job is None:
            known = ", ".join(j["id"] for j in self.store.jobs()[-10:]) or "none"
            raise NotFound(f"no job {job_id!r}", f"recent jobs: {known}")
        return job

    def cancel(self, job_id: str) -> dict:
        job = self.get(job_id)
        with self._lock:
            if job["status"] == "queued":
                self.store.update_job(job_id, status="cancelled", ended=now())
            elif job["status"] == "running":
                self._cancelling.add(job_id)
                proc = self._procs.get(job_id)
                if proc:
                    proc.send_signal(signal.SIGTERM)
            else:
                raise LLMMCPError(f"job {job_id} has already ended ({job['status']})")
        return self.get(job_id)

    def resume(self, job_id: str) -> dict:
        from llm_mcp.train import checkpoint

        job = self.get(job_id)
        if job["config"].get("kind") == "teach":
            raise LLMMCPError(f"job {job_id} is a teach job: it does not resume", "start it again with teach")
        if job["status"] not in ("interrupted", "cancelled", "failed"):
            raise LLMMCPError(f"job {job_id} is {job['status']}; only interrupted, cancelled or failed "
                              "jobs resume")
        if not checkpoint.checkpoints(Path(job["config"]["output"])):
            raise LLMMCPError(f"job {job_id} left no checkpoint to resume from",
                              "start it again with start_training")
        self.store.update_job(job_id, status="queued", error=None, ended=None,
                              config={**job["config"], "resume": True})
        self._kick()
        return self.get(job_id)

    def log_tail(self, job_id: str, lines: int = 40) -> str:
        path = Path(self.get(job_id)["log_path"] or "")
        if not path.is_file():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ---- life cycle ---------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: a job the last server left running is interrupted (its process, if it
        outlived the server, is stopped: nobody would watch it)."""
        for job in self.store.jobs("running"):
            pid = job.get("pid")
            if pid and _is_our_trainer(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            self.store.update_job(job["id"], status="interrupted", ended=now(), error=INTERRUPTED)

    def close(self) -> None:
        """Stop watching; running jobs are stopped and left `interrupted` (resumable)."""
        self._stop.set()
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                self.store.update_job(job_id, status="interrupted", ended=now(), error=INTERRUPTED)
            self._procs.clear()

    def _kick(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            for job in self.store.jobs("queued"):
                if len(self._procs) >= self.max_running:
                    return
                self._launch(job)

    def _launch(self, job: dict) -> None:
        c = job["config"]
        if c.get("kind") == "teach":
            t = c["teach"]
            cmd = [sys.executable, "-m", "llm_mcp", "teach", "--tools", c["dataset"], "--name", job["name"],
                   "--model", c["model"], "--candidate", Path(c["output"]).name, "--n", str(t["n"]),
                   *(["--natural", t["natural"]] if t["natural"] else []),
                   *[arg for d in t["data"] for arg in ("--data", d)], *(["--force"] if t["force"] else []),
                   *(["--examples", t["examples"], "--repeat", str(t.get("repeat", 4))] if t.get("examples") else []),
                   *c["overrides"]]
        else:
            cmd = [sys.executable, "-m", "llm_mcp", "train", "--data", c["dataset"], "--output", c["output"],
                   "--model", c["model"], "--preset", c.get("preset", "default"),
                   *(["--resume"] if c.get("resume") else []), *c["overrides"]]
        env = {**os.environ, "LLM_MCP_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        with open(job["log_path"], "a") as logfile:
            logfile.write(f"$ {' '.join(cmd)}\n")
            logfile.flush()
            proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env)
        self._procs[job["id"]] = proc
        self.store.update_job(job["id"], status="running", pid=proc.pid, started=now())
        log.info("job %s (%s) started: pid %d", job["id"], job["name"], proc.pid)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._poll()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("job watcher")

    def _poll(self) -> None:
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                job = self.store.job(job_id)
                progress = read_progress(Path(job["config"]["output"]))
                if progress and progress != job["progress"]:
                    self.store.update_job(job_id, progress=progress)
                rc = proc.poll()
                if rc is None:
                    continue
                del self._procs[job_id]
                if job_id in self._cancelling:
                    self._cancelling.discard(job_id)
                    self.store.update_job(job_id, status="cancelled", ended=now(), pid=None)
                elif job["config"].get("kind") == "teach" and rc in (0, 1):
                    self._taught(job)
                elif rc == 0:
                    self._finished(job)
                else:
                    tail = self.log_tail(job_id, 8)
                    self.store.update_job(job_id, status="failed", ended=now(), pid=None,
                                          error=f"exit status {rc}:\n{tail}")
            self._kick()

    def _finished(self, job: dict) -> None:
        from llm_mcp.adapters.card import read_card

        output = Path(job["config"]["output"])
        self.store.put_adapter(job["name"], output, read_card(output))
        self.store.update_job(job["id"], status="completed", ended=now(), pid=None)
        log.info("job %s completed: adapter %s", job["id"], job["name"])

    def _taught(self, job: dict) -> None:
        """`llm-mcp teach` ended with a decision (its last stdout line; it registered the adapters)."""
        outcome = None
        for line in reversed(Path(job["log_path"]).read_text(errors="replace").splitlines()):
            if line.startswith("{") and '"promoted"' in line:
                outcome = json.loads(line)
                break
        if outcome is None:
            self.store.update_job(job["id"], status="failed", ended=now(), pid=None,
                                  error="teach ended without a decision:\n" + self.log_tail(job["id"], 8))
            return
        progress = {**(read_progress(Path(outcome["path"])) or {}), "decision": "promoted" if outcome["promoted"]
                    else "kept as candidate", "adapter": outcome["adapter"], "reason": outcome["reason"]}
        # reloaded before the job is completed: a client that waited for it finds the new weights served
        if outcome["promoted"] and self.on_promoted:
            try:
                self.on_promoted(outcome["adapter"])
            except Exception:  # the decision stands; the old weights keep serving
                log.exception("reloading promoted adapter %s", outcome["adapter"])
        self.store.update_job(job["id"], status="completed", ended=now(), pid=None, progress=progress)
        log.info("job %s (teach %s): %s", job["id"], job["name"], progress["decision"])


def step_records(output: Path) -> list[dict]:
    """A run's logged training steps (metrics.jsonl lines with a loss), in order."""
    path = output / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if isinstance(record, dict) and "loss" in record:
            out.append(record)
    return out


def read_progress(output: Path) -> dict | None:
    """The last logged step of a run: step, total_steps, loss, eta_s."""
    steps = step_records(output)
    if not steps:
        return None
    last = steps[-1]
    step, total = last["step"], last.get("total_steps") or last["step"]
    rate = last.get("elapsed_s", 0) / max(step, 1)
    return {"step": step, "total_steps": total, "loss": round(last["loss"], 5),
            "eta_s": round(rate * (total - step), 1)}


def _scalar(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)


def _is_our_trainer(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"llm_mcp" in cmdline and (b"train" in cmdline or b"teach" in cmdline)
