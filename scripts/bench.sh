#!/usr/bin/env bash
# Side-by-side benchmark of our deepstream server against the original (@deepstream/server 7.0.2).
#
# Usage:
#   scripts/bench.sh [--full] [--duration SECONDS] [--servers ours,reference]
#                    [--scenarios connect,idle,events,record-writes,record-fanout,rpc,presence]
#                    [--in-flight N[,N…]] [--out DIR]
#   scripts/bench.sh --smoke            # CI: a few hundred ops per scenario against ours only
#
# What it does:
#   1. installs the original server (scripts/install-reference.sh → scratch/reference);
#   2. builds ours and the load generator (deepstream-bench, crate tests/) in release;
#   3. for each server in turn and each scenario, starts a fresh server process with the same
#      settings (ws-binary only, open auth and permissions, memory cache, no storage, log level
#      WARN, heartbeatInterval 30000, outgoingBufferTimeout 0), runs the scenario against it
#      with --server-pid (CPU time per op, peak RSS) and stops it again;
#   4. prints one table: scenario, our figure, theirs, ratio, latency, CPU µs/op (and its
#      kernel part), peak RSS.
# A scenario a server does not support (yet) shows "n/a (reason)" instead of a figure.
#
# record-writes and rpc run once per --in-flight value (default 1 and 32): each worker keeps that
# many requests outstanding. 1 is a strict request/reply loop, where every operation costs the
# server at least one recv and one send; 32 is a busy client that does not wait for one write's
# acknowledgement before the next, so the server reads and writes many messages per call.
#
# Idle connections: 2,000 and 10,000 by default; --full adds 19,000. A process may hold at
# most 20,000 open files here, so the load generator spreads them over worker processes, each
# from its own source address (127.0.0.2, 127.0.0.3, …).
#
# Defaults take about 5 minutes on a 2-core machine (10 s per measured phase). Raw results:
# DIR/ours.jsonl and DIR/reference.jsonl (one JSON line per scenario), server logs in DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
OURS_BIN="$TARGET_DIR/release/deepstream"
BENCH_BIN="$TARGET_DIR/release/deepstream-bench"

SMOKE=0
FULL=0
DURATION=10
SERVERS="ours,reference"
SCENARIOS="connect,idle,events,record-writes,record-fanout,rpc,presence"
OUT=""
IN_FLIGHT="1,32"
RUN_TIMEOUT=600 # upper bound for one load-generator run, seconds

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --full) FULL=1 ;;
    --duration) DURATION="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --in-flight) IN_FLIGHT="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

IDLE_COUNTS="2000 10000"
[[ $FULL == 1 ]] && IDLE_COUNTS="2000 10000 19000"

log() { echo "bench.sh: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Server lifecycle

SERVER_PID=""

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

# write_config FILE PORT: the settings both servers run with.
write_config() {
  cat > "$1" <<YAML
serverName: bench
showLogo: false
logLevel: 2
enabledFeatures:
  record: true
  event: true
  rpc: true
  presence: true
httpServer:
  type: default
  options:
    host: 127.0.0.1
    port: $2
connectionEndpoints:
  - type: ws-binary
    options:
      urlPath: /deepstream
      heartbeatInterval: 30000
      outgoingBufferTimeout: 0
      maxBufferByteSize: 100000
      unauthenticatedClientTimeout: 180000
      maxAuthAttempts: 3
      logInvalidAuthData: false
      maxMessageSize: 1048576
auth:
  - type: none
    options: {}
permission:
  type: none
cache:
  type: default
telemetry:
  type: deepstreamIO
  options:
    enabled: false
YAML
}

# start_server NAME TAG: starts a fresh server; sets SERVER_PID and URL. Returns 1 if it does
# not accept a login within 30 s.
start_server() {
  local name="$1" tag="$2" dir port bin
  dir="$OUT/$name"
  mkdir -p "$dir"
  port="$("$BENCH_BIN" free-port)"
  write_config "$dir/config.yml" "$port"
  case "$name" in
    ours) bin="$OURS_BIN" ;;
    reference) bin="$REF_CLI" ;;
  esac
  # The reference CLI is a node script (#!/usr/bin/env node): the pid is node's own.
  (cd "$dir" && exec "$bin" start -c "$dir/config.yml") >"$dir/$tag.log" 2>&1 &
  SERVER_PID=$!
  URL="ws://127.0.0.1:$port/deepstream"
  if ! "$BENCH_BIN" wait --url "$URL" --timeout 30 2>>"$dir/$tag.log"; then
    log "$name did not start; last lines of $dir/$tag.log:"
    tail -n 20 "$dir/$tag.log" >&2
    stop_server
    return 1
  fi
}

