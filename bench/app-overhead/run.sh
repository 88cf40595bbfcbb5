#!/usr/bin/env bash
# What exporting spans costs an application: a node:http app traced with the
# official OpenTelemetry JS SDK (app.mjs), driven by wrk, in four cases.
#
#   bench/app-overhead/run.sh [--build-dir DIR] [--duration S] [--connections N]
#                             [--threads N] [--keep]
#
#   --build-dir DIR   where spanrelayd and tests/spanrelay-testsink are
#                     (default: <repo>/build)
#   --duration S      seconds of measured load per case (default 10)
#   --connections N   wrk connections (default 32)
#   --threads N       wrk threads (default 2)
#   --keep            keep the temp dir (logs, wrk output, stats) and print its path
#
# Cases (same wrk load: a fixed connection count, closed loop):
#   daemon    BatchSpanProcessor (SDK defaults) + OTLP/HTTP protobuf exporter
#             to spanrelayd on loopback (bench/configs/grpc-gzip.yaml), which
#             forwards to a count-only test sink
#   slow      the same exporter straight to a slow remote-like upstream: the
#             test sink with --delay-ms 200
#   sdk-only  the SDK records the spans, no exporter
#   noop      no tracer provider registered (the API's no-op tracer)
#
# Each case: a fresh app (and sink/daemon), 2 s of wrk warm-up, then
# --duration s of wrk --latency, then SIGTERM to the app, which flushes its
# SDK (bounded, 8 s) and writes its span counts. Every wait is bounded.
# Prints one markdown table on stdout; progress goes to stderr. Figures never
# fail the run: the exit code is 0 unless a process could not start.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_DIR="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly REPO_DIR
readonly CONFIG_TEMPLATE="$REPO_DIR/bench/configs/grpc-gzip.yaml"
readonly SLOW_UPSTREAM_DELAY_MS=200
readonly WARMUP_S=2
readonly START_TIMEOUT_S=15
readonly APP_STOP_S=12   # the app's own flush limit is 8 s
readonly DRAIN_LIMIT_S=7 # batch timeout (2 s) + 5 s
readonly NPM_CI_TIMEOUT_S=300

BUILD_DIR="$REPO_DIR/build"
DURATION_S=10
CONNECTIONS=32
THREADS=2
KEEP=0

WORK_DIR=""
CHILD_PIDS=()
START_FAILURES=0
TABLE_ROWS=()
NOTES=()

log() { printf '[app-overhead %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

parse_args() {
  while (($#)); do
    case "$1" in
      --build-dir) BUILD_DIR="${2:?--build-dir needs a value}"; shift ;;
      --duration) DURATION_S="${2:?--duration needs a value}"; shift ;;
      --connections) CONNECTIONS="${2:?--connections needs a value}"; shift ;;
      --threads) THREADS="${2:?--threads needs a value}"; shift ;;
      --keep) KEEP=1 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
}

# --- processes -------------------------------------------------------------------

# shellcheck source=bench/lib/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/processes.sh"






start_sink() {
  local dir=$1
  shift
  "$SINK_BIN" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --count-only \
    --ready-file "$dir/sink.ready" "$@" >"$dir/sink.log" 2>&1 &
  SINK_PID=$!
  CHILD_PIDS+=("$SINK_PID")
  wait_ready "$SINK_PID" "$dir/sink.ready"
}

start_daemon() {
  local dir=$1
  sed -e "s#@RUN_DIR@#$dir#g" -e "s#@SINK_GRPC@#$(jq -r .grpc "$dir/sink.ready")#g" \
    -e "s#@SINK_HTTP@#$(jq -r .http "$dir/sink.ready")#g" "$CONFIG_TEMPLATE" >"$dir/spanrelay.yaml"
  "$DAEMON_BIN" --config "$dir/spanrelay.yaml" --ready-file "$dir/daemon.ready" \
    >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  CHILD_PIDS+=("$DAEMON_PID")
  wait_ready "$DAEMON_PID" "$dir/daemon.ready"
}

start_app() {
  local dir=$1 mode=$2 endpoint=$3
  local args=(--mode "$mode" --ready-file "$dir/app.ready" --stats-out "$dir/app-stats.json")
  [[ -z "$endpoint" ]] || args+=(--endpoint "$endpoint")
  (cd "$SCRIPT_DIR" && exec node app.mjs "${args[@]}") >"$dir/app.log" 2>&1 &
  APP_PID=$!
  CHILD_PIDS+=("$APP_PID")
  wait_ready "$APP_PID" "$dir/app.ready"
}

