"""Checks on examples: tools and arguments against JSON Schema, turn structure, duplicates, and the
train/serve parity check (design invariant 1). Every problem is an Issue at file:line."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections import Counter

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.validators import validator_for

from llm_mcp.data.example import Example, Issue


def _issue(ex: Example, kind: str, message: str, hint: str = "", level: str = "error") -> Issue:
    return Issue(ex.source, ex.line, kind, message, hint, level)


def _validators(tools: list[dict], cache: dict) -> dict:
    key = json.dumps(tools, sort_keys=True)
    if key not in cache:
        out = {}
        for tool in tools:
            schema = tool["parameters"]
            cls = validator_for(schema, default=Draft202012Validator)
            try:
                cls.check_schema(schema)
                out[tool["name"]] = cls(schema)
            except SchemaError as err:
                out[tool["name"]] = err
        cache[key] = out
    return cache[key]


def check_example(ex: Example, cache: dict | None = None) -> list[Issue]:
    """Structure, tools and arguments of one example."""
    cache = {} if cache is None else cache
    issues: list[Issue] = []
    validators = _validators(ex.tools, cache)
    for name, v in validators.items():
        if isinstance(v, SchemaError):
            issues.append(_issue(ex, "bad-tools", f"the parameters of tool {name!r} are not a valid "
                                 f"JSON Schema: {v.message}"))
    assistants = [m for m in ex.messages if m.role == "assistant"]
    if not assistants:
        issues.append(_issue(ex, "no-assistant", "no assistant turn: nothing to learn from",
                             "add the answer the model should give"))
    elif ex.messages[-1].role != "assistant":
        issues.append(_issue(ex, "trailing-turn", f"the last turn is {ex.messages[-1].role!r}, not "
                             "the assistant's; it is not learned from", level="warning"))
    if not any(m.role == "user" for m in ex.messages):
        issues.append(_issue(ex, "no-user", "no user turn"))
    names = [t["name"] for t in ex.tools]
    for k, m in enumerate(ex.messages):
        if m.role == "assistant" and not m.content.strip() and not m.tool_calls:
            issues.append(_issue(ex, "empty-assistant", f"assistant turn {k} has neither text nor calls"))
        if m.role == "tool" and (k == 0 or not any(
                p.role == "assistant" and p.tool_calls for p in ex.messages[:k])):
            issues.append(_issue(ex, "orphan-tool-result", f"tool result at turn {k} follows no call",
                                 level="warning"))
        for call in m.tool_calls:
            v = validators.get(call.name)
            if v is None:
                close = difflib.get_close_matches(call.name, names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"tools here: {', '.join(names)}" if names else "give the tools (--tools tools.json)")
                issues.append(_issue(ex, "unknown-tool", f"call to {call.name!r}, which is not among "
                                     "the tools", hint))
                continue
            if isinstance(v, SchemaError):
                continue
            for err in sorted(v.iter_errors(call.arguments), key=lambda e: list(e.path)):
                kind = "missing-argument" if err.validator == "required" else "bad-arguments"
                at = "/".join(str(p) for p in err.path)
                issues.append(_issue(ex, kind, f"{call.name}({at or '...'}): {err.message}"))
    return issues


def fingerprint(ex: Example) -> str:
    body = json.dumps([[m.role, m.content, [c.to_dict() for c in m.tool_calls]] for m in ex.messages],
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def check_examples(examples: list[Example]) -> list[Issue]:
    """All per-example checks plus duplicates."""
    cache: dict = {}
    issues: list[Issue] = []
    first: dict[str, Example] = {}
    for ex in examples:
        issues += check_example(ex, cache)
        fp = fingerprint(ex)
        if fp in first:
            issues.append(_issue(ex, "duplicate", f"same conversation as {first[fp].where}",
                                 "duplicates weigh an example twice; remove one", level="warning"))
        else:
            first[fp] = ex
    return issues


def check_parity(ex: Example, fmt) -> tuple[list[Issue], int]:
    """Render with the model's ChatFormat, parse each assistant turn back, and check the mask.

    Returns the issues and the example's token count."""
    from llm_mcp.errors import LLMMCPError

    try:
        r = fmt.render(ex.messages, ex.tools)
    except LLMMCPError as err:
        return [_issue(ex, "render-failed", err.message, err.hint or "")], 0
    except Exception as err:  # a chat template raising on this conversation
        return [_issue(ex, "render-failed", f"the chat template fails: {type(err).__name__}: {err}")], 0
    issues = []
    assistants = [m for m in ex.messages if m.role == "assistant"]
    tok = fmt.tokenizer
    for k, (m, (start, end)) in enumerate(zip(assistants, r.spans)):
        parsed = fmt.parse(r.text[start:end])
        if parsed.calls != m.tool_calls or parsed.content != m.content.strip():
            issues.append(_issue(ex, "parity", f"assistant turn {k} does not parse back to itself: "
                                 f"rendered {r.text[start:end]!r}, parsed calls "
                                 f"{[c.to_dict() for c in parsed.calls]}, text {parsed.content!r}",
                                 "an argument or text the format cannot carry; see docs/data.md"))
            continue
        ids = [i for i, (s, _) in zip(r.input_ids, r.offsets) if start <= s < end]
        masked = [i for i, (s, _), bit in zip(r.input_ids, r.offsets, r.assistant_mask)
                  if bit and start <= s < end]
        if not masked or masked != ids:
            issues.append(_issue(ex, "mask", f"the training mask does not cover assistant turn {k}"))
            continue
        back = fmt.parse(tok.decode(masked))
        if back.calls != m.tool_calls:
            issues.append(_issue(ex, "mask", f"the masked tokens of assistant turn {k} do not "
                                 "decode to its calls (the tokenizer cannot spell some character, or a token "
                                 "straddles the turn's edge)"))
        if fmt.end_of_turn and fmt._token_id(fmt.end_of_turn) != masked[-1]:
            issues.append(_issue(ex, "mask", f"assistant turn {k} does not end with the "
                                 f"end-of-turn token {fmt.end_of_turn!r} in the mask"))
    outside = [s for (s, _), bit in zip(r.offsets, r.assistant_mask)
               if bit and not any(a <= s < b for a, b in r.spans)]
    if outside:
        issues.append(_issue(ex, "mask", "the mask covers tokens outside assistant turns"))
    return issues, len(r.input_ids)


