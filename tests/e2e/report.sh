# Issue 16, `shardforge report RUN_DIR`: a real `run` (a directory of planted JSONL, exact +
# near dedup, semantic dedup, index, eval), a real sharded `build` + `eval` + `search` and a
# real `dedup`, each written as report.html and opened in Debian's chromium (headless): the
# page says it drew every plot (<body data-report="ok">), logs no JS error, loads nothing from
# the network, and its screenshot is not blank (python3 + PIL count the coloured pixels of the
# plots). A memory budget in run.json is drawn; a page whose data is broken says so; a
# directory that is not a run, and a report.html shardforge did not write, exit 2.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

command -v chromium >/dev/null || sf_skip "no chromium (apt-get install chromium)"
"$PY" -c 'import PIL' 2>/dev/null || sf_skip "no python3-pil (apt-get install python3-pil)"
[[ -f /usr/share/javascript/chart.js/chart.min.js ]] || sf_skip "no libjs-chart.js"

# browse PAGE NAME: chromium opens PAGE twice (the DOM once drawn, a 1400 x 2400 screenshot);
# $WORK/NAME.dom, NAME.png, NAME.log (chromium's log, console messages included).
browse() {
  local page=$1 name=$2
  local flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
               --user-data-dir="$WORK/chromium" --enable-logging=stderr --v=0)
  timeout 60 chromium "${flags[@]}" --dump-dom "file://$page" >"$WORK/$name.dom" 2>"$WORK/$name.log" ||
    { show "$WORK/$name.log"; fail "chromium --dump-dom $page failed"; }
  timeout 60 chromium "${flags[@]}" --window-size=1400,2400 --screenshot="$WORK/$name.png" \
    "file://$page" >>"$WORK/$name.log" 2>&1 ||
    { show "$WORK/$name.log"; fail "chromium --screenshot $page failed"; }
}

