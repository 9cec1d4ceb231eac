# `shardforge submit` on a real single-node Slurm (Debian's slurm-wlm): the test starts its own
# slurmctld and slurmd in a temporary directory, submits 2-task builds (started by srun
# --mpi=pmix, then by mpirun) and checks each job, its log and the index; has sbatch --test-only
# take the resource flags; submits a build,eval chain and checks its dependencies; then preempts a
# --requeue build with SIGTERM and checks that it requeues itself and resumes. The checks that need
# no Slurm (--dry-run, sbatch missing, a bad config) run first. Without a usable Slurm it prints
# "SKIPPED: <why>" and exits 77; with CI=true that is a failure (lib.bash, sf_skip).
source "$(dirname "$0")/lib.bash"
sf_init "$@"

ROWS=4000
DIM=16
NLIST=16
# Generous limits: CI runs this on a loaded 2-core machine. Each wait ends at its event (the
# controller answers, the node registers, the job ends), not at the limit.
START_TIMEOUT=${SF_SLURM_START_TIMEOUT:-300}  # seconds for the daemons to bring the node up
JOB_TIMEOUT=${SF_SLURM_JOB_TIMEOUT:-600}      # seconds for a job to finish

SLURM_DIR="$WORK/slurm"
DAEMON_PIDS=()
JOB_IDS=()

