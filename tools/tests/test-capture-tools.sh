#!/bin/bash
# tools/tests/test-capture-tools.sh — quick checks of trace-dat.sh and perf.sh (tracefs/memcg left as
# found, exit status propagated, SIGINT handled, trace.txt and trace.dat hold the same records) and
# of the argument handling of all capture tools and workloads.
# Prints "N passed, N failed"; exit status 1 on failure; skips (exit 0) without root/tracefs.
set -u
. "$(dirname "$0")/state-lib.sh"
skip_unless_capable
CAP=$REPO/tools/capture
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
before=$WORK/before
snapshot > "$before"

count_records() { # text on stdin -> "name count" lines
    awk '$1 == "=>" || /^#/ || /^cpus=/ || /^ *$/ { next }
         { for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) {
               n = $(i + 1); if (n == "<stack") n = "kernel_stack"; sub(/:$/, "", n); c[n]++; break } }
         END { for (k in c) print k, c[k] }' | sort
}
# count_both BUNDLE OUT: record counts per event of BUNDLE's trace.txt and trace.dat (trace-cmd report)
# into OUT.txt and OUT.dat; true when they agree.
count_both() {
    count_records < "$1/trace.txt" > "$2.txt"
    trace-cmd report -i "$1/trace.dat" 2>/dev/null | count_records > "$2.dat"
    [ -s "$2.txt" ] && diff "$2.txt" "$2.dat" > /dev/null
}
total() { awk '{ s += $2 } END { print s }' "$1"; }

# --- argument handling
for t in ftrace.sh trace-dat.sh perf.sh; do
    "$CAP/$t" --help > /dev/null 2>&1; rc=$?
    check "$t --help exits 0" [ "$rc" = 0 ]
    err=$("$CAP/$t" --buffer-kb x -- true 2>&1 > /dev/null); rc=$?
    check "$t bad --buffer-kb: status 2, one error line" [ "$rc" = 2 -a "$(echo "$err" | wc -l)" = 1 ]
    err=$("$CAP/$t" --no-such-option -- true 2>&1 > /dev/null); rc=$?
    check "$t unknown option: status 2, one error line" [ "$rc" = 2 -a "$(echo "$err" | wc -l)" = 1 ]
    err=$("$CAP/$t" -o "$WORK/x" 2>&1 > /dev/null); rc=$?
    check "$t no command: status 2" [ "$rc" = 2 ]
done
for w in seq-reread memcg-reclaim mmap-random write-fsync small-files; do
    "$REPO/tools/workloads/$w.sh" --help > /dev/null 2>&1; rc=$?
    check "$w.sh --help exits 0" [ "$rc" = 0 ]
    err=$("$REPO/tools/workloads/$w.sh" --bogus 2>&1 > /dev/null); rc=$?
    check "$w.sh bad argument: status 2, one error line" [ "$rc" = 2 -a "$(echo "$err" | wc -l)" = 1 ]
done
# --busybox: the workload re-executes itself under busybox sh (wl_check_common refuses any other shell)
if [ -x /bin/busybox ]; then
    out=$("$REPO/tools/workloads/small-files.sh" --files 3 --dirs 1 --no-drop-caches --allow-tmpfs \
        --dir "$WORK/bb" --busybox 2>&1); rc=$?
    check "small-files.sh --busybox runs under busybox sh (status $rc)" \
        [ "$rc" = 0 -a -n "$(echo "$out" | grep 'userland /bin/busybox')" ]
fi
err=$(PAGEHINT_BUSYBOX=/nonexistent "$REPO/tools/workloads/small-files.sh" --busybox --help 2>&1 > /dev/null); rc=$?
check "small-files.sh --busybox without busybox: status 2, one error line" [ "$rc" = 2 -a "$(echo "$err" | wc -l)" = 1 ]
same_state "argument errors" "$before"

# --- trace-dat.sh
"$CAP/trace-dat.sh" -q -s --pid-filter -b 8192 -o "$WORK/td" -- sh -c 'cat /etc/services /etc/passwd > /dev/null' > /dev/null 2>&1
rc=$?
check "trace-dat.sh normal run: status 0 (got $rc)" [ "$rc" = 0 ]
check "trace-dat.sh: trace.dat is file version 7" grep -q '"file_version": 7' "$WORK/td/meta.json"
first_try=""
if ! count_both "$WORK/td" "$WORK/c"; then
    # Seen twice on a loaded machine, never reproduced alone: trace.dat held more records of the
    # traced process tree than trace.txt. Show what differed, capture once more, and fail if it recurs.
    first_try=" (a first capture differed: $(diff "$WORK/c.txt" "$WORK/c.dat" | grep -c '^>') event types)"
    rm -rf "$WORK/td"
    "$CAP/trace-dat.sh" -q -s --pid-filter -b 8192 -o "$WORK/td" -- sh -c 'cat /etc/services /etc/passwd > /dev/null' > /dev/null 2>&1
