# Sourced by bench/run_budget.sh and bench/run_memory.sh: the `shardforge run` config both
# benchmarks use on a JSONL corpus.
# text_run_config FILE OUT_DIR CORPUS...: writes FILE (jsonl input, output.dir OUT_DIR, an
# inner-product index, one thread per rank).
text_run_config() {
  local file=$1 out=$2
  shift 2
  {
    echo "input:"; echo "  format: jsonl"; echo "  paths:"
    local p
    for p in "$@"; do echo "    - \"$(realpath "$p")\""; done
    echo "output: {dir: $out}"
    echo "index: {metric: ip}"
    echo "threads: 1"
  } >"$file"
}
