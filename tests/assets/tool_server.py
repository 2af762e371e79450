"""A user's own MCP server, for `llm-mcp tools pull` tests: seven tools with typed, enum, optional,
nested and array parameters, listed three a page, so a client must follow `nextCursor`.

    python tool_server.py stdio
    python tool_server.py http PORT [TOKEN]      # TOKEN: requests need "Authorization: Bearer TOKEN"
    python tool_server.py broken-http PORT       # one tool's inputSchema is not valid JSON Schema
    python tool_server.py empty-http PORT        # no tools at all
"""

from __future__ import annotations

import sys

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server

TOOLS = [
    {"name": "list_files", "description": "List the files in a folder of the shared drive.",
     "inputSchema": {"type": "object", "properties": {
         "folder": {"type": "string", "description": "folder path, like /reports/2025"},
         "recursive": {"type": "boolean", "description": "include sub-folders"},
         "limit": {"type": "integer", "minimum": 1, "maximum": 500}},
         "required": ["folder"]},
     "annotations": {"readOnlyHint": True}},
    {"name": "create_ticket", "description": "Open a support ticket.",
     "inputSchema": {"type": "object", "properties": {
         "title": {"type": "string"},
         "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
         "tags": {"type": "array", "items": {"type": "string"}},
         "reporter": {"type": "object", "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"}},
                      "required": ["email"]}},
         "required": ["title", "priority"]},
     "outputSchema": {"type": "object", "properties": {"ticket_id": {"type": "string"}}, "required": ["ticket_id"]}},
    {"name": "get_invoice", "description": "Fetch an invoice by its number, like INV-20931.",
     "inputSchema": {"type": "object", "properties": {"invoice_id": {"type": "string", "pattern": "^INV-[0-9]+$"}},
                     "required": ["invoice_id"]}},
    {"name": "book_room", "description": "Book a meeting room.",
     "inputSchema": {"type": "object", "properties": {
         "room": {"type": "string", "enum": ["Atlas", "Borealis", "Cygnus"]},
         "date": {"type": "string", "format": "date"}, "start": {"type": "string", "description": "HH:MM"},
         "attendees": {"type": "integer", "minimum": 1, "maximum": 40}},
         "required": ["room", "date", "start"]}},
    {"name": "set_thermostat", "description": "Set the office thermostat.",
     "inputSchema": {"type": "object", "properties": {"celsius": {"type": "number", "minimum": 15, "maximum": 28}},
                     "required": ["celsius"]}},
    {"name": "ping", "description": "Check that the server is up.", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "lookup_customer", "description": "Find a customer by email or by account number.",
     "inputSchema": {"type": "object", "$defs": {"account": {"type": "string", "pattern": "^AC[0-9]{6}$"}},
                     "properties": {"email": {"type": "string", "format": "email"}, "account": {"$ref": "#/$defs/account"}}}},
]
PAGE = 3


def server(tools: list[dict]) -> Server:
    async def list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        start = int(params.cursor) if params and params.cursor else 0
        page = [types.Tool.model_validate(t) for t in tools[start:start + PAGE]]
        more = start + PAGE < len(tools)
        return types.ListToolsResult(tools=page, next_cursor=str(start + PAGE) if more else None)

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    return Server("user-tools", on_list_tools=list_tools, on_call_tool=call_tool)


class Bearer:
    """Requests without the token get 401."""

    def __init__(self, app, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


def main(argv: list[str]) -> None:
    mode = argv[0]
    tools = TOOLS
    if mode.startswith("broken"):
        tools = [*TOOLS[:2], {"name": "bad_tool", "description": "Broken.",
                              "inputSchema": {"type": "object", "properties": {"n": {"type": "integr"}}}}]
    elif mode.startswith("empty"):
        tools = []
    app = server(tools)
    if mode == "stdio":
        from mcp.server.stdio import stdio_server

        async def run():
            async with stdio_server() as (read, write):
                await app.run(read, write, app.create_initialization_options())
        anyio.run(run)
        return
    import uvicorn

    asgi = app.streamable_http_app(streamable_http_path="/mcp")
    if len(argv) > 2:
        asgi = Bearer(asgi, argv[2])
    uvicorn.run(asgi, host="127.0.0.1", port=int(argv[1]), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
