#!/usr/bin/env bash
# Command-line checks of pagehint on the shipped traces: exit codes on bad input, atomic outputs,
# folded-stack validity, `diff` JSON against numbers recomputed from two `hot` runs, and an import
# database read back as a trace.
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

# An input that another program truncates while it is being read (through a mapping): one line and exit
# 65, never a crash; an import leaves the existing output untouched and no temporary file. Where the
# truncation lands depends on timing: before the read reaches the cut it is caught as a bus error on the
# mapping ("became shorter"), before the file is opened it is an ordinary truncated file (65), after the
# read ends the command succeeds (0). A signal (exit status above 128) is always a failure.
sig=0; good=0; hits=0
for d in 0.002 0.01 0.03 0.06; do
    cp "$A/trace.dat" "$WORK/shrink.dat"
    echo keep > "$WORK/out2.sqlite"
    ( "$BIN" import "$WORK/shrink.dat" --db "$WORK/out2.sqlite" > /dev/null 2> "$WORK/err"; echo $? > "$WORK/rc" ) &
    sleep $d; truncate -s 65536 "$WORK/shrink.dat"; wait
    rc=$(cat "$WORK/rc")
    [ "$rc" -gt 128 ] && sig=$((sig + 1))
    if [ "$rc" = 65 ]; then
        [ "$(wc -l < "$WORK/err")" = 1 ] && grep -q shrink.dat "$WORK/err" && [ "$(cat "$WORK/out2.sqlite")" = keep ] && good=$((good + 1))
        grep -q "became shorter" "$WORK/err" && hits=$((hits + 1))
    elif [ "$rc" = 0 ]; then
        good=$((good + 1))
    fi
done
check "input truncated while mapped: no signal, exit 65 with one line and the output untouched ($hits of 4 runs caught on the mapping)" [ "$sig" = 0 -a "$good" = 4 ]
check "input truncated while mapped: no temporary file left" [ -z "$(ls -A "$WORK" | grep tmp-)" ]

"$BIN" replay "$B" --db "$WORK/run.sqlite" --json > "$WORK/replay.json" 2>/dev/null; rc=$?
check "replay --db writes a run" [ "$rc" = 0 -a -s "$WORK/run.sqlite" ]
"$BIN" replay "$B" --json > "$WORK/replay2.json" 2>/dev/null
python3 - "$WORK/replay.json" "$WORK/replay2.json" <<'PY' && ok "two replays give identical JSON (timing excluded)" || bad "two replays differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY

"$BIN" stat "$WORK/run.sqlite" > /dev/null 2> "$WORK/err"; rc=$?
check "a run database given as a trace: exit 65, one line" [ "$rc" = 65 -a "$(wc -l < "$WORK/err")" = 1 ] && grep -q "run database" "$WORK/err"
"$BIN" import "$B" --db "$WORK/import.sqlite" > /dev/null 2>&1
"$BIN" replay "$WORK/import.sqlite" --json > "$WORK/replay-db.json" 2>/dev/null; rc=$?
python3 - "$WORK/replay.json" "$WORK/replay-db.json" <<'PY' && [ "$rc" = 0 ] && ok "replay of an import database equals replay of the trace (trace path, format excluded)" || bad "replay of the import database differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("trace", "format"): a.pop(k, None); b.pop(k, None)
sys.exit(0 if a == b else 1)
PY
"$BIN" dump --stacks "$B" > "$WORK/dump.txt" 2>/dev/null
"$BIN" dump --stacks "$WORK/import.sqlite" > "$WORK/dump-db.txt" 2>/dev/null
check "dump of an import database equals dump of the trace" cmp -s "$WORK/dump.txt" "$WORK/dump-db.txt"

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

# Reports read a run database as they read a trace: the same rows, the same stacks.
"$BIN" replay "$A" --db "$WORK/runA.sqlite" > /dev/null 2>&1
for f in json folded; do
    "$BIN" hot "$B" --by transitions --top 0 --format $f > "$WORK/hot-trace.$f" 2>/dev/null
    "$BIN" hot "$WORK/run.sqlite" --by transitions --top 0 --format $f > "$WORK/hot-db.$f" 2>/dev/null
    check "hot --format $f from the run database equals hot from the trace" cmp -s "$WORK/hot-trace.$f" "$WORK/hot-db.$f"
