"""A legacy-only MCP server for the end-to-end tests: the official Python SDK's FastMCP (PyPI
`mcp<2`), which speaks the 2025-11-25 protocol (and older) over Streamable HTTP and answers the
2026-07-28 `server/discover` with JSON-RPC -32601. Stateful (sessions), so that
`notifications/cancelled` reaches the request it names.

Tools: `echo(text)`, and `wait(seconds)`, which sleeps and, when the client cancels it, writes
`cancelled <request id>` to the file named by CANCELLED_FILE. PORT picks the port."""

import asyncio
import os

from mcp.server.fastmcp import Context, FastMCP

mcp = FastMCP(
    "legacy-reference",
    host="127.0.0.1",
    port=int(os.environ["PORT"]),
    log_level="WARNING",
)


@mcp.tool()
def echo(text: str) -> str:
    """Returns the given text unchanged."""
    return text


@mcp.tool()
async def wait(seconds: float, ctx: Context) -> str:
    """Waits this many seconds, then answers."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        with open(os.environ["CANCELLED_FILE"], "a") as f:
            f.write(f"cancelled {ctx.request_id}\n")
        raise
    return "waited"


if __name__ == "__main__":
    mcp.run(transport="streamable-http")
