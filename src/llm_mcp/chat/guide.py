"""Schema-guided decoding of the built-in format's tool calls.

While a reply is inside a `<tool_call>` block, the next token is limited where the tools'
schemas leave a fixed choice:

    {"name": "get_w…           → the tool names
    "arguments": {"loc…         → the chosen tool's parameter names not written yet
    "unit": "cel…               → the parameter's enum, when it is one of strings

Everything else (string and number values, whether to write another argument, text outside
calls) is the model's own choice. So a reply never names a tool or parameter that does not exist
and never writes an enum value outside its enum; measured on the sample tools, most remaining
misses of small adapters were a second call's argument written into the first call.

A slot's candidates are strings that end with the closing quote; a token fits when it is a
prefix of what a candidate still needs, or runs past the end of one (`location":` finishes the
key and goes on). When no candidate is left (every parameter written) nothing is limited.
"""

from __future__ import annotations

import bisect
import json

from llm_mcp.chat.toolcalls import CLOSE, OPEN


class TokenPieces:
    """Every token's text, indexed for prefix questions (one per tokenizer, built once)."""

    def __init__(self, tokenizer):
        special = set(tokenizer.all_special_ids)
        texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        decode = tokenizer.convert_tokens_to_string
        self.by_text: dict[str, list[int]] = {}
        for i, token in enumerate(texts):
            if token is None or i in special:
                continue
            text = decode([token])
            if text and "\ufffd" not in text:  # (half a UTF-8 character spells nothing alone)
                self.by_text.setdefault(text, []).append(i)
        self.sorted = sorted(self.by_text)

    def fitting(self, need: str) -> set[int]:
        """Tokens whose text is a non-empty prefix of `need`, or starts with all of `need`."""
        out: set[int] = set()
        for k in range(1, len(need) + 1):
            out.update(self.by_text.get(need[:k], ()))
        i = bisect.bisect_left(self.sorted, need)
        while i < len(self.sorted) and self.sorted[i].startswith(need):
            out.update(self.by_text[self.sorted[i]])
            i += 1
        return out


class CallGuide:
    """The allowed next tokens of one reply, given its text so far (`allowed`)."""

    def __init__(self, pieces: TokenPieces, tools: list[dict]):
        self.pieces = pieces
        self.tools = {t["name"]: t for t in tools}
        self._cache: dict[tuple, list[int]] = {}

    def allowed(self, text: str) -> list[int] | None:
        """Token ids the next token must be one of, or None when it is free."""
        start = text.rfind(OPEN)
        if start < 0 or CLOSE in text[start:]:
            return None
        slot = _slot(text[start + len(OPEN):])
        if slot is None:
            return None
        kind, partial, name, key, used = slot
        if kind == "name":
            options = list(self.tools)
        else:
            params = ((self.tools.get(name) or {}).get("parameters") or {}).get("properties") or {}
            if kind == "key":
                options = [k for k in params if k not in used]
            else:  # a string value: limited only by a string enum
                spec = params.get(key)
                enum = spec.get("enum") if isinstance(spec, dict) else None
                if not enum or not all(isinstance(v, str) for v in enum):
                    return None
                options = [v for e in enum for v in (e, " " + e)]  # the format's spaced copies too
        needs = sorted({json.dumps(o, ensure_ascii=False)[1:] for o in options})  # 'get_weather"'
        needs = [n[len(partial):] for n in needs if n.startswith(partial) and len(n) > len(partial)]
        if not needs:
            return None
        cache_key = tuple(needs)
        if cache_key not in self._cache:
            ids: set[int] = set()
            for need in needs:
                ids |= self.pieces.fitting(need)
            self._cache[cache_key] = sorted(ids)
        return self._cache[cache_key] or None


def _slot(block: str):
    """Where a call's JSON text ends: ("name"|"key"|"value", the string so far as written (JSON
    escapes included), the tool name, the parameter, the parameters written), or None when it
    is not inside a string the schema decides."""
    stack: list[dict] = []  # one per open object/array: {"obj", "key", "keys", "want_key"}
    name = None
    in_string, is_key, buf, escape = False, False, [], False
    for ch in block:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
                text = "".join(buf)
                try:
                    value = json.loads(f'"{text}"')
                except ValueError:
                    return None
                top = stack[-1] if stack else None
                if top is None:
                    return None
                if is_key:
                    top["key"] = value
                    top["keys"].append(value)
                    top["want_key"] = False
                elif len(stack) == 1 and top.get("key") == "name":
                    name = value
                continue
            buf.append(ch)
            continue
        if ch == '"':
            in_string, buf = True, []
            is_key = bool(stack) and stack[-1]["obj"] and stack[-1]["want_key"]
        elif ch in "{[":
            stack.append({"obj": ch == "{", "key": None, "keys": [], "want_key": ch == "{"})
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
        elif ch == "," and stack and stack[-1]["obj"]:
            stack[-1]["want_key"] = True
    if not in_string or not stack:
        return None
    partial = "".join(buf)
    top = stack[-1]
    if len(stack) == 1 and not is_key and top["key"] == "name":
        return "name", partial, None, None, []
    if len(stack) == 2 and stack[0]["key"] in ("arguments", "parameters") and top["obj"] and name:
        if is_key:
            return "key", partial, name, None, top["keys"]
        return "value", partial, name, top["key"], top["keys"]
    return None


def apply_guide(logits, guide: CallGuide, text: str) -> None:
    """Limit one row's next-token logits (vocab,) in place to what `guide` allows after `text`."""
    import torch

    allowed = guide.allowed(text)
    if allowed is not None:
        keep = torch.tensor(allowed, device=logits.device)
        kept = logits[keep]
        logits.fill_(float("-inf"))
        logits[keep] = kept
