# One image per function: a static (musl) binary on an empty base, nothing else but CA roots.
#
#   docker build --build-arg FUNCTION=mcp-tool -t mcp-tool .          # compiles in the builder
#   docker build --build-arg FUNCTION=mcp-tool --target runtime-prebuilt -t mcp-tool .
#
# The second form compiles nothing: it packs the binary the host built with
#   cargo build --release --locked --target x86_64-unknown-linux-musl -p mcp-tool
# and the host's CA bundle, copied to target/container/ca-certificates.crt (.ci/containers.sh
# does both). FUNCTION is orchestrate, mcp-tool or health. The image runs as a numeric
# non-root user, binds 0.0.0.0:$PORT (8080) and checks itself with its own binary's `probe`.
# FEATURES adds cargo features: `--build-arg FEATURES=local-tools` gives orchestrate mcp-tool's
# tools in process (transport local), for a one-service deployment.

ARG FUNCTION=mcp-tool

# --- builder: the workspace compiled once for x86_64-unknown-linux-musl ----------------------
# rust:1.95-bookworm (Debian 12, ca-certificates included), pinned by digest.
FROM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS builder
ARG FUNCTION
ARG FEATURES=""
# musl-gcc compiles mimalloc's C for the musl target (bookworm's musl 1.2.3).
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl -p "${FUNCTION}" \
       --features "${FEATURES}" \
    && cp "target/x86_64-unknown-linux-musl/release/${FUNCTION}" /app

# --- what every function image is ----------------------------------------------------------
FROM scratch AS runtime-base
ARG FUNCTION
# REVISION: the commit built (Cloud Build passes $SHORT_SHA); SOURCE: the repository's URL.
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="${FUNCTION}" \
      org.opencontainers.image.description="aixrun function ${FUNCTION}: AI agents and MCP tools on serverless Google Cloud" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="scratch"
# The binaries bind loopback outside the platform unless told otherwise; in a container the
# port must be reachable. rustls reads the CA roots from SSL_CERT_FILE.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8080
# 65532 (distroless "nonroot", as the Knative manifests' runAsUser), numeric: there is no
# /etc/passwd to resolve a name in.
USER 65532:65532
# No shell in the image: the function's own binary checks its readiness (`FUNCTION probe`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/app", "probe", "http://127.0.0.1:8080", "--timeout", "3s"]
ENTRYPOINT ["/app"]

# --- runtime-prebuilt: the host's static binary (no compiler, no base image to pull) ----------
FROM runtime-base AS runtime-prebuilt
ARG FUNCTION
COPY target/container/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chmod=0555 target/x86_64-unknown-linux-musl/release/${FUNCTION} /app

# --- runtime (the default target): the builder's binary ---------------------------------------
FROM runtime-base AS runtime
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder --chmod=0555 /app /app
