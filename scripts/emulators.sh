#!/usr/bin/env bash
# The Firestore and Pub/Sub emulators for the run store's tests, on loopback:
#   eval "$(bash scripts/emulators.sh)"    # start them unless they already answer, wait, export
#   bash scripts/emulators.sh stop         # stop the ones this script started
# stdout is only the `export` line (so that eval takes it); progress and errors go to stderr.
# They come with the machine image (the Debian packages google-cloud-cli-firestore-emulator and
# google-cloud-cli-pubsub-emulator, and Java); they cannot be installed from the archive, so a
# missing one is an error naming the package. Logs and pids are in .cache/emulators/.
# EMULATOR_START_TIMEOUT (seconds, default 90): the longest wait for both to answer (each is a
# JVM: 5-20 s on a quiet machine, more while cargo builds).
set -euo pipefail
cd "$(dirname "$0")/.."

FIRESTORE=127.0.0.1:8686
PUBSUB=127.0.0.1:8795
PROJECT=aixrun-test
DIR=.cache/emulators
TIMEOUT=${EMULATOR_START_TIMEOUT:-90}

say() { echo "emulators: $*" >&2; }
fail() {
  say "$*"
  exit 1
}

# Each answers `GET /` with "Ok" (seen on both).
answers() { [[ $(curl -s --max-time 2 "http://$1/" 2>/dev/null) == Ok* ]]; }

stop_one() {
  local name=$1 pidfile=$DIR/$1.pid
  [[ -f $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  # Started with setsid: the pid leads a process group holding gcloud's wrapper and the JVM.
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    say "stopped $name (process group $pid)"
  fi
  rm -f "$pidfile"
}

if [[ ${1:-start} == stop ]]; then
  stop_one firestore
  stop_one pubsub
  exit 0
fi
[[ ${1:-start} == start ]] || fail "usage: bash scripts/emulators.sh [start|stop]"

command -v curl >/dev/null || fail "curl is needed to check that the emulators answer"

# Checked only when one has to be started: emulators already answering are used as they are.
check_installed() {
  command -v gcloud >/dev/null ||
    fail "gcloud is not installed; the emulators come with the machine image (google-cloud-cli)"
  command -v java >/dev/null ||
    fail "java is not installed; the emulators need a Java 17 runtime (from the machine image)"
  local sdk
  sdk=$(dirname "$(dirname "$(readlink -f "$(command -v gcloud)")")")
  [[ -d $sdk/platform/$1 ]] ||
    fail "the $1 component is missing under $sdk/platform (Debian package $2, from the machine image)"
}

mkdir -p "$DIR"
start_one() {
  local name=$1 hostport=$2
  shift 2
  if answers "$hostport"; then
    say "$name already answers on $hostport"
    return 0
  fi
  say "starting $name on $hostport (log $DIR/$name.log)"
  setsid "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

if ! answers "$FIRESTORE"; then
  check_installed cloud-firestore-emulator google-cloud-cli-firestore-emulator
fi
if ! answers "$PUBSUB"; then
  check_installed pubsub-emulator google-cloud-cli-pubsub-emulator
fi
start_one firestore "$FIRESTORE" gcloud emulators firestore start --host-port="$FIRESTORE"
start_one pubsub "$PUBSUB" gcloud beta emulators pubsub start --host-port="$PUBSUB" --project="$PROJECT"

deadline=$((SECONDS + TIMEOUT))
for pair in "firestore $FIRESTORE" "pubsub $PUBSUB"; do
  read -r name hostport <<<"$pair"
  until answers "$hostport"; do
    if [[ -f $DIR/$name.pid ]] && ! kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      tail -n 20 "$DIR/$name.log" >&2 || true
      fail "$name exited before answering on $hostport (log above, $DIR/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$DIR/$name.log" >&2 || true
      fail "$name did not answer on $hostport within ${TIMEOUT} s (EMULATOR_START_TIMEOUT; log $DIR/$name.log)"
    fi
    sleep 0.5
  done
done
say "firestore on $FIRESTORE and pubsub on $PUBSUB answer"
echo "export FIRESTORE_EMULATOR_HOST=$FIRESTORE PUBSUB_EMULATOR_HOST=$PUBSUB GOOGLE_CLOUD_PROJECT=$PROJECT"
