"""Schema-constrained decoding of the built-in format's tool calls, with xgrammar.

Text outside a call is free. Once a reply writes `<tool_call>`, a grammar compiled from the tools
holds it to one of

    <tool_call>{"name": "<a tool's name>", "arguments": <JSON valid for that tool's parameters>}</tool_call>

so the tool name, the argument names, each value's JSON type, string enums, required keys, no
unknown keys, the format's compact JSON (", " and ": ", no other whitespace) and the closing of
the block all follow the schemas; the values themselves,
whether to call, and how many calls stay the model's choice. (xgrammar's structural tags: a
trigger string switches from free text into a tag whose content is a JSON Schema.)

The built-in format writes a string value that the request has after a space with that space
(`" Zurich"`, chat/toolcalls.py), so the schemas are loosened to match what the format writes:
string enums and consts also accept their spaced form, and string `format`, `pattern` and length
limits are left to validation after parsing.

A guide is per reply (`CallGuide`, a grammar matcher fed the reply's text as it grows); the
compiled grammar is cached per tool list and the tokenizer's vocabulary is read once per
`ChatFormat`. If the reply ever leaves the grammar (text the matcher refuses), or the tools'
schemas cannot be compiled, the guide lets go: it never stops a reply.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from llm_mcp.chat.toolcalls import CLOSE, OPEN

log = logging.getLogger(__name__)

# string constraints that a spaced copy (" 2027-03-05") would break: checked after parsing instead
_LOOSENED = ("format", "pattern", "minLength", "maxLength")


def loosen(schema: Any) -> Any:
    """The schema as the built-in format writes values: spaced string enums and consts allowed."""
    if isinstance(schema, list):
        return [loosen(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        if key in _LOOSENED and isinstance(value, (str, int)):
            continue
        if key == "enum" and isinstance(value, list):
            out[key] = list(dict.fromkeys(
                [v for e in value for v in ((e, " " + e) if isinstance(e, str) else (e,))]))
        elif key == "const" and isinstance(value, str):
            out["enum"] = [value, " " + value]
        elif key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {k: loosen(v) for k, v in value.items()} if isinstance(value, dict) else value
        else:
            out[key] = loosen(value)
    return out


class Grammars:
    """The tokenizer's vocabulary for xgrammar (read once) and the grammars compiled per tool list."""

    def __init__(self, tokenizer):
        import xgrammar as xgr

        self.vocab = len(tokenizer)
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab)
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1)
        self._compiled: dict[str, Any] = {}

    def compiled(self, tools: list[dict]):
        """The grammar of free text with calls to `tools`; None when the schemas do not compile."""
        key = json.dumps(tools, sort_keys=True, default=str)
        if key not in self._compiled:
            try:
                self._compiled[key] = self.compiler.compile_structural_tag(structural_tag(tools))
            except Exception as err:  # noqa: BLE001 - a schema xgrammar cannot read: decode unguided
                log.warning("tool calls are not guided: the tools' schemas do not compile (%s)", err)
                self._compiled[key] = None
        return self._compiled[key]


def structural_tag(tools: list[dict], forced: str = "") -> str:
    """xgrammar's structural tag (JSON) for free text with calls to `tools`: the grammar compiled
    here, and what serve/vllm.py hands vLLM's structured outputs, so both hold calls alike.
    `forced`: reply text already in the prompt (tool_choice's prefix, the start of a call): the
    grammar starts after it, with the rest of a call that begins so, then free text and calls."""
    # names as the format writes them (dump_call, tool_choice's prefix): not \u-escaped
    begins = {t["name"]: f'{OPEN}{{"name": {json.dumps(t["name"], ensure_ascii=False)}, "arguments": '
              for t in tools}

    def tag(t: dict, begin: str) -> dict:
        return {"type": "tag", "begin": begin, "content": {"type": "grammar", "grammar": _arguments(t)},
                "end": "}" + CLOSE}

    calls = {"type": "triggered_tags", "triggers": [OPEN], "tags": [tag(t, begins[t["name"]]) for t in tools],
             "at_least_one": False, "stop_after_first": False}
    rest = [tag(t, begins[t["name"]][len(forced):]) for t in tools if begins[t["name"]].startswith(forced)]
    if forced and rest:  # (a prefix no call begins with: the unforced grammar)
        calls = {"type": "sequence", "elements": [{"type": "or", "elements": rest}, calls]}
    return json.dumps({"type": "structural_tag", "format": calls})


def _arguments(tool: dict) -> str:
    """The grammar (EBNF) of one tool's arguments, written as the format writes JSON: compact,
    ", " and ": " between items, no other whitespace."""
    import xgrammar as xgr

    schema = _object(loosen(tool.get("parameters")))
    return str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False,
                                            separators=(", ", ": "), strict_mode=True))


def _object(schema: Any) -> dict:
    if not isinstance(schema, dict) or not schema:
        return {"type": "object"}
    return schema if "type" in schema or "$ref" in schema or "anyOf" in schema or "oneOf" in schema \
        else {"type": "object", **schema}


class CallGuide:
    """One reply's guide: a grammar matcher fed the reply's text as it grows."""

    def __init__(self, compiled, vocab: int):
        import xgrammar as xgr

        self._compiled = compiled
        self.vocab = vocab
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab)
        self.fed = ""
        self.released = False  # the reply left the grammar: decoding goes on unguided

    def _feed(self, text: str) -> bool:
        import xgrammar as xgr

        if not text.startswith(self.fed):  # a different reply: start again
            self.matcher = xgr.GrammarMatcher(self._compiled)
            self.fed = ""
        new = text[len(self.fed):]
        if new and not self.matcher.accept_string(new):
            self.released = True
            return False
        self.fed = text
        return True

    def inside_call(self, text: str) -> bool:
        start = text.rfind(OPEN)
        return start >= 0 and CLOSE not in text[start:]

    def apply(self, logits, text: str) -> None:
        """Limit one row's next-token logits (vocab,) in place to what may follow `text`."""
        import xgrammar as xgr

        if self.released or not self._feed(text) or self.matcher.is_terminated():
            return
        self.matcher.fill_next_token_bitmask(self.bitmask)
        head = logits[:self.vocab]
        xgr.apply_token_bitmask_inplace(head.unsqueeze(0) if head.dim() == 1 else head, self.bitmask)
        if logits.shape[-1] > self.vocab and self.inside_call(text):
            logits[self.vocab:] = float("-inf")  # ids past the tokenizer spell nothing


class RedoGuide:
    """The guide of a reply decoded again from `at` (serve/decode.py, chat/route.py): `first`
    (the tools but the one sent back), fed the text from `at` on, until the first call after
    `at` closes; `rest` (all of them, the whole text) after it."""

    def __init__(self, first: CallGuide, rest: CallGuide, at: int):
        self.first, self.rest, self.at = first, rest, at

    def apply(self, logits, text: str) -> None:
        if CLOSE in text[self.at:]:
            self.rest.apply(logits, text)
        else:  # from `at` only: the kept text may hold a call to the tool sent back (a repeat)
            self.first.apply(logits, text[self.at:])


def apply_guide(logits, guide: CallGuide | RedoGuide, text: str) -> None:
    """Limit one row's next-token logits (vocab,) in place to what `guide` allows after `text`."""
    guide.apply(logits, text)
