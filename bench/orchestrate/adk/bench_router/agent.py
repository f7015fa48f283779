"""The router workflow of the orchestrator benchmark on Google's ADK 2.x: orchestrate's
`bench/orchestrate/router.yaml`, rebuilt as a graph `Workflow`.

A classifier LlmAgent whose structured output (`output_schema`: category, confidence,
reasoning; LiteLLM sends it as an OpenAI `response_format` json_schema) names a category; a
function node turns that category into the route and passes the user's message on; the
conditional edges send it to one of two specialist LlmAgents. Every agent is on the loopback
model (`bench-model`, OpenAI-compatible) through LiteLLM; its address comes from the
environment (bench/orchestrate/workflows.sh sets it).
"""

import os
from typing import Literal

from google.adk.agents import LlmAgent
from google.adk.agents.context import Context
from google.adk.models.lite_llm import LiteLlm
from google.adk.workflow import Workflow
from pydantic import BaseModel


def model() -> LiteLlm:
    return LiteLlm(model="openai/bench", api_base=os.environ["BENCH_MODEL_BASE"], api_key="x")


class Route(BaseModel):
    """The classifier's answer, as orchestrate's classifier asks for it."""

    category: Literal["billing", "technical"]
    confidence: float
    reasoning: str


classifier = LlmAgent(
    name="router",
    model=model(),
    instruction=(
        "Classify the user's request into one category: billing (invoices, refunds, payments)"
        " or technical (bugs, errors, outages). Answer with the category, your confidence"
        " from 0 to 1 and a short reasoning."
    ),
    output_schema=Route,
)


def route(ctx: Context, node_input: Route):
    """Routes by the classifier's category; the specialist gets the user's own message."""
    ctx.route = node_input.category
    return ctx.user_content


billing = LlmAgent(name="billing_agent", model=model(), instruction="You answer billing questions.")
technical = LlmAgent(name="tech_agent", model=model(), instruction="You answer technical questions.")

root_agent = Workflow(
    name="bench_router",
    edges=[("START", classifier, route, {"billing": billing, "technical": technical})],
)