fi
if count_both "$WORK/td" "$WORK/c"; then
    ok "trace-dat.sh: trace.txt and trace.dat hold the same records per event ($(total "$WORK/c.txt"))$first_try"
else
    bad "trace-dat.sh: trace.txt and trace.dat differ:"; diff "$WORK/c.txt" "$WORK/c.dat" | sed 's/^/      /'
fi
same_state "trace-dat.sh normal run" "$before"
"$CAP/trace-dat.sh" -q -o "$WORK/td-fail" -- sh -c 'exit 5' > /dev/null 2>&1
rc=$?
check "trace-dat.sh failing command: status 5 propagated (got $rc)" [ "$rc" = 5 ]
same_state "trace-dat.sh failing command" "$before"
cmd=$(long_command td-int)
run_interrupted INT "$cmd.started" "$CAP/trace-dat.sh" -s -o "$WORK/td-int" -- "$cmd"
check "trace-dat.sh SIGINT: status 130 (got $IRC), trace.dat written" [ "$IRC" = 130 -a -s "$WORK/td-int/trace.dat" ]
same_state "trace-dat.sh SIGINT" "$before"

# --- trace-dat.sh with entries left in the top-level buffer: an instance capture must neither
# extract nor consume them (trace-cmd 3.1 extract -B also extracts, consumes and clears the top
# level). Markers are written only into an empty top-level buffer, and consumed again afterwards;
# entries someone else left there are used as they are, and left alone.
tag="pagehint-test-top-marker-$$"
nmark=0
if [ "$(cat "$TRACEFS/tracing_on")" = 1 ] && [ "$(top_entries)" = 0 ]; then
    for i in 1 2 3; do echo "$tag $i" > "$TRACEFS/trace_marker"; done
    nmark=3
fi
ntop=$(top_entries)
"$CAP/trace-dat.sh" -q --pid-filter -b 4096 --instance "pagehint-test-$$" -o "$WORK/td-top" -- sh -c 'cat /etc/services > /dev/null' > /dev/null 2>&1
rc=$?
check "trace-dat.sh --instance, $ntop entries in the top-level buffer ($nmark our markers): status 0 (got $rc)" [ "$rc" = 0 ]
count_records < "$WORK/td-top/trace.txt" > "$WORK/top.txt"
trace-cmd report -i "$WORK/td-top/trace.dat" 2>/dev/null > "$WORK/top.report"
count_records < "$WORK/top.report" > "$WORK/top.dat"
if [ -s "$WORK/top.txt" ] && diff "$WORK/top.txt" "$WORK/top.dat" > /dev/null && ! grep -q "$tag" "$WORK/top.report"; then
    ok "trace-dat.sh --instance: trace.dat holds only the instance's records ($(total "$WORK/top.txt"))"
else
    bad "trace-dat.sh --instance: trace.dat holds other records than the instance's trace.txt ($(grep -c "$tag" "$WORK/top.report") top-level markers):"
    diff "$WORK/top.txt" "$WORK/top.dat" | sed 's/^/      /'
fi
nafter=$(top_entries)
check "trace-dat.sh --instance: top-level buffer not consumed ($ntop entries before, $nafter after)" [ "$nafter" -ge "$ntop" ]
if [ "$nmark" -gt 0 ]; then
    nleft=$(grep -c "$tag" "$TRACEFS/trace")
    check "trace-dat.sh --instance: the $nmark top-level markers are still there ($nleft)" [ "$nleft" = "$nmark" ]
    # consume them: the buffer held nothing else
    timeout 2 cat "$TRACEFS/trace_pipe" > /dev/null 2>&1
    check "top-level markers consumed again (buffer empty as found: $(top_entries) entries)" [ "$(top_entries)" = 0 ]
fi
check "trace-dat.sh --instance: meta.json records the top-level isolation and entries" \
    grep -Eq '"top_level_isolation": "(mount-namespace|trace-cmd-B)", "top_level_entries": \{"before_extract": [0-9]+, "after_extract": [0-9]+\}' "$WORK/td-top/meta.json"