# Stops what this test started (its jobs, then its daemons, by pid) and removes $WORK.
cleanup() {
  local rc=$?
  if [[ ${#JOB_IDS[@]} -gt 0 ]]; then scancel "${JOB_IDS[@]}" >/dev/null 2>&1 || true; fi
  local pid
  for pid in "${DAEMON_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${DAEMON_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# shardforge without the Open MPI root variables that ctest sets: the job script must set them.
sf_clean() {
  /usr/bin/env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
    -u OMPI_MCA_rmaps_base_oversubscribe "$SF" "$@"
}

cd "$WORK"
check "generating data.fvecs (${ROWS} x ${DIM}) and job.yaml: relative paths, a slurm section"
sfdata gen data.fvecs --rows $ROWS --dim $DIM --seed 11
cat >job.yaml <<'EOF'
input:
  paths: [data.fvecs]
index:
  factory: "IVF8,Flat"
output:
  dir: run
slurm:
  ntasks: 1
  cpus_per_task: 1
  time: "00:05:00"
EOF
ok

check "submit --dry-run writes run/submit.sbatch and prints it, without sbatch (none on PATH)"
PATH=/nonexistent sf_clean submit job.yaml --dry-run --ntasks 2 \
  --set "index.factory=IVF${NLIST},Flat" >dry.out 2>dry.err || { show dry.err; fail "dry run failed"; }
[[ -f run/submit.sbatch ]] || fail "no run/submit.sbatch"
cmp -s dry.out run/submit.sbatch || fail "the printed script is not run/submit.sbatch"
grep -qx '#SBATCH --job-name=shardforge-build' run/submit.sbatch || fail "no job name"
grep -qx '#SBATCH --ntasks=2' run/submit.sbatch || fail "--ntasks 2 did not win over slurm.ntasks: 1"
grep -qx '#SBATCH --time=00:05:00' run/submit.sbatch || fail "slurm.time is not in the script"
grep -qx '#SBATCH --cpus-per-task=1' run/submit.sbatch || fail "no --cpus-per-task=1"
grep -qx "#SBATCH --chdir=$WORK" run/submit.sbatch || fail "no --chdir=$WORK"
grep -qx "#SBATCH --output=$WORK/run/slurm-build-%j.log" run/submit.sbatch ||
  fail "the log is not $WORK/run/slurm-build-%j.log"
if grep -E '^#SBATCH --(account|partition|ntasks-per-node)' run/submit.sbatch; then
  fail "options that are not set must be left out of the script"
fi
grep -qF "cmd=($SF build $WORK/job.yaml --set index.factory=IVF${NLIST},Flat)" run/submit.sbatch ||
  fail "the script does not run '$SF build $WORK/job.yaml --set index.factory=IVF${NLIST},Flat'"
bash -n run/submit.sbatch || fail "the script is not valid bash"
ok

check "a requeued job resumes only a command with checkpoints; submit --resume of one without is refused"
grep -qxF 'if [[ ${SLURM_RESTART_COUNT:-0} -gt 0 ]]; then' run/submit.sbatch ||
  fail "build's script does not resume on requeue"
PATH=/nonexistent sf_clean submit job.yaml --dry-run --command info >dry-info.out 2>&1 || { show dry-info.out; fail "dry run of info failed"; }
if grep -n -e '--resume' -e 'SLURM_RESTART_COUNT:-0} -gt' run/submit.sbatch; then
  fail "info's script would add --resume on requeue"
fi
bash -n run/submit.sbatch || fail "the script of info is not valid bash"
set +e
PATH=/nonexistent sf_clean submit job.yaml --dry-run --command info --resume >resume-info.out 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { show resume-info.out; fail "exit $rc, expected 2"; }
grep -q "has no checkpoints" resume-info.out || { show resume-info.out; fail "no 'has no checkpoints'"; }
ok

check "submit without sbatch on PATH: exit 1, 'sbatch not found'"
set +e
PATH=/nonexistent sf_clean submit job.yaml >nosbatch.out 2>&1
rc=$?
set -e
[[ $rc -eq 1 ]] || { show nosbatch.out; fail "exit $rc, expected 1"; }
grep -q "sbatch not found" nosbatch.out || { show nosbatch.out; fail "no 'sbatch not found'"; }
ok

check "submit with a bad slurm value in the config: exit 2, naming the key"
set +e
sf_clean submit job.yaml --set slurm.nodes=0 >badcfg.out 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { show badcfg.out; fail "exit $rc, expected 2"; }
grep -q "slurm.nodes" badcfg.out || { show badcfg.out; fail "the error does not name slurm.nodes"; }
ok

# ---------------------------------------------------------------------------------------------
# A single-node Slurm of our own: no munge (auth/none, cred/none), all state in $SLURM_DIR.

for tool in slurmctld slurmd sbatch scontrol sinfo scancel srun; do
  command -v "$tool" >/dev/null || sf_skip "$tool not installed (scripts/install-deps.sh installs slurm-wlm)"
done
[[ $(id -u) -eq 0 ]] || sf_skip "this test's Slurm runs as root (SlurmUser=root); the test is not root"
for plugin in auth_none cred_none; do
  [[ -f /usr/lib/x86_64-linux-gnu/slurm-wlm/$plugin.so ]] || sf_skip "Slurm plugin $plugin not installed"
done

HOST=$(hostname -s)
mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool"
export SLURM_CONF="$SLURM_DIR/slurm.conf"
PORT=$((20000 + RANDOM % 20000))  # away from a system Slurm's 6817/6818
CPUS=$(nproc)
MEM_MB=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
cat >"$SLURM_CONF" <<EOF
ClusterName=sftest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/none
# A requeued job waits cred_expire seconds (default 120) before it may start again.
AuthInfo=cred_expire=10
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

slurm_logs() {
  local f
  for f in "$SLURM_DIR"/*.out "$SLURM_DIR"/*.log; do
    if [[ -s $f ]]; then show "$f"; fi
  done
  return 0
}

check "starting slurmctld and slurmd (ports $PORT-$((PORT + 1)), node $HOST, $CPUS CPUs) from $SLURM_CONF"
slurmctld -D -f "$SLURM_CONF" >"$SLURM_DIR/slurmctld.out" 2>&1 &
DAEMON_PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$SLURM_DIR/slurmd.out" 2>&1 &
DAEMON_PIDS+=($!)
# wait_for WHAT COMMAND...: runs COMMAND every second until it succeeds, or skips the test
# (a failure in CI) after START_TIMEOUT seconds in all or when a daemon has exited.
start_deadline=$((SECONDS + START_TIMEOUT))
wait_for() {
  local what=$1
  shift
  until "$@"; do
    local pid
    for pid in "${DAEMON_PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { slurm_logs; sf_skip "a Slurm daemon exited at start (logs above)"; }
    done
    if ((SECONDS >= start_deadline)); then
      slurm_logs
      sf_skip "the single-node Slurm did not come up within ${START_TIMEOUT}s: $what (node state: '$(node_state)')"
    fi
    sleep 1
  done
  echo "   $what after $((SECONDS - start_time)) s"
}
node_state() { timeout 30 sinfo -h -n "$HOST" -o %T 2>/dev/null || true; }
controller_up() { timeout 30 scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_registered() { [[ -n $(node_state) && $(node_state) != unknown* ]]; }
# A node that registered late can be marked down (not responding); ReturnToService=2 brings
# it back when it registers, and an explicit resume does it at once.
node_idle() {
  local state
  state=$(node_state)
  case $state in
    idle) return 0 ;;
    down* | drain* | fail*) timeout 30 scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  return 1
}
start_time=$SECONDS
wait_for "slurmctld answers" controller_up
wait_for "slurmd registered" node_registered
wait_for "the node is idle" node_idle
sinfo
ok

check "sbatch refuses the job (no such partition): exit 1 with sbatch's own message"
set +e
sf_clean submit job.yaml --partition nosuch >refused.out 2>&1
rc=$?
set -e
[[ $rc -eq 1 ]] || { show refused.out; fail "exit $rc, expected 1"; }
grep -qi "sbatch.*failed.*partition" refused.out || { show refused.out; fail "sbatch's error is not shown"; }
cat refused.out
ok

# wait_job ID LOG: waits for job ID to end; fails the test unless it ends COMPLETED with exit
# code 0:0 (showing LOG). Sets JOB_INFO (its `scontrol show job`).
wait_job() {
  local id=$1 log=$2
  local job_state="" exit_code=""
  local deadline=$((SECONDS + JOB_TIMEOUT))
  while ((SECONDS < deadline)); do
    JOB_INFO=$(timeout 10 scontrol show job "$id" 2>/dev/null || true)
    job_state=$(grep -o 'JobState=[A-Z_]*' <<<"$JOB_INFO" | cut -d= -f2 || true)
    case $job_state in
      PENDING | CONFIGURING | RUNNING | COMPLETING | "") sleep 0.5 ;;
      *) break ;;
    esac
  done
  exit_code=$(grep -o ' ExitCode=[0-9:]*' <<<"$JOB_INFO" | cut -d= -f2 || true)
  echo "   job $id: JobState=$job_state ExitCode=$exit_code"
  if [[ $job_state != COMPLETED || $exit_code != 0:0 ]]; then
    if [[ -f $log ]]; then show "$log"; fi
    slurm_logs
    fail "job $id: JobState=$job_state ExitCode=$exit_code, expected COMPLETED 0:0"
  fi
}

# submit_and_wait NAME LAUNCHER ARGS...: `shardforge submit job.yaml ARGS` with
# SHARDFORGE_LAUNCHER=LAUNCHER ("" = the script's choice); waits for the job; fails the test
# unless it ends COMPLETED with exit code 0:0. Sets JOB_ID and LOG.
submit_and_wait() {
  local name=$1 launcher=$2
  shift 2
  SHARDFORGE_LAUNCHER=$launcher sf_clean submit job.yaml "$@" >"$name.out" 2>"$name.err" ||
    { show "$name.err"; fail "submit failed"; }
  cat "$name.out"
  JOB_ID=$(awk '$1 == "job" {print $2}' "$name.out")
  LOG=$(awk '$1 == "log" {print $2}' "$name.out")
  [[ $JOB_ID =~ ^[0-9]+$ ]] || fail "no job id in the output of submit"
  JOB_IDS+=("$JOB_ID")
  wait_job "$JOB_ID" "$LOG"
}

# check_run OUTDIR LAUNCHER: the job log shows LAUNCHER and 2 ranks x 1 thread; run.json has 2
# ranks; OUTDIR/index.faiss loads in python faiss with ntotal == ROWS and nlist NLIST.
check_run() {
  local dir=$1 launcher=$2
  [[ $LOG == "$WORK/$dir/slurm-build-$JOB_ID.log" ]] ||
    fail "log path '$LOG' is not $WORK/$dir/slurm-build-$JOB_ID.log"
  [[ -f $LOG ]] || fail "no log $LOG"
  cat "$LOG"
  grep -q "^shardforge: launch with $launcher: " "$LOG" || { show "$LOG"; fail "not launched by $launcher"; }
  grep -q "\[rank 0/2\]" "$LOG" || { show "$LOG"; fail "no '[rank 0/2]' in the log"; }
  grep -q "2 rank(s) x 1 thread(s)" "$LOG" || { show "$LOG"; fail "no '2 rank(s) x 1 thread(s)' in the log"; }
  sfdata runjson "$dir/run.json" --command build --ranks 2
  sfdata index "$dir/index.faiss" --rows $ROWS --corpus data.fvecs --flat --search
  "$PY" -c 'import faiss, sys
nlist = faiss.extract_index_ivf(faiss.read_index(sys.argv[1])).nlist
sys.exit(0 if nlist == int(sys.argv[2]) else "FAIL: nlist %d, expected %s" % (nlist, sys.argv[2]))' \
    "$dir/index.faiss" $NLIST
}

# The script's own choice: srun when it has the PMIx plugin (Debian's has), else mpirun.
AUTO=mpirun
if grep -qw pmix <<<"$(srun --mpi=list 2>&1 || true)"; then AUTO=srun; fi
check "a 2-task build (--ntasks 2 over slurm.ntasks: 1; --set index.factory=IVF${NLIST},Flat), launched by $AUTO"
submit_and_wait auto "" --ntasks 2 --set "index.factory=IVF${NLIST},Flat"
check_run run "$AUTO"
ok

check "the same build launched by mpirun inside the allocation (SHARDFORGE_LAUNCHER=mpirun)"
submit_and_wait mpirun mpirun --ntasks 2 --set "index.factory=IVF${NLIST},Flat" --set output.dir=run2
check_run run2 mpirun
cmp run/index.faiss run2/index.faiss || fail "the srun and mpirun builds differ"
ok

check "the resource flags are accepted by this Slurm's sbatch (--test-only)"
RESOURCES=(--mem 100M --exclusive --sbatch-arg=--comment=shardforge-chain --time 00:05:00)
sf_clean submit job.yaml --dry-run "${RESOURCES[@]}" --set output.dir=test-only >test-only.out 2>&1 ||
  { show test-only.out; fail "dry run failed"; }
grep -qxF '#SBATCH --mem=100M' test-only/submit.sbatch || fail "no '#SBATCH --mem=100M'"
grep -qxF '#SBATCH --exclusive' test-only/submit.sbatch || fail "no '#SBATCH --exclusive'"
sbatch --test-only test-only/submit.sbatch >test-only.sbatch 2>&1 || { show test-only.sbatch; fail "sbatch --test-only refused the script"; }
cat test-only.sbatch
sf_clean submit job.yaml --dry-run --mem-per-cpu 50M --set output.dir=test-only >test-only.out 2>&1 ||
  { show test-only.out; fail "dry run failed"; }
sbatch --test-only test-only/submit.sbatch >test-only.sbatch 2>&1 || { show test-only.sbatch; fail "sbatch --test-only refused --mem-per-cpu"; }
ok

check "a chain: --command build,eval --after a held job; each job waits for the one before (afterok) and eval runs once build has succeeded"
sfdata gen queries.fvecs --rows 50 --dim $DIM --seed 12
HOLD=$(sbatch --parsable --hold --job-name=hold --chdir="$WORK" --output=/dev/null --wrap=true)
JOB_IDS+=("$HOLD")
sf_clean submit job.yaml --command build,eval --after "$HOLD" --ntasks 2 "${RESOURCES[@]}" \
  --set "index.factory=IVF${NLIST},Flat" --set output.dir=chain --set eval.queries=queries.fvecs \
  >chain.out 2>chain.err || { show chain.err; fail "submit failed"; }
cat chain.out
BUILD=$(awk '$1 == "submitted" && $2 == "build:" {print $4}' chain.out)
EVAL=$(awk '$1 == "submitted" && $2 == "eval:" {print $4}' chain.out)
[[ $BUILD =~ ^[0-9]+$ && $EVAL =~ ^[0-9]+$ ]] || fail "no 'submitted build: job N' and 'submitted eval: job N'"
JOB_IDS+=("$BUILD" "$EVAL")
build_info=$(scontrol show job "$BUILD")
eval_info=$(scontrol show job "$EVAL")
grep -qF "Dependency=afterok:$HOLD" <<<"$build_info" || { echo "$build_info"; fail "build does not wait for job $HOLD"; }
grep -qF "Dependency=afterok:$BUILD" <<<"$eval_info" || { echo "$eval_info"; fail "eval does not wait for build (job $BUILD)"; }
grep -qF "MinMemoryNode=100M" <<<"$eval_info" || { echo "$eval_info"; fail "eval did not get --mem 100M"; }
grep -qF "OverSubscribe=NO" <<<"$eval_info" || { echo "$eval_info"; fail "eval did not get --exclusive"; }
grep -qF "Comment=shardforge-chain" <<<"$eval_info" || { echo "$eval_info"; fail "eval did not get --sbatch-arg=--comment=shardforge-chain"; }
echo "   build $BUILD: $(grep -o 'Dependency=[^ ]*' <<<"$build_info"); eval $EVAL: $(grep -o 'Dependency=[^ ]*' <<<"$eval_info")"
scontrol release "$HOLD"
wait_job "$BUILD" "chain/slurm-build-$BUILD.log"
build_end=$(grep -o 'EndTime=[^ ]*' <<<"$JOB_INFO" | cut -d= -f2)
wait_job "$EVAL" "chain/slurm-eval-$EVAL.log"
eval_start=$(grep -o 'StartTime=[^ ]*' <<<"$JOB_INFO" | cut -d= -f2)
echo "   build ended $build_end, eval started $eval_start"
[[ ! $eval_start < $build_end ]] || fail "eval started ($eval_start) before build ended ($build_end)"
cat "chain/slurm-eval-$EVAL.log"
grep -q 'recall@1' "chain/slurm-eval-$EVAL.log" || fail "eval's log has no recall table"
[[ -s chain/eval.json ]] || fail "eval wrote no chain/eval.json"
ok

check "preemption: SIGTERM to the job while it adds; the ranks stop (exit 75), the job (--requeue) requeues itself and its next run resumes to the same index"
sfdata gen big.fvecs --rows 200000 --dim 32 --seed 21
BIG=(--set "input.paths=[big.fvecs]" --set "index.factory=IVF64,PQ8np" --set output.piece_rows=8192
  --set input.batch_rows=2048)
sf_clean build job.yaml "${BIG[@]}" --set output.dir=big-ref >big-ref.out 2>&1 ||
  { show big-ref.out; fail "reference build failed"; }
SHARDFORGE_LAUNCHER=$AUTO sf_clean submit job.yaml --ntasks 2 --requeue "${BIG[@]}" \
  --set output.dir=big >big.out 2>big.err || { show big.err; fail "submit failed"; }
JOB_ID=$(awk '$1 == "job" {print $2}' big.out)
JOB_IDS+=("$JOB_ID")
grep -qx '#SBATCH --requeue' big/submit.sbatch || fail "no #SBATCH --requeue"
deadline=$((SECONDS + JOB_TIMEOUT))
until [[ -n $(find big/checkpoints/add -name '*.json' 2>/dev/null | head -1) ]]; do
  ((SECONDS < deadline)) || { slurm_logs; fail "job $JOB_ID never reached the add stage"; }
  sleep 0.05
done
scancel --signal=TERM "$JOB_ID"  # to the tasks of its steps, as `sbatch --signal` and preemption do
restarted=""
while ((SECONDS < deadline)); do
  info=$(timeout 10 scontrol show job "$JOB_ID" 2>/dev/null || true)
  job_state=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2 || true)
  restarts=$(grep -o 'Restarts=[0-9]*' <<<"$info" | cut -d= -f2 || true)
  [[ ${restarts:-0} -gt 0 ]] && restarted=1
  case $job_state in
    COMPLETED) [[ -n $restarted ]] && break || sleep 0.2 ;;
    PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | "") sleep 0.2 ;;
    *) break ;;
  esac
done
echo "   job $JOB_ID: JobState=$job_state Restarts=${restarts:-?}"
LOG=$(ls big/slurm-build-"$JOB_ID".log)
cat "$LOG"
[[ $job_state == COMPLETED && -n $restarted ]] ||
  { slurm_logs; fail "job $JOB_ID: JobState=$job_state Restarts=${restarts:-0}, expected COMPLETED after a restart"; }
grep -q "stopped at a safe point: requeueing job $JOB_ID" "$LOG" || fail "the script did not requeue the stopped job"
grep -q "restart 1: resuming from the checkpoints" "$LOG" || fail "the requeued run did not resume"
grep -q "rows are in verified pieces" "$LOG" || fail "the requeued run reused no piece"
cmp big-ref/index.faiss big/index.faiss || fail "the requeued and resumed index differs from a straight build"
ok

sf_done
