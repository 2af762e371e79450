"""Serving: generation over a loaded model (the MCP server and OpenAI API build on this)."""
