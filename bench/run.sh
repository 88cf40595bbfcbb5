#!/usr/bin/env bash
# spanrelay benchmark runner: every scenario of bench/README.md in one command.
#
#   bench/run.sh [--quick] [--build-dir DIR] [--duration S] [--only 1r,7r]
#                [--daemon-cpus LIST|none] [--keep]
#
#   --quick             3 s of load per scenario instead of 10 s
#   --build-dir DIR     where spanrelayd, tests/spanrelay-testsink and
#                       bench/spanrelay-loadgen are (default: <repo>/build)
#   --duration S        seconds of load per scenario (overrides --quick; the
#                       knee scenarios use min(S, 5) per step)
#   --only LIST         run only these scenario ids (comma separated, e.g. 1r,7r,knee)
#   --daemon-cpus LIST  pin spanrelayd to these CPUs (taskset -c LIST) and
#                       loadgen + sink to the others. Default: CPU 0 when the
#                       machine has 2 cores or more (none otherwise);
#                       "none" disables pinning
#   --keep              keep the temp dir (configs, logs, scrapes) and print its path
#
# For each scenario it starts a fresh test sink (--count-only) and a fresh
# spanrelayd (config from bench/configs/, all ports 127.0.0.1:0, learnt from
# --ready-file), runs spanrelay-loadgen against the daemon, waits (bounded)
# for the daemon to deliver what it accepted, stops everything with SIGTERM
# and prints one markdown table on stdout (progress goes to stderr).
# The knee scenarios instead step a fixed offered load up (one daemon, one
# loadgen run per step) until the daemon refuses or falls behind.
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
# Saturation ("knee") scenarios: offered spans/s per step (x1.33-2 apart); each
# step at most KNEE_MAX_STEP_S long, the scenario stops at the first step not
# served fully or once KNEE_BUDGET_S have passed (bounded to about a minute).
readonly KNEE_STEPS_SPANS_S=(50000 100000 150000 200000 300000 400000 600000 800000 1200000 1600000)
readonly KNEE_MAX_STEP_S=5
readonly KNEE_BUDGET_S=55
readonly KNEE_CONCURRENCY=8  # open loop, one request in flight per worker
readonly KNEE_POOL=500
# A step is served fully when nothing is refused or failed, loadgen got acks
# for >= KNEE_ACKED_SHARE of the offered spans/s, and the sink received >=
# KNEE_UPSTREAM_SHARE of them during the step (the exporter keeps up).
readonly KNEE_ACKED_SHARE=0.95
readonly KNEE_UPSTREAM_SHARE=0.90

BUILD_DIR="$REPO_DIR/build"
DURATION_S=10
ONLY=""
KEEP=0
DAEMON_CPUS=auto
DAEMON_PIN=()   # command prefix for spanrelayd (taskset -c LIST), or empty
TOOLS_PIN=()    # command prefix for loadgen and the sink
PINNING_TEXT="no CPU pinning"

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
  "knee|gRPC TCP → gRPC gzip|grpc-gzip|grpc||knee|"
  "knee2|gRPC TCP → gRPC none|grpc-none|grpc||knee|"
)

WORK_DIR=""
STOPPED_RC=0
CHILD_PIDS=()
START_FAILURES=0
TABLE_ROWS=()
SAMPLING_ROWS=()
KNEE_TABLES=()
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
      --daemon-cpus) DAEMON_CPUS="${2:?--daemon-cpus needs a value}"; shift ;;
      --keep) KEEP=1 ;;
      -h | --help) usage; exit 0 ;;
      *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
  done
}

# --- CPU pinning ---------------------------------------------------------------

# "0,2-3" -> "0 2 3"
expand_cpu_list() {
  local part cpu cpus=()
  local -a parts
  IFS=',' read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ "$part" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      for ((cpu = BASH_REMATCH[1]; cpu <= BASH_REMATCH[2]; cpu++)); do cpus+=("$cpu"); done
    elif [[ "$part" =~ ^[0-9]+$ ]]; then
      cpus+=("$part")
    else
      return 1
    fi
  done
  echo "${cpus[@]}"
}

