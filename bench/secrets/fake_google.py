"""A loopback metadata server + Secret Manager for bench/secrets/run.sh (stdlib only; a
ThreadingHTTPServer: one thread per connection, so concurrent requests wait their latency
concurrently, as the real services do). Every Secret Manager answer waits LATENCY_MS first,
every metadata answer METADATA_LATENCY_MS (default 2: on Cloud Run the metadata server is local
to the instance, about 1 ms away). FAKE_LOG=1 prints each request with a timestamp.

Metadata (`Metadata-Flavor: Google` required, echoed): project/project-id, service-accounts/
default/token (JSON access token), email. Secret Manager: GET /v1/projects/P/secrets/S/
versions/V:access with that bearer token answers {"name", "payload": {"data", "dataCrc32c"}}.
Prints nothing; serves on PORT until killed."""
import base64, json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY = int(os.environ.get("LATENCY_MS", "50")) / 1000
META_LATENCY = int(os.environ.get("METADATA_LATENCY_MS", "2")) / 1000
TOKEN = "ya29.bench-access-token"


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: the handler writes the head and the body separately, and with Nagle the body
    # waits for the client's ACK of the head, which Linux delays up to 40 ms on a connection
    # past its first exchanges: every answer on a reused keep-alive connection then cost 40 ms
    # more than on a new one, which no real Google front end does.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, ctype, body, metadata=False):
        body = body.encode()
        self.send_response(status)
        if metadata:
            self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if os.environ.get("FAKE_LOG"):
            print(f"{time.monotonic():.3f} {self.path}", file=sys.stderr, flush=True)
        path = self.path.split("?")[0]
        time.sleep(META_LATENCY if path.startswith("/computeMetadata/") else LATENCY)
        if path.startswith("/computeMetadata/v1/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.answer(403, "text/html", "Missing Metadata-Flavor", True)
            what = path[len("/computeMetadata/v1/"):]
            sa = "instance/service-accounts/default/"
            if what == "project/project-id":
                return self.answer(200, "application/text", "bench-project", True)
            if what == sa + "email":
                return self.answer(200, "application/text", "bench@bench-project.iam.gserviceaccount.com", True)
            if what == sa + "token":
                body = json.dumps({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"})
                return self.answer(200, "application/json", body, True)
            return self.answer(404, "text/html", "Not Found", True)
        if path.startswith("/v1/") and path.endswith(":access"):
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                body = {"error": {"code": 401, "message": "bad token", "status": "UNAUTHENTICATED"}}
                return self.answer(401, "application/json", json.dumps(body))
            secret = path.split("/secrets/")[1].split("/")[0]
            value = ("value-of-" + secret).encode()
            body = {"name": f"projects/123/secrets/{secret}/versions/1",
                    "payload": {"data": base64.b64encode(value).decode(), "dataCrc32c": str(crc32c(value))}}
            return self.answer(200, "application/json; charset=UTF-8", json.dumps(body))
        self.answer(404, "text/plain", "Not Found")


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
