# `shardforge submit` with a '%' in output.dir and in the working directory. sbatch reads
# --output as a filename pattern (%j: job id, %x: job name, ...; sbatch(1), "filename pattern")
# where "%%" is a literal '%': the script's --output must double every '%' of the path and keep
# only its own %j. --chdir is no pattern: it stays as it is. A stub sbatch takes the script, so
# no Slurm is needed.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

mkdir -p "$WORK/cwd%j"
cd "$WORK/cwd%j"
cat >job.yaml <<'EOF2'
input:
  paths: [data.fvecs]
index:
  factory: "IVF8,Flat"
output:
  dir: "out%x_100%"
EOF2
run="$WORK/cwd%j/out%x_100%"

check "submit --dry-run: #SBATCH --output doubles each '%' of output.dir; the job keeps the real path"
PATH=/nonexistent "$SF" submit job.yaml --dry-run >dry.out 2>dry.err || { show dry.err; fail "dry run failed"; }
script="$run/submit.sbatch"
[[ -f $script ]] || fail "no $script"
want="#SBATCH --output=$WORK/cwd%%j/out%%x_100%%/slurm-build-%j.log"
grep -qxF -- "$want" "$script" || { grep -F -- '--output' "$script" >&2; fail "expected the line: $want"; }
grep -qxF -- "#SBATCH --chdir=$WORK/cwd%j" "$script" || { grep -F -- '--chdir' "$script" >&2; fail "--chdir changed"; }
grep -qxF -- "run_dir=$run" "$script" || { grep -F 'run_dir=' "$script" >&2; fail "run_dir is not the real path"; }
n=$(grep -c '^#SBATCH.*%' "$script" || true)
[[ $n -eq 2 ]] || { grep '^#SBATCH' "$script" >&2; fail "$n #SBATCH lines hold a '%', expected 2 (--output, --chdir)"; }
bash -n "$script" || fail "the script is not valid bash"
ok

check "submit with a stub sbatch (job 4242): the log path printed is the real file name"
mkdir -p "$WORK/bin"
printf '#!/bin/sh\necho "4242;cluster"\n' >"$WORK/bin/sbatch"
chmod +x "$WORK/bin/sbatch"
PATH="$WORK/bin:$PATH" "$SF" submit job.yaml >sub.out 2>sub.err || { show sub.err; fail "submit failed"; }
grep -qxF "log     $run/slurm-build-4242.log" sub.out || { show sub.out; fail "wrong log path"; }
ok

sf_done
