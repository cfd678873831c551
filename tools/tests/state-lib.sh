# tools/tests/state-lib.sh — shared functions of the capture-tool tests (bash). Sourced.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TRACEFS=${PAGEHINT_TRACEFS:-/sys/kernel/tracing}
MEMCG_ROOT=${PAGEHINT_MEMCG_ROOT:-/sys/fs/cgroup/memory}
PASS=0
FAIL=0

ok()   { PASS=$((PASS + 1)); echo "ok    $*"; }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL  $*"; }
check() { # description, then a command
    local d=$1; shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}

skip_unless_capable() {
    if [ "$(id -u)" != 0 ]; then echo "skipped: not root"; exit 0; fi
    if [ ! -e "$TRACEFS/tracing_on" ]; then
        mount -t tracefs nodev "$TRACEFS" 2>/dev/null || { echo "skipped: tracefs not mounted at $TRACEFS and cannot be mounted"; exit 0; }
    fi
    if ! { echo "$(cat "$TRACEFS/tracing_on")" > "$TRACEFS/tracing_on"; } 2>/dev/null; then
        echo "skipped: $TRACEFS is not writable"; exit 0
    fi
    # A top-level ring buffer the kernel has not allocated yet (after boot) reads "N (expanded: M)"; the
    # first trace into it allocates it at M KiB per CPU, for good, and it then reads M rounded to its
    # pages. A test that traces there (--global) would see that as a change of state. The tests start
    # from the allocated buffer: allocated here, at the size the kernel would give it.
    local b
    b=$(cat "$TRACEFS/buffer_size_kb")
    case $b in
        *expanded:*)
            b=$(echo "$b" | sed 's/.*expanded: *\([0-9]*\).*/\1/')
            echo "$b" > "$TRACEFS/buffer_size_kb" && echo "note: the top-level ring buffer was not allocated yet; allocated at its default $b KiB per CPU, as the first trace would"
            ;;
    esac
}

# entries in the top-level ring buffer (all CPUs)
top_entries() { awk '/^entries:/ { s += $2 } END { print s + 0 }' "$TRACEFS"/per_cpu/cpu*/stats; }

# everything the capture tools may touch, as text
snapshot() {
    local d=$TRACEFS
    echo "tracing_on=$(cat "$d/tracing_on")"
    echo "current_tracer=$(cat "$d/current_tracer")"
    echo "buffer_size_kb=$(cat "$d/buffer_size_kb")"
    echo "set_event=$(sort "$d/set_event" | tr '\n' ' ')"
    echo "set_event_pid=$(sort "$d/set_event_pid" 2>/dev/null | tr '\n' ' ')"
    echo "trace_options=$(tr '\n' ' ' < "$d/trace_options")"
    echo "instances=$(ls "$d/instances" 2>/dev/null | sort | tr '\n' ' ')"
    echo "enabled_events=$(grep -l '^1' "$d"/events/*/*/enable 2>/dev/null | wc -l)"
    echo "memcgs=$(ls -d "$MEMCG_ROOT"/pagehint-* 2>/dev/null | tr '\n' ' ')"
    echo "top_level_entries=$(top_entries)"
}

