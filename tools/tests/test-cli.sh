#!/usr/bin/env bash
# Command-line checks of pagehint on the shipped traces: exit codes on bad input, atomic outputs,
# folded-stack validity, and `diff` JSON against numbers recomputed from two `hot` runs.
# Uses the debug build (make test builds it). Prints "N passed, N failed".
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PAGEHINT:-$REPO/.build/debug/pagehint}
pass=0; fail=0
ok() { echo "ok    $*"; pass=$((pass + 1)); }
bad() { echo "FAIL  $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
[ -x "$BIN" ] || { echo "skipped: $BIN not built"; echo "0 passed, 0 failed"; exit 0; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
A=$REPO/traces/k6.1-memcg-reclaim; B=$REPO/traces/k6.18-memcg-reclaim

"$BIN" stat /nonexistent/trace.dat > /dev/null 2> "$WORK/err"; rc=$?
check "unreadable input: exit 66, one line naming the file" [ "$rc" = 66 -a "$(wc -l < "$WORK/err")" = 1 ] && grep -q /nonexistent "$WORK/err"
head -c 3000 /etc/services > "$WORK/garbage"
"$BIN" stat "$WORK/garbage" > /dev/null 2> "$WORK/err"; rc=$?
check "garbage input: exit 65, one line" [ "$rc" = 65 -a "$(wc -l < "$WORK/err")" = 1 ]
head -c 100000 "$B/trace.dat" > "$WORK/cut.dat"
"$BIN" stat "$WORK/cut.dat" > /dev/null 2> "$WORK/err"; rc=$?
check "truncated trace.dat: exit 65 with a byte offset" [ "$rc" = 65 ] && grep -q "byte" "$WORK/err"

echo keep > "$WORK/out.sqlite"
"$BIN" import "$WORK/cut.dat" --db "$WORK/out.sqlite" > /dev/null 2>&1; rc=$?
check "failed import leaves the existing output untouched" [ "$rc" = 65 -a "$(cat "$WORK/out.sqlite")" = keep ]
check "failed import leaves no temporary file" [ -z "$(ls -A "$WORK" | grep tmp-)" ]

"$BIN" replay "$B" --db "$WORK/run.sqlite" --json > "$WORK/replay.json" 2>/dev/null; rc=$?
check "replay --db writes a run" [ "$rc" = 0 -a -s "$WORK/run.sqlite" ]
"$BIN" replay "$B" --json > "$WORK/replay2.json" 2>/dev/null
python3 - "$WORK/replay.json" "$WORK/replay2.json" <<'PY' && ok "two replays give identical JSON (timing excluded)" || bad "two replays differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY

"$BIN" hot "$B" --by phd --format folded > "$WORK/folded" 2>/dev/null
python3 - "$WORK/folded" "$WORK/replay.json" <<'PY' && ok "hot --format folded is valid folded stacks summing to the replay's phd" || bad "folded output invalid"
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
total = 0
for l in lines:
    m = re.fullmatch(r"(\S+(?:;\S+)*) (\d+)", l)
    if not m: print("bad line:", l); sys.exit(1)
    total += int(m.group(2))
phd = json.load(open(sys.argv[2]))["phd"]
print("folded lines", len(lines), "sum", total, "phd", phd)
sys.exit(0 if lines and total == phd else 1)
PY

"$BIN" diff "$A" "$B" --by phd --top 0 --format json > "$WORK/diff.json" 2>/dev/null
"$BIN" hot "$A" --by phd --top 0 --format json > "$WORK/hotA.json" 2>/dev/null
"$BIN" hot "$B" --by phd --top 0 --format json > "$WORK/hotB.json" 2>/dev/null
python3 - "$WORK/diff.json" "$WORK/hotA.json" "$WORK/hotB.json" <<'PY' && ok "diff JSON matches per-site sums recomputed from two hot runs" || bad "diff JSON does not match hot"
import json, sys, collections
d = json.load(open(sys.argv[1]))
def sums(p):
    s = collections.Counter()
    for r in json.load(open(p))["rows"]: s[(r["hook"], r["site"])] += r["count"]
    return s
a, b = sums(sys.argv[2]), sums(sys.argv[3])
rows = {(r["hook"], r["site"]): r for r in d["rows"]}
bad = [k for k in set(a) | set(b) if k not in rows or rows[k]["a"] != a.get(k, 0) or rows[k]["b"] != b.get(k, 0)
       or rows[k]["delta"] != b.get(k, 0) - a.get(k, 0)]
classes = collections.Counter(r["class"] for r in d["rows"])
top_a = {k for k, _ in a.most_common(20)}; top_b = {k for k, _ in b.most_common(20)}
print("rows", len(rows), "classes", dict(classes), "top-20 of A found in B:", len(top_a & set(b)), "/", len(top_a),
      "top-20 of B found in A:", len(top_b & set(a)), "/", len(top_b))
sys.exit(0 if not bad and d["a"]["total"] == sum(a.values()) and d["b"]["total"] == sum(b.values()) else 1)
PY

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
