#!/usr/bin/env bash
# spanrelay benchmark runner: every scenario of bench/README.md in one command.
#
#   bench/run.sh [--quick] [--build-dir DIR] [--duration S] [--only 1r,7r] [--keep]
#
#   --quick          3 s of load per scenario instead of 10 s
#   --build-dir DIR  where spanrelayd, tests/spanrelay-testsink and
#                    bench/spanrelay-loadgen are (default: <repo>/build)
#   --duration S     seconds of load per scenario (overrides --quick)
#   --only LIST      run only these scenario ids (comma separated, e.g. 1r,7r,7a)
#   --keep           keep the temp dir (configs, logs, scrapes) and print its path
#
# For each scenario it starts a fresh test sink (--count-only) and a fresh
# spanrelayd (config from bench/configs/, all ports 127.0.0.1:0, learnt from
# --ready-file), runs spanrelay-loadgen against the daemon, waits (bounded)
# for the daemon to deliver what it accepted, stops everything with SIGTERM
# and prints one markdown table on stdout (progress goes to stderr).
#
# Figures never fail the run: a missing figure is "-". The exit code is 0
# unless a process could not start (then 1, and the temp dir is kept).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
REPO_DIR="$(dirname "$SCRIPT_DIR")"
readonly REPO_DIR
readonly CONFIG_DIR="$SCRIPT_DIR/configs"

# Load shape. Throughput rows run closed loop ("max") with CONCURRENCY
# workers; latency rows use a fixed offered load so that they compare.
readonly CONCURRENCY=4
readonly SPANS_PER_REQUEST=100
readonly FIXED_RATE=200  # requests/s over all workers = 20000 spans/s
# Distinct prebuilt requests (2000 x 100 spans, ~100 MB in loadgen). Trace ids
# repeat when the pool wraps; at the fixed rate that is every 10 s, longer than
# decision_wait, so tail sampling sees each trace once per decision.
readonly LOADGEN_POOL=2000
readonly START_TIMEOUT_S=15
readonly BATCH_TIMEOUT_S=2     # batch.timeout in the configs (the default)
readonly DECISION_WAIT_S=5     # sampling.decision_wait in sampling.yaml
readonly SHUTDOWN_TIMEOUT_S=5  # service.shutdown_timeout in the configs
readonly SCRAPE_INTERVAL_S=0.5
readonly BINARY_WAIT_S=300

BUILD_DIR="$REPO_DIR/build"
DURATION_S=10
ONLY=""
KEEP=0

# id | label | config template | ingress | loadgen flags | rate ("max" or req/s) | sink flags
readonly SCENARIOS=(
  "1|gRPC TCP → gRPC gzip|grpc-gzip|grpc||max|"
  "2|gRPC TCP → gRPC none|grpc-none|grpc||max|"
  "3|gRPC TCP → HTTP zstd|http-zstd|grpc||max|"
  "4|gRPC unix → gRPC gzip|grpc-gzip|grpc-unix||max|"
  "5|HTTP protobuf → gRPC gzip|grpc-gzip|http||max|"
  "6|HTTP JSON → gRPC gzip|grpc-gzip|http|--encoding json|max|"
  "7|tail sampling → gRPC gzip|sampling|grpc||max|"
  "1r|gRPC TCP → gRPC gzip|grpc-gzip|grpc||$FIXED_RATE|"
  "7r|tail sampling → gRPC gzip|sampling|grpc||$FIXED_RATE|"
  "7a|tail sampling, keep all → gRPC gzip|sampling-always|grpc||$FIXED_RATE|"
  "8|slow upstream (1 s) → gRPC gzip|grpc-gzip|grpc||$FIXED_RATE|--delay-ms 1000"
  "8s|slow upstream (1 s), spool on → gRPC gzip|grpc-gzip-spool|grpc||$FIXED_RATE|--delay-ms 1000"
  "9|upstream down, spooling → (nothing)|grpc-down-spool|grpc||$FIXED_RATE|"
)

WORK_DIR=""
STOPPED_RC=0
CHILD_PIDS=()
START_FAILURES=0
TABLE_ROWS=()
SAMPLING_ROWS=()
NOTES=()
declare -A WINDOW_CPU_PER_MSPANS=() DRAINED_CPU_NS_PER_SPAN=()

