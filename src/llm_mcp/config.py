"""Settings shared by every command.

`home_dir()` is where llm-mcp keeps what it makes: converted models, adapters, jobs and the
SQLite store. It is `$LLM_MCP_HOME`, else `~/.local/share/llm-mcp`.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m-instruct"
# the most tokens a reply gets unless asked otherwise: serving, chat and eval alike, so that eval
# scores the replies users get (a reply of three calls with an email body runs past 128)
REPLY_TOKENS = 256


def home_dir() -> Path:
    """The llm-mcp data directory (created on first use)."""
    env = os.environ.get("LLM_MCP_HOME")
    path = Path(env).expanduser() if env else Path.home() / ".local" / "share" / "llm-mcp"
    path.mkdir(parents=True, exist_ok=True)
    return path
