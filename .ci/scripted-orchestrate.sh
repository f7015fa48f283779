# Sourced by .ci/openapi.sh and .ci/ui-test.sh: a real orchestrate (target/debug, built with
# the workspace's features, local tools included) on the scripted model, bench's `bench-model`
# (a loopback OpenAI-compatible server: the first call of a conversation asks for the `echo`
# tool, the next answers "done"; `POST /admin/latency` sets how long each call waits). Both
# bound to loopback on free ports and stopped when the calling script exits.
# Callers set WORK (a work directory) and define log(); after `start_scripted_orchestrate`
# ORCHESTRATE_URL and MODEL_URL are set.

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

scripted_pids=()
stop_scripted() {
  local pid
  for pid in "${scripted_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${scripted_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_scripted EXIT

wait_http() { # NAME PID URL: until URL answers HTTP (60 s at most)
  for _ in $(seq 1 600); do
    if ! kill -0 "$2" 2>/dev/null; then
      log "$1 exited at start:"; cat "$WORK/$1.log" >&2; exit 1
    fi
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$3") != 000 ]] && return
    sleep 0.1
  done
  log "$1 did not answer at $3"; exit 1
}

# The workflows: a classifier routing to a react agent with the echo tool or to a chatter
# (keywords first, the model otherwise), a supervisor with a worker, and `default`, one react
# agent with the tool then a logger.
scripted_config() {
  cat <<YAML
mcp_servers:
  - {name: tools, transport: local, tools: [echo]}
model_services:
  - name: scripted
    provider: openai_compatible
    model: bench
    config: {address: $MODEL_URL/v1}
agents:
  - name: router
    role: classifier
    model: scripted
    classifier_config:
      categories:
        - {name: tools, description: Repeating things, keywords: [echo, repeat]}
        - {name: chat, description: Anything else, keywords: [hello]}
      keywords_first: true
      fallback: chat
    outputs:
      - {target: assistant, when: tools}
      - {target: chatter, when: chat}
  - {name: assistant, role: react, model: scripted, prompt: Use the echo tool., mcp_servers: [tools]}
  - {name: chatter, role: react, model: scripted, prompt: Chat briefly.}
  - {name: lead, role: supervisor, model: scripted, workers: [helper], max_rounds: 2}
  - {name: helper, role: react, model: scripted, prompt: Help., mcp_servers: [tools]}
  - {name: solo, role: react, model: scripted, prompt: Answer briefly., mcp_servers: [tools], outputs: [{target: log}]}
  - {name: log, role: logger, inputs: [{source: solo}]}
workflows:
  - {name: default, description: One agent with the echo tool then a logger, agents: [solo, log]}
  - {name: routed, description: A classifier and two specialists, agents: [router, assistant, chatter]}
  - {name: team, description: A supervisor and its helper, agents: [lead]}
YAML
}

start_scripted_orchestrate() { # [ENV=VALUE...]: extra variables for orchestrate
  if [[ ${CI_NO_BUILD:-} != 1 ]]; then
    log "building orchestrate and bench-model (debug, the workspace's features)"
    cargo build -q -p orchestrate -p e2e -p bench >&2
  fi
  local model_port orchestrate_port
  model_port=$(free_port)
  target/debug/bench-model --port "$model_port" --latency-ms 2 >"$WORK/bench-model.log" 2>&1 &
  scripted_pids+=($!)
  MODEL_URL=http://127.0.0.1:$model_port
  wait_http bench-model "$!" "$MODEL_URL/v1/models"
  scripted_config >"$WORK/orchestrate.yaml"
  orchestrate_port=$(free_port)
  env PORT="$orchestrate_port" HOST=127.0.0.1 LOG_FORMAT=json LOG_LEVEL=warn \
    ORCHESTRATE_CONFIG="$WORK/orchestrate.yaml" "$@" target/debug/orchestrate >"$WORK/orchestrate.log" 2>&1 &
  scripted_pids+=($!)
  ORCHESTRATE_URL=http://127.0.0.1:$orchestrate_port
  wait_http orchestrate "$!" "$ORCHESTRATE_URL/health/ready"
}