# A note under the table that also keeps the temp dir, so its logs can be read.
trouble() {
  NOTES+=("$1")
  KEEP=1
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

parse_args() {
  local duration_set=0
  while (($#)); do
    case "$1" in
      --quick) ((duration_set)) || DURATION_S=3 ;;
      --build-dir) BUILD_DIR="${2:?--build-dir needs a value}"; shift ;;
      --duration) DURATION_S="${2:?--duration needs a value}"; duration_set=1; shift ;;
      --only) ONLY=",${2:?--only needs a value},"; shift ;;
      --keep) KEEP=1 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
}

# --- processes --------------------------------------------------------------

# True while PID is running (a zombie child counts as exited).
is_running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

forget_child() {
  local pid=$1 kept=() p
  for p in "${CHILD_PIDS[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
  CHILD_PIDS=("${kept[@]}")
}

# SIGTERM, wait up to $2 s, then SIGKILL. Sets STOPPED_RC to the exit status
# (not printed: `wait` only works in the shell that started the child).
stop_child() {
  local pid=$1 grace_s=$2 deadline rc=0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + grace_s))
  while is_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if is_running "$pid"; then
    log "pid $pid still running ${grace_s}s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  forget_child "$pid"
  STOPPED_RC=$rc
}

cleanup() {
  local pid
  for pid in "${CHILD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${CHILD_PIDS[@]}"; do
    if is_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  done
  CHILD_PIDS=()
  if [[ -n "$WORK_DIR" && -d "$WORK_DIR" ]]; then
    if ((KEEP || START_FAILURES)); then
      log "logs kept in $WORK_DIR"
    else
      rm -rf "$WORK_DIR"
    fi
  fi
}

# The build dir may be rebuilt while we run (a linker writing a binary makes
# it unexecutable for a moment): wait, bounded, until every binary exists and
# has not changed for a few seconds.
wait_for_binaries() {
  local deadline=$((SECONDS + BINARY_WAIT_S)) bin age ok
  while true; do
    ok=1
    for bin in "$DAEMON_BIN" "$SINK_BIN" "$LOADGEN_BIN"; do
      age=$(($(date +%s) - $(stat -L -c %Y "$bin" 2>/dev/null || echo 0)))
      if [[ ! -x "$bin" ]] || ((age < 5)); then ok=0; fi
    done
    ((ok)) && return 0
    ((SECONDS < deadline)) || return 1
    log "waiting for the binaries in $BUILD_DIR (being rebuilt?)"
    sleep 5
  done
}

# Waits until PID has written READY_FILE; false if it died or timed out.
wait_ready() {
  local pid=$1 ready_file=$2 deadline=$((SECONDS + START_TIMEOUT_S))
  while ((SECONDS < deadline)); do
    [[ -s "$ready_file" ]] && return 0
    is_running "$pid" || return 1
    sleep 0.05
  done
  return 1
}

# utime + stime of PID in seconds, from /proc/PID/stat (fields after "comm").
process_cpu_s() {
  local ticks
  ticks=$(getconf CLK_TCK)
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null |
    awk -v hz="$ticks" '{printf "%.3f", ($12 + $13) / hz}' || echo nan
}

peak_rss_kib() {
  awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo nan
}

# --- metrics and upstream figures --------------------------------------------

scrape() { curl -s --max-time 2 "http://$1/metrics" || true; }

# Sum of every series of metric $1 in Prometheus text on stdin.
metric_sum() {
  awk -v name="$1" '$1 == name || index($1, name "{") == 1 {sum += $NF; seen = 1}
    END {if (seen) printf "%.0f", sum; else print "nan"}'
}

# Background loop: one "buffered_bytes queue_spans" line per scrape.
scrape_loop() {
  local metrics_addr=$1 out=$2 text
  while true; do
    text=$(scrape "$metrics_addr")
    printf '%s %s\n' "$(metric_sum spanrelay_sampling_buffered_bytes <<<"$text")" \
      "$(metric_sum spanrelay_queue_spans <<<"$text")" >>"$out"
    sleep "$SCRAPE_INTERVAL_S"
  done
}

