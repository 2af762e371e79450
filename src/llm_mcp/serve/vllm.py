"""The vLLM backend: generation on a vLLM server, llm-mcp in front (`llm-mcp serve --engine vllm`).

vLLM does the decoding (paged attention, continuous batching, multi-LoRA batches, tensor and
pipeline parallelism, Ray across machines); everything a request means stays here, so a reply is
the local engine's reply:

    request ──Frontend.prepare──▶ token ids, rendered by the adapter's own ChatFormat
            ──POST /v1/completions (stream, return_token_ids, the adapter as `model`)──▶ vLLM
    token ids ──ReplyStream (the local engine's)──▶ text deltas, whole tool calls ──▶ MCP, /v1

Calls are held to the tools' schemas by vLLM's structured outputs with the same xgrammar
structural tag the local guide compiles (chat/guide.structural_tag). Adapters are registered
through vLLM's runtime LoRA API (`/v1/load_lora_adapter`; vLLM started with `--enable-lora` and
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`) after `adapters export-check`'s vLLM rules pass; vLLM
reads the adapter folder itself, so it must see the same path (one machine or a shared disk).
The registrations are kept in SQLite (store.vllm_registrations, by server URL and base): a
front that starts again registers the same adapters, and a watcher registers them again when
vLLM restarts and forgets them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError
from llm_mcp.serve.engine import Adapter, Busy, Cancelled, Fault, Frontend, Gone, Request
from llm_mcp.serve.generate import ReplyStream

log = logging.getLogger(__name__)

SPECS = 256  # structural tags kept (one per tool list and format): clients that vary their tools do not grow it


class Launched:
    """A vLLM server this process started (`llm-mcp serve --engine vllm --vllm-launch`): its
    OpenAI API on a loopback port behind a fresh API key (`key`, handed over in the environment,
    never on the command line), LoRA at run time, the sampling defaults vLLM's own (not the model's
    generation config: greedy stays greedy), its output to `log` (our stderr by default), stopped
    with `stop()` (its whole process group), also when starting is interrupted."""

    def __init__(self, base: str, python: str, *, port: int | None = None, extra: list[str] = (),
                 log=None, env: dict | None = None, key: str | None = None, timeout: float = 600.0):
        import secrets
        import subprocess
        import sys

        import httpx2

        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = key or secrets.token_urlsafe(32)  # `key`: the same one again (a restart)
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_NO_USAGE_STATS": "1",
               **(env or {}), "VLLM_API_KEY": self.key}
        if not shutil.which(python) and not Path(python).is_file():
            raise LLMMCPError(f"no Python at {python} to start vLLM with",
                              "give --vllm-python PATH (a virtual environment with vllm; `make vllm-env` "
                              "builds .venv-vllm with the CPU build)")
        # the `vllm` command of the CPU build fails on its distribution name; the module does not
        command = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", base, "--host", "127.0.0.1",
                   "--port", str(self.port), "--enable-lora", "--max-loras", "4", "--max-lora-rank", "16",
                   "--generation-config", "vllm", *extra]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log or sys.stderr,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            self._wait(httpx2, time.monotonic() + timeout)
        except BaseException:  # a failed, timed-out or interrupted start leaves nothing running
            self.stop()
            raise

    def _wait(self, httpx2, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LLMMCPError(f"vLLM exited with code {self.proc.returncode} while starting",
                                  "its output above says why")
            try:
                if httpx2.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(1)
        raise LLMMCPError(f"vLLM did not answer {self.url}/health in time")

    def stop(self, sig=None) -> None:
        """Signal the whole process group (vLLM's engine processes too), SIGKILL after 30 s."""
        import signal
        import subprocess

        for s in (sig or signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, s)
            except (ProcessLookupError, PermissionError):  # the group is gone
                break
            try:
                self.proc.wait(30)
                break
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        import signal

        self.stop(signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_for_vllm(spec: str) -> str:
    """What vLLM loads for a base llm-mcp resolves: a folder as it is, a GGUF file's converted
    safetensors folder (the one the local engine loads), a hub id as it is."""
    from llm_mcp.models.load import local_dir
    from llm_mcp.models.resolve import resolve

    source = resolve(spec)
    return spec if source.kind == "hub" else local_dir(source)


class VLLMEngine(Frontend):
    """The `vllm` backend: the same requests, adapters and replies as the local Engine, decoded by
    the vLLM server at `url` (its OpenAI API, up to or without `/v1`). `model` is the base vLLM
    serves, read here for its tokenizer only; `max_batch` requests stream from vLLM at once.

    An adapter is registered under a name of its own weights (`NAME@<digest>`): vLLM caches
    prompt prefixes by LoRA name, so new weights in the same folder (a promotion) must not reuse
    the old weights' cache. Every `watch` seconds vLLM's model list is compared with the adapters
    registered, so those a restarted vLLM forgot are registered again before a request needs them.
    With a `store` (a server the user runs, not a launched one), the registrations are kept there
    too, by the server's URL and base, and `replay` registers them again in a front that starts
    again."""

    def __init__(self, model: str, url: str, *, chat_format: str = "auto", max_batch: int = 16,
                 max_queue: int = 64, max_new_tokens: int = 1024, max_prompt_tokens: int = 8192,
                 guided: bool = True, api_key_env: str = "LLM_MCP_VLLM_KEY", timeout: float = 600.0,
                 launched: Launched | None = None, store=None, watch: float = 5.0, grounded: bool = True):
        import httpx2

        from llm_mcp.models.load import load_tokenizer
        from llm_mcp.models.resolve import resolve

        source = resolve(model)
        self.spec, self.source, self.name = model, source, source.name
        self._setup_front(load_tokenizer(source), chat_format, max_new_tokens=max_new_tokens,
                          max_prompt_tokens=max_prompt_tokens, max_queue=max_queue, guided=guided,
                          grounded=grounded)
        self.url = url.rstrip("/").removesuffix("/v1")
        self.launched = launched  # stopped by close()
        self.device = f"vllm at {self.url}"
        self.max_batch = max_batch
        key = launched.key if launched else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx2.Client(base_url=self.url, headers=headers,
                                   timeout=httpx2.Timeout(timeout, connect=10.0))
        try:
            self.served = self._base_model()
            self._same_tokenizer()
        except BaseException:
            self._http.close()
            raise
        self._pool = ThreadPoolExecutor(max_batch, thread_name_prefix="llm-mcp-vllm")
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}  # adapter name (or "") → requests streaming or queued
        self._closed = False
        self._specs: OrderedDict[tuple, str | None] = OrderedDict()  # the last SPECS tool lists' grammars
        self._waiting: dict[int, Request] = {}  # submitted, not started (by id: requests are unhashable)
        self._registry = threading.RLock()  # registering, unregistering, replaying: one at a time
        self.store, self.server = store, f"{self.url}#{self.served}"
        self._stop = threading.Event()
        self._down = False  # the watcher's view: vLLM did not answer its last look
        if watch:
            threading.Thread(target=self._watch, args=(watch,), daemon=True, name="llm-mcp-vllm-watch").start()

    # ---- vLLM's API ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs):
        import httpx2

        try:
            return self._http.request(method, path, **kwargs)
        except httpx2.HTTPError as err:
            raise Fault(f"the vLLM server at {self.url} did not answer ({type(err).__name__}: {err})",
                        "check that it runs (its /health) and that --vllm-url points at it") from None

    def _base_model(self) -> str:
        """The name vLLM serves the base under (the one model without a parent)."""
        answer = self._call("GET", "/v1/models")
        if answer.status_code != 200:
            raise LLMMCPError(f"the vLLM server at {self.url} answered /v1/models with HTTP "
                              f"{answer.status_code}: {answer.text[:200]}",
                              "give its API key in $LLM_MCP_VLLM_KEY if it needs one")
        models = answer.json().get("data", [])
        bases = [m["id"] for m in models if not m.get("parent")]
        if len(bases) != 1:
            raise LLMMCPError(f"the vLLM server at {self.url} serves {len(bases)} base models "
                              f"({', '.join(bases) or 'none'}); llm-mcp fronts one")
        return bases[0]

    def _same_tokenizer(self) -> None:
        """Prompts go to vLLM as token ids: its tokenizer must be --model's. Checked on a probe
        (vLLM's /tokenize); a vLLM without that route is trusted, with a warning."""
        probe = ('<tool_call>{"name": "get_weather", "arguments": {"location": " Zürich"}}</tool_call> 8pm, ¿qué? 東京'
                 + " ".join(self.tokenizer.all_special_tokens))  # the chat format's markers too
        answer = self._call("POST", "/tokenize", json={"model": self.served, "prompt": probe,
                                                        "add_special_tokens": False})
        if answer.status_code != 200:
            log.warning("could not check that vLLM's tokenizer is --model's (/tokenize answered HTTP %d)",
                        answer.status_code)
            return
        theirs, ours = answer.json().get("tokens"), self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        if theirs != ours:
            raise LLMMCPError(f"the vLLM server at {self.url} serves {self.served!r}, whose tokenizer is not "
                              f"the one of --model {self.spec!r} (a probe is {len(theirs or [])} tokens there, "
                              f"{len(ours)} here): prompts are sent as token ids, so replies would be wrong",
                              "start vLLM on the same base as --model, or give --model the base vLLM serves")

    # ---- adapters -----------------------------------------------------------------------------

    def load_adapter(self, name: str, folder: Path) -> Adapter:
        """Register a PEFT adapter folder with vLLM under `name` (replacing one of that name),
        once the export check's vLLM rules pass."""
        from llm_mcp.adapters.export import export_check

        folder = Path(folder).resolve()
        card, fmt = self._adapter_files(name, folder)
        fails = [f for f in export_check(folder) if f.target == "vllm" and f.level == "fail"]
        if fails:
            raise LLMMCPError(f"vLLM cannot serve adapter {name!r}: " + "; ".join(f.what for f in fails),
                              fails[0].fix)
        if name in self.adapters:
            self.unload_adapter(name)
        adapter = Adapter(name, folder, f"{name}@{_digest(folder)}", card, fmt)
        with self._registry:
            self._register(adapter)
            self.adapters[name] = adapter
            if self.store is not None:
                self.store.put_registration(self.server, name, folder)
        return adapter

    def _register(self, adapter: Adapter) -> None:
        """vLLM loads the folder under the adapter's key (its name and weights); in place, so a
        key vLLM still holds (an earlier front's) is no error."""
        answer = self._call("POST", "/v1/load_lora_adapter", json={
            "lora_name": adapter.key, "lora_path": str(adapter.path), "load_inplace": True})
        if answer.status_code != 200:
            raise LLMMCPError(f"vLLM refused adapter {adapter.name!r} from {adapter.path} "
                              f"(HTTP {answer.status_code}): {_message(answer)}",
                              "vLLM must run with --enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "
                              "and a --max-lora-rank at least the adapter's r, and see this folder")

    def unload_adapter(self, name: str, timeout: float = 600.0) -> None:
        """Unregister `name`: its requests streaming now finish first (up to `timeout` seconds),
        new ones fail alone (Gone)."""
        key = self.adapter(name).key
        with self._lock:
            self._leaving.add(name)
        try:
            deadline = time.monotonic() + timeout
            while self._inflight.get(name) and time.monotonic() < deadline:
                time.sleep(0.05)
            with self._registry:
                if self.adapters.get(name) is None or self.adapters[name].key != key:
                    return  # another unload (or a replacement) got there first
                try:
                    answer = self._call("POST", "/v1/unload_lora_adapter", json={"lora_name": key})
                except Fault as err:  # vLLM is down or out of reach: a vLLM that restarts holds no adapters
                    log.warning("unloading adapter %r while %s (if vLLM did not restart, it still holds %s)",
                                name, err.args[0], key)
                else:
                    if answer.status_code not in (200, 404):  # 404: vLLM lost it already (a restart)
                        raise LLMMCPError(f"vLLM would not unload adapter {name!r} (HTTP "
                                          f"{answer.status_code}): {_message(answer)}")
                del self.adapters[name]
                if self.store is not None:
                    self.store.delete_registration(self.server, name)
        finally:
            with self._lock:
                self._leaving.discard(name)

    def replay(self, load, skip=()) -> list[str]:
        """Register again the adapters the store holds for this server (a front starting again),
        each through `load(name, folder)` (the server's own loading, with its path rules), those in
        `skip` left out; one that fails (its folder gone or out of bounds, vLLM refuses it) is
        forgotten, with a warning, unless vLLM failed (kept for the next start). → the names."""
        done = []
        for row in self.store.registrations(self.server) if self.store is not None else []:
            if row["name"] in skip:
                continue
            try:
                load(row["name"], Path(row["path"]))
                done.append(row["name"])
            except Fault as err:
                log.warning("adapter %r not registered again with vLLM now: %s", row["name"], err)
            except LLMMCPError as err:
                log.warning("adapter %r (registered with vLLM before) not registered again: %s",
                            row["name"], err)
                self.store.delete_registration(self.server, row["name"])
        return done

    def _watch(self, every: float) -> None:
        """Every `every` seconds: the adapters vLLM no longer lists (it restarted) registered again."""
        while not self._stop.wait(every):
            try:
                self._look()
            except Exception:  # noqa: BLE001 - the watcher keeps watching
                if not self._stop.is_set():  # (closing closes the client under it)
                    log.exception("watching vLLM failed")

    def _look(self) -> None:
        try:
            answer = self._call("GET", "/v1/models", timeout=10)
        except Fault as err:
            if not self._down:
                log.warning("%s; its adapters are registered again when it is back", err.args[0])
            self._down = True
            return
        if answer.status_code != 200:
            return
        if self._down:
            log.warning("the vLLM server at %s answers again", self.url)
            self._down = False
        listed = {m["id"] for m in answer.json().get("data", []) if m.get("parent")}
        with self._registry:  # (one loaded since the list was read is registered again, harmlessly)
            lost = [a for n, a in self.adapters.items() if a.key not in listed and n not in self._leaving]
            if lost:
                log.warning("vLLM at %s no longer holds %s (it restarted?): registering them again",
                            self.url, ", ".join(repr(a.name) for a in lost))
            for adapter in lost:
                try:
                    self._register(adapter)
                except LLMMCPError as err:  # requests for it fail with vLLM's 404 (Gone) meanwhile
                    log.warning("%s", err)

    def evaluate(self, cases: list, adapter: str | None = None, max_new_tokens: int = REPLY_TOKENS):
        """Tool-call accuracy of the base or an adapter, decoded by vLLM (eval.run.judge, the
        local evaluation's scoring): greedy, guided and grounded as the server does."""
        from llm_mcp.eval.cases import Case, from_example
        from llm_mcp.eval.run import Score, judge

        fmt = self.fmt if adapter is None else self.adapter(adapter).fmt
        cases = [c if isinstance(c, Case) else from_example(c) for c in cases]
        score, started = Score(), time.perf_counter()
        requests = [Request(c.prompt, c.tools, adapter, max_new_tokens) for c in cases]
        for req in requests:
            self.prepare(req)
        for i, req in enumerate(requests):  # through the queue (counted, waited for by unload),
            if i >= self.max_batch:         # at most max_batch of them at a time
                requests[i - self.max_batch].done.wait()
            while True:
                try:
                    self.submit(req)
                    break
                except Busy:  # other callers fill the queue: wait for a place
                    time.sleep(0.05)
        for i, (case, req) in enumerate(zip(cases, requests)):
            req.done.wait()
            if req.error:
                raise req.error
            result = req.result
            score.predictions.append(judge(fmt, case, i, result.raw, result.completion_tokens, result.seconds,
                                           self.grounded))
        score.seconds = time.perf_counter() - started
        return score

    # ---- requests -----------------------------------------------------------------------------

    def submit(self, req: Request) -> Request:
        if not req.prompt:
            self.prepare(req)
        key = req.adapter or ""
        with self._lock:
            if self._closed:
                raise LLMMCPError("the engine is shutting down")
            if sum(self._inflight.values()) >= self.max_queue + self.max_batch:
                raise Busy(f"the server is busy ({sum(self._inflight.values())} requests in flight)",
                           "retry in a moment")
            self._inflight[key] = self._inflight.get(key, 0) + 1
            self._waiting[id(req)] = req
            req.submitted = time.perf_counter()
            self._pool.submit(self._run_counted, req, key)  # under the lock: close() waits for it
        return req

    def cancel(self, req: Request) -> None:
        """Stop `req`: its stream from vLLM is closed at the next chunk (vLLM aborts it)."""
        req.cancelled = True

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:  # requests the pool will never start fail, rather than wait for ever
            stranded = list(self._waiting.values())
            self._waiting.clear()
        for req in stranded:
            self._fail(req, Fault("the server is shutting down"))
        self._http.close()
        if self.launched:
            self.launched.stop()

    def _run_counted(self, req: Request, key: str) -> None:
        with self._lock:
            if self._waiting.pop(id(req), None) is None:  # failed by close() already
                self._inflight[key] -= 1
                return
        try:
            self._run(req)
        except Exception as err:  # noqa: BLE001 - one request fails, the server lives on
            log.exception("vLLM request failed")
            req.error = Fault(f"generation failed on the server: {err}")
        finally:
            with self._lock:
                self._inflight[key] -= 1
            self._done(req)

    def _spec(self, req: Request) -> str | None:
        """The structural tag that holds this request's calls to its tools (one per tool list)."""
        key = (req.fmt.kind, req.prefix, json.dumps(req.tools, sort_keys=True, default=str))
        with self._lock:
            if key in self._specs:
                self._specs.move_to_end(key)
                return self._specs[key]
        spec = req.fmt.guide_spec(req.tools, req.prefix)
        with self._lock:
            self._specs[key] = spec
            while len(self._specs) > SPECS:
                self._specs.popitem(last=False)
        return spec

    def _run(self, req: Request, retried: bool = False) -> None:
        """Stream one reply from vLLM into the request's ReplyStream; the result or the error."""
        import httpx2

        req.error = self._unrunnable(req)
        if req.error is not None:
            return
        adapter = self.adapters.get(req.adapter) if req.adapter else None
        if req.adapter and adapter is None:  # unloaded since the check above
            req.error = Gone(f"adapter {req.adapter!r} was unloaded while the request waited")
            return
        stream = ReplyStream(req.fmt, req.on_event, req.prefix, req.tools, req.ground)
        body = {"model": adapter.key if adapter else self.served, "prompt": req.prompt, "max_tokens": req.max_new_tokens,
                "temperature": req.temperature, "stream": True, "return_token_ids": True,
                "skip_special_tokens": False, "stop_token_ids": req.fmt.stop_token_ids,
                "add_special_tokens": False,
                # plain sampling as the local decoder's, whatever the model's generation config says;
                # the format's stop ids above are the only stops
                "top_p": 1.0, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0,
                "presence_penalty": 0.0, "frequency_penalty": 0.0, "ignore_eos": True}
        spec = self._spec(req) if self.guided and req.tool_choice != "none" else None
        if spec is not None:
            body["structured_outputs"] = {"structural_tag": spec}
        started, first, reason = time.perf_counter(), None, None
        try:
            with self._http.stream("POST", "/v1/completions", json=body) as answer:
                if (answer.status_code == 404 and adapter is not None and self.adapters.get(req.adapter) is adapter
                        and req.adapter not in self._leaving and not retried):
                    # vLLM restarted and forgot the adapter: register it again, once
                    answer.read()
                    log.warning("vLLM did not know adapter %r: registering it again", req.adapter)
                    with self._registry:  # unless it was unloaded meanwhile (then the retry fails alone)
                        if self.adapters.get(req.adapter) is adapter:
                            self._register(adapter)
                    return self._run(req, retried=True)
                if answer.status_code != 200:
                    answer.read()
                    req.error = _refusal(answer, req)
                    return
                for line in answer.iter_lines():
                    if req.cancelled:  # closing the stream makes vLLM abort the request
                        req.error = Cancelled("the request was cancelled")
                        return
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        req.error = Fault(f"vLLM failed mid-reply: {chunk['error'].get('message', chunk['error'])}")
                        return
                    for choice in chunk.get("choices", []):
                        if choice.get("token_ids"):
                            first = first or time.perf_counter()
                            stream.add(choice["token_ids"])
                        reason = choice.get("finish_reason") or reason
        except LLMMCPError as err:  # registering again failed
            req.error = err
            return
        except httpx2.ConnectError as err:
            req.error = Fault(f"the vLLM server at {self.url} did not answer ({err})",
                              "check that it runs (its /health); retry once it is back")
            return
        except httpx2.HTTPError as err:
            req.error = Fault(f"the vLLM server at {self.url} failed during the reply "
                              f"({type(err).__name__}: {err})", "the request may be retried once it is back")
            return
        if reason not in ("stop", "length"):  # aborted by vLLM, or the stream cut off
            req.error = Fault(f"vLLM ended the reply early (finish reason {reason!r})",
                              "retry the request; vLLM's log says why")
            return
        now = time.perf_counter()
        self._result(req, stream, reason, len(stream.ids), now - started, first or now)


def _digest(folder: Path) -> str:
    """A short name for an adapter's weights (its safetensors file's SHA-256)."""
    from llm_mcp.models.load import sha256_files

    return sha256_files([folder / "adapter_model.safetensors"])[:12]


def _message(answer) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300]
    error = body.get("error", body) if isinstance(body, dict) else body
    return str(error.get("message", error) if isinstance(error, dict) else error)[:300]


def _refusal(answer, req: Request) -> LLMMCPError:
    """vLLM's 4xx/5xx for one request as the error the client gets."""
    text, status = _message(answer), answer.status_code
    if status == 404 and req.adapter:
        return Gone(f"vLLM does not know adapter {req.adapter!r} (it may have restarted): {text}",
                    "load it again (MCP tool load_adapter)")
    if status in (429, 503):
        return Busy(f"vLLM is busy (HTTP {status}): {text}", "retry in a moment")
    if status in (400, 413, 422):  # the request itself (too long a prompt, a bad parameter)
        return LLMMCPError(f"vLLM refused the request (HTTP {status}): {text}")
    # its key, its served name (404 for the base), its own failures: the server's side, not the caller's
    return Fault(f"vLLM failed the request (HTTP {status}): {text}",
                 "check the vLLM server (its key in $LLM_MCP_VLLM_KEY, the base it serves, its log)")