def check_dataset(path, fmt=None, *, data_format: str | None = None, tools: list[dict] | None = None,
                  progress=None, max_length: int | None = None):
    """Everything a dataset is checked for before training, in one place (`llm-mcp train`, `llm-mcp
    data validate`, the MCP tool `validate_dataset`): its records read (`data_format` or any
    format), each example checked against its tools' schemas, duplicates, and — given a ChatFormat
    `fmt` — rendered and parsed back (train/serve parity). `progress(items, label)` may wrap the
    parity loop; `max_length`: a warning for each example rendered longer (training drops it).
    → (Dataset, issues with file:line, token counts of the examples rendered)."""
    from llm_mcp.data.formats import read_dataset
    from llm_mcp.data.tokenize import too_long

    ds = read_dataset(path, data_format, tools)
    issues = ds.issues + check_examples(ds.examples)
    lengths: list[int] = []
    if fmt is not None and ds.examples:
        for ex in (progress(ds.examples, "parity check") if progress else ds.examples):
            found, n = check_parity(ex, fmt)
            issues += found
            if n:
                lengths.append(n)
            if max_length and n > max_length:
                issues.append(too_long(ex, n, max_length))
    return ds, issues, lengths


def summarize(examples: list[Example], lengths: list[int] | None = None) -> dict:
    """The numbers `llm-mcp data validate` and `data stats` print."""
    per_tool: Counter = Counter()
    no_call = multi_call = 0
    tools: set[str] = set()
    for ex in examples:
        calls = ex.calls()
        tools.update(t["name"] for t in ex.tools)
        per_tool.update(c.name for c in calls)
        no_call += not calls
        multi_call += any(len(m.tool_calls) > 1 for m in ex.messages)
    out = {"examples": len(examples), "tools": len(tools), "calls": sum(per_tool.values()),
           "calls_per_tool": dict(per_tool.most_common()), "no_call_examples": no_call,
           "multi_call_examples": multi_call}
    if lengths:
        s = sorted(lengths)
        pick = lambda q: s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]  # noqa: E731
        out["tokens"] = {"min": s[0], "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99),
                         "max": s[-1], "total": sum(s)}
    return out