# Waits (at most $2 s) until the daemon holds no accepted span any more.
wait_drained() {
  local metrics_addr=$1 limit_s=$2 deadline queued
  deadline=$((SECONDS + limit_s))
  while ((SECONDS < deadline)); do
    queued=$(scrape "$metrics_addr" | metric_sum spanrelay_queue_spans)
    [[ "$queued" == 0 ]] && return 0
    sleep 0.2
  done
  return 1
}

# Bytes the sink received on its listener port $1 (TCP payload: HTTP/2 or
# HTTP/1.1 framing included), summed over its established connections.
sink_bytes_received() {
  command -v ss >/dev/null || { echo nan; return; }
  ss -tinH state established "( sport = :$1 )" 2>/dev/null |
    { grep -o 'bytes_received:[0-9]*' || true; } | awk -F: '{s += $2; n++} END {if (n) print s; else print "nan"}'
}

# --- arithmetic helpers (awk; "nan" in, "-" out) --------------------------------

fmt() { awk -v x="$1" -v f="$2" 'BEGIN {if (x == "nan" || x == "") print "-"; else printf f, x}'; }
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {if (a == "nan" || b == "nan" || a == "" || b == "" || b + 0 == 0) print "nan"; else printf "%.6f", a / b}'
}
result_field() { sed -n 's/.*[[:space:]]'"$2"'=\([^[:space:]]*\).*/\1/p' <<<" $1"; }

# --- one scenario ---------------------------------------------------------------

start_sink() {
  local dir=$1 sink_flags=$2
  # shellcheck disable=SC2086  # sink_flags is a word list
  "$SINK_BIN" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --count-only \
    --ready-file "$dir/sink.ready" $sink_flags >"$dir/sink.log" 2>&1 &
  SINK_PID=$!
  CHILD_PIDS+=("$SINK_PID")
  wait_ready "$SINK_PID" "$dir/sink.ready"
}

start_daemon() {
  local dir=$1 template=$2 sink_grpc sink_http
  sink_grpc=$(jq -r .grpc "$dir/sink.ready")
  sink_http=$(jq -r .http "$dir/sink.ready")
  sed -e "s#@RUN_DIR@#$dir#g" -e "s#@SINK_GRPC@#$sink_grpc#g" -e "s#@SINK_HTTP@#$sink_http#g" \
    "$CONFIG_DIR/$template.yaml" >"$dir/spanrelay.yaml"
  "$DAEMON_BIN" --config "$dir/spanrelay.yaml" --ready-file "$dir/daemon.ready" \
    >"$dir/daemon.log" 2>&1 &
  DAEMON_PID=$!
  CHILD_PIDS+=("$DAEMON_PID")
  wait_ready "$DAEMON_PID" "$dir/daemon.ready"
}

loadgen_target() {
  local ready=$1 ingress=$2
  case "$ingress" in
    grpc) echo "grpc://$(jq -r '[.grpc[] | select(startswith("unix:") | not)][0]' "$ready")" ;;
    grpc-unix) echo "grpc-unix://$(jq -r '[.grpc[] | select(startswith("unix:"))][0]' "$ready" | sed 's/^unix://')" ;;
    http) echo "http://$(jq -r '[.http[] | select(startswith("unix:") | not)][0]' "$ready")" ;;
  esac
}

