#!/bin/bash
# tools/tests/test-ftrace-restore.sh — ftrace.sh must leave tracefs (tracing_on, set_event,
# buffer_size_kb, trace_options, set_event_pid, current_tracer, instances) and the memory-cgroup
# hierarchy exactly as it found them: after a normal run, after a failing command (whose exit
# status is propagated) and after SIGINT / SIGTERM in the middle of a capture. Each case runs in
# the default instance mode and with --global, from the found state and from a deliberately
# unusual one. The original state is put back at the end.
# Prints "N passed, N failed"; exit status 1 on failure; skips (exit 0) without root/tracefs.
set -u
. "$(dirname "$0")/state-lib.sh"
skip_unless_capable
FT=$REPO/tools/capture/ftrace.sh
WORK=$(mktemp -d)
save_original
trap 'restore_original; rm -rf "$WORK"' EXIT

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
}

echo "# from the state found"
run_cases found
run_cases found-global --global
echo "# from an unusual top-level state (tracing off, event/pid filter set, extra options, 1500 KiB buffer)"
set_unusual_state
run_cases unusual
run_cases unusual-global --global
restore_original

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