# (A .dom file holds the page's script too: look for drawn elements, such as "<h2>title".)
# page_ok NAME CANVASES: the page drew (data-report="ok"), logged no error, has CANVASES plots
# and its screenshot holds enough coloured pixels.
page_ok() {
  local name=$1 canvases=$2
  grep -q 'data-report="ok"' "$WORK/$name.dom" ||
    fail "$name: the page did not draw: $(grep -o 'data-report="[^"]*"' "$WORK/$name.dom")"
  if grep -E 'CONSOLE.*(Uncaught|Error)' "$WORK/$name.log"; then fail "$name: a JS error"; fi
  local n
  n=$(grep -o '<canvas' "$WORK/$name.dom" | wc -l)
  [[ $n -eq $canvases ]] || fail "$name: $n plot(s), expected $canvases"
  "$PY" - "$WORK/$name.png" <<'PYEOF' || fail "$name: the screenshot is blank"
import sys
import numpy as np
from PIL import Image
im = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
# Below the header: the plots' bars and lines are saturated colours; the page's greys and
# whites and the header's dark blue are not.
body = im[80:]
coloured = int(((body.max(axis=2) - body.min(axis=2)) > 60).sum())
print(f"   {coloured} coloured pixels of {body.shape[0] * body.shape[1]}")
sys.exit(0 if coloured > 20000 else 1)
PYEOF
}

# no_network PAGE: nothing in the page is fetched (no src= or href= to anything).
no_network() {
  if grep -Eo '<(script|link|img|iframe)[^>]*(src|href)=[^>]*>' "$1"; then
    fail "$1 loads something from outside the page"
  fi
}

check "a run on a directory of JSONL (dedup, semantic dedup, index, eval) on 2 ranks"
"$PY" "$SRC/tests/e2e/dedupdata.py" planted "$WORK/corpus" --docs 300 --seed 5
gzip "$WORK/corpus/b.jsonl"
cat >"$WORK/run.yaml" <<EOF
input:
  format: jsonl
  paths: ["$WORK/corpus/"]
output:
  dir: "$WORK/run"
run:
  eval: true
index:
  factory: IVF8,Flat
  metric: ip
semdedup:
  eps: 0.1
eval:
  nprobe: [1, 2, 4, 8]
EOF
run_ok 2 "$WORK/run.log" run "$WORK/run.yaml"
ok

check "report RUN_DIR writes RUN_DIR/report.html, prints its path, exit 0; the page is self-contained"
"$SF" report "$WORK/run" >"$WORK/report.out" 2>&1 || { show "$WORK/report.out"; fail "report exited non-zero"; }
[[ $(cat "$WORK/report.out") == "$WORK/run/report.html" ]] || { show "$WORK/report.out"; fail "not the page's path"; }
no_network "$WORK/run/report.html"
grep -q 'Chart.js v3' "$WORK/run/report.html" || fail "Chart.js is not in the page"
ok "$(stat -c %s "$WORK/run/report.html") bytes"

check "chromium draws the run's report: timeline, memory, lists, recall, dedup reasons, clusters, similarity"
browse "$WORK/run/report.html" run
page_ok run 7
for title in "run: stages per rank" "run: peak memory per stage and rank" "Inverted-list sizes" \
  "Recall and QPS against nprobe" "Duplicates removed, by reason" "Duplicate clusters by size" \
  "Similarity of each removed document"; do
  grep -qF "<h2>$title" "$WORK/run.dom" || fail "no '$title' plot in the page"
done
# The tables hold the numbers: eval's nprobe rows and the removed documents per reason.
"$PY" - "$WORK/run" "$WORK/run.dom" <<'PYEOF' || fail "the tables do not hold the run's numbers"
import json, re, sys
run, dom = sys.argv[1], open(sys.argv[2]).read()
ev = json.load(open(run + "/eval.json"))
for r in ev["results"]:
    assert f"<td>{r['nprobe']}</td>" in dom, r
reasons = {}
for line in open(run + "/duplicates.jsonl"):
    k = json.loads(line)["reason"]
    reasons[k] = reasons.get(k, 0) + 1
assert {"exact", "near"} <= set(reasons), reasons
for k, n in reasons.items():
    assert re.search(rf"<td>{k}</td><td>{n:,}</td>", dom), (k, n)
PYEOF
ok

check "a sharded build + eval + search on 2 ranks, reported by its config to --output: a timeline and memory plot per command, shard loads"
sfdata gen "$WORK/base.fvecs" --rows 4000 --dim 16 --seed 3
sfdata gen "$WORK/queries.fvecs" --rows 100 --dim 16 --seed 4
cat >"$WORK/build.yaml" <<EOF
input:
  paths: ["$WORK/base.fvecs"]
index:
  factory: IVF16,Flat
output:
  dir: "$WORK/build"
eval:
  queries: "$WORK/queries.fvecs"
  nprobe: [1, 4, 16]
partition:
  workload: "$WORK/queries.fvecs"
  shards: 2
  nprobe: 4
search:
  queries: "$WORK/queries.fvecs"
  k: 10
  nprobe: 4
seed: 11
EOF
for command in build eval search; do run_ok 2 "$WORK/$command.log" "$command" "$WORK/build.yaml"; done
"$SF" report "$WORK/build.yaml" --output "$WORK/build-report.html" >"$WORK/report2.out" 2>&1 ||
  { show "$WORK/report2.out"; fail "report --output exited non-zero"; }
[[ ! -e $WORK/build/report.html ]] || fail "--output also wrote RUN_DIR/report.html"
browse "$WORK/build-report.html" build
# 3 timelines + 3 memory plots + lists + recall + shards
page_ok build 9
grep -qF "<h2>Shard loads" "$WORK/build.dom" || fail "no shard loads"
ok

check "a dedup run directory: its timeline, memory and the duplicates' plots, no index plots"
cat >"$WORK/dedup.yaml" <<EOF
input:
  format: jsonl
  paths: ["$WORK/corpus/"]
output:
  dir: "$WORK/dedup"
EOF
run_ok 2 "$WORK/dedup.log" dedup "$WORK/dedup.yaml"
"$SF" report "$WORK/dedup" >/dev/null 2>"$WORK/report3.err" || { show "$WORK/report3.err"; fail "report of dedup"; }
browse "$WORK/dedup/report.html" dedup
page_ok dedup 5
if grep -qF "<h2>Inverted-list sizes" "$WORK/dedup.dom"; then fail "list sizes without an index"; fi
ok

check "a memory budget in run.json is drawn as a line over the peaks"
cp -r "$WORK/run" "$WORK/budget"
"$PY" - "$WORK/run/run.json" "$WORK/budget/run.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["commands"]["run"]["memory_budget_mib"] = 96
json.dump(r, open(sys.argv[2], "w"))
PYEOF
"$SF" report "$WORK/budget" >/dev/null 2>&1 || fail "report with a budget"
browse "$WORK/budget/report.html" budget
page_ok budget 7
grep -qF 'note">Peak RSS (MiB) of each rank in each stage, against the budget' "$WORK/budget.dom" ||
  fail "no budget in the memory plot"
grep -qF '"budget_mib":96' "$WORK/budget/report.html" || fail "the budget is not in the page's data"
ok

check "a page whose data is broken says so (the check above would see a failed drawing)"
sed 's|<script type="application/json" id="report-data">|&{"broken": |' "$WORK/run/report.html" >"$WORK/broken.html"
browse "$WORK/broken.html" broken
grep -q 'data-report="error: ' "$WORK/broken.dom" || fail "a broken page did not report its error"
grep -q 'CONSOLE.*Uncaught' "$WORK/broken.log" || fail "chromium's log does not show the page's error"
ok "$(grep -o 'data-report="[^"]*"' "$WORK/broken.dom")"

check "a directory that is not a run: exit 2, naming it; a report.html shardforge did not write: exit 2"
mkdir -p "$WORK/empty"
set +e
"$SF" report "$WORK/empty" >"$WORK/empty.out" 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { show "$WORK/empty.out"; fail "exit $rc, expected 2"; }
grep -q "not a run directory" "$WORK/empty.out" || { show "$WORK/empty.out"; fail "no reason"; }
echo "<html>my notes</html>" >"$WORK/build/report.html"
set +e
"$SF" report "$WORK/build" >"$WORK/mine.out" 2>&1
rc=$?
set -e
[[ $rc -eq 2 ]] || { show "$WORK/mine.out"; fail "a user's report.html: exit $rc, expected 2"; }
grep -q "my notes" "$WORK/build/report.html" || fail "the user's report.html was replaced"
"$SF" report "$WORK/run" >/dev/null 2>&1 || fail "report could not replace its own page"
ok

sf_done