run_scenario() {
  local id=$1 label=$2 template=$3 ingress=$4 loadgen_flags=$5 rate=$6 sink_flags=$7
  local dir="$WORK_DIR/scenario-$id"
  mkdir -p "$dir"
  log "scenario $id: $label (rate $rate, ${DURATION_S}s)"
  wait_for_binaries || log "binaries still missing or changing after ${BINARY_WAIT_S}s; trying anyway"

  if ! start_sink "$dir" "$sink_flags"; then
    log "scenario $id: the test sink did not start (see $dir/sink.log)"
    START_FAILURES=$((START_FAILURES + 1))
    stop_child "$SINK_PID" 2
    TABLE_ROWS+=("| $id | $label | could not start the sink | | | | | | | | | |")
    return
  fi
  if ! start_daemon "$dir" "$template"; then
    log "scenario $id: spanrelayd did not start (see $dir/daemon.log)"
    START_FAILURES=$((START_FAILURES + 1))
    stop_child "$DAEMON_PID" 2
    stop_child "$SINK_PID" 2
    TABLE_ROWS+=("| $id | $label | could not start spanrelayd | | | | | | | | | |")
    return
  fi

  local metrics_addr target cpu_before scraper_pid="" rate_flags=() offered
  metrics_addr=$(jq -r '.metrics[0]' "$dir/daemon.ready")
  target=$(loadgen_target "$dir/daemon.ready" "$ingress")
  if [[ "$rate" == max ]]; then
    offered="max, c=$CONCURRENCY"
  else
    rate_flags=(--rate "$rate")
    offered="$rate req/s"
  fi
  if [[ "$template" == sampling* ]]; then
    scrape_loop "$metrics_addr" "$dir/scrapes.txt" &
    scraper_pid=$!
    CHILD_PIDS+=("$scraper_pid")
  fi

  # Bounded twice: loadgen stops by itself after --duration (+5 s for
  # requests in flight); `timeout` is the safety net. Status 126/127 means
  # it could not be executed (being rebuilt): wait for it and try once more.
  local loadgen_rc attempt
  for attempt in 1 2; do
    cpu_before=$(process_cpu_s "$DAEMON_PID")
    loadgen_rc=0
    # In the background so that a signal to run.sh interrupts `wait` at once
    # and the cleanup trap stops loadgen too.
    # shellcheck disable=SC2086  # loadgen_flags is a word list
    timeout --kill-after=5 "$((${DURATION_S%.*} + 60))" "$LOADGEN_BIN" --target "$target" \
      --duration "$DURATION_S" --concurrency "$CONCURRENCY" \
      --spans-per-request "$SPANS_PER_REQUEST" --pool "$LOADGEN_POOL" "${rate_flags[@]}" \
      $loadgen_flags --daemon-pid "$DAEMON_PID" >"$dir/loadgen.log" 2>&1 &
    local loadgen_pid=$!
    CHILD_PIDS+=("$loadgen_pid")
    wait "$loadgen_pid" || loadgen_rc=$?
    forget_child "$loadgen_pid"
    if ((attempt == 2 || (loadgen_rc != 126 && loadgen_rc != 127))); then break; fi
    log "scenario $id: could not execute loadgen (status $loadgen_rc), retrying"
    wait_for_binaries || true
  done
  ((loadgen_rc == 0)) || trouble "scenario $id: loadgen exited with status $loadgen_rc ($dir/loadgen.log)"

  # Let the daemon deliver what it accepted (sampling: decide first), bounded.
  local drain_limit=$((BATCH_TIMEOUT_S + 5))
  [[ "$template" == sampling* ]] && drain_limit=$((drain_limit + DECISION_WAIT_S))
  wait_drained "$metrics_addr" "$drain_limit" ||
    NOTES+=("scenario $id: spans still queued ${drain_limit}s after the load (not drained)")

  local cpu_drained rss_kib metrics sink_stats sink_port upstream_bytes
  cpu_drained=$(awk -v a="$(process_cpu_s "$DAEMON_PID")" -v b="$cpu_before" \
    'BEGIN {if (a == "nan" || b == "nan") print "nan"; else printf "%.3f", a - b}')
  rss_kib=$(peak_rss_kib "$DAEMON_PID")
  metrics=$(scrape "$metrics_addr")
  printf '%s\n' "$metrics" >"$dir/metrics.txt"
  sink_port=$(jq -r "$([[ "$template" == http-zstd ]] && echo .http || echo .grpc)" "$dir/sink.ready")
  upstream_bytes=$(sink_bytes_received "${sink_port##*:}")
  sink_stats=$(curl -s --max-time 2 "http://$(jq -r .http "$dir/sink.ready")/stats" || true)

  if [[ -n "$scraper_pid" ]]; then stop_child "$scraper_pid" 2; fi
  local daemon_rc sink_rc
  stop_child "$DAEMON_PID" "$((SHUTDOWN_TIMEOUT_S + 10))"
  daemon_rc=$STOPPED_RC
  stop_child "$SINK_PID" 5
  sink_rc=$STOPPED_RC
  ((daemon_rc == 0)) || trouble "scenario $id: spanrelayd exited with status $daemon_rc ($dir/daemon.log)"
  ((sink_rc == 0)) || trouble "scenario $id: the sink exited with status $sink_rc ($dir/sink.log)"

  record_row "$id" "$label" "$offered" "$template" "$dir" "$cpu_drained" "$rss_kib" \
    "$metrics" "$sink_stats" "$upstream_bytes"
}

