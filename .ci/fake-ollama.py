#!/usr/bin/env python3
"""A loopback stand-in for Ollama in the compose test (.ci/compose-test.sh), where Ollama's
image can't be pulled: Ollama's native API as ollama/ollama docs/api.md documents it, scripted.

GET /api/version, GET /api/tags (lists MODEL), POST /api/chat streamed as NDJSON: a
conversation with no tool result yet gets one call of the offered tool whose name ends in
`echo`, arguments {"text": "hello from compose"}; one with a tool result gets the text
"done: <that result>". Usage: fake-ollama.py PORT [MODEL]
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
MODEL = sys.argv[2] if len(sys.argv) > 2 else "qwen3:0.6b"
STAMP = "2026-01-01T00:00:00.000000Z"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/version":
            self.reply(200, {"version": "0.0.0-fake"})
        elif self.path == "/api/tags":
            self.reply(200, {"models": [{"name": MODEL, "model": MODEL, "size": 1}]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/api/chat":
            self.reply(404, {"error": "not found"})
            return
        messages = request.get("messages", [])
        results = [m.get("content", "") for m in messages if m.get("role") == "tool"]
        tools = [t["function"]["name"] for t in request.get("tools", [])]
        echo = next((t for t in tools if t.endswith("echo")), None)
        if results or echo is None:
            message = {"role": "assistant", "content": "done: " + (results[-1] if results else "no tools")}
        else:
            call = {"function": {"name": echo, "arguments": {"text": "hello from compose"}}}
            message = {"role": "assistant", "content": "", "tool_calls": [call]}
        lines = [
            {"model": MODEL, "created_at": STAMP, "message": message, "done": False},
            {"model": MODEL, "created_at": STAMP, "message": {"role": "assistant", "content": ""},
             "done": True, "done_reason": "stop", "prompt_eval_count": 20, "eval_count": 5},
        ]
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.reply(200, body, "application/x-ndjson")

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-ollama: " + (fmt % args) + "\n")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
