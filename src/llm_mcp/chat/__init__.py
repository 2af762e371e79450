"""Conversations with tools: rendering (for training and serving alike) and tool-call parsing."""

from llm_mcp.chat.format import ChatFormat, Rendered
from llm_mcp.chat.toolcalls import (
    CallEvent,
    ErrorEvent,
    ParsedReply,
    ParseError,
    StreamParser,
    TextDelta,
    parse,
)
from llm_mcp.chat.types import Message, ToolCall, normalize_tool, normalize_tools

__all__ = [
    "CallEvent", "ChatFormat", "ErrorEvent", "Message", "ParseError", "ParsedReply", "Rendered",
    "StreamParser", "TextDelta", "ToolCall", "normalize_tool", "normalize_tools", "parse",
]
