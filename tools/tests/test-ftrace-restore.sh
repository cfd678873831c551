#!/bin/bash
# tools/tests/test-ftrace-restore.sh — ftrace.sh must leave tracefs (tracing_on, set_event,
# buffer_size_kb, trace_options, set_event_pid, current_tracer, instances, the number of entries in
# the top-level ring buffer) and the memory-cgroup hierarchy exactly as it found them: after a
# normal run, after a failing command (whose exit status is propagated), after an error once the
# capture has ended, and after SIGINT / SIGTERM in the middle of a capture. Each case runs in the
# default instance mode and with --global, from the found state and from a deliberately unusual
# one. With --global, entries found in the top-level buffer are kept (warning, meta.json), and
# --stream refuses to consume them. The original state is put back at the end.
# Prints "N passed, N failed"; exit status 1 on failure; skips (exit 0) without root/tracefs.
set -u
. "$(dirname "$0")/state-lib.sh"
skip_unless_capable
FT=$REPO/tools/capture/ftrace.sh
WORK=$(mktemp -d)
save_original
trap 'restore_original; rm -rf "$WORK"' EXIT
# a zstd that fails: ftrace.sh --zstd then dies after the capture, with its entries in the buffer
mkdir -p "$WORK/failbin"
printf '#!/bin/sh\necho "zstd: simulated failure" >&2\nexit 1\n' > "$WORK/failbin/zstd"
chmod +x "$WORK/failbin/zstd"

run_cases() { # label, extra ftrace.sh options...
    local label=$1; shift
    local before=$WORK/before rc
    snapshot > "$before"

    "$FT" -q -s --pid-filter "$@" -o "$WORK/$label-ok" -- sh -c 'cat /etc/passwd > /dev/null' > /dev/null 2>&1
    rc=$?
    check "$label normal run: exit status 0 (got $rc)" [ "$rc" = 0 ]
    check "$label normal run: bundle has trace.txt and meta.json" [ -s "$WORK/$label-ok/trace.txt" -a -s "$WORK/$label-ok/meta.json" ]
    same_state "$label normal run" "$before"

    "$FT" -q "$@" -o "$WORK/$label-fail" -- sh -c 'exit 7' > /dev/null 2>&1
    rc=$?
    check "$label failing command: exit status 7 propagated (got $rc)" [ "$rc" = 7 ]
    check "$label failing command: meta.json records status 7" grep -q '"workload_exit_status": 7' "$WORK/$label-fail/meta.json"
    same_state "$label failing command" "$before"

    "$FT" -q "$@" --memcg-limit 32M -o "$WORK/$label-memcg" -- sh -c 'cat /etc/passwd > /dev/null' > /dev/null 2>&1
    rc=$?
    check "$label memcg run: exit status 0 (got $rc), memory.stat saved" [ "$rc" = 0 -a -s "$WORK/$label-memcg/memory.stat" ]
    same_state "$label memcg run" "$before"

    PATH="$WORK/failbin:$PATH" "$FT" -q -s "$@" --zstd -o "$WORK/$label-err" -- sh -c 'cat /etc/passwd > /dev/null' > /dev/null 2> "$WORK/$label-err.stderr"
    rc=$?
    check "$label error after the capture (zstd fails): exit status 2 (got $rc), error reported" \
        [ "$rc" = 2 -a -n "$(grep '^ftrace.sh: error: zstd failed' "$WORK/$label-err.stderr")" ]
    same_state "$label error after the capture" "$before"

    local cmd
    cmd=$(long_command "long-$label-int")
    run_interrupted INT "$cmd.started" "$FT" -s --pid-filter "$@" -o "$WORK/$label-int" -- "$cmd"
    check "$label SIGINT: exit status 130 (got $IRC)" [ "$IRC" = 130 ]
    check "$label SIGINT: partial bundle says interrupted_by SIGINT" grep -q '"interrupted_by": "SIGINT"' "$WORK/$label-int/meta.json"
    same_state "$label SIGINT mid-capture" "$before"

    cmd=$(long_command "long-$label-term")
    run_interrupted TERM "$cmd.started" "$FT" -s --memcg-limit 32M "$@" -o "$WORK/$label-term" -- "$cmd"
    check "$label SIGTERM: exit status 143 (got $IRC)" [ "$IRC" = 143 ]
    same_state "$label SIGTERM mid-capture (with memcg)" "$before"

    local n0 n1
    n0=$(sed -n 's/^top_level_entries=//p' "$before")
    n1=$(top_entries)
    check "$label: top-level ring buffer holds as many entries as before ($n0 before, $n1 after)" [ "$n0" = "$n1" ]
    case $label in
        *-global) check "$label: meta.json records global_buffer_entries_before $n0" \
                      grep -q "\"global_buffer_entries_before\": $n0," "$WORK/$label-ok/meta.json" ;;
        *) check "$label: meta.json records global_buffer_entries_before null" \
               grep -q '"global_buffer_entries_before": null,' "$WORK/$label-ok/meta.json" ;;
    esac
}

