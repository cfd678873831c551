#!/usr/bin/env bash
# make bench: pagehint against the reference tools on the same files, in the same run.
# Usage: tools/bench/bench.sh PAGEHINT_BINARY [TRACES_DIR]
# Prints one line per measurement and the speed ratios. Times are the best of 3 runs, one core
# (taskset -c 0) for the single-core figures. Inputs larger than the shipped traces are made by
# concatenating copies of a real tracefs text trace (every line is a real event).
set -euo pipefail
BIN=$(readlink -f "${1:?usage: bench.sh PAGEHINT_BINARY [TRACES_DIR]}")
TRACES=${2:-traces}
WORK=$(mktemp -d /var/tmp/pagehint-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=""

now() { date +%s.%N; }
# best wall time of 3 runs of "$@" (stdout discarded)
best() {
    local b="" s e t
    for _ in 1 2 3; do
        s=$(now); "$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; return 1; }; e=$(now)
        t=$(echo "$e - $s" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    printf '%.4f' "$b"
}
ratio() { printf '%.1f' "$(echo "$1 / $2" | bc -l)"; }
records() { "$BIN" stat --quiet --json "$@" | sed -n 's/.*"records":\([0-9]*\).*/\1/p'; }

largest() { ls -S $1 2>/dev/null | head -1; }

echo "pagehint bench — $(uname -r), $(nproc) cpus, $(date -u +%Y-%m-%dT%H:%MZ)"

# 1. trace.dat: pagehint stat vs trace-cmd report
dat=$(largest "$TRACES/*/trace.dat")
if [ -n "$dat" ] && command -v trace-cmd >/dev/null; then
    n=$(records "$dat")
    tp=$(best $PIN "$BIN" stat --quiet "$dat")
    tr=$(best $PIN trace-cmd report "$dat")
    echo "trace.dat   $dat: $n records; pagehint stat ${tp}s, trace-cmd report ${tr}s: $(ratio "$tr" "$tp")x faster (target >= 10x)"
    # Several copies in one file are not possible for trace.dat; also time the whole corpus in one go.
    all=$(ls $TRACES/*/trace.dat | tr '\n' ' ')
    s=$(now); for f in $all; do $PIN "$BIN" stat --quiet "$f" >/dev/null; done; e=$(now); tpa=$(echo "$e - $s" | bc -l)
    s=$(now); for f in $all; do $PIN trace-cmd report "$f" >/dev/null 2>&1; done; e=$(now); tra=$(echo "$e - $s" | bc -l)
    echo "trace.dat   all $(echo $all | wc -w) files: pagehint $(printf %.3f $tpa)s, trace-cmd report $(printf %.3f $tra)s: $(ratio "$tra" "$tpa")x"
fi

# 2. perf.data: pagehint stat vs perf script
pd=$(largest "$TRACES/*/perf.data*")
if [ -n "$pd" ] && command -v perf >/dev/null; then
    d=$(dirname "$pd"); plain="$WORK/perf.data"
    case "$pd" in *.zst) zstd -q -d -f "$pd" -o "$plain" ;; *) cp "$pd" "$plain" ;; esac
    k="$WORK/kallsyms"
    if [ -f "$d/kallsyms.zst" ]; then zstd -q -d -f "$d/kallsyms.zst" -o "$k"; elif [ -f "$d/kallsyms" ]; then cp "$d/kallsyms" "$k"; else k=""; fi
    kp=(); kr=(); [ -n "$k" ] && { kp=(--kallsyms "$k"); kr=(--kallsyms="$k"); }
    n=$(records "$plain" "${kp[@]}")
    tp=$(best $PIN "$BIN" stat --quiet "$plain" "${kp[@]}")
    tr=$(best $PIN perf script -i "$plain" "${kr[@]}")
    echo "perf.data   $pd: $n samples; pagehint stat ${tp}s, perf script ${tr}s: $(ratio "$tr" "$tp")x faster (target >= 20x)"
fi

# 3. tracefs text throughput (one core), on >= 256 MB of real event lines
txt=$(largest "$TRACES/*/trace.txt.zst")
if [ -n "$txt" ]; then
    zstd -q -d -c "$txt" > "$WORK/one.txt"
    : > "$WORK/big.txt"
    while [ "$(stat -c %s "$WORK/big.txt")" -lt $((256 << 20)) ]; do cat "$WORK/one.txt" >> "$WORK/big.txt"; done
    mb=$(echo "$(stat -c %s "$WORK/big.txt") / 1000000" | bc -l)
    n=$(records "$WORK/big.txt")
    tp=$(best $PIN "$BIN" stat --quiet "$WORK/big.txt")
    echo "text        $(printf %.0f "$mb") MB, $n events: $(printf %.0f "$(echo "$mb / $tp" | bc -l)") MB/s on one core (target >= 200 MB/s); $(printf %.2f "$(echo "$n / $tp / 1000000" | bc -l)") M events/s"
    # 4. import into SQLite
    s=$(now); $PIN "$BIN" import --quiet "$WORK/big.txt" --db "$WORK/big.sqlite" 2>/dev/null; e=$(now)
    t=$(echo "$e - $s" | bc -l)
    echo "import      $n events into SQLite in $(printf %.2f "$t")s: $(printf %.2f "$(echo "$n / $t / 1000000" | bc -l)") M events/s (target >= 1 M/s)"
    # 5. peak memory as input grows: 256 MB and 1 GB of text
    r1=$( { /usr/bin/time -f %M "$BIN" stat --quiet "$WORK/big.txt" >/dev/null; } 2>&1 | tail -1)
    for _ in 1 2 3; do cat "$WORK/big.txt"; done >> "$WORK/huge.txt"; cat "$WORK/big.txt" >> "$WORK/huge.txt"
    r4=$( { /usr/bin/time -f %M "$BIN" stat --quiet "$WORK/huge.txt" >/dev/null; } 2>&1 | tail -1)
    echo "memory      peak RSS: $((r1 / 1024)) MB on $(( $(stat -c %s "$WORK/big.txt") >> 20 )) MB of text, $((r4 / 1024)) MB on $(( $(stat -c %s "$WORK/huge.txt") >> 20 )) MB (target < 200 MB on 1 GB)"
fi
