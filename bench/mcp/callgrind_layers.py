#!/usr/bin/env python3
"""Instructions per request, and by layer, from one callgrind dump (see bench/mcp/callgrind.sh).

Usage: callgrind_layers.py DUMP REQUESTS [--json]

Reads the dump's call graph (the same numbers `callgrind_annotate --inclusive=yes` prints) and
prints, per layer, the inclusive instructions of the functions matching that layer's pattern,
divided by REQUESTS. A layer's inclusive cost is the sum of the calls into its functions from
functions outside it, so a layer's own recursion is not counted twice.

Each layer: "inclusive" (its functions and all they call) and "self" (instructions in its
- the request path, outer to inner ("own" = the layer's inclusive cost minus that of the next
  layer inside it: each request passes every layer once, and an inner layer is only entered
  from within the outer one);
- cross-cutting costs (JSON, allocator, logging, metrics, schema validation): inclusive, so they
  overlap the request path's rows.
Fat LTO inlines small functions into their callers; what is inlined is counted where it landed.
"""

import json
import re
import sys
from collections import defaultdict

# Layers: (name, pattern over "source file:function" as callgrind records them). Generic code
# (axum's from_fn middleware, futures) is named after the generic, so middleware is told apart
# by the file its code came from.
CRATE = r"/{}-[0-9][^/]*/src/"
LAYERS = [
    ("connection watcher (shared/src/server/connection.rs)", r"shared/src/server/connection\.rs:"),
    ("accept loop, per-connection service (listener.rs)", r"shared/src/server/listener\.rs:"),
    ("panic catcher (tower-http)", CRATE.format("tower-http") + r"catch_panic"),
    ("request log (logging/request.rs)", r"shared/src/logging/request\.rs:"),
    ("access guard (server/access.rs)", r"shared/src/server/access\.rs:"),
    ("metrics, HTTP (metrics/http.rs)", r"shared/src/metrics/http\.rs:"),
    ("metrics, gRPC (metrics/grpc.rs)", r"shared/src/metrics/grpc\.rs:"),
    ("limits (server/limits.rs)", r"shared/src/server/limits\.rs:"),
    ("gRPC limits (server/grpc_limits.rs)", r"shared/src/server/grpc_limits\.rs:"),
    ("error normaliser (error.rs normalize)", r"shared/src/error\.rs:.*normalize"),
    ("rmcp (Streamable HTTP service, JSON-RPC)", CRATE.format("rmcp")),
    ("tonic, tonic-web, prost", r"/(tonic|tonic-web|prost)-[0-9][^/]*/src/|functions/mcp-tool/src/pb"),
    ("mcp-tool handler (mcp_http.rs, grpc.rs)", r"functions/mcp-tool/src/(mcp_http|grpc)\.rs:"),
    ("mcp-tool registry (registry.rs, tool.rs)", r"functions/mcp-tool/src/(registry|tool)\.rs:"),
    ("the tool itself (tools/echo.rs)", r"functions/mcp-tool/src/tools/echo\.rs:|src/main\.rs:.*Echo::echo"),
    ("schema validation (boon, schema.rs)", CRATE.format("boon") + "|shared/src/schema\\.rs:"),
    ("JSON (de)serialisation (serde_json)", CRATE.format("serde_json") + "|:serde_json::"),
    ("logging (tracing, tracing-subscriber, cloud.rs)",
     r"/tracing(-core|-subscriber)?-[0-9][^/]*/src/|shared/src/logging/cloud\.rs:"),
    ("metric series (prometheus-client)", CRATE.format("prometheus-client")),
    ("string formatting (core::fmt)", r"library/core/src/fmt/|library/alloc/src/fmt"),
    ("hyper, h2, http, httparse", r"/(hyper|hyper-util|h2|httparse|http|http-body|http-body-util)-[0-9][^/]*/src/"),
    ("axum, tower (routing, middleware glue)", r"/(axum|axum-core|tower|tower-http|matchit)-[0-9][^/]*/src/"),
    ("tokio (scheduler, IO, timers)", r"/(tokio|tokio-util)-[0-9][^/]*/src/"),
    ("allocator (mimalloc, malloc/free)",
     r"libmimalloc-sys|:(malloc|free|realloc|calloc|posix_memalign|aligned_alloc|__rust_alloc"
     r"|__rust_dealloc|__rust_realloc|__rdl_\w+|mi_\w+|_mi_\w+)$"),
]


def parse(path):
    """(total, {(caller, callee): inclusive}, {function: self}) of one callgrind dump."""
    names = {}
    files = {}
    arcs = defaultdict(int)
    selfcost = defaultdict(int)
    total = 0
    fn = None
    fl = ""
    cfn = None
    cfl = None
    pending_call = False
    name_re = re.compile(r"\((\d+)\)(?: (.*))?")

    def lookup(table, value):
        m = name_re.fullmatch(value)
        if not m:
            return value
        if m.group(2) is not None:
            table[m.group(1)] = m.group(2)
        return table.get(m.group(1), value)

    def name(value):
        return lookup(names, value)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    arcs[(fn, cfn)] += cost
                    pending_call = False
                else:
                    selfcost[fn] += cost
                continue
            if line.startswith("fl="):
                fl = lookup(files, line[3:])
            elif line.startswith(("fi=", "fe=")):
                lookup(files, line[3:])
            elif line.startswith("fn="):
                fn = f"{fl}:{name(line[3:])}"
                cfl = None
            elif line.startswith(("cfi=", "cfl=")):
                cfl = lookup(files, line[4:])
            elif line.startswith("cfn="):
                cfn = f"{cfl if cfl is not None else fl}:{name(line[4:])}"
                cfl = None
            elif line.startswith("calls="):
                pending_call = True
            elif line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    if not total:
        total = sum(selfcost.values())
    return total, arcs, selfcost


def inclusive(pattern, arcs, selfcost):
    rx = re.compile(pattern)
    member = {}

    def inside(f):
        if f not in member:
            member[f] = bool(f) and rx.search(f) is not None
        return member[f]

    cost = sum(c for (caller, callee), c in arcs.items() if inside(callee) and not inside(caller))
    # A matching function nobody calls (a thread's entry) counts itself and its calls.
    called = {callee for (_, callee) in arcs}
    for f, c in selfcost.items():
        if inside(f) and f not in called:
            cost += c + sum(a for (caller, _), a in arcs.items() if caller == f)
    return cost


def self_cost(pattern, selfcost):
    rx = re.compile(pattern)
    return sum(c for f, c in selfcost.items() if rx.search(f))


def main():
    dump, requests = sys.argv[1], int(sys.argv[2])
    total, arcs, selfcost = parse(dump)
    rows = []
    for label, pattern in LAYERS:
        incl = inclusive(pattern, arcs, selfcost)
        own = self_cost(pattern, selfcost)
        if incl or own:
            rows.append({"layer": label, "inclusive": incl / requests, "own": own / requests})
    print(json.dumps({"total": total / requests, "rows": rows}))


if __name__ == "__main__":
    main()
