"""`llm-mcp teach`: tools → data → train → evaluate → promote only if better.

1. **Tools**: pulled from a live MCP server (tools/pull.py) or read from a file; saved in the run's
   folder ($LLM_MCP_HOME/teach/NAME-<time>/tools.json).
2. **Data**: the user's files (any format `llm-mcp data` reads), and synthesized examples
   (data/synth) for the tools those files never call — or for every tool when there are no
   files, or when the user gave requests they wrote (`examples`), which ride along with the
   synthesized ones `repeat` times, each time under another tool list. The mix is reported. A
   held-out share of it is set aside (never a copy of the user's requests); train.jsonl is
   checked like any dataset (schemas, duplicates, train/serve parity) before training.
3. **Train** the candidate into adapters/NAME.candidate-<n> (the default recipe, or a preset and
   `key=value` overrides).
4. **Evaluate** the base, the current adapter NAME (if there is one) and the candidate on the
   held-out split and on `--natural` (a file of requests people wrote) when given.
5. **Decide** on the metric (AST match by default) of the set that counts (`--natural` when
   given, else the held-out split): the candidate is promoted only if it beats the base and the
   current adapter there and its no-call accuracy is not more than `margin` below theirs.
   Promoted, it becomes adapters/NAME (the current one is kept as NAME.previous-<n>) and, with
   `server_url`, the running server loads it; otherwise it stays NAME.candidate-<n>. The decision,
   the columns and the data hashes go into the card of the adapter it lands in and the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from llm_mcp.config import REPLY_TOKENS
from llm_mcp.errors import LLMMCPError
from llm_mcp.store import now

log = logging.getLogger(__name__)

METRICS = ("ast", "exact", "tool_name", "well_formed")


@dataclass
class Plan:
    name: str
    tools: list[dict]                    # MCP or OpenAI shapes, as pulled or read
    data: list[str] = field(default_factory=list)
    examples: str | None = None          # requests the user wrote, repeated among the synthesized ones
    repeat: int = 4                      # copies of each of `examples`, each under another tool list
    natural: str | None = None
    n: int = 1280                        # synthesized examples (for all tools; a share when files cover some)
    seed: int = 0
    held_out: float = 0.1
    metric: str = "ast"
    margin: float = 0.05                 # no-call accuracy the candidate may lose
    force: bool = False
    model: str | None = None
    preset: str = "default"
    overrides: list[str] = field(default_factory=list)
    server_url: str | None = None        # a running `llm-mcp serve` to load the promoted adapter into
    server_token: str | None = None
    tools_source: str = ""               # where the tools came from (shown in the card)
    eval_limit: int | None = None        # at most this many held-out examples scored
    max_new_tokens: int = REPLY_TOKENS   # per reply, when scoring
    candidate: str | None = None         # the candidate's folder name (default: the next NAME.candidate-<n>)


@dataclass
class Outcome:
    promoted: bool
    adapter: str                         # the name it is stored under now
    path: Path
    reason: str
    table: dict                          # set → column → summary
    mix: dict
    run_dir: Path
    served: bool = False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_data(plan: Plan, tools: list[dict], run_dir: Path, mine: list[dict]) -> dict:
    """train.jsonl and held_out.jsonl in `run_dir` from the user's files, the requests they wrote
    (`mine`, read by `read_own`) and synthesized examples;
    → the mix (counts, the tools synthesized for, hashes)."""
    from llm_mcp.data.convert import to_record
    from llm_mcp.data.example import issues_error
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.data.records import write_jsonl
    from llm_mcp.data.synth import synthesize

    own: list[dict] = []
    called: Counter = Counter()
    for path in plan.data:
        ds = read_dataset(path, None, tools)
        if ds.errors:
            raise issues_error(path, ds.errors, "nothing trained")
        for ex in ds.examples:
            called.update(c.name for c in ex.calls())
            own.append(to_record(ex, "openai", True))
    names = [t["name"] for t in tools]
    share = bool(plan.data) and not mine  # your requests ride along with synthesis for every tool
    uncovered = [t for t in tools if t["name"] not in called] if share else list(tools)
    n_synth = 0
    if uncovered:
        n_synth = plan.n if not share else max(16 * len(uncovered), plan.n * len(uncovered) // len(tools))
    synth = synthesize(uncovered, n_synth, plan.seed, own=mine, repeat=plan.repeat).records if n_synth or mine else []
    if plan.data:  # the prompt lists all the user's tools, not only the uncovered ones
        for r in synth:
            listed = {t["name"] for t in r["tools"]}
            r["tools"] = r["tools"] + [t for t in tools if t["name"] not in listed]
    records = own + synth
    if not records:
        raise LLMMCPError("no examples to train on", "give --data FILE or tools to synthesize for")
    rng = random.Random(plan.seed)
    yours = {m["input"] for m in mine}  # none of their copies is held out: it would be seen in training
    order = [i for i, r in enumerate(records) if i < len(own) or r["input"] not in yours]
    rng.shuffle(order)
    k = min(max(1, round(len(order) * plan.held_out)), 200) if len(order) > 10 else 0
    held = sorted(order[:k])
    held_set = set(held)
    train = [records[i] for i in range(len(records)) if i not in held_set]
    write_jsonl(run_dir / "train.jsonl", train)
    write_jsonl(run_dir / "held_out.jsonl", [records[i] for i in held])
    return {"user_examples": len(own), "your_requests": len(mine), "repeat": plan.repeat if mine else 0,
            "synthesized": len(synth) - len(mine) * plan.repeat, "train": len(train), "held_out": k,
            "synthesized_for": [t["name"] for t in uncovered] if share else "all",
            "calls_in_user_files": {n: called[n] for n in names if called[n]},
            "sha256": {"train": _sha256(run_dir / "train.jsonl"),
                       "held_out": _sha256(run_dir / "held_out.jsonl"),
                       "tools": _sha256(run_dir / "tools.json"),
                       **({"natural": _sha256(Path(plan.natural))} if plan.natural else {})}}


def _next_free(adapters: Path, stem: str) -> str:
    n = 1
    while (adapters / f"{stem}-{n}").exists():
        n += 1
    return f"{stem}-{n}"


def candidate_name(adapters: Path, name: str) -> str:
    """The folder name the next candidate for `name` trains into: NAME.candidate-<n>."""
    return _next_free(adapters, f"{name}.candidate")


def decide(table: dict, key: str, metric: str, candidate: str, rivals: list[str], margin: float) -> tuple[bool, str]:
    """Does `candidate` beat every rival on `metric` in set `key` without losing more than `margin`
    of no-call accuracy (where the set has no-call examples)? → (yes, the reason in words)."""
    scores = table[key]
    mine = scores[candidate]
    for rival in rivals:
        theirs = scores[rival]
        if mine[metric] <= theirs[metric]:
            return False, (f"{metric} {mine[metric]:.1%} on {key} does not beat {rival}'s {theirs[metric]:.1%}")
        if mine["no_call_examples"] and mine["no_call"] < theirs["no_call"] - margin:
            return False, (f"no-call accuracy {mine['no_call']:.1%} on {key} is more than {margin:.0%} "
                           f"below {rival}'s {theirs['no_call']:.1%}")
    beaten = ", ".join(f"{r} {scores[r][metric]:.1%}" for r in rivals)
    return True, f"{metric} {mine[metric]:.1%} on {key} beats {beaten}"


def _stamp(folder: Path, teach: dict, store, name: str) -> None:
    """The decision into the adapter's card (and README) and its store row."""
    from llm_mcp.adapters.card import CARD, read_card, render_readme

    card = read_card(folder)
    card["teach"] = teach
    tmp = folder / (CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=1, ensure_ascii=False))
    tmp.replace(folder / CARD)
    (folder / "README.md").write_text(render_readme(card, name))
    store.put_adapter(name, folder, card)


