"""The orchestrator benchmark's agent on Google's ADK: orchestrate's react agent, rebuilt.

One LlmAgent on the loopback model (`bench-model`, OpenAI-compatible) through LiteLLM, with
mcp-tool's `echo` as an MCP toolset over Streamable HTTP. The addresses come from the
environment (bench/orchestrate/run.sh sets them). Like orchestrate, the tool list is cached for
60 s and only `echo` is offered to the model.
"""

import os

from google.adk.agents import LlmAgent
from google.adk.models.lite_llm import LiteLlm
from google.adk.tools.mcp_tool import McpToolset, StreamableHTTPConnectionParams

root_agent = LlmAgent(
    name="assistant",
    model=LiteLlm(
        model="openai/bench",
        api_base=os.environ["BENCH_MODEL_BASE"],
        api_key="x",
    ),
    instruction="Use the echo tool when asked to say something. Answer briefly.",
    tools=[
        McpToolset(
            connection_params=StreamableHTTPConnectionParams(url=os.environ["BENCH_MCP_URL"]),
            tool_filter=["echo"],
            tool_list_cache_ttl_seconds=60,
        )
    ],
)