# --global with entries someone else left in the top-level buffer (markers written here into the
# empty buffer): they are kept, with a warning, in trace.txt too; the capture's entries stay with
# them. --stream would consume them: refused, nothing changed. The buffer is emptied afterwards.
foreign_cases() {
    local before=$WORK/before-foreign tag="pagehint-test-foreign-$$" i rc n
    for i in 1 2 3; do echo "$tag $i" > "$TRACEFS/trace_marker"; done
    n=$(top_entries)
    snapshot > "$before"
    "$FT" -s --global -o "$WORK/foreign" -- sh -c 'cat /etc/passwd > /dev/null' > /dev/null 2> "$WORK/foreign.stderr"
    rc=$?
    check "global with $n entries found: exit status 0 (got $rc)" [ "$rc" = 0 ]
    check "global with $n entries found: warning says they are kept" grep -q "warning: the top-level ring buffer holds $n entries this capture did not write" "$WORK/foreign.stderr"
    check "global with $n entries found: meta.json records global_buffer_entries_before $n" grep -q "\"global_buffer_entries_before\": $n," "$WORK/foreign/meta.json"
    check "global with $n entries found: trace.txt holds them and the capture's entries" \
        [ "$(grep -c "$tag" "$WORK/foreign/trace.txt")" = 3 -a "$(grep -c 'mm_filemap\|mm_page_alloc' "$WORK/foreign/trace.txt")" -gt 0 ]
    check "global with $n entries found: they are still in the buffer ($(grep -c "$tag" "$TRACEFS/trace"))" [ "$(grep -c "$tag" "$TRACEFS/trace")" = 3 ]
    check "global with $n entries found: lost events not counted from the found counters" grep -q '"lost_events": {"total": 0,' "$WORK/foreign/meta.json"
    same_state "global with $n entries found (entries aside)" "$before" no-entries
    : > "$TRACEFS/trace"
    for i in 1 2 3; do echo "$tag $i" > "$TRACEFS/trace_marker"; done
    snapshot > "$before"
    "$FT" --global --stream -o "$WORK/foreign-stream" -- sh -c 'cat /etc/passwd > /dev/null' > /dev/null 2> "$WORK/foreign-stream.stderr"
    rc=$?
    check "global --stream with entries found: refused, exit status 2 (got $rc)" \
        [ "$rc" = 2 -a -n "$(grep 'would consume them' "$WORK/foreign-stream.stderr")" ]
    check "global --stream with entries found: they are untouched ($(grep -c "$tag" "$TRACEFS/trace"))" [ "$(grep -c "$tag" "$TRACEFS/trace")" = 3 ]
    same_state "global --stream with entries found" "$before"
    : > "$TRACEFS/trace"
}

# the --global cases write into the top-level buffer: only when it holds nothing of someone else's
global_ok=1
if [ "$ORIG_ENTRIES" != 0 ]; then
    global_ok=0
    echo "skipped: --global cases (the top-level ring buffer holds $ORIG_ENTRIES entries of someone else's)"
fi
echo "# from the state found"
run_cases found
[ "$global_ok" = 0 ] || run_cases found-global --global
if [ "$global_ok" = 1 ] && [ "$(cat "$TRACEFS/tracing_on")" = 1 ]; then
    echo "# --global with entries found in the top-level buffer"
    foreign_cases
fi
echo "# from an unusual top-level state (tracing off, event/pid filter set, extra options, 1500 KiB buffer)"
set_unusual_state
run_cases unusual
[ "$global_ok" = 0 ] || run_cases unusual-global --global
restore_original

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