# Sets DAEMON_PIN, TOOLS_PIN and PINNING_TEXT from --daemon-cpus: the daemon on
# its CPUs, loadgen and the sink on every other CPU this shell may use.
setup_pinning() {
  local allowed daemon_cpus cpu others=()
  [[ "$DAEMON_CPUS" != none ]] || return 0
  if ! command -v taskset >/dev/null; then
    [[ "$DAEMON_CPUS" == auto ]] || { echo "run.sh: --daemon-cpus needs taskset (util-linux)" >&2; exit 2; }
    PINNING_TEXT="no CPU pinning (taskset missing)"
    return 0
  fi
  allowed=$(expand_cpu_list "$(taskset -pc $$ | sed 's/^.*: //')") || allowed=""
  if [[ "$DAEMON_CPUS" == auto ]]; then
    # shellcheck disable=SC2086  # word list
    set -- $allowed
    if (($# < 2)); then
      PINNING_TEXT="no CPU pinning (fewer than 2 CPUs)"
      return 0
    fi
    DAEMON_CPUS=$1
  fi
  daemon_cpus=" $(expand_cpu_list "$DAEMON_CPUS") " ||
    { echo "run.sh: bad --daemon-cpus $DAEMON_CPUS (e.g. 0 or 0,2-3 or none)" >&2; exit 2; }
  for cpu in $allowed; do [[ "$daemon_cpus" == *" $cpu "* ]] || others+=("$cpu"); done
  DAEMON_PIN=(taskset -c "$DAEMON_CPUS")
  PINNING_TEXT="spanrelayd pinned to CPU $DAEMON_CPUS (\`taskset -c $DAEMON_CPUS\`)"
  if ((${#others[@]})); then
    local list
    list=$(IFS=','; echo "${others[*]}")
    TOOLS_PIN=(taskset -c "$list")
    PINNING_TEXT+=", loadgen and the test sink to CPU $list"
  else
    PINNING_TEXT+=", loadgen and the test sink unpinned (no CPU left)"
  fi
}

# --- processes --------------------------------------------------------------

# shellcheck source=bench/lib/processes.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/processes.sh"





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
  "${TOOLS_PIN[@]}" "$SINK_BIN" --grpc 127.0.0.1:0 --http 127.0.0.1:0 --count-only \
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
  "${DAEMON_PIN[@]}" "$DAEMON_BIN" --config "$dir/spanrelay.yaml" --ready-file "$dir/daemon.ready" \
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
    timeout --kill-after=5 "$((${DURATION_S%.*} + 60))" "${TOOLS_PIN[@]}" "$LOADGEN_BIN" --target "$target" \
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

# --- saturation ("knee") scenarios ------------------------------------------------

# One daemon; for each offered rate of KNEE_STEPS_SPANS_S one open-loop loadgen
# run, until a step is not served fully (refusals, errors, acked or delivered
# below the offered rate) or the time budget is spent. The knee is the last
# step served fully.
run_knee() {
  local id=$1 label=$2 template=$3 ingress=$4 loadgen_flags=$5 sink_flags=$6
  local dir="$WORK_DIR/scenario-$id" step_s
  mkdir -p "$dir"
  step_s=$(awk -v d="$DURATION_S" -v m="$KNEE_MAX_STEP_S" 'BEGIN {print (d + 0 < m) ? d : m}')
  log "scenario $id: $label (steps of ${step_s}s, up to ${KNEE_STEPS_SPANS_S[-1]} spans/s)"
  wait_for_binaries || log "binaries still missing or changing after ${BINARY_WAIT_S}s; trying anyway"
  local -a rows=()
  local header="Saturation ($id): $label. Open loop, $KNEE_CONCURRENCY workers, $SPANS_PER_REQUEST spans/request, ${step_s} s per step; $PINNING_TEXT."
  if ! start_sink "$dir" "$sink_flags" || ! start_daemon "$dir" "$template"; then
    log "scenario $id: the sink or spanrelayd did not start (see $dir)"
    START_FAILURES=$((START_FAILURES + 1))
    stop_child "$DAEMON_PID" 2
    stop_child "$SINK_PID" 2
    KNEE_TABLES+=("$header"$'\n\n'"Could not start the sink or spanrelayd.")
    return
  fi
  local metrics_addr target sink_http started=$SECONDS knee="" failed_step="" failed_cpu_pct="" stop_reason="" spans_s
  metrics_addr=$(jq -r '.metrics[0]' "$dir/daemon.ready")
  target=$(loadgen_target "$dir/daemon.ready" "$ingress")
  sink_http=$(jq -r .http "$dir/sink.ready")
  for spans_s in "${KNEE_STEPS_SPANS_S[@]}"; do
    if ((SECONDS - started + ${step_s%.*} + 2 > KNEE_BUDGET_S)); then
      stop_reason="time budget (${KNEE_BUDGET_S}s) spent"
      break
    fi
    local out="$dir/loadgen-$spans_s.log" rate sink_before sink_after rc=0 pid
    rate=$((spans_s / SPANS_PER_REQUEST))
    sink_before=$(curl -s --max-time 2 "http://$sink_http/stats" | jq -r '.spans // "nan"' 2>/dev/null || echo nan)
    # shellcheck disable=SC2086  # loadgen_flags is a word list
    timeout --kill-after=5 "$((${step_s%.*} + 30))" "${TOOLS_PIN[@]}" "$LOADGEN_BIN" \
      --target "$target" --duration "$step_s" --concurrency "$KNEE_CONCURRENCY" \
      --spans-per-request "$SPANS_PER_REQUEST" --pool "$KNEE_POOL" --rate "$rate" \
      $loadgen_flags --daemon-pid "$DAEMON_PID" >"$out" 2>&1 &
    pid=$!
    CHILD_PIDS+=("$pid")
    wait "$pid" || rc=$?
    forget_child "$pid"
    sink_after=$(curl -s --max-time 2 "http://$sink_http/stats" | jq -r '.spans // "nan"' 2>/dev/null || echo nan)
    ((rc == 0)) || trouble "scenario $id: loadgen exited with status $rc at $spans_s spans/s ($out)"

    local result acked upstream refused errors p50 p99 cpu_pct queued served
    result=$(grep '^RESULT ' "$out" | tail -n 1 || true)
    acked=$(result_field "$result" spans_per_s)
    refused=$(result_field "$result" refused)
    errors=$(result_field "$result" errors)
    p50=$(result_field "$result" p50_us)
    p99=$(result_field "$result" p99_us)
    cpu_pct=$(sed -n 's/.*daemon cpu .*, \([0-9.]*\)% of one core.*/\1/p' "$out" | tail -n 1)
    upstream=$(awk -v a="$sink_after" -v b="$sink_before" -v t="$step_s" \
      'BEGIN {if (a == "nan" || b == "nan") print "nan"; else printf "%.0f", (a - b) / t}')
    queued=$(scrape "$metrics_addr" | metric_sum spanrelay_queue_spans)
    served=$(awk -v o="$spans_s" -v a="${acked:-nan}" -v u="$upstream" -v r="${refused:-nan}" \
      -v e="${errors:-nan}" -v as="$KNEE_ACKED_SHARE" -v us="$KNEE_UPSTREAM_SHARE" \
      'BEGIN {print (a != "nan" && u != "nan" && r == 0 && e == 0 && a >= as * o && u >= us * o) ? "yes" : "no"}')
    rows+=("| $spans_s | $(fmt "${acked:-nan}" %.0f) | $(fmt "$upstream" %.0f) | $(fmt "${refused:-nan}" %d) / $(fmt "${errors:-nan}" %d) | $(fmt "${p50:-nan}" %.0f) | $(fmt "${p99:-nan}" %.0f) | ${cpu_pct:--} | $(fmt "$queued" %d) | $served |")
    log "scenario $id: offered $spans_s spans/s: acked $(fmt "${acked:-nan}" %.0f), upstream $(fmt "$upstream" %.0f), refused ${refused:--}, served fully: $served"
    if [[ "$served" != yes ]]; then
      stop_reason="first step not served fully: $spans_s spans/s"
      failed_step=$spans_s
      failed_cpu_pct=${cpu_pct:-}
      break
    fi
    knee=$spans_s
    # Start the next step from an empty queue (bounded; a daemon that kept up
    # holds at most a batch or two).
    wait_drained "$metrics_addr" "$((BATCH_TIMEOUT_S + 3))" || true
  done
  [[ -n "$stop_reason" ]] || stop_reason="every step served fully"
  stop_child "$DAEMON_PID" "$((SHUTDOWN_TIMEOUT_S + 10))"
  ((STOPPED_RC == 0)) || trouble "scenario $id: spanrelayd exited with status $STOPPED_RC ($dir/daemon.log)"
  stop_child "$SINK_PID" 5

  local knee_text
  if [[ -z "$knee" ]]; then
    knee_text="below ${KNEE_STEPS_SPANS_S[0]} spans/s (the first step was not served fully)"
  elif [[ "$knee" == "${KNEE_STEPS_SPANS_S[-1]}" ]]; then
    knee_text="at least $knee spans/s (every step served fully)"
  else
    knee_text="$knee spans/s${failed_step:+ (the next step, $failed_step spans/s, was not served fully)}"
  fi
  local table="$header"$'\n\n'"**Knee: $knee_text.** Stopped: $stop_reason."
  if [[ -n "$failed_cpu_pct" ]]; then
    # Which resource ran out: the daemon's own CPU, or something else (the
    # exporter's in-flight limit, or the sink and loadgen sharing their CPUs).
    table+=$(awk -v c="$failed_cpu_pct" 'BEGIN {
      if (c + 0 >= 90) printf " The daemon used %s%% of one core there: its CPU is the limit.", c
      else printf " The daemon used only %s%% of one core there: not (only) its CPU; see the sink and loadgen on the other CPUs, the exporter, or other processes on its core.", c }')
  fi
  table+=$'\n\n'
  table+="| offered spans/s | acked spans/s | upstream spans/s | refused / errors | ack p50 µs | ack p99 µs | daemon CPU % of one core | queued spans after | served fully |"$'\n'
  table+="|---|---|---|---|---|---|---|---|---|"$'\n'
  table+=$(printf '%s\n' "${rows[@]}")
  KNEE_TABLES+=("$table")
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
  echo "CPUs: $PINNING_TEXT."
  if ((${#TABLE_ROWS[@]})); then
    echo
    echo "| id | scenario | offered | spans/s | CPU s / M spans | ack p50 µs | ack p99 µs | ack p99.9 µs | peak RSS MiB | upstream B/span | delivered % | refused / errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${TABLE_ROWS[@]}"
  fi
  local knee_table
  for knee_table in "${KNEE_TABLES[@]}"; do
    echo
    echo "$knee_table"
  done
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
  setup_pinning
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
    if [[ "$rate" == knee ]]; then
      run_knee "$id" "$label" "$template" "$ingress" "$loadgen_flags" "$sink_flags"
      continue
    fi
    run_scenario "$id" "$label" "$template" "$ingress" "$loadgen_flags" "$rate" "$sink_flags"
  done
  print_report
  ((START_FAILURES == 0)) || exit 1
}

main "$@"
