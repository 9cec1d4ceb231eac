# Helpers for the fault tests (sourced after lib.bash; no .sh suffix: not a test itself).
# A build runs in the background so the test can signal its ranks, found as the descendants
# of the process it started (never by name).

# The data every fault test uses: big enough that the add stage takes a second or two in
# pieces of 8192 rows, small enough for a test.
FAULT_ROWS=${FAULT_ROWS:-200000}
FAULT_DIM=32
FAULT_FACTORY="IVF64,PQ8np"
FAULT_SETS=(--set output.piece_rows=8192 --set input.batch_rows=2048)

# start_bg NP LOG ARGS...: shardforge ARGS under mpirun (with the test's timeout) in the
# background; sets BG_PID and BG_LOG.
start_bg() {
  local np=$1 log=$2
  shift 2
  timeout --kill-after=10 "$SF_TIMEOUT" \
    mpirun -np "$np" --oversubscribe -x OMP_NUM_THREADS=1 "$SF" "$@" >"$log" 2>&1 &
  BG_PID=$!
  BG_START=$SECONDS
  BG_LOG=$log
}

# wait_bg: waits for the background run; sets BG_RC. A timeout fails the test (mpirun itself
# exits 137 when a rank died of SIGKILL, so the time tells the two apart).
wait_bg() {
  set +e
  wait "$BG_PID"
  BG_RC=$?
  set -e
  if [[ $BG_RC -eq 124 ]] || ((SECONDS - BG_START >= SF_TIMEOUT)); then
    fail "the background run did not end within ${SF_TIMEOUT}s (hang?)"
  fi
}

# rank_pids: "RANK PID" lines for the ranks of the background run (timeout -> mpirun -> ranks).
rank_pids() {
  local launcher pid rank
  for launcher in $(pgrep -P "$BG_PID"); do
    for pid in $(pgrep -P "$launcher"); do
      rank=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
      [[ -n $rank ]] && echo "$rank $pid"
    done
  done
  return 0
}

# rank_pid R: the pid of rank R (empty when not found).
rank_pid() { rank_pids | awk -v r="$1" '$1 == r { print $2 }'; }

# How long a test waits for an event of the background run (a marker, a status.json state, a
# log line): generous, for a loaded machine; the run's own limit (SF_TIMEOUT) still catches a hang.
FAULT_WAIT=${FAULT_WAIT:-300}

# wait_until SECONDS COMMAND...: polls COMMAND (a marker file, a status.json state: cheap checks)
# every 50 ms, so that a signal lands soon after the event; fails the test when the run ends
# first or after SECONDS.
wait_until() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if ((SECONDS >= deadline)); then fail "waited ${limit}s for: $*"; fi
    kill -0 "$BG_PID" 2>/dev/null || { show_bg; fail "the run ended before: $*"; }
    sleep 0.05
  done
}

# wait_for_line LOG REGEX: waits (no polling: tail -f) until a line of LOG matches the extended
# REGEX and prints that line; fails the test when the run ends first or after $FAULT_WAIT s.
wait_for_line() {
  local log=$1 re=$2 line rc=0
  line=$(timeout "$FAULT_WAIT" grep -m1 -E -- "$re" < <(tail --pid="$BG_PID" -s 0.1 -n +1 -F "$log" 2>/dev/null)) || rc=$?
  if [[ $rc -eq 124 ]]; then show "$log"; fail "waited ${FAULT_WAIT}s for a line /$re/ in $log"; fi
  if [[ -z $line ]]; then show "$log"; fail "the run ended without a line /$re/"; fi
  echo "$line"
}

# show_bg: the tail of the background run's log (for failure messages).
show_bg() { [[ -z ${BG_LOG:-} ]] || show "$BG_LOG"; }

# piece_markers DIR: how many add pieces have a completion marker.
piece_markers() { find "$1/checkpoints/add" -name '*.json' 2>/dev/null | wc -l; }
has_piece_marker() { [[ $(piece_markers "$1") -ge 1 ]]; }
in_stage() { grep -q "\"stage\": \"$2\"" "$1/status.json" 2>/dev/null; }

# fault_data DIR: the corpus ($DIR/base.fvecs) and its config ($DIR/build.yaml, output.dir
# set per run with --set).
fault_data() {
  sfdata gen "$1/base.fvecs" --rows "$FAULT_ROWS" --dim "$FAULT_DIM" --seed 21
  write_config "$1/build.yaml" "$1/unused" "$FAULT_FACTORY" "$1/base.fvecs"
}
