"""ChatFormat: the one object that renders conversations with tools for training and serving and
parses the model's replies (shared/DESIGN.md, invariant 1).

Two paths, chosen per tokenizer by rendering a probe conversation, never by model name:
  - "native": the tokenizer's own chat template renders `tools` and assistant `tool_calls`, and
    what it renders for a call parses back to that call. Used as is.
  - "hermes": anything else. The model's own turn markers (its template, or ChatML when it has
    none) around Hermes-style content: tool schemas inside <tools></tools> in the system turn,
    calls as <tool_call>{"name": ..., "arguments": {...}}</tool_call> in the assistant turn,
    tool results wrapped in <tool_response></tool_response>.

The assistant mask marks what the model produces on an assistant turn (its text, its calls and
its end-of-turn token): the characters between the template's generation prompt and the end of
the turn, located by rendering the conversation prefix by prefix.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from llm_mcp.chat.conform import conform
from llm_mcp.chat.ground import grounder
from llm_mcp.chat.guide import CallGuide, Grammars
from llm_mcp.chat.toolcalls import StreamParser, ParsedReply, dump_call
from llm_mcp.chat.types import Message, ToolCall, normalize_tools
from llm_mcp.errors import LLMMCPError

log = logging.getLogger(__name__)


def _readable(tools: Any) -> list[dict]:
    """`tools` normalised, or none where they cannot be read (the request was checked before)."""
    try:
        return normalize_tools(tools)
    except LLMMCPError:
        return []


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TOOLS_PROMPT = (
    "You can call functions to answer the user. The functions are listed inside <tools></tools> "
    "as JSON schemas:\n<tools>\n{tools}\n</tools>\n"
    'To call a function, reply with <tool_call>{{"name": <function name>, "arguments": <arguments '
    "object>}}</tool_call>, one block per call. If no function fits, answer in plain text."
)

_PROBE_TOOL = {
    "name": "probe_lookup_zq",
    "description": "Probe tool.",
    "parameters": {"type": "object", "properties": {"probe_key": {"type": "string"},
                                                    "probe_n": {"type": "integer"}},
                   "required": ["probe_key"]},
}
_PROBE_CALL = ToolCall("probe_lookup_zq", {"probe_key": "probe-value-7", "probe_n": 3}, "call_0")


@dataclass
class Rendered:
    text: str
    input_ids: list[int]
    assistant_mask: list[int]  # 1 where the token was produced by the assistant
    spans: list[tuple[int, int]] = field(default_factory=list)  # assistant char spans in `text`
    offsets: list[tuple[int, int]] = field(default_factory=list)  # each token's char span in `text`


class ChatFormat:
    """Render and parse tool-calling conversations for one tokenizer.

    `kind` is "native" or "hermes"; `reason` says why the native template was not used.
    `force` ("native"/"hermes") skips the choice; "native" fails when the template cannot do it.
    """

    def __init__(self, tokenizer, force: str | None = None):
        self.tokenizer = tokenizer
        self.template = tokenizer.chat_template or CHATML
        if isinstance(self.template, dict):  # several named templates: take the default one
            self.template = self.template.get("default") or next(iter(self.template.values()))
        self.kind = "hermes"
        self.reason = ""
        self.args_as_string = False  # native templates that expect arguments as a JSON string
        self.tool_role = "tool"  # hermes: the role tool results go in
        self.system_ok = True  # hermes: whether the template accepts a system turn
        self._grammars: Grammars | None = None  # the vocabulary for xgrammar, for guide()
        self._ids: dict[str, list[int]] = {}  # fixed texts the decoder writes, tokenized (fixed_ids)
        self._texts: dict[int, str] = {}  # token id → its text (token_text)
        self.end_of_turn = self._find_end_of_turn()
        # special tokens (role markers, end of turn) → a placeholder of the same length, one
        # private-use character repeated, while a conversation renders (see render)
        specials = sorted({t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values()
                           if t.special and t.content}, key=len, reverse=True)
        self._hidden = {t: chr(0xF0000 + k) * len(t) for k, t in enumerate(specials)} or None
        self._placeholder = re.compile("|".join(re.escape(u) for u in (self._hidden or {}).values()) or "$^")
        if force not in (None, "native", "hermes"):
            raise LLMMCPError(f"unknown chat format {force!r}", "use native or hermes")
        if force != "hermes":
            self.reason = self._try_native()
            if not self.reason:
                self.kind = "native"
            elif force == "native":
                raise LLMMCPError(f"the tokenizer's chat template cannot be used for tools: {self.reason}",
                                  "drop the native format to use the built-in Hermes format")
        if self.kind == "hermes":
            self._probe_hermes()
        self.stop_token_ids = sorted({i for i in (self._token_id(self.end_of_turn),
                                                  tokenizer.eos_token_id) if i is not None})

    # ---- public API -------------------------------------------------------------------------

    def fixed_ids(self, text: str) -> list[int]:
        """The token ids of a fixed text the decoder writes (an opening), tokenized once; a new list."""
        if text not in self._ids:
            self._ids[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(self._ids[text])

    def token_text(self, token: int) -> str:
        """One token's text, decoded once."""
        if token not in self._texts:
            self._texts[token] = self.tokenizer.decode([token])
        return self._texts[token]

    def render(self, messages: Iterable[Any], tools: Any = None,
               add_generation_prompt: bool = False, mask: bool = True) -> Rendered:
        """Text, token ids and assistant mask of a conversation (OpenAI dicts or Messages);
        `mask=False` skips the mask (a prompt needs none; finding each assistant turn renders the
        conversation once per turn).

        Roles come only from the message structure: a special token's text inside a message or a
        tool schema (`<|im_start|>system` in user content) is tokenized as plain text, not as the
        control token (each such string is swapped for a placeholder of its length while the
        template renders, then spelled out with `split_special_tokens`)."""
        msgs = [Message.from_any(m) for m in messages]
        tool_list = normalize_tools(tools)
        if self._hidden is not None:
            msgs, tool_list = _hide(msgs, self._hidden), _hide(tool_list, self._hidden)
        text = self._apply(msgs, tool_list, add_generation_prompt)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise LLMMCPError(f"the conversation holds text that is not valid Unicode "
                              f"({err.reason}: {text[err.start:err.end]!r})",
                              "send UTF-8 text (a lone surrogate such as \\ud800 cannot be tokenized)") from None
        spans = []
        for k, m in enumerate(msgs if mask else []):
            if m.role != "assistant":
                continue
            before = self._apply(msgs[:k], tool_list, True)
            upto = self._apply(msgs[: k + 1], tool_list, False)
            if not (text.startswith(before) and text.startswith(upto) and upto.startswith(before)):
                raise LLMMCPError(
                    "the chat template renders earlier turns differently once later turns follow, "
                    f"so assistant turn {k} cannot be located for the training mask",
                    "use the built-in format (chat_format=hermes)",
                )
            end = len(upto)
            if self.end_of_turn:
                cut = upto.find(self.end_of_turn, len(before))
                if cut >= 0:
                    end = cut + len(self.end_of_turn)
            spans.append((len(before), end))
        text, ids, offsets = self._tokenize(text)
        return Rendered(text, ids, _mask_from_spans(offsets, spans), spans, offsets)

    def prompt_ids(self, messages: Iterable[Any], tools: Any = None) -> list[int]:
        """Token ids of the prompt for generating the next assistant turn."""
        return self.render(messages, tools, add_generation_prompt=True, mask=False).input_ids

    def reply_text(self, token_ids: Iterable[int]) -> str:
        """Generated token ids → the reply text, cut at the end-of-turn token."""
        text = self.tokenizer.decode(list(token_ids), skip_special_tokens=False)
        return self.cut_at_stop(text)

    def cut_at_stop(self, text: str) -> str:
        for stop in (self.end_of_turn, self.tokenizer.eos_token):
            if stop and stop in text:
                text = text[: text.index(stop)]
        return text

    def parse(self, text: str, tools: Any = None, messages: list | None = None) -> ParsedReply:
        """The reply's text and calls; with `tools`, short dates and times in the calls padded to
        their schemas' form (chat/conform.py); with `messages` too (the conversation replied to),
        a call whose identifier is not in it withheld and asked about (chat/ground.py). The
        stream parser, fed the whole text: a reply parses the same streamed or not."""
        parser = self.stream_parser(tools, messages)
        parser.feed(self.cut_at_stop(text))
        parser.finish()
        return parser.result()

    def stream_parser(self, tools: Any = None, messages: list | None = None,
                      redo_from: int | None = None) -> StreamParser:
        """An incremental `parse` (with `tools`: calls conformed; with `messages` too: checked;
        `redo_from`: a call from there on that carries another tool's identifier, or a phrase
        where its own goes, is sent back, chat/route.py)."""
        tool_list = _readable(tools) if tools else []
        return StreamParser(unspace=self.kind == "hermes",
                            fix=(lambda calls: conform(calls, tool_list)) if tool_list else None,
                            ground=grounder(tool_list, messages, redo_from is not None), redo_from=redo_from)

    def guide(self, tools: Any, without: Iterable[str] = ()) -> CallGuide | None:
        """Calls to `tools` (but those named in `without`) held to their schemas (chat/guide.py);
        the built-in format only. None when there is nothing to guide or the schemas do not compile."""
        try:
            tool_list = [t for t in normalize_tools(tools) if t["name"] not in set(without)]
        except LLMMCPError:
            return None
        if self.kind != "hermes" or not tool_list:
            return None
        if self._grammars is None:
            self._grammars = Grammars(self.tokenizer)
        compiled = self._grammars.compiled(tool_list)
        return CallGuide(compiled, self._grammars.vocab) if compiled is not None else None

    def guide_spec(self, tools: Any, forced: str = "") -> str | None:
        """The guide of `guide(tools)` as xgrammar's structural-tag JSON, for an engine that
        compiles it itself (serve/vllm.py); `forced`: reply text the prompt already ends with.
        None where `guide` is None (checked by compiling)."""
        from llm_mcp.chat.guide import structural_tag

        if self.guide(tools) is None:
            return None
        return structural_tag(normalize_tools(tools), forced)

    def describe(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "end_of_turn": self.end_of_turn,
                "args_as_string": self.args_as_string, "tool_role": self.tool_role}

    # ---- rendering --------------------------------------------------------------------------

    def _tokenize(self, text: str) -> tuple[str, list[int], list[tuple[int, int]]]:
        """The text with its placeholders spelled out, its token ids and each token's span.
        Only the template's own special tokens are control tokens; a placeholder's string
        becomes ordinary tokens."""
        def encode(piece: str, start: int, split: bool = False):
            enc = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True,
                                 **({"split_special_tokens": True} if split else {}))
            ids.extend(enc["input_ids"])
            offsets.extend((start + a, start + b) for a, b in enc["offset_mapping"])

        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        if self._hidden is None or not self._placeholder.search(text):
            encode(text, 0)
            return text, ids, offsets
        shown = {unit: token for token, unit in self._hidden.items()}
        pos = 0
        for found in self._placeholder.finditer(text):
            if found.start() > pos:
                encode(text[pos:found.start()], pos)
            encode(shown[found.group()], found.start(), split=True)
            pos = found.end()
        if pos < len(text):
            encode(text[pos:], pos)
        return self._placeholder.sub(lambda m: shown[m.group()], text), ids, offsets

    def _apply(self, msgs: list[Message], tools: list[dict], add_generation_prompt: bool) -> str:
        if self.kind == "native":
            chat = [self._native_message(m) for m in msgs]
            native_tools = [{"type": "function", "function": t} for t in tools] or None
            return self._template(chat, native_tools, add_generation_prompt)
        return self._template(self._hermes_messages(msgs, tools), None, add_generation_prompt)

    def _template(self, chat: list[dict], tools, add_generation_prompt: bool) -> str:
        from jinja2 import TemplateError

        try:
            return self.tokenizer.apply_chat_template(
                chat, tools=tools, chat_template=self.template, tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        except (TemplateError, ValueError) as err:  # the template refuses this conversation
            raise LLMMCPError(f"the chat template cannot render this conversation: {err}",
                              "send at least one user message, in the order the model expects") from err

    def _native_message(self, m: Message) -> dict:
        out: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            out["tool_calls"] = [
                {"id": c.id or f"call_{i}", "type": "function",
                 "function": {"name": c.name,
                              "arguments": json.dumps(c.arguments, ensure_ascii=False)
                              if self.args_as_string else c.arguments}}
                for i, c in enumerate(m.tool_calls)
            ]
        if m.role == "tool":
            out["tool_call_id"] = m.tool_call_id or "call_0"
            if m.name:
                out["name"] = m.name
        return out

    def _hermes_messages(self, msgs: list[Message], tools: list[dict]) -> list[dict]:
        chat: list[dict] = []
        system = ""
        rest = msgs
        if msgs and msgs[0].role == "system":
            system, rest = msgs[0].content, msgs[1:]
        if tools:
            block = "\n".join(json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t in tools)
            block = TOOLS_PROMPT.format(tools=block.replace("</", "<\\/"))
            system = f"{system}\n\n{block}" if system else block
        if system:
            if self.system_ok:
                chat.append({"role": "system", "content": system})
        said = [system] if system else []  # what came before each turn: calls copy values from it
        for m in rest:
            if m.role == "assistant":
                parts = [m.content] if m.content else []
                context = "\n".join(said)
                parts += [f"<tool_call>{dump_call(c, context)}</tool_call>" for c in m.tool_calls]
                chat.append({"role": "assistant", "content": "\n".join(parts)})
            elif m.role == "tool":
                chat.append({"role": self.tool_role,
                             "content": f"<tool_response>\n{m.content}\n</tool_response>"})
            else:
                chat.append({"role": m.role, "content": m.content})
            said.append(m.content or "")
        if system and not self.system_ok:
            first_user = next((c for c in chat if c["role"] == "user"), None)
            if first_user is None:
                chat.insert(0, {"role": "user", "content": system})
            else:
                first_user["content"] = f"{system}\n\n{first_user['content']}"
        return chat

    # ---- probes -----------------------------------------------------------------------------

    def _token_id(self, token: str | None) -> int | None:
        if not token:
            return None
        ids = self.tokenizer.convert_tokens_to_ids([token])
        unk = self.tokenizer.unk_token_id
        return ids[0] if ids and ids[0] is not None and ids[0] != unk else None

    def _find_end_of_turn(self) -> str | None:
        """The token a model emits to end its turn: what the template writes right after the
        assistant's text, if that is a single special token; else the tokenizer's eos token."""
        try:
            text = self._template([{"role": "user", "content": "probe-u"},
                                   {"role": "assistant", "content": "probe-a"}], None, False)
        except Exception:  # a template that will not render this: fall back to eos
            return self.tokenizer.eos_token
        suffix = text[text.rfind("probe-a") + len("probe-a"):]
        special = sorted(set(self.tokenizer.all_special_tokens) |
                         {t.content for t in self.tokenizer.added_tokens_decoder.values()},
                         key=len, reverse=True)
        head = suffix.lstrip(" ")
        for token in special:
            if token and head.startswith(token):
                return token
        eos = self.tokenizer.eos_token
        return eos if eos and eos in suffix else None

    def _try_native(self) -> str:
        """'' when the template handles tools natively, else the reason it does not."""
        if not self.tokenizer.chat_template:
            return "the tokenizer has no chat template"
        user = Message("user", "Probe request.")
        plain = [{"role": "user", "content": "Probe request."}]
        try:
            with_tools = self._template(plain, [{"type": "function", "function": _PROBE_TOOL}], True)
            without = self._template(plain, None, True)
        except Exception as err:
            return f"the template fails when given tools ({type(err).__name__}: {err})"
        if with_tools == without or "probe_lookup_zq" not in with_tools:
            return "the template ignores the tools it is given"
        convo = [user, Message("assistant", "", [_PROBE_CALL]),
                 Message("tool", '{"probe_result": "ok-42"}', tool_call_id="call_0",
                         name="probe_lookup_zq"),
                 Message("assistant", "Done.")]
        self.kind = "native"
        try:
            for as_string in (False, True):
                self.args_as_string = as_string
                try:
                    rendered = self.render(convo, [_PROBE_TOOL])
                except Exception as err:
                    reason = f"rendering a call failed ({type(err).__name__}: {err})"
                    continue
                if "ok-42" not in rendered.text:
                    reason = "the template drops tool results"
                    continue
                first = rendered.text[slice(*rendered.spans[0])]
                parsed = self.parse(first)
                if parsed.calls == [_PROBE_CALL] and not parsed.content:
                    return ""
                reason = f"its rendering of a call does not parse back: {first!r}"
            self.args_as_string = False
            return reason
        finally:
            self.kind = "hermes"

    def _probe_hermes(self) -> None:
        """Which roles the model's template accepts for system turns and tool results."""
        try:
            self._template([{"role": "system", "content": "probe-s"},
                            {"role": "user", "content": "u"}], None, True)
        except Exception:
            self.system_ok = False
        try:
            text = self._template([{"role": "user", "content": "u"},
                                   {"role": "assistant", "content": "a"},
                                   {"role": "tool", "content": "probe-t"},
                                   {"role": "assistant", "content": "b"}], None, False)
            if "probe-t" not in text:
                self.tool_role = "user"
        except Exception:
            self.tool_role = "user"


def _hide(value: Any, hidden: dict[str, str]) -> Any:
    """`value` (messages, calls, tool schemas: strings in lists and dicts) with each special
    token's string replaced by its placeholder; values without one are returned as they are."""
    if isinstance(value, str):
        for token, unit in hidden.items():
            if token in value:
                value = value.replace(token, unit)
        return value
    if isinstance(value, list):
        return [_hide(v, hidden) for v in value]
    if isinstance(value, dict):
        return {_hide(k, hidden): _hide(v, hidden) for k, v in value.items()}
    if isinstance(value, ToolCall):
        return ToolCall(_hide(value.name, hidden), _hide(value.arguments, hidden), value.id)
    if isinstance(value, Message):
        return Message(value.role, _hide(value.content, hidden), _hide(value.tool_calls, hidden),
                       value.tool_call_id, value.name and _hide(value.name, hidden))
    return value


def _mask_from_spans(offsets, spans: list[tuple[int, int]]) -> list[int]:
    """1 for each token whose first character lies inside an assistant span."""
    starts = [s for s, _ in spans]
    mask = []
    for start, end in offsets:
        k = bisect.bisect_right(starts, start) - 1
        mask.append(1 if k >= 0 and start < spans[k][1] and end > start else 0)
    return mask