done
site=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"][0]["site"])' "$WORK/hot-db.json")
"$BIN" hot "$B" --by transitions --site "$site" > "$WORK/drill-trace" 2>/dev/null
"$BIN" hot "$WORK/run.sqlite" --by transitions --site "$site" > "$WORK/drill-db" 2>/dev/null
check "hot --site drill-down from the run database equals the trace's" cmp -s "$WORK/drill-trace" "$WORK/drill-db"
"$BIN" diff "$WORK/runA.sqlite" "$WORK/run.sqlite" --by phd --top 0 --format json > "$WORK/diff-db.json" 2>/dev/null
python3 - "$WORK/diff.json" "$WORK/diff-db.json" <<'PY' && ok "diff of two run databases equals diff of the two traces" || bad "diff of run databases differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a["rows"] == b["rows"] and a["match"] == b["match"] and a["a"]["total"] == b["a"]["total"] else 1)
PY
cp "$WORK/run.sqlite" "$WORK/broken.sqlite"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE counters SET phd = char(109, 97, 110, 121)"); c.commit()' "$WORK/broken.sqlite"
"$BIN" hot "$WORK/broken.sqlite" > /dev/null 2> "$WORK/err"; rc=$?
check "a run database with a text counter: exit 65, one line naming the column" [ "$rc" = 65 -a "$(wc -l < "$WORK/err")" = 1 ] && grep -q "phd" "$WORK/err"
"$BIN" compare "$B" --policies g06,g09,a1,a4,a5 --json > "$WORK/compare.json" 2>/dev/null
python3 - "$WORK/compare.json" <<'PY' && ok "compare: G06 evaluates page_host_discards() more than G09, A1 changes state more, A4 reports its memory" || bad "compare JSON"
import json, sys
p = {x["policy"]: x for x in json.load(open(sys.argv[1]))["policies"]}
c = lambda n, k: p[n]["counters"][k]
a4 = p["a4"]["a4"]
print("G06/G09 phd", c("g06", "page_host_discards()") / c("g09", "page_host_discards()"),
      "A1/G09 state changes", c("a1", "state changes") / c("g09", "state changes"), "A4 memory ratio", a4["memory_ratio"])
sys.exit(0 if c("g06", "page_host_discards()") > c("g09", "page_host_discards()") and c("a1", "state changes") > c("g09", "state changes")
         and a4["node_bytes"] == 16 * a4["peak_volatile_pages"] and c("a4", "PageDiscarded tests") == 0 else 1)
PY

# Call sites: the formats of one capture give identical site counts; the two kernels' top-20 sites match.
for b in "$REPO"/traces/k6.18-write-fsync "$REPO"/traces/k6.1-memcg-reclaim "$REPO"/traces/k6.18-mmap-random-perf; do
    n=0; first=""
    for f in "$b"/trace.txt.zst "$b"/trace.dat "$b"/trace.v6.dat* "$b"/trace.report.txt* "$b"/perf.data.zst "$b"/perf.data "$b"/perf.script.txt.zst; do
        [ -e "$f" ] || continue
        k=""; case $f in *perf.data*) k="--kallsyms $(ls "$REPO"/traces/k6.$(basename "$b" | sed 's/^k6\.\([0-9]*\)-.*/\1/')-kallsyms.zst)";; esac
        "$BIN" sites "$f" $k --json > "$WORK/sites.$n.json" 2>/dev/null
        [ -z "$first" ] && first="$WORK/sites.$n.json"
        check "sites of $(basename "$b")/$(basename "$f") equal those of the capture's first file" cmp -s "$first" "$WORK/sites.$n.json"
        n=$((n + 1))
    done
done
for w in seq-reread memcg-reclaim mmap-random write-fsync small-files; do
    "$BIN" sites "$REPO/traces/k6.1-$w" --compare "$REPO/traces/k6.18-$w" --json > "$WORK/cmp.json" 2>/dev/null
    python3 - "$WORK/cmp.json" "$w" <<'PY' && ok "$w: events at a top-20 site matched across 6.1 and 6.18 >= 80%" || bad "$w: cross-kernel site match below 80%"
import json, sys
d = json.load(open(sys.argv[1]))
print(sys.argv[2], "sites %.1f%%" % (100 * d["match"]), "events %.1f%% (6.1 %.1f%%, 6.18 %.1f%%)" % (100 * d["match_by_events"], 100 * d["match_by_events_a"], 100 * d["match_by_events_b"]))
sys.exit(0 if d["match_by_events"] >= 0.8 else 1)
PY
done