# na_lines SCENARIO REASON TAG: JSON lines marking a scenario's outcomes as not available.
na_lines() {
  local names
  case "$1" in
    events) names="events events-latency" ;;
    record-writes|rpc) names="$1"; [[ ${3##*-} == 1 ]] || names="$1-pipelined-${3##*-}" ;;
    idle) names="" ; for c in $IDLE_COUNTS; do names="$names idle-$c"; done ;;
    *) names="$1" ;;
  esac
  for n in $names; do
    printf '{"scenario":"%s","supported":false,"reason":"%s","unit":"","ops":0,"seconds":0,"ops_per_sec":0,"errors":0}\n' "$n" "$2"
  done
}

# run_one NAME SCENARIO TAG [extra bench args…]: fresh server, one load-generator run, stop.
run_one() {
  local name="$1" scenario="$2" tag="$3"; shift 3
  log "$name: $tag"
  if ! start_server "$name" "$tag"; then
    na_lines "$scenario" "server did not start" "$tag" >> "$OUT/$name.jsonl"
    return 0
  fi
  local rc=0
  timeout "$RUN_TIMEOUT" "$BENCH_BIN" --url "$URL" --scenario "$scenario" --server-pid "$SERVER_PID" \
    --label "$name" --duration "$DURATION" "$@" >> "$OUT/$name.jsonl" || rc=$?
  if [[ $rc != 0 ]]; then
    log "$name: $tag: load generator exited with $rc"
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "$name: server exited during $tag; last lines of its log:"
    tail -n 20 "$OUT/$name/$tag.log" >&2
  fi
  stop_server
}

# ---------------------------------------------------------------------------------------------

build() {
  log "building ours and the load generator (release)"
  (cd "$REPO_ROOT" && cargo build --release -p deepstream --bin deepstream >&2)
  (cd "$REPO_ROOT" && cargo build --release -p deepstream-tests --bin deepstream-bench >&2)
}

if [[ $SMOKE == 1 ]]; then
  build
  OUT="${OUT:-$(mktemp -d -t deepstream-bench-smoke.XXXXXX)}"
  start_server ours smoke
  rc=0
  timeout "$RUN_TIMEOUT" "$BENCH_BIN" --url "$URL" --smoke --server-pid "$SERVER_PID" --label ours || rc=$?
  stop_server
  if [[ $rc != 0 ]]; then
    log "smoke failed; server log: $OUT/ours/smoke.log"
    tail -n 20 "$OUT/ours/smoke.log" >&2 || true
  fi
  exit "$rc"
fi

if [[ ",$SERVERS," == *",reference,"* ]]; then
  REF_CLI="$("$REPO_ROOT/scripts/install-reference.sh" | tail -n 1)"
fi
build

OUT="${OUT:-$REPO_ROOT/scratch/bench/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log "results in $OUT"
started=$SECONDS
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

for name in ${SERVERS//,/ }; do
  : > "$OUT/$name.jsonl"
  for scenario in ${SCENARIOS//,/ }; do
    if [[ $scenario == idle ]]; then
      for count in $IDLE_COUNTS; do
        run_one "$name" idle "idle-$count" --count "$count"
      done
    elif [[ $scenario == record-writes || $scenario == rpc ]]; then
      for n in ${IN_FLIGHT//,/ }; do
        run_one "$name" "$scenario" "$scenario-$n" --in-flight "$n"
      done
    else
      run_one "$name" "$scenario" "$scenario"
    fi
  done
done

log "done in $((SECONDS - started)) s"
echo
echo "deepstream side-by-side benchmark: $(nproc) cores, ${DURATION} s per phase, ratio = ours / reference"
echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures)"
echo
touch "$OUT/ours.jsonl" "$OUT/reference.jsonl"
"$BENCH_BIN" report --ours "$OUT/ours.jsonl" --theirs "$OUT/reference.jsonl"
