"""The one error type llm-mcp raises on purpose.

A message a user can act on has three parts: what is wrong, what exists (the alternatives, the
nearest match, the place in a file), and what to run next. The CLI prints `str(error)` and exits
with status 2; the server turns it into an MCP tool error or an HTTP 4xx.
"""

from __future__ import annotations


class LLMMCPError(Exception):
    """An expected failure, with a message meant for the user.

    `hint` is the next thing to try (a command to run, a flag to change); it is printed on its own
    line after the message.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class NotFound(LLMMCPError):
    """What was asked for does not exist (an adapter, a job, a report): HTTP 404."""
