"""Opens N keep-alive HTTP/1.1 connections to 127.0.0.1:PORT, sends one GET /health/live on
each (so the server has accepted, served and counted them), then holds them idle until stdin
closes. Prints "ready N" once all are open. Usage: hold.py PORT N"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
request = f"GET /health/live HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
held = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"connection closed after {len(held)}: {answer!r}")
        answer += chunk
    if b" 200 " not in answer.split(b"\r\n", 1)[0]:
        sys.exit(f"connection {len(held)} not served: {answer[:100]!r}")
    held.append(s)
print(f"ready {len(held)}", flush=True)
sys.stdin.read()
