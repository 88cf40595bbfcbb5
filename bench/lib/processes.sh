# Process helpers shared by bench/run.sh and bench/app-overhead/run.sh
# (sourced). They use the caller's globals: CHILD_PIDS (every started child),
# WORK_DIR, KEEP, START_FAILURES, START_TIMEOUT_S, and its log function.
# shellcheck shell=bash

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
  STOPPED_RC=0
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + grace_s))
  while is_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  if is_running "$pid"; then
    log "pid $pid still running ${grace_s}s after SIGTERM: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || rc=$?
  forget_child "$pid"
  # shellcheck disable=SC2034  # read by the callers
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
