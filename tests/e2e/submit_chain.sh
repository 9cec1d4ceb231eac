# `shardforge submit` without a Slurm: its resource flags become #SBATCH lines, bad values are
# refused (exit 2, the option named, nothing written), a --command list submits a chain of
# jobs each after the one before (afterok), a failing sbatch stops the chain, and the scripts hold
# no condition whose answer submit knows. A stub sbatch records what it is given.
# tests/e2e/slurm.sh runs the same flags and a chain on a real Slurm.
# shellcheck disable=SC2016  # the quoted $ and backticks are meant literally
source "$(dirname "$0")/lib.bash"
sf_init "$@"

cd "$WORK"
cat >job.yaml <<'EOF'
input:
  paths: [data.fvecs]
index:
  factory: "IVF8,Flat"
eval:
  queries: queries.fvecs
output:
  dir: run
EOF

check "resource flags become #SBATCH lines (--dry-run, no sbatch on PATH)"
PATH=/nonexistent "$SF" submit job.yaml --dry-run --mem 100M --gres gpu:2 --qos high \
  --account proj --constraint 'avx512&ib' --exclusive --after 41 \
  --sbatch-arg --mail-type=END --sbatch-arg=--signal=B:TERM@120 >dry.out 2>dry.err ||
  { show dry.err; fail "dry run failed"; }
cmp -s dry.out run/submit.sbatch || fail "the printed script is not run/submit.sbatch"
for line in '--mem=100M' '--gres=gpu:2' '--qos=high' '--account=proj' '--constraint=avx512&ib' \
  '--exclusive' '--dependency=afterok:41' '--mail-type=END' '--signal=B:TERM@120'; do
  grep -qxF -- "#SBATCH $line" run/submit.sbatch || { show run/submit.sbatch; fail "no '#SBATCH $line'"; }
done
if grep -E '^#SBATCH --(mem-per-cpu|partition|time|requeue)' run/submit.sbatch; then
  fail "options that are not set must be left out of the script"
fi
bash -n run/submit.sbatch || fail "the script is not valid bash"
PATH=/nonexistent "$SF" submit job.yaml --dry-run --mem-per-cpu 2G >dry2.out 2>&1 || { show dry2.out; fail "--mem-per-cpu failed"; }
grep -qxF -- '#SBATCH --mem-per-cpu=2G' run/submit.sbatch || fail "no '#SBATCH --mem-per-cpu=2G'"
ok

# refused NAME OPTION ARGS...: `submit job.yaml --dry-run ARGS` exits 2 with one error line naming
# OPTION, and writes no script.
refused() {
  local name=$1 option=$2
  shift 2
  rm -rf run
  set +e
  PATH=/nonexistent "$SF" submit job.yaml --dry-run "$@" >bad.out 2>bad.err
  local rc=$?
  set -e
  [[ $rc -eq 2 ]] || { show bad.err; fail "$name: exit $rc, expected 2"; }
  [[ $(grep -cF '[error]' bad.err) -eq 1 ]] || { show bad.err; fail "$name: expected one [error] line"; }
  grep -qF -- "$option" bad.err || { show bad.err; fail "$name: the error does not name $option"; }
  [[ ! -e run ]] || fail "$name: output.dir was made"
  echo "   $name: $(sed 's/.*\[error\] //' bad.err)"
}
check "bad values: exit 2, the option named, nothing written"
refused "memory with a fraction" --mem --mem 1.5G
refused "memory in MB" --mem --mem 100MB
refused "memory per CPU not a size" --mem-per-cpu --mem-per-cpu lots
refused "--mem and --mem-per-cpu" --mem --mem 1G --mem-per-cpu 1G
refused "a command substitution" --gres --gres 'gpu:$(id)'
refused "a backtick" --qos --qos 'a`id`'
refused "a newline" --constraint --constraint "$(printf 'a\n#SBATCH --x')"
refused "a quote" --account --account "a'b"
refused "a space" --partition --partition "a b"
refused "a ';'" --time --time '1;id'
refused "job id not a number" --after --after 12_3
refused "sbatch-arg not an option" --sbatch-arg --sbatch-arg comment=x
refused "sbatch-arg with a space" --sbatch-arg --sbatch-arg '--comment=a b'
refused "sbatch-arg that has a flag" --sbatch-arg --sbatch-arg --mem=4G
refused "sbatch-arg that submit writes" --sbatch-arg --sbatch-arg --output=x.log
refused "a command listed twice" --command --command build,eval,build
refused "a producer after a producer" --command --command build,run
refused "a consumer of another producer" --command --command dedup,eval
refused "--resume of a command without checkpoints" --resume --resume --command build,info
ok

