"""Tool schemas from where they live: `llm-mcp tools pull` (a live MCP server)."""