record_row() {
  local id=$1 label=$2 offered=$3 template=$4 dir=$5 cpu_drained=$6 rss_kib=$7 metrics=$8
  local sink_stats=$9 upstream_bytes=${10}
  local result sink_spans accepted refused_metric
  result=$(grep '^RESULT ' "$dir/loadgen.log" | tail -n 1 || true)
  [[ -n "$result" ]] || trouble "scenario $id: loadgen printed no RESULT line ($dir/loadgen.log)"
  sink_spans=$(jq -r '.spans // "nan"' <<<"$sink_stats" 2>/dev/null || true)
  [[ -n "$sink_spans" ]] || sink_spans=nan
  accepted=$(metric_sum spanrelay_receiver_accepted_spans_total <<<"$metrics")
  refused_metric=$(metric_sum spanrelay_receiver_refused_requests_total <<<"$metrics")

  local spans_s p50 p99 p999 cpu errors refused rss_mib bytes_per_span delivered
  spans_s=$(result_field "$result" spans_per_s)
  p50=$(result_field "$result" p50_us)
  p99=$(result_field "$result" p99_us)
  p999=$(result_field "$result" p999_us)
  cpu=$(result_field "$result" cpu_s_per_mspans)
  errors=$(result_field "$result" errors)
  refused=$(result_field "$result" refused)
  [[ "$rss_kib" != nan ]] || rss_kib=$(result_field "$result" peak_rss_kib)
  rss_mib=$(ratio "${rss_kib:-nan}" 1024)
  bytes_per_span=$(ratio "$upstream_bytes" "$sink_spans")
  delivered=$(awk -v r="$(ratio "$sink_spans" "$accepted")" 'BEGIN {if (r == "nan") print "nan"; else printf "%.1f", r * 100}')

  WINDOW_CPU_PER_MSPANS[$id]=${cpu:-nan}
  DRAINED_CPU_NS_PER_SPAN[$id]=$(ratio "$(awk -v c="$cpu_drained" 'BEGIN {print (c == "nan") ? "nan" : c * 1e9}')" "$accepted")
  if [[ -n "$errors" && -n "$refused" && "$errors" != "$refused" ]]; then
    trouble "scenario $id: $((errors - refused)) requests failed, not refused ($dir/loadgen.log)"
  fi
  if [[ "$refused_metric" != nan && "$refused_metric" != 0 ]]; then
    NOTES+=("scenario $id: the daemon refused $refused_metric requests ($(refusal_reasons "$metrics"))")
  fi

  TABLE_ROWS+=("| $id | $label | $offered | $(fmt "$spans_s" %.0f) | $(fmt "$cpu" %.2f) | $(fmt "$p50" %.0f) | $(fmt "$p99" %.0f) | $(fmt "$p999" %.0f) | $(fmt "$rss_mib" %.0f) | $(fmt "$bytes_per_span" %.1f) | $(fmt "$delivered" %.1f) | $(fmt "${refused:-nan}" %d) / $(fmt "${errors:-nan}" %d) |")

  if [[ "$template" == sampling* ]]; then
    local sampled_out early peak_buffered
    sampled_out=$(metric_sum spanrelay_sampling_sampled_out_spans_total <<<"$metrics")
    early=$(metric_sum spanrelay_sampling_early_decisions_total <<<"$metrics")
    peak_buffered=nan
    if [[ -s "$dir/scrapes.txt" ]]; then
      peak_buffered=$(awk '$1 != "nan" && $1 + 0 > max {max = $1 + 0} END {printf "%.0f", max}' "$dir/scrapes.txt")
    fi
    SAMPLING_ROWS+=("| $id | $(fmt "$accepted" %d) | $(fmt "$sampled_out" %d) | $(fmt "$sink_spans" %d) | $(fmt "$early" %d) | $(fmt "$(ratio "$peak_buffered" 1048576)" %.1f) | $(fmt "$rss_mib" %.0f) |")
  fi
}

refusal_reasons() {
  grep '^spanrelay_receiver_refused_requests_total{' <<<"$1" | awk '$NF > 0' |
    sed -e 's/^[^{]*{reason="\([^"]*\)".* \([0-9.e+]*\)$/\1: \2/' | paste -sd ',' - || true
}