# A stub sbatch: job ids from 100, each script it was given kept as job-<id>.sbatch, its
# arguments in sbatch.log; with STUB_FAIL_AT=N the Nth call fails as sbatch does.
mkdir -p bin stub
cat >bin/sbatch <<EOF
#!/bin/bash
n=\$(( \$(cat $WORK/stub/calls 2>/dev/null || echo 0) + 1 ))
echo \$n >$WORK/stub/calls
echo "\$*" >>$WORK/stub/sbatch.log
if [[ \$n -eq \${STUB_FAIL_AT:-0} ]]; then
  echo "sbatch: error: Batch job submission failed: Invalid qos specification" >&2
  exit 1
fi
cp "\${@: -1}" $WORK/stub/job-\$((99 + n)).sbatch
echo "\$((99 + n));cluster"
EOF
chmod +x bin/sbatch

check "--command build,eval,search: three jobs, each after the one before, the first after --after"
rm -rf run
PATH="$WORK/bin:$PATH" "$SF" submit job.yaml --command build,eval,search --after 7 --mem 1G \
  --set search.queries=queries.fvecs >chain.out 2>chain.err || { show chain.err; fail "submit failed"; }
cat chain.out
grep -qxF 'submitted build: job 100' chain.out || fail "no 'submitted build: job 100'"
grep -qxF 'submitted eval: job 101' chain.out || fail "no 'submitted eval: job 101'"
grep -qxF 'submitted search: job 102' chain.out || fail "no 'submitted search: job 102'"
grep -qxF "  log     $WORK/run/slurm-eval-101.log" chain.out || fail "no log path of eval"
for pair in "100 build 7" "101 eval 100" "102 search 101"; do
  read -r id command after <<<"$pair"
  script=stub/job-$id.sbatch
  grep -qxF "#SBATCH --dependency=afterok:$after" "$script" || { show "$script"; fail "job $id ($command) is not after $after"; }
  grep -qxF '#SBATCH --mem=1G' "$script" || fail "job $id has no --mem=1G"
  grep -qxF "#SBATCH --output=$WORK/run/slurm-$command-%j.log" "$script" || fail "job $id logs elsewhere"
  grep -qF "cmd=($SF $command $WORK/job.yaml --set search.queries=queries.fvecs)" "$script" ||
    { show "$script"; fail "job $id does not run $command"; }
  cmp -s "$script" "run/submit-$command.sbatch" || fail "run/submit-$command.sbatch is not what job $id got"
done
ok

check "a failing sbatch stops the chain: exit 1, sbatch's message, the jobs already submitted named"
rm -rf run stub/*
set +e
STUB_FAIL_AT=2 PATH="$WORK/bin:$PATH" "$SF" submit job.yaml --command build,eval,info >fail.out 2>fail.err
rc=$?
set -e
cat fail.out fail.err
[[ $rc -eq 1 ]] || fail "exit $rc, expected 1"
grep -qxF 'submitted build: job 100' fail.out || fail "the submitted build job is not printed"
grep -qF 'Invalid qos specification' fail.err || fail "sbatch's message is not shown"
grep -qF 'the chain stops at `eval`: submitted build (job 100)' fail.err || fail "the stop is not explained"
[[ $(cat stub/calls) -eq 2 ]] || fail "sbatch ran $(cat stub/calls) times, expected 2 (no info job)"
ok

check "the scripts hold no constant condition ([[ 1 -eq 1 ]]-style) for any command, --resume, --requeue"
for command in build eval search info dedup dedup-quality run; do
  for flags in "" "--requeue" "--resume" "--resume --requeue"; do
    if [[ $flags == *--resume* && ($command == info || $command == dedup-quality) ]]; then continue; fi
    # shellcheck disable=SC2086
    PATH=/nonexistent "$SF" submit job.yaml --dry-run --command $command $flags \
      --set search.queries=queries.fvecs >const.out 2>const.err || { show const.err; fail "$command $flags failed"; }
    if grep -nE '\[\[ *[0-9]+ +-(eq|ne|lt|le|gt|ge) +[0-9]+' const.out; then
      fail "$command $flags: a constant condition in the script"
    fi
    if grep -n '^#%' const.out; then fail "$command $flags: template lines in the script"; fi
    bash -n const.out || fail "$command $flags: the script is not valid bash"
  done
done
ok

sf_done
