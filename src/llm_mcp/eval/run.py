"""Predict the assistant's reply for each example, greedily, on the server's decode core
(serve/decode.py: prompts that share a prefix decode side by side, a new one joining as soon
as a reply ends), then score.

What is expected of each reply comes as a Case (eval/cases.py); the judgement is eval/match.py's.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from llm_mcp.chat.toolcalls import ParsedReply
from llm_mcp.chat.types import ToolCall
from llm_mcp.config import REPLY_TOKENS
from llm_mcp.eval.cases import Case, from_example
from llm_mcp.eval.match import Verdict, match_calls

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    case: Case
    index: int
    raw: str  # the reply as generated, up to the end-of-turn token
    calls: list[ToolCall]
    errors: list  # chat.toolcalls.ParseError: call blocks that could not be read
    ast: Verdict  # BFCL rules
    exact: bool  # values equal as JSON
    tokens: int  # generated, the end-of-turn token included
    seconds: float  # from the start of its batch to its last token
    withheld: list[ToolCall] = field(default_factory=list)  # calls asked about instead (chat/ground.py)
    taken: list[ToolCall] = field(default_factory=list)  # calls as written, before values were taken from the request
    redone: int = 0  # calls sent back and decoded again, their tool excluded (chat/route.py)
    added: int = 0  # calls asked for beyond the model's own, and kept (chat/more.py)
    filled: int = 0  # arguments asked for beyond the model's own, and kept (chat/more.py)

    @property
    def well_formed(self) -> bool:
        return bool(self.calls) and not self.errors

    @property
    def right_name(self) -> bool:
        return sorted(c.name for c in self.calls) == sorted(self.case.tool_names)

    @property
    def kind(self) -> str:
        """ok, or the kind of failure: malformed, missed-call, false-call, wrong-count,
        wrong-name, wrong-arguments."""
        return "ok" if self.ast.ok else self.ast.kind


@dataclass
class Score:
    predictions: list[Prediction] = field(default_factory=list)
    seconds: float = 0.0

    def _share(self, on_calls: bool, test) -> float:
        group = [p for p in self.predictions if bool(p.case.expected) == on_calls]
        return sum(bool(test(p)) for p in group) / len(group) if group else 0.0

    @property
    def examples(self) -> int:
        return len(self.predictions)

    @property
    def call_examples(self) -> int:
        return sum(bool(p.case.expected) for p in self.predictions)

    @property
    def no_call_examples(self) -> int:
        return self.examples - self.call_examples

    @property
    def exact_rate(self) -> float:
        return self._share(True, lambda p: p.exact)

    @property
    def ast_rate(self) -> float:
        return self._share(True, lambda p: p.ast.ok)

    @property
    def no_call_rate(self) -> float:
        return self._share(False, lambda p: p.ast.ok)

    def summary(self) -> dict:
        """The metrics: rates over the examples that expect calls (or, for no_call, none)."""
        n = max(self.examples, 1)
        return {
            "examples": self.examples, "call_examples": self.call_examples,
            "no_call_examples": self.no_call_examples,
            "well_formed": round(self._share(True, lambda p: p.well_formed), 4),
            "tool_name": round(self._share(True, lambda p: p.right_name), 4),
            "exact": round(self.exact_rate, 4), "ast": round(self.ast_rate, 4),
            "no_call": round(self.no_call_rate, 4),
            "missed_calls": sum(p.kind == "missed-call" for p in self.predictions),
            "false_calls": sum(p.kind == "false-call" for p in self.predictions),
            "withheld_calls": sum(len(p.withheld) for p in self.predictions),
            "taken_calls": sum(len(p.taken) for p in self.predictions),
            "redone_calls": sum(p.redone for p in self.predictions),
            "added_calls": sum(p.added for p in self.predictions),
            "filled_arguments": sum(p.filled for p in self.predictions),
            "mean_latency_s": round(sum(p.seconds for p in self.predictions) / n, 3),
            "mean_new_tokens": round(sum(p.tokens for p in self.predictions) / n, 1),
            "seconds": round(self.seconds, 1),
        }

    def per_tool(self) -> dict[str, dict]:
        """For each expected tool: examples that expect it, and the share matched (AST, exact)."""
        out: dict[str, dict] = {}
        for p in self.predictions:
            for name in sorted(set(p.case.tool_names)):
                row = out.setdefault(name, {"examples": 0, "ast": 0, "exact": 0})
                row["examples"] += 1
                row["ast"] += p.ast.ok
                row["exact"] += p.exact
        return {name: {"examples": r["examples"], "ast": round(r["ast"] / r["examples"], 4),
                       "exact": round(r["exact"] / r["examples"], 4)} for name, r in sorted(out.items())}

    def failures(self, per_kind: int = 3) -> dict[str, list[Prediction]]:
        out: dict[str, list[Prediction]] = {}
        for p in self.predictions:
            if p.kind != "ok" and len(out.setdefault(p.kind, [])) < per_kind:
                out[p.kind].append(p)
        return out


def predict(model, fmt, cases, max_new_tokens: int = REPLY_TOKENS, batch_size: int = 16,
            progress=None, guided: bool = True, grounded: bool = True) -> Score:
    """Greedy replies for every case (or Example: its last assistant turn is the answer) and
    their score; `guided`: calls held to the tools' schemas, as the server does (chat/guide.py);
    `grounded`: calls whose identifiers are not in the conversation withheld (chat/ground.py).
    The model's active adapter (if any) is the one judged; `fmt` renders, guides and parses.

    The prompts are decoded in token order, at most `batch_size` at a time, so neighbours share
    their prefix (the system turn with the tool schemas): computed once, its K/V reused."""
    from llm_mcp.serve.decode import Decoder, Row, decode_all

    cases = [c if isinstance(c, Case) else from_example(c) for c in cases]
    prompts = [fmt.prompt_ids(c.prompt, c.tools) for c in cases]
    order = sorted(range(len(cases)), key=lambda i: prompts[i])
    rows = [Row(prompts[i], fmt, max_new_tokens=max_new_tokens,
                guide=fmt.guide(cases[i].tools) if guided else None, tools=cases[i].tools,
                messages=cases[i].prompt if grounded else None) for i in order]
    score = Score()
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        decode_all(Decoder(lambda: model), rows, batch_size, progress)
    finally:
        model.train(was_training)
    for i, row in zip(order, rows):
        if row.error is not None:
            raise row.error
        # the reply: the text kept before any call sent back (chat/route.py), then the rest; its
        # calls as the decoder parsed them, knowing what it asked for (chat/more.py)
        parser = row.stream.parser
        score.predictions.append(judge(fmt, cases[i], i, row.stream.text(), row.tokens, row.seconds,
                                       grounded, row.redos, parser.added, parser.filled, row.stream.finish()))
    score.seconds = time.perf_counter() - started
    score.predictions.sort(key=lambda p: p.index)
    return score


def judge(fmt, case: Case, index: int, raw: str, tokens: int, seconds: float,
          grounded: bool = True, redone: int = 0, added: int = 0, filled: int = 0,
          parsed: ParsedReply | None = None) -> Prediction:
    """One reply (`raw`: its text, cut at the end of turn) judged against the case: BFCL's AST
    rules and exact match. `grounded`: the calls are checked against the case's conversation
    first, as the server checks them (a withheld call is no call; a value taken from the
    conversation is judged as taken). `parsed`: the reply as its decoder parsed it (an argument
    it asked for and the conversation does not ground is left out, chat/more.py); default: `raw`
    parsed afresh."""
    if parsed is None:
        parsed = fmt.parse(raw, case.tools, case.prompt if grounded else None)
    ast = match_calls(parsed.calls, case.expected, case.tools)
    exact = match_calls(parsed.calls, case.expected, case.tools, strict=True).ok
    if parsed.errors:  # an unreadable call block: no match, and no "no call" either
        kind = "malformed" if case.expected else "false-call"
        ast, exact = Verdict(False, kind, f"unreadable call: {parsed.errors[0].reason}"), False
    return Prediction(case, index, raw, parsed.calls, parsed.errors, ast, exact, tokens, seconds,
                      parsed.withheld, parsed.taken, redone, added, filled)


def columns(specs: list[str], with_base: bool) -> list[tuple[str, Path | None]]:
    """(column name, adapter folder, or None for the base) for adapter names/folders and `base`;
    the base first when asked for or when there is no adapter."""
    from llm_mcp.adapters.card import find_adapter

    runs: list[tuple[str, Path | None]] = []
    for spec in specs:
        folder = None if spec == "base" else find_adapter(spec)
        name = "base" if folder is None else folder.name
        if name in dict(runs):
            name = str(folder)
        runs.append((name, folder))
    if (with_base or not runs) and "base" not in dict(runs):
        runs.insert(0, ("base", None))
    return runs


@dataclass
class Compared:
    scores: dict[str, dict[str, Score]]  # set → column → score
    model: str                           # the base model's spec
    dtype: str


def compare(sets: dict[str, list[Case]], runs: list[tuple[str, Path | None]], *, model: str | None = None,
            dtype: str = "auto", device: str = "auto", gguf_file: str | None = None, chat_format: str = "auto",
            max_new_tokens: int = REPLY_TOKENS, batch_size: int = 16, guided: bool = True, progress=None,
            vllm_url: str | None = None, grounded: bool = True) -> Compared:
    """Every column (`columns`) on every set of cases, the base model loaded once with all the
    adapters on it; each adapter in its card's chat format unless `chat_format` forces one.
    `progress(column)` may give a `(done, total)` callback per column and set. `vllm_url`: decoded
    by that vLLM server instead (serve/vllm.py), the adapters registered with it for the run."""
    from llm_mcp.adapters.card import base_fingerprint, read_card
    from llm_mcp.chat import ChatFormat
    from llm_mcp.config import DEFAULT_MODEL
    from llm_mcp.models import load_model

    cards = {name: read_card(folder) for name, folder in runs if folder}
    model_spec = model or next((c["base_model"]["spec"] for c in cards.values()
                                if c.get("base_model", {}).get("spec")), DEFAULT_MODEL)
    if vllm_url:
        return _compare_on_vllm(sets, runs, model_spec, vllm_url, chat_format, max_new_tokens,
                                batch_size, guided, grounded)
    loaded = load_model(model_spec, dtype=dtype, device=device, gguf_file=gguf_file)
    fingerprint = base_fingerprint(loaded.source).get("sha256")
    for name, card in cards.items():
        theirs = card.get("base_model", {}).get("sha256")
        if theirs and fingerprint and theirs != fingerprint:
            log.warning("adapter %s was trained on %s, not on this %s (weights differ)", name,
                        card["base_model"].get("spec"), model_spec)
    net = loaded.model
    adapters = [(name, folder) for name, folder in runs if folder]
    if adapters:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, str(adapters[0][1]), adapter_name="a0")
        for k, (_, folder) in enumerate(adapters[1:], 1):
            net.load_adapter(str(folder), adapter_name=f"a{k}")
        net.eval()
    forced = None if chat_format == "auto" else chat_format
    scores: dict[str, dict[str, Score]] = {}
    for set_name, cases in sets.items():
        for name, folder in runs:
            fmt = ChatFormat(loaded.tokenizer, forced or (cards[name].get("chat_format") if folder else None))
            if folder:
                net.set_adapter(f"a{[n for n, _ in adapters].index(name)}")
            with net.disable_adapter() if adapters and not folder else nullcontext():
                score = predict(net, fmt, cases, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                progress=progress(name if len(sets) == 1 else f"{set_name}: {name}") if progress else None,
                                guided=guided, grounded=grounded)
            scores.setdefault(set_name, {})[name] = score
            log.info("%s%s: %d examples in %.0fs", "" if len(sets) == 1 else f"{set_name}: ", name,
                     len(cases), score.seconds)
    return Compared(scores, model_spec, str(loaded.dtype).replace("torch.", ""))


def _compare_on_vllm(sets: dict[str, list[Case]], runs: list[tuple[str, Path | None]], model_spec: str,
                     url: str, chat_format: str, max_new_tokens: int, batch_size: int,
                     guided: bool, grounded: bool) -> Compared:
    """`compare` on a vLLM server: each adapter registered under a run-local name (each in its
    card's chat format), scored by the same `judge`, unregistered at the end."""
    import uuid

    from llm_mcp.errors import LLMMCPError
    from llm_mcp.serve.vllm import VLLMEngine

    if chat_format != "auto" and any(folder for _, folder in runs):
        raise LLMMCPError("--chat-format with --engine vllm: adapters are served in their card's "
                          "format there", "leave --chat-format out, or evaluate on the local engine")
    run_id = uuid.uuid4().hex[:12]  # names no other run on a shared vLLM holds
    engine = VLLMEngine(model_spec, url, chat_format=chat_format, max_batch=batch_size,
                        max_new_tokens=max(max_new_tokens, 1), guided=guided, grounded=grounded)
    names: dict[str, str | None] = {}
    try:
        for k, (name, folder) in enumerate(runs):
            names[name] = None
            if folder:
                names[name] = f"eval-{run_id}-{k}"
                engine.load_adapter(names[name], folder)
        scores: dict[str, dict[str, Score]] = {}
        for set_name, cases in sets.items():
            for name, _ in runs:
                score = engine.evaluate(cases, names[name], max_new_tokens=max_new_tokens)
                scores.setdefault(set_name, {})[name] = score
                log.info("%s%s on vLLM: %d examples in %.0fs", "" if len(sets) == 1 else f"{set_name}: ",
                         name, len(cases), score.seconds)
    finally:
        try:
            for registered in [n for n in names.values() if n and n in engine.adapters]:
                engine.unload_adapter(registered)
        except LLMMCPError as err:  # the scores (or the first error) matter more
            log.warning("could not unregister the run's adapters from vLLM: %s", err)
        finally:
            engine.close()
    return Compared(scores, model_spec, f"vllm ({engine.url})")