# full save of the top-level state, and its restoration (used to leave the machine as found)
save_original() {
    ORIG_ON=$(cat "$TRACEFS/tracing_on")
    ORIG_TRACER=$(cat "$TRACEFS/current_tracer")
    ORIG_BUF=$(sed 's/[^0-9].*//' "$TRACEFS/buffer_size_kb")
    ORIG_EVENTS=$(cat "$TRACEFS/set_event")
    ORIG_PIDS=$(cat "$TRACEFS/set_event_pid" 2>/dev/null)
    ORIG_STACK=$(cat "$TRACEFS/options/stacktrace")
    ORIG_FORK=$(cat "$TRACEFS/options/event-fork")
    ORIG_SYMOFF=$(cat "$TRACEFS/options/sym-offset")
    ORIG_ENTRIES=$(top_entries)
}
restore_original() {
    echo 0 > "$TRACEFS/tracing_on"
    : > "$TRACEFS/set_event"
    local e p
    for e in $ORIG_EVENTS; do echo "$e" >> "$TRACEFS/set_event"; done
    : > "$TRACEFS/set_event_pid"
    for p in $ORIG_PIDS; do echo "$p" >> "$TRACEFS/set_event_pid"; done
    echo "$ORIG_STACK" > "$TRACEFS/options/stacktrace"
    echo "$ORIG_FORK" > "$TRACEFS/options/event-fork"
    echo "$ORIG_SYMOFF" > "$TRACEFS/options/sym-offset"
    [ "$(cat "$TRACEFS/current_tracer")" = "$ORIG_TRACER" ] || echo "$ORIG_TRACER" > "$TRACEFS/current_tracer"
    [ "$(sed 's/[^0-9].*//' "$TRACEFS/buffer_size_kb")" = "$ORIG_BUF" ] || echo "$ORIG_BUF" > "$TRACEFS/buffer_size_kb"
    # a top-level buffer found empty is left empty (tests write into it, e.g. markers)
    [ "$ORIG_ENTRIES" != 0 ] || [ "$(top_entries)" = 0 ] || : > "$TRACEFS/trace"
    echo "$ORIG_ON" > "$TRACEFS/tracing_on"
    if [ -n "${UNUSUAL_PID:-}" ]; then kill "$UNUSUAL_PID" 2>/dev/null; wait "$UNUSUAL_PID" 2>/dev/null; UNUSUAL_PID=""; fi
}

# a deliberately non-default top-level state: tracing off, an event enabled, a pid filter,
# extra options, another buffer size
set_unusual_state() {
    echo 0 > "$TRACEFS/tracing_on"
    echo sched:sched_process_free > "$TRACEFS/set_event"
    # the pid filter names a process that does not fork (event-fork would add its children)
    sleep 3600 > /dev/null 2>&1 &
    UNUSUAL_PID=$!
    echo "$UNUSUAL_PID" > "$TRACEFS/set_event_pid"
    echo 1 > "$TRACEFS/options/event-fork"
    echo 1 > "$TRACEFS/options/sym-offset"
    echo 1 > "$TRACEFS/options/stacktrace"
    echo 1500 > "$TRACEFS/buffer_size_kb"
}

# same_state LABEL BEFORE-FILE [no-entries] — with no-entries, the top-level entry count may differ
same_state() {
    local now before=$2
    now=$(mktemp)
    snapshot > "$now"
    if [ "${3:-}" = no-entries ]; then
        grep -v '^top_level_entries=' "$2" > "$now.before"; before=$now.before
        grep -v '^top_level_entries=' "$now" > "$now.tmp"; mv "$now.tmp" "$now"
    fi
    if diff -u "$before" "$now" > "$now.diff"; then
        ok "$1: tracefs and memcg state unchanged"
    else
        bad "$1: state differs:"; sed 's/^/      /' "$now.diff"
    fi
    rm -f "$now" "$now.diff" "$now.before"
}

# run_interrupted SIGNAL FLAGFILE TOOL ARGS... : start the tool in its own process group (so that
# SIGINT is not ignored), wait until the traced command has created FLAGFILE, send SIGNAL to the
# tool, and leave the tool's exit status in IRC
run_interrupted() {
    local sig=$1 marker=$2; shift 2
    set -m
    "$@" > "$WORK/int.out" 2> "$WORK/int.err" &
    local pid=$!
    set +m
    local i=0
    while [ $i -lt 100 ] && [ ! -e "$marker" ]; do sleep 0.1; i=$((i + 1)); done
    sleep 0.5
    kill -s "$sig" "$pid"
    wait "$pid"
    IRC=$?
}

# a long-running command that creates $WORK/bin/NAME.started when it runs: prints its path
long_command() { # name
    mkdir -p "$WORK/bin"
    printf '#!/bin/sh\ntouch "$0.started"\nexec sleep 30\n' > "$WORK/bin/$1"
    chmod +x "$WORK/bin/$1"
    echo "$WORK/bin/$1"
}
