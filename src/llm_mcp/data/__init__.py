"""Tool-calling datasets: readers for the common formats, validation with file:line issues, the
train/serve parity check, tokenisation with assistant-only labels, packing, and a synthesizer."""

from llm_mcp.data.example import Dataset, Example, Issue
from llm_mcp.chat.types import read_tools_file
from llm_mcp.data.formats import FORMATS, read_dataset
from llm_mcp.data.validate import check_examples, check_parity, summarize

__all__ = ["FORMATS", "Dataset", "Example", "Issue", "check_examples", "check_parity",
           "read_dataset", "read_tools_file", "summarize"]
