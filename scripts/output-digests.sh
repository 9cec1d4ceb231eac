#!/usr/bin/env bash
# Digests of every output a refactoring must leave byte-identical: each config in configs/ run
# by BIN at 1, 2 and 4 ranks; prints "<sha256>  <config>/<ranks>/<file>" sorted. Compare two
# builds with diff:
#   scripts/output-digests.sh /tmp/old/shardforge > old.txt
#   scripts/output-digests.sh build/commands/shardforge > new.txt; diff old.txt new.txt
# eval.json keeps only its recall figures (QPS and seconds are timings), plan.json its
# placement (not the measured scan costs, nor the figures derived from them: balance, what LPT
# would give), search.h5 its data. RANKS="1 2" for fewer
# ranks, CONFIGS="sift-5k fortunes-run" for some configs only.
# Needs data/dedup (scripts/fetch-dedup-data.sh) for the spdx and clough configs; a config
# whose input is missing is reported as "missing" rather than skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:?usage: $0 SHARDFORGE_BINARY}")
work=$(mktemp -d /tmp/sf-digests.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() {
  local np=$1; shift
  mpirun -np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 "$bin" "$@" \
    > "$work/log" 2>&1 || { echo "FAILED: $* (np $np)" >&2; tail -5 "$work/log" >&2; return 1; }
}
commands_for() {  # the commands a config is written for, in order
  case $1 in
    *-dedup) echo dedup ;;
    *-run) echo run ;;
    *-sharded) echo "build search" ;;
    *) echo "build eval" ;;
  esac
}
for config in configs/*.yaml; do
  name=$(basename "$config" .yaml)
  [[ -z ${CONFIGS:-} || " $CONFIGS " == *" $name "* ]] || continue
  for np in ${RANKS:-1 2 4}; do
    dir=$work/$name-$np
    ok=1
    for cmd in $(commands_for "$name"); do
      run "$np" "$cmd" "$config" --set output.dir="$dir" || { ok=0; break; }
    done
    if (( ! ok )); then echo "missing  $name/$np"; continue; fi
    (cd "$dir" && find . -type f \( -name '*.faiss' -o -name 'ids.jsonl' -o -name 'duplicates.jsonl' \
        -o -name 'pairs.jsonl' -o -path './kept/*' -o -path './shards/*' \) -print0 |
      sort -z | xargs -0 -r sha256sum) |
      sed "s|  \./|  $name/$np/|"
    # plan.json without the measured scan costs (timings; the placement they lead to stays);
    # search.h5 by its datasets and attributes (files before 2026-12-05 held HDF5 timestamps).
    [[ ! -f $dir/plan.json ]] || printf '%s  %s/%s/plan.json:placement\n' "$(/usr/bin/python3 -c '
import json, re, sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not re.search("cost|seconds|balance|lpt", k)}
    return [strip(x) for x in v] if isinstance(v, list) else v
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))' "$dir/plan.json" | sha256sum | cut -d' ' -f1)" "$name" "$np"
    [[ ! -f $dir/search.h5 ]] || printf '%s  %s/%s/search.h5:data\n' "$(/usr/bin/python3 -c '
import h5py, hashlib, sys
f, h = h5py.File(sys.argv[1], "r"), hashlib.sha256()
for k in sorted(f.attrs): h.update(repr((k, f.attrs[k])).encode())
for k in sorted(f): h.update(k.encode() + f[k][()].tobytes())
print(h.hexdigest())' "$dir/search.h5")" "$name" "$np"
    if [[ -f $dir/eval.json ]]; then
      printf '%s  %s/%s/eval.json:recall\n' \
        "$(/usr/bin/python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); print(json.dumps([{k: v for k, v in r.items() if k.startswith("recall")} for r in e.get("results", e.get("rows", []))], sort_keys=True))' "$dir/eval.json" | sha256sum | cut -d' ' -f1)" \
        "$name" "$np"
    fi
    rm -rf "$dir"
  done
done
