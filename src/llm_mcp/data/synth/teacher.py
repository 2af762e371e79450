"""An optional teacher: any OpenAI-compatible endpoint rewrites synthesized requests.

For each synthesized example with calls, the teacher (Ollama, LM Studio, vLLM, a hosted API,
llm-mcp's own `/v1`) is shown the calls and asked for the message a person would type to get
exactly them. A reply is kept only if it passes verification, and then replaces the synthesized
request (the calls stay as they were):

- `empty` / `too-long`: no text, or more than 600 characters;
- `markup`: it contains a tool-call block or a JSON object (the teacher answered the task itself);
- `missing-value`: a string argument (normalised: lower case, no punctuation or spaces), or a
  number as digits or words, does not appear in the request;
- `duplicate`: too close to a request already kept (difflib ratio ≥ 0.9).

Rejected examples keep their synthesized request. The API key comes from the environment variable
named by `key_env` and is never logged or stored.
"""

from __future__ import annotations

import difflib
import json
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from llm_mcp.chat.stated import leaves
from llm_mcp.chat.types import normalize
from llm_mcp.data.synth.values import number_words
from llm_mcp.errors import LLMMCPError

PROMPT = """You write the messages people type to an assistant that can call tools.
Tools: {tools}
Write ONE message a person might type to get exactly these calls: {calls}
Say every value; do not name the tools or the parameters; write it the way a real person would
({style}). Reply with the message only."""
STYLES = ["a short question", "a hurried command, lower case", "a polite request with a reason",
          "a fragment of a few words", "a message with a small typo", "two sentences"]


@dataclass
class TeacherReport:
    asked: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    def line(self) -> str:
        why = ", ".join(f"{k} {v}" for k, v in self.rejected.most_common()) or "none"
        return f"teacher: asked {self.asked}, kept {self.kept}, rejected {self.asked - self.kept} ({why})"


def verify(request: str, calls: list[dict], kept: list[str]) -> str | None:
    """Why `request` cannot stand for `calls`, or None when it can."""
    text = request.strip()
    if not text:
        return "empty"
    if len(text) > 600:
        return "too-long"
    if "<tool_call>" in text or ('{"' in text and '":' in text):
        return "markup"
    flat = normalize(text)
    words = text.lower()
    for call in calls:
        for value in leaves(call["arguments"]):
            if isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                shown = {str(value), f"{value:,}"}
                if float(value).is_integer() and 0 <= value < 1000:
                    shown.add(number_words(int(value)))
                if not any(s.lower() in words for s in shown):
                    return "missing-value"
            elif isinstance(value, str) and normalize(value) and normalize(value) not in flat:
                return "missing-value"
    if any(difflib.SequenceMatcher(None, words, k.lower()).ratio() >= 0.9 for k in kept):
        return "duplicate"
    return None


def ask(url: str, model: str, prompt: str, key: str | None, timeout: float = 120) -> str:
    """One chat completion from an OpenAI-compatible endpoint (`url` ends before /chat/completions)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                       "temperature": 0.8, "max_tokens": 120}).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url.rstrip("/") + "/chat/completions", body, headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        data = json.loads(resp.read())
    return (data["choices"][0]["message"].get("content") or "").strip().strip('"')


def rewrite(records: list[dict], url: str, model: str, key_env: str = "LLM_MCP_TEACHER_KEY",
            share: float = 1.0, seed: int = 0, progress=None) -> TeacherReport:
    """Rewrite the requests of (a `share` of) the records with calls, in place."""
    import random

    key = os.environ.get(key_env) or None
    rng = random.Random(seed)
    report = TeacherReport()
    kept: list[str] = []
    chosen = [r for r in records if r["tool_calls"] and rng.random() < share]
    for record in chosen:
        tools = {t["name"]: t for t in record.get("tools", [])}
        used = [tools[c["name"]] for c in record["tool_calls"] if c["name"] in tools]
        prompt = PROMPT.format(tools=json.dumps(used, ensure_ascii=False),
                               calls=json.dumps(record["tool_calls"], ensure_ascii=False),
                               style=rng.choice(STYLES))
        try:
            reply = ask(url, model, prompt, key)
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError) as err:
            if report.asked == 0:  # the first request fails: the endpoint is wrong, say so once
                raise LLMMCPError(f"the teacher at {url} did not answer: {_reason(err)}",
                                  "check --teacher (the URL up to /v1) and --teacher-model; an API key "
                                  f"goes in ${key_env}") from err
            reply = ""
        report.asked += 1
        why = verify(reply, record["tool_calls"], kept)
        if why:
            report.rejected[why] += 1
        else:
            record["input"] = reply
            kept.append(reply)
            report.kept += 1
        if progress:
            progress(report)
    return report


def _reason(err: Exception) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    return str(getattr(err, "reason", err))