# Hand-written trace text (not from a kernel): folios whose pfns or page indices run past 2^64, look-up
# ranges to the end of the index space, an LRU list number out of range, reclaim counts of 2^63 - 1 and a
# priority of -2^63 (which the text reader once trapped on negating). The replay, its host-budget pre-pass included, skips and notes the
# events naming a pfn or index of 2^56 or more, exits 0 and writes its run.
cat > "$WORK/extreme.txt" <<'TXT'
cpus=2
             a-1 [001]  10.000001: mm_page_alloc:        page=0x0 pfn=0xfffffffffffffff0 order=12 migratetype=0 gfp_flags=GFP_KERNEL
             a-1 [001]  10.000002: mm_filemap_add_to_page_cache: dev 254:0 ino 5 pfn=0x1000 ofs=18446744073709547520 order=12
             a-1 [001]  10.000003: mm_lru_insertion:     folio=0x0 pfn=0xfffffffffffffff0 lru=2 flags=M
             a-1 [001]  10.000004: mm_filemap_get_pages: dev=254:0 ino=5 ofs=18446744073709547520-18446744073709551615
             a-1 [001]  10.000005: mm_filemap_map_pages: dev=254:0 ino=5 ofs=0-18446744073709551615
             a-1 [001]  10.000006: mm_page_alloc:        page=0x0 pfn=0xfffffffe order=12 migratetype=0 gfp_flags=GFP_KERNEL
             a-1 [001]  10.000007: mm_filemap_add_to_page_cache: dev 254:0 ino 6 pfn=0xfffffffe ofs=4294963200 order=12
             a-1 [001]  10.000008: mm_filemap_get_pages: dev=254:0 ino=6 ofs=4294963200-4294967295
             a-1 [001]  10.000009: mm_filemap_delete_from_page_cache: dev 254:0 ino 6 pfn=0xfffffffe ofs=4294963200 order=12
             a-1 [001]  10.000010: mm_page_free:         page=0x0 pfn=0xfffffffe order=12
             a-1 [001]  10.000011: mm_lru_insertion:     folio=0x0 pfn=0x1000 lru=99 flags=M
             a-1 [001]  10.000012: mm_vmscan_lru_isolate: classzone=2 order=0 nr_requested=32 nr_scanned=9223372036854775807 nr_skipped=0 nr_taken=9223372036854775807 lru=inactive_file
             a-1 [001]  10.000013: mm_vmscan_lru_shrink_inactive: nid=0 nr_scanned=1 nr_reclaimed=0 nr_dirty=0 nr_writeback=0 nr_congested=0 nr_immediate=0 nr_activate_anon=9223372036854775807 nr_activate_file=9223372036854775807 nr_ref_keep=0 nr_unmap_fail=0 priority=-9223372036854775808 flags=RECLAIM_WB_FILE|RECLAIM_WB_ASYNC
             a-1 [001]  10.000014: mm_vmscan_lru_shrink_active: nid=0 nr_taken=9223372036854775807 nr_active=0 nr_deactivated=-5 nr_referenced=0 priority=12 flags=RECLAIM_WB_FILE|RECLAIM_WB_ASYNC
TXT
for budget in 60% unlimited; do
  rm -f "$WORK/extreme.sqlite"
  "$BIN" replay "$WORK/extreme.txt" --host-budget $budget --quiet --db "$WORK/extreme.sqlite" > /dev/null 2> "$WORK/err"; rc=$?
  n=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"select sum(value) from notes where key like 'events naming a pfn or page index of 2^56%'\").fetchone()[0])" "$WORK/extreme.sqlite" 2>/dev/null)
  check "pfns and page indices near 2^64 (host budget $budget): exit 0, the 4 events naming them skipped and noted" [ "$rc" = 0 -a "$n" = 4 ]
done

# Hand-written: one page added, then deleted 40,000 times (more than its 16-bit count holds).
python3 - "$WORK/deletes.txt" <<'PY'
import sys
out = ["cpus=2", "             a-1 [001]  10.000000: mm_filemap_add_to_page_cache: dev 254:0 ino 5 pfn=0x1000 ofs=0 order=0"]
out += ["             a-1 [001]  %.6f: mm_filemap_delete_from_page_cache: dev 254:0 ino 5 pfn=0x1000 ofs=0 order=0" % (10.000001 + k * 1e-6) for k in range(40000)]
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
"$BIN" replay "$WORK/deletes.txt" --quiet > /dev/null 2> "$WORK/err"; rc=$?
check "a page deleted 40,000 times: exit 0, no trap on its reference count" [ "$rc" = 0 ]

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
