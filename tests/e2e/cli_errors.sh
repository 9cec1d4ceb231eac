# Command-line errors (CLI11 parse errors): exit exactly 2 with one error line, and a "did you
# mean" for a misspelt command or flag; --help and --version print and exit 0. No MPI: the
# command line is parsed before MPI starts, so shardforge runs directly.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

cd "$WORK"
printf 'input:\n  paths: [x.fvecs]\nindex:\n  factory: IVF4,Flat\noutput:\n  dir: out\n' >x.yaml

# expect_usage NAME ARGS... -- PATTERN...: shardforge ARGS exits 2, prints nothing on stdout and
# exactly one line on stderr, an [error] line holding every PATTERN (fixed strings).
expect_usage() {
  local name=$1
  shift
  local args=()
  while [[ $# -gt 0 && $1 != -- ]]; do
    args+=("$1")
    shift
  done
  [[ $# -gt 0 ]] && shift
  check "$name: shardforge ${args[*]}"
  set +e
  timeout 30 "$SF" "${args[@]}" >out.txt 2>err.txt
  local rc=$?
  set -e
  [[ $rc -eq 2 ]] || { show err.txt; fail "$name: exit $rc, expected 2"; }
  [[ ! -s out.txt ]] || { show out.txt; fail "$name: printed on stdout"; }
  local n
  n=$(wc -l <err.txt)
  [[ $n -eq 1 ]] || { show err.txt; fail "$name: $n lines on stderr, expected one"; }
  grep -qF '[error]' err.txt || { show err.txt; fail "$name: no [error] line"; }
  local pattern
  for pattern in "$@"; do
    grep -qF -- "$pattern" err.txt || { show err.txt; fail "$name: the error does not say '$pattern'"; }
  done
  ok "$(sed 's/.*\[error\] //' err.txt)"
}

# expect_no_hint: the last expect_usage printed no "did you mean".
expect_no_hint() { ! grep -qF 'did you mean' err.txt || { show err.txt; fail "an unwanted 'did you mean'"; }; }

expect_usage "no command" -- "command"
expect_no_hint
expect_usage "misspelt command" bulid x.yaml -- "unknown command 'bulid'" "did you mean 'build'?"
expect_usage "misspelt command, transposed letters" dedpu x.yaml -- "did you mean 'dedup'?"
expect_usage "unknown command" xyzzy x.yaml -- "unknown command 'xyzzy'"
expect_no_hint
expect_usage "misspelt flag" build x.yaml --resum -- "--resum" "did you mean '--resume'?"
expect_usage "misspelt flag with a value" build x.yaml --sett index.factory=Flat -- "--sett" \
  "did you mean '--set'?"
expect_usage "misspelt flag of submit" submit x.yaml --dryrun -- "--dryrun" "did you mean '--dry-run'?"
expect_usage "unknown flag" build x.yaml --frobnicate -- "--frobnicate"
expect_no_hint
expect_usage "flag of another command" info x.yaml --resume -- "--resume"
expect_usage "missing config" build -- "config"
expect_usage "extra argument" build x.yaml y.yaml -- "y.yaml"
expect_usage "query -k 0" query RUN hello -k 0 -- "-k" "0"
expect_usage "query -k 0 without the text" query RUN -k 0
expect_usage "query --nprobe not a number" query RUN hello --nprobe many -- "--nprobe" "many"
expect_usage "submit --nodes 0" submit x.yaml --nodes 0 -- "--nodes" "0"
expect_usage "submit --command not a command" submit x.yaml --command bulid -- "bulid" \
  "did you mean 'build'?"

check "--help and --version exit 0 and print on stdout"
for args in "--help" "build --help" "submit --help" "query --help" "-h"; do
  # shellcheck disable=SC2086
  "$SF" $args >out.txt 2>err.txt || { show err.txt; fail "shardforge $args exited $?"; }
  grep -q 'Usage' out.txt || { show out.txt; fail "shardforge $args printed no usage"; }
done
for args in "--version" "build --version" "submit --version"; do
  # shellcheck disable=SC2086
  "$SF" $args >out.txt 2>err.txt || { show err.txt; fail "shardforge $args exited $?"; }
  grep -q '^shardforge ' out.txt || { show out.txt; fail "shardforge $args printed no version"; }
done
ok

sf_done