# --- report ---------------------------------------------------------------------

print_report() {
  local build_type cpu_model
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
  cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(nproc) cores${cpu_model:+ ($cpu_model)}, Linux $(uname -r)."
  echo
  echo "Build: ${build_type:-unknown build type} ($BUILD_DIR). Load: ${DURATION_S} s per scenario, $SPANS_PER_REQUEST spans/request, 5 spans/trace, 1% error traces."
  echo
  echo "| id | scenario | offered | spans/s | CPU s / M spans | ack p50 µs | ack p99 µs | ack p99.9 µs | peak RSS MiB | upstream B/span | delivered % | refused / errors |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${TABLE_ROWS[@]}"
  if ((${#SAMPLING_ROWS[@]})); then
    echo
    echo "Tail sampling (errors + 1% ratio, decision_wait ${DECISION_WAIT_S}s):"
    echo
    echo "| id | accepted spans | sampled out spans | spans upstream | early decisions | peak buffered MiB | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${SAMPLING_ROWS[@]}"
  fi
  print_sampling_cost
  if ((${#NOTES[@]})); then
    echo
    printf -- '- %s\n' "${NOTES[@]}"
  fi
}

# Difference of daemon CPU per span between two fixed-rate rows, in ns:
# "window" from loadgen's CPU s per million spans (load window only), "drained"
# from the daemon's CPU from the start of the load until it held no span.
cpu_difference_ns() {
  local kind=$1 a=$2 b=$3
  if [[ "$kind" == window ]]; then
    awk -v a="${WINDOW_CPU_PER_MSPANS[$a]:-nan}" -v b="${WINDOW_CPU_PER_MSPANS[$b]:-nan}" \
      'BEGIN {if (a == "nan" || b == "nan") print "-"; else printf "%+.0f ns", (a - b) * 1000}'
  else
    awk -v a="${DRAINED_CPU_NS_PER_SPAN[$a]:-nan}" -v b="${DRAINED_CPU_NS_PER_SPAN[$b]:-nan}" \
      'BEGIN {if (a == "nan" || b == "nan") print "-"; else printf "%+.0f ns", a - b}'
  fi
}

print_sampling_cost() {
  [[ -n "${WINDOW_CPU_PER_MSPANS[1r]:-}" ]] || return 0
  echo
  echo "Per-span sampling cost at $FIXED_RATE req/s, daemon CPU per accepted span vs 1r:"
  echo
  echo "| rows | during the load window | until drained |"
  echo "|---|---|---|"
  if [[ -n "${WINDOW_CPU_PER_MSPANS[7r]:-}" ]]; then
    echo "| 7r − 1r (errors + 1%: sampling minus the exports it saves) | $(cpu_difference_ns window 7r 1r) | $(cpu_difference_ns drained 7r 1r) |"
  fi
  if [[ -n "${WINDOW_CPU_PER_MSPANS[7a]:-}" ]]; then
    echo "| 7a − 1r (keep all: buffering and deciding alone) | $(cpu_difference_ns window 7a 1r) | $(cpu_difference_ns drained 7a 1r) |"
  fi
}

main() {
  parse_args "$@"
  DAEMON_BIN="$BUILD_DIR/spanrelayd"
  SINK_BIN="$BUILD_DIR/tests/spanrelay-testsink"
  LOADGEN_BIN="$BUILD_DIR/bench/spanrelay-loadgen"
  local bin tool
  for bin in "$DAEMON_BIN" "$SINK_BIN" "$LOADGEN_BIN"; do
    [[ -x "$bin" ]] || { echo "run.sh: missing $bin (build it first)" >&2; exit 1; }
  done
  for tool in jq curl awk timeout; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 1; }
  done

  WORK_DIR=$(mktemp -d /tmp/spanrelay-bench.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  local spec id label template ingress loadgen_flags rate sink_flags
  for spec in "${SCENARIOS[@]}"; do
    IFS='|' read -r id label template ingress loadgen_flags rate sink_flags <<<"$spec"
    [[ -z "$ONLY" || "$ONLY" == *",$id,"* ]] || continue
    run_scenario "$id" "$label" "$template" "$ingress" "$loadgen_flags" "$rate" "$sink_flags"
  done
  print_report
  ((START_FAILURES == 0)) || exit 1
}

main "$@"
