"""The FastMCP reference for bench/mcp: the Python SDK's (PyPI `mcp<2`) FastMCP with one `echo`
tool, Streamable HTTP, stateless and with JSON responses. Uvicorn runs one process with one event
loop; WARNING keeps its per-request access log off. `PORT` picks the port (default 8000)."""

import os

from mcp.server.fastmcp import FastMCP

mcp = FastMCP(
    "fastmcp-reference",
    host="127.0.0.1",
    port=int(os.environ.get("PORT", "8000")),
    stateless_http=True,
    json_response=True,
    log_level="WARNING",
)


@mcp.tool()
def echo(text: str) -> str:
    """Returns the given text unchanged."""
    return text


if __name__ == "__main__":
    mcp.run(transport="streamable-http")