same_state "trace-dat.sh with top-level entries" "$before"

# --- trace-dat.sh --global: trace-cmd extract consumes the whole top-level buffer, so it runs only
# on an empty one, which it leaves empty; entries found there make it refuse, and stay untouched.
# Only when the buffer holds nothing of someone else's (these checks write into it).
if [ "$(top_entries)" = 0 ]; then
    "$CAP/trace-dat.sh" -q -s --pid-filter -b 4096 --global -o "$WORK/td-global" -- sh -c 'cat /etc/services > /dev/null' > /dev/null 2>&1
    rc=$?
    check "trace-dat.sh --global: status 0 (got $rc)" [ "$rc" = 0 ]
    if count_both "$WORK/td-global" "$WORK/g"; then
        ok "trace-dat.sh --global: trace.txt and trace.dat hold the same records ($(total "$WORK/g.txt"))"
    else
        bad "trace-dat.sh --global: trace.txt and trace.dat differ:"; diff "$WORK/g.txt" "$WORK/g.dat" | sed 's/^/      /'
    fi
    check "trace-dat.sh --global: meta.json records global_buffer_entries_before 0" grep -q '"global_buffer_entries_before": 0,' "$WORK/td-global/meta.json"
    same_state "trace-dat.sh --global (top-level buffer empty again: $(top_entries) entries)" "$before"
    if [ "$(cat "$TRACEFS/tracing_on")" = 1 ]; then
        for i in 1 2 3; do echo "$tag $i" > "$TRACEFS/trace_marker"; done
        snapshot > "$WORK/before-g"
        err=$("$CAP/trace-dat.sh" -q --global -o "$WORK/td-global-refused" -- true 2>&1 > /dev/null); rc=$?
        check "trace-dat.sh --global with 3 entries found: refused, status 2 (got $rc)" [ "$rc" = 2 -a -n "$(echo "$err" | grep 'would consume them')" ]
        check "trace-dat.sh --global with 3 entries found: they are untouched" [ "$(grep -c "$tag" "$TRACEFS/trace")" = 3 ]
        same_state "trace-dat.sh --global refused" "$WORK/before-g"
        : > "$TRACEFS/trace"
        check "top-level markers cleared again ($(top_entries) entries)" [ "$(top_entries)" = 0 ]
    fi
else
    echo "skipped: trace-dat.sh --global checks (the top-level ring buffer holds $(top_entries) entries of someone else's)"
fi

# --- perf.sh
if command -v perf > /dev/null 2>&1; then
    "$CAP/perf.sh" -q --pid-filter -z --script --memcg-limit 32M -o "$WORK/pf" -- sh -c 'cat /etc/services > /dev/null' > /dev/null 2>&1
    rc=$?
    check "perf.sh normal run: status 0 (got $rc)" [ "$rc" = 0 ]
    check "perf.sh: perf.data, perf.script.txt, kallsyms, memory.stat present" \
        [ -s "$WORK/pf/perf.data" -a -s "$WORK/pf/perf.script.txt" -a -s "$WORK/pf/kallsyms" -a -s "$WORK/pf/memory.stat" ]
    n1=$(perf script -i "$WORK/pf/perf.data" -F event 2>/dev/null | wc -l)
    n2=$(grep -c '^[^[:space:]]' "$WORK/pf/perf.script.txt")
    check "perf.sh: perf.script.txt has every sample ($n1 = $n2)" [ "$n1" -gt 0 -a "$n1" = "$n2" ]
    same_state "perf.sh normal run" "$before"
    "$CAP/perf.sh" -q --pid-filter -o "$WORK/pf-fail" -- sh -c 'exit 6' > /dev/null 2>&1
    rc=$?
    check "perf.sh failing command: status 6 propagated (got $rc)" [ "$rc" = 6 ]
    cmd=$(long_command pf-int)
    run_interrupted INT "$cmd.started" "$CAP/perf.sh" --pid-filter -o "$WORK/pf-int" -- "$cmd"
    check "perf.sh SIGINT: status 130 (got $IRC), perf.data written" [ "$IRC" = 130 -a -s "$WORK/pf-int/perf.data" ]
    same_state "perf.sh SIGINT" "$before"
else
    echo "skipped: perf.sh checks (no perf)"
fi

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
