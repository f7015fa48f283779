"""The parallel workflow of the orchestrator benchmark on Google's ADK 2.x: orchestrate's
`bench/orchestrate/parallel.yaml`, rebuilt as a graph `Workflow`.

The user's message fans out to three LlmAgents that run at once; a JoinNode waits for all three
and hands their outputs to a consensus LlmAgent, which writes one answer from them. Every agent is
on the loopback model (`bench-model`, OpenAI-compatible) through LiteLLM; its address comes from
the environment (bench/orchestrate/workflows.sh sets it).
"""

import os

from google.adk.agents import LlmAgent
from google.adk.models.lite_llm import LiteLlm
from google.adk.workflow import JoinNode, Workflow


def model() -> LiteLlm:
    return LiteLlm(model="openai/bench", api_base=os.environ["BENCH_MODEL_BASE"], api_key="x")


researchers = tuple(
    LlmAgent(name=f"r{i}", model=model(), instruction="Answer the user's question briefly.")
    for i in (1, 2, 3)
)
synth = LlmAgent(
    name="synth",
    model=model(),
    instruction=(
        "You are given three answers to the same question. Write one answer that they agree on,"
        " and name any disagreement."
    ),
)

root_agent = Workflow(
    name="bench_parallel",
    edges=[("START", researchers, JoinNode(name="join"), synth)],
)
