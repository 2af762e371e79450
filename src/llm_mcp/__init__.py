"""llm-mcp: an MCP server for a local Hugging Face causal LM, with LoRA fine-tuning for tool calling."""

__version__ = "0.1.0"