# wrk, bounded by `timeout`, in the background so that a signal interrupts it.
run_wrk() {
  local out=$1 duration=$2 url=$3 pid
  timeout --kill-after=5 "$((${duration%.*} + 30))" wrk -t"$THREADS" -c"$CONNECTIONS" \
    -d"${duration}s" --latency "$url" >"$out" 2>&1 &
  pid=$!
  CHILD_PIDS+=("$pid")
  wait "$pid" || NOTES+=("wrk exited with status $? ($out)")
  forget_child "$pid"
}

# --- figures ---------------------------------------------------------------------

scrape_sum() {
  curl -s --max-time 2 "http://$1/metrics" |
    awk -v name="$2" '$1 == name || index($1, name "{") == 1 {sum += $NF; seen = 1}
      END {if (seen) printf "%.0f", sum; else print "nan"}' || echo nan
}

wait_drained() {
  local metrics_addr=$1 deadline=$((SECONDS + DRAIN_LIMIT_S))
  while ((SECONDS < deadline)); do
    [[ "$(scrape_sum "$metrics_addr" spanrelay_queue_spans)" == 0 ]] && return 0
    sleep 0.2
  done
  return 1
}

sink_spans() { curl -s --max-time 2 "http://$(jq -r .http "$1/sink.ready")/stats" | jq -r '.spans // "nan"' 2>/dev/null || echo nan; }

# wrk's latency percentile line ("     99%   12.34ms") in ms.
wrk_percentile_ms() {
  awk -v q="$2%" '$1 == q {
      v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
      f = (unit == "us") ? 0.001 : (unit == "ms") ? 1 : (unit == "s") ? 1000 : (unit == "m") ? 60000 : -1
      if (f > 0) {printf "%.2f", v * f; found = 1}
    } END {if (!found) print "-"}' "$1"
}

wrk_requests_per_s() { awk '/^Requests\/sec:/ {printf "%.0f", $2; found = 1} END {if (!found) print "-"}' "$1"; }

# utime + stime of PID in seconds.
process_cpu_s() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($12 + $13) / hz}' || echo nan
}

# The app's CPU per request over the measured wrk run, in µs.
app_cpu_us_per_request() {
  local requests
  requests=$(awk '$2 == "requests" && $3 == "in" {print $1}' "$3")
  awk -v a="$2" -v b="$1" -v n="${requests:-0}" \
    'BEGIN {if (a == "nan" || b == "nan" || n + 0 == 0) print "-"; else printf "%.0f", (a - b) * 1e6 / n}'
}

stat_field() { jq -r ".$2 // \"-\"" "$1" 2>/dev/null || echo -; }

# --- one case --------------------------------------------------------------------

