"""The internal example every dataset format becomes, and the issue type every check reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_mcp.chat.types import Message
from llm_mcp.errors import LLMMCPError


@dataclass
class Example:
    messages: list[Message]
    tools: list[dict]  # normalised: {"name", "description", "parameters"}
    source: str = ""  # the file it came from
    line: int = 0  # 1-based line where its record starts (0: not from a file)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.source else "<memory>"

    def calls(self):
        return [c for m in self.messages if m.role == "assistant" for c in m.tool_calls]


@dataclass
class Issue:
    """One problem in a dataset, at file:line. `level` is "error" (blocks training) or "warning"."""

    source: str
    line: int
    kind: str  # a short stable tag: invalid-json, unknown-tool, bad-arguments, ...
    message: str
    hint: str = ""
    level: str = "error"

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        text = f"{where}: {self.level}: [{self.kind}] {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass
class Dataset:
    """What reading a file gives: its examples, the problems found, and how it was read."""

    examples: list[Example] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    format: str = ""
    formats: dict[str, int] = field(default_factory=dict)  # records per detected format
    inferred_tools: list[str] = field(default_factory=list)  # tools whose schemas were guessed

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]


def issues_error(path, errors: list[Issue], outcome: str) -> LLMMCPError:
    """One error for a file's problems (the first 20 shown), e.g. outcome "nothing trained"."""
    shown = "\n".join(f"  {i}" for i in errors[:20])
    more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
    return LLMMCPError(f"{path}: {len(errors)} errors, {outcome}"
                       + (f":\n{shown}{more}" if errors else " (no examples)"),
                       f"run `llm-mcp data validate {path}` for the full report")
