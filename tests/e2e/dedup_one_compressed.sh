# shardforge dedup over a corpus of ONE compressed file (.gz, then .zst) at 1, 2 and 4 ranks:
# every rank reads a share of its records (the file's byte range scaled to its decompressed
# bytes; each rank decompresses from the start and skips the earlier lines), and the outputs
# (duplicates.jsonl, pairs.jsonl, the records of kept/ in order) equal 1 rank's. A corpus of
# fortune files (read whole) is spread by bytes the same way: every rank gets files.
# Regression (issue 16): one .gz at 2 ranks left rank 1 with "rows [0, 0)", without a warning.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"

check "data: a planted JSONL corpus in one file, gzipped and zstd-compressed"
"$PY" "$DD" planted "$WORK/corpus" --docs 400 --seed 16 >/dev/null
cat "$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl" "$WORK/corpus/c.jsonl" >"$WORK/one.jsonl"
gzip -k "$WORK/one.jsonl"
zstd -q "$WORK/one.jsonl" -o "$WORK/one.jsonl.zst"
ok "$(wc -l <"$WORK/one.jsonl") records"

# kept_records RUN: kept/'s records in order, whatever the files.
kept_records() { cat $(ls "$1"/kept/* | sort); }

for file in one.jsonl.gz one.jsonl.zst; do
  for np in 1 2 4; do
    check "$file at $np rank(s): every rank reads records; the outputs equal 1 rank's"
    text_config "$WORK/c.yaml" "$WORK/run-$file-$np" "$WORK/$file"
    printf 'dedup:\n  write_pairs: true\n' >>"$WORK/c.yaml"
    run_ok "$np" "$WORK/$file-$np.log" dedup "$WORK/c.yaml" --verbose
    rows=$(grep -ho 'this rank: rows \[[0-9]*, [0-9]*)' "$WORK/$file-$np.log".std* | sort -u)
    [[ $(wc -l <<<"$rows") -eq $np ]] || { show "$WORK/$file-$np.log"; fail "expected $np 'this rank: rows' lines: $rows"; }
    while read -r _ _ _ b e; do
      b=${b#[}; b=${b%,}; e=${e%)}
      (( e > b )) || fail "a rank reads no records: $rows"
    done <<<"$rows"
    ! grep -q "rows \[0, 0)" "$WORK/$file-$np.log".std* || fail "a rank with no rows"
    if (( np > 1 )); then
      ref="$WORK/run-$file-1"
      cmp "$ref/duplicates.jsonl" "$WORK/run-$file-$np/duplicates.jsonl" || fail "duplicates.jsonl differs from 1 rank's"
      cmp "$ref/pairs.jsonl" "$WORK/run-$file-$np/pairs.jsonl" || fail "pairs.jsonl differs from 1 rank's"
      cmp <(kept_records "$ref") <(kept_records "$WORK/run-$file-$np") || fail "kept/ records differ from 1 rank's"
    fi
    ok "$(tr '\n' ' ' <<<"$rows")"
  done
done

if [[ -d /usr/share/games/fortunes ]]; then
  check "fortune files (read whole) at 4 ranks: spread by bytes, every rank gets records"
  printf 'input:\n  format: fortune\n  paths: [/usr/share/games/fortunes]\n  glob: ["*", "!*.dat", "!*.u8"]\noutput:\n  dir: "%s"\n' \
    "$WORK/fortunes" >"$WORK/f.yaml"
  run_ok 4 "$WORK/fortunes.log" dedup "$WORK/f.yaml" --verbose
  rows=$(grep -ho 'this rank: rows \[[0-9]*, [0-9]*)' "$WORK/fortunes.log".std* | sort -u)
  [[ $(wc -l <<<"$rows") -eq 4 ]] || fail "expected 4 'this rank: rows' lines: $rows"
  ! grep -q "rows \[\([0-9]*\), \1)" <<<"$rows" || fail "a rank with no rows: $rows"
  ok "$(tr '\n' ' ' <<<"$rows")"
fi

sf_done