run_case() {
  local id=$1 label=$2 dir="$WORK_DIR/$1"
  mkdir -p "$dir"
  log "case $id: $label"
  SINK_PID="" DAEMON_PID="" APP_PID=""
  local endpoint="" mode=otlp metrics_addr=""
  case "$id" in
    daemon)
      if ! start_sink "$dir" || ! start_daemon "$dir"; then
        start_failed "$id" "$label" "the sink or spanrelayd did not start (see $dir)"
        return
      fi
      metrics_addr=$(jq -r '.metrics[0]' "$dir/daemon.ready")
      endpoint="http://$(jq -r '[.http[] | select(startswith("unix:") | not)][0]' "$dir/daemon.ready")/v1/traces"
      ;;
    slow)
      if ! start_sink "$dir" --delay-ms "$SLOW_UPSTREAM_DELAY_MS"; then
        start_failed "$id" "$label" "the sink did not start (see $dir/sink.log)"
        return
      fi
      endpoint="http://$(jq -r .http "$dir/sink.ready")/v1/traces"
      ;;
    sdk-only | noop) mode=$id ;;
  esac
  if ! start_app "$dir" "$mode" "$endpoint"; then
    start_failed "$id" "$label" "the app did not start (see $dir/app.log)"
    return
  fi
  local url
  url="http://127.0.0.1:$(jq -r .port "$dir/app.ready")/work"
  run_wrk "$dir/wrk-warmup.txt" "$WARMUP_S" "$url"
  local cpu_before cpu_after
  cpu_before=$(process_cpu_s "$APP_PID")
  run_wrk "$dir/wrk.txt" "$DURATION_S" "$url"
  cpu_after=$(process_cpu_s "$APP_PID")
  stop_child "$APP_PID" "$APP_STOP_S"
  [[ -s "$dir/app-stats.json" ]] || NOTES+=("case $id: the app wrote no span counts ($dir/app.log)")

  local received="-"
  if [[ "$id" == daemon ]]; then
    wait_drained "$metrics_addr" || NOTES+=("case $id: spans still queued in spanrelayd ${DRAIN_LIMIT_S}s after the load")
    local accepted upstream
    accepted=$(scrape_sum "$metrics_addr" spanrelay_receiver_accepted_spans_total)
    upstream=$(sink_spans "$dir")
    received="$accepted (sink $upstream)"
  elif [[ "$id" == slow ]]; then
    received=$(sink_spans "$dir")
  fi
  stop_child "$DAEMON_PID" 15
  stop_child "$SINK_PID" 5

  local s="$dir/app-stats.json" w="$dir/wrk.txt"
  if grep -q 'Non-2xx\|Socket errors' "$w"; then
    NOTES+=("case $id: wrk: $(grep 'Non-2xx\|Socket errors' "$w" | paste -sd ';' -)")
  fi
  local flush
  flush=$(stat_field "$s" flush)
  [[ "$flush" == ok || "$flush" == - ]] || NOTES+=("case $id: the SDK's flush at exit: $flush")
  TABLE_ROWS+=("| $id | $label | $(wrk_requests_per_s "$w") | $(wrk_percentile_ms "$w" 50) | $(wrk_percentile_ms "$w" 99) | $(app_cpu_us_per_request "$cpu_before" "$cpu_after" "$w") | $(stat_field "$s" ended) | $(stat_field "$s" exported) | $(stat_field "$s" failed) | $(stat_field "$s" dropped) | $received |")
}

start_failed() {
  log "case $1: $3"
  START_FAILURES=$((START_FAILURES + 1))
  TABLE_ROWS+=("| $1 | $2 | $3 | | | | | | | | |")
  stop_child "${APP_PID:-}" 2
  stop_child "${DAEMON_PID:-}" 5
  stop_child "${SINK_PID:-}" 2
}

print_report() {
  local cpu_model
  cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(nproc) cores${cpu_model:+ ($cpu_model)}, Linux $(uname -r). Node $(node --version), OpenTelemetry JS SDK $(jq -r '.dependencies["@opentelemetry/sdk-trace-base"]' "$SCRIPT_DIR/package.json")."
  echo
  echo "Load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION_S}s --latency (closed loop) after ${WARMUP_S} s of warm-up; each request makes 3-5 spans. No CPU pinning: app, wrk, spanrelayd and the sink share the machine."
  echo
  echo "| case | exporting to | requests/s | p50 ms | p99 ms | app CPU µs / request | spans ended | exported | failed | dropped by the SDK | received upstream |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE_ROWS[@]}"
  if ((${#NOTES[@]})); then
    echo
    printf -- '- %s\n' "${NOTES[@]}"
  fi
}

main() {
  parse_args "$@"
  DAEMON_BIN="$BUILD_DIR/spanrelayd"
  SINK_BIN="$BUILD_DIR/tests/spanrelay-testsink"
  local bin tool
  for bin in "$DAEMON_BIN" "$SINK_BIN"; do
    [[ -x "$bin" ]] || { echo "run.sh: missing $bin (build it first)" >&2; exit 1; }
  done
  if ! command -v wrk >/dev/null; then
    echo "run.sh: needs wrk (Debian: apt-get install wrk)" >&2
    exit 1
  fi
  for tool in node npm jq curl awk timeout; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
  done
  if [[ ! -d "$SCRIPT_DIR/node_modules/@opentelemetry/sdk-trace-base" ]]; then
    log "installing the SDK (npm ci)"
    (cd "$SCRIPT_DIR" && timeout "$NPM_CI_TIMEOUT_S" npm ci --no-audit --no-fund >&2) ||
      { echo "run.sh: npm ci failed in $SCRIPT_DIR" >&2; exit 1; }
  fi

  WORK_DIR=$(mktemp -d /tmp/spanrelay-app-overhead.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  run_case daemon "spanrelayd (loopback OTLP/HTTP)"
  run_case slow "slow upstream direct (${SLOW_UPSTREAM_DELAY_MS} ms)"
  run_case sdk-only "nothing (SDK, no exporter)"
  run_case noop "nothing (no SDK: no-op API)"
  print_report
  ((START_FAILURES == 0)) || exit 1
}

main "$@"