def _move(store, adapters: Path, old: str, new: str) -> Path:
    from llm_mcp.adapters.card import read_card

    target = adapters / new
    (adapters / old).rename(target)
    store.delete_adapter(old)
    store.put_adapter(new, target, read_card(target))
    return target


def serve_it(url: str, token: str | None, name: str, timeout: float = 600.0) -> dict:
    """Ask a running `llm-mcp serve` (its MCP endpoint) to load adapter `name` from its store."""
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/mcp") else "/mcp")
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call():
        http = httpx2.AsyncClient(headers=headers, timeout=timeout)
        async with Client(streamable_http_client(endpoint, http_client=http)) as c:
            return await c.call_tool("load_adapter", {"name": name})
    try:
        result = anyio.run(call)
    except Exception as err:  # noqa: BLE001 - the adapter stays promoted on disk either way
        raise LLMMCPError(f"promoted {name}, but the server at {url} could not be told: {type(err).__name__}",
                          f"load it there yourself: MCP load_adapter {{\"name\": \"{name}\"}}") from None
    if result.is_error:
        text = result.content[0].text if result.content else "error"
        raise LLMMCPError(f"promoted {name}, but the server at {url} refused to load it: {text}")
    return result.structured_content or {}


def teach(plan: Plan, progress=print) -> Outcome:
    """The whole loop (see the module's docstring). `progress(line)` hears each stage."""
    from llm_mcp.adapters import registry
    from llm_mcp.chat.types import normalize_tools
    from llm_mcp.config import home_dir
    from llm_mcp.eval import report
    from llm_mcp.eval.cases import read_cases
    from llm_mcp.data.synth import own_summary, read_own
    from llm_mcp.eval.run import compare
    from llm_mcp.serve.engine import check_name
    from llm_mcp.store import open_store
    from llm_mcp.train.config import load_config
    from llm_mcp.train.recipe import train

    check_name(plan.name)
    if plan.metric not in METRICS:
        raise LLMMCPError(f"--metric {plan.metric!r} is not one of {', '.join(METRICS)}")
    if re.search(r"\.(candidate|previous)-\d+$", plan.name):
        raise LLMMCPError(f"{plan.name!r} ends like a kept candidate's name", "choose the name the adapter is served under")
    tools = normalize_tools(plan.tools)
    if not tools:
        raise LLMMCPError("no tools to teach")
    # everything that can be wrong with the input is found before anything is written
    natural_cases = read_cases(plan.natural, tools) if plan.natural else None
    mine = read_own(plan.examples, tools, "nothing trained") if plan.examples else []
    home = home_dir()
    adapters = home / "adapters"
    adapters.mkdir(parents=True, exist_ok=True)
    run_dir = home / "teach" / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "tools.json").write_text(json.dumps({"tools": plan.tools}, indent=1, ensure_ascii=False))

    progress(f"data: {run_dir}")
    for line in own_summary(mine, tools).splitlines() if mine else []:
        progress(f"data: {line}")
    mix = build_data(plan, tools, run_dir, mine)
    if mix["your_requests"]:
        progress(f"data: {mix['your_requests']} requests you wrote, each {mix['repeat']} times under other tool lists")
    progress(f"data: {mix['user_examples']} examples from your files, {mix['synthesized']} synthesized "
             f"(for {', '.join(mix['synthesized_for']) if isinstance(mix['synthesized_for'], list) else 'every tool'}); "
             f"{mix['train']} to train on, {mix['held_out']} held out")
    candidate = plan.candidate or candidate_name(adapters, plan.name)
    if plan.candidate and (adapters / check_name(candidate)).exists():
        raise LLMMCPError(f"adapters/{candidate} already exists", "leave --candidate out: the next free name is chosen")
    flags = {"data": str(run_dir / "train.jsonl"), "output": str(adapters / candidate), "model": plan.model}
    config = load_config(plan.preset, None, flags, [f"seed={plan.seed}", *plan.overrides])
    progress(f"train: {candidate} (train.jsonl is checked like any dataset first)")
    trained = train(config)
    store = open_store(home)
    try:
        registry.discover(store, home)
        current = plan.name if (adapters / plan.name / "adapter_model.safetensors").is_file() else None
        runs = [("base", None)] + ([(plan.name, adapters / plan.name)] if current else []) + [(candidate, trained.output)]
        sets = {"held-out": read_cases(run_dir / "held_out.jsonl", tools)[:plan.eval_limit or None]}
        if natural_cases is not None:
            sets["natural"] = natural_cases
        progress(f"eval: {', '.join(n for n, _ in runs)} on {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}")
        compared = compare(sets, runs, model=config.model, max_new_tokens=plan.max_new_tokens)
        table = {s: {name: score.summary() for name, score in cols.items()} for s, cols in compared.scores.items()}
        for s, cols in compared.scores.items():
            report.write(run_dir / f"eval-{s}", cols, {"data": s, "model": compared.model, "examples": len(sets[s])})
            progress(f"{s}:\n" + report.table(cols))
        key = "natural" if natural_cases is not None else "held-out"
        better, reason = decide(table, key, plan.metric, candidate, [n for n, _ in runs[:-1]], plan.margin)
        promoted = better or plan.force
        if plan.force and not better:
            reason = f"promoted by --force although {reason}"
        teach_card = {"decision": "promoted" if promoted else "kept as candidate", "reason": reason,
                      "metric": plan.metric, "set": key, "margin": plan.margin, "columns": table,
                      "previous": None, "data": mix, "tools_from": plan.tools_source,
                      "run": str(run_dir), "decided": now()}
        name, folder = candidate, trained.output
        if promoted:
            if current:
                previous = _next_free(adapters, f"{plan.name}.previous")
                _move(store, adapters, plan.name, previous)
                teach_card["previous"] = previous
            folder = _move(store, adapters, candidate, plan.name)
            name = plan.name
        _stamp(folder, teach_card, store, name)
    finally:
        store.close()
    (run_dir / "decision.json").write_text(json.dumps(teach_card, indent=1, ensure_ascii=False))
    progress(f"decision: {teach_card['decision']} — {reason}")
    outcome = Outcome(promoted, name, folder, reason, table, mix, run_dir)
    if promoted and plan.server_url:
        serve_it(plan.server_url, plan.server_token, name)
        outcome.served = True
        progress(f"serving: {plan.server_url} now serves {name}")
    if not promoted:
        shutil.copy(run_dir / "decision.json", folder / "teach_decision.json")
    return outcome
