"""The teaching loop: `llm-mcp teach` (tools → data → train → eval → promote only if better)."""
