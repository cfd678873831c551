#!/usr/bin/env bash
# make bench: pagehint against the reference tools on the same files, in the same run.
# Usage: tools/bench/bench.sh PAGEHINT_BINARY [TRACES_DIR]
# Prints one line per measurement and the speed ratios. Times are the best of RUNS runs (default 5),
# pinned to one core (taskset -c 0). Each command is timed twice over: wall-clock time, and CPU time
# (user + system, from `perf stat -e task-clock`, when perf is there). On a busy machine wall times
# swing with the other load; CPU times much less, so both ratios are printed. Inputs larger than the
# shipped traces are made by concatenating copies of a real tracefs text trace (every line is a real
# event).
set -euo pipefail
BIN=$(readlink -f "${1:?usage: bench.sh PAGEHINT_BINARY [TRACES_DIR]}")
TRACES=${2:-traces}
WORK=$(mktemp -d /var/tmp/pagehint-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=""

RUNS=${RUNS:-5}
PERFSTAT=""
if command -v perf >/dev/null && perf stat -x, -e task-clock -o /dev/null true >/dev/null 2>&1; then PERFSTAT=1; fi

now() { date +%s.%N; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
# best() runs "$@" (stdout discarded) RUNS times for the wall time, then RUNS times under perf stat for
# the CPU time; prints "WALL CPU" in seconds (CPU is "-" without perf).
best() {
    local b="" c="" s e t
    for ((i = 0; i < RUNS; i++)); do
        s=$(now); "$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; return 1; }; e=$(now)
        b=$(min "$b" "$(echo "$e - $s" | bc -l)")
    done
    if [ -n "$PERFSTAT" ]; then
        for ((i = 0; i < RUNS; i++)); do
            perf stat -x, -e task-clock -o "$WORK/perfstat" -- "$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; return 1; }
            t=$(awk -F, '$3 ~ /task-clock/ { printf "%.6f", $1 / 1000 }' "$WORK/perfstat")
            [ -n "$t" ] && c=$(min "$c" "$t")
        done
    fi
    printf '%.4f %s' "$b" "${c:+$(printf %.4f "$c")}"
    [ -n "$c" ] || printf -- '-'
}
ratio() { printf '%.1f' "$(echo "$1 / $2" | bc -l)"; }
# "pagehint WALLs (cpu CPUs), REF WALLs (cpu CPUs): Nx faster (cpu: Mx)" from two best() results
compare() {
    local pw pc rw rc
    read -r pw pc <<<"$1"; read -r rw rc <<<"$3"
    if [ "$pc" != - ] && [ "$rc" != - ]; then
        echo "pagehint $2 ${pw}s (cpu ${pc}s), $4 ${rw}s (cpu ${rc}s): $(ratio "$rw" "$pw")x faster wall, $(ratio "$rc" "$pc")x cpu"
    else
        echo "pagehint $2 ${pw}s, $4 ${rw}s: $(ratio "$rw" "$pw")x faster"
    fi
}
records() { "$BIN" stat --quiet --json "$@" | sed -n 's/.*"records":\([0-9]*\).*/\1/p'; }

largest() { ls -S $1 2>/dev/null | head -1; }

echo "pagehint bench — $(uname -r), $(nproc) cpus, $(date -u +%Y-%m-%dT%H:%MZ), best of $RUNS runs"
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if [ "$(echo "$load > 0.5" | bc -l)" = 1 ]; then
    echo "note: load average $load before the run — other work shares the machine; wall times are inflated, the cpu ratios are steadier"
fi
echo "startup     pagehint --version: $(best $PIN "$BIN" --version | awk '{ print $1 "s" ($2 != "-" ? " (cpu " $2 "s)" : "") }')"

# 1. trace.dat: pagehint stat vs trace-cmd report
dat=$(largest "$TRACES/*/trace.dat")
if [ -n "$dat" ] && command -v trace-cmd >/dev/null; then
    n=$(records "$dat")
    tp=$(best $PIN "$BIN" stat --quiet "$dat")
    tr=$(best $PIN trace-cmd report "$dat")
    echo "trace.dat   $dat: $n records; $(compare "$tp" stat "$tr" "trace-cmd report") (target >= 10x)"
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
    # kallsyms: in the bundle, or shared between bundles and named by meta.json ("kallsyms": {"file", "shared"},
    # relative to the bundle directory unless absolute).
    ks=""
    for c in "$d/kallsyms" "$d/kallsyms.zst"; do [ -f "$c" ] && { ks=$c; break; }; done
    if [ -z "$ks" ] && [ -f "$d/meta.json" ] && command -v jq >/dev/null; then
        for key in file shared; do
            rel=$(jq -r ".kallsyms.$key // empty" "$d/meta.json" 2>/dev/null || true)
            [ -n "$rel" ] || continue
            case "$rel" in /*) c=$rel ;; *) c="$d/$rel" ;; esac
            [ -f "$c" ] && { ks=$c; break; }
        done
    fi
    k="$WORK/kallsyms"
    case "$ks" in
        "") k="" ;;
        *.zst) zstd -q -d -f "$ks" -o "$k" ;;
        *) cp "$ks" "$k" ;;
    esac
    [ -n "$k" ] || echo "bench: no kallsyms for $pd: perf script would symbolise with this machine's kernel" >&2
    kp=(); kr=(); [ -n "$k" ] && { kp=(--kallsyms "$k"); kr=(--kallsyms="$k"); }
    n=$(records "$plain" "${kp[@]}")
    tp=$(best $PIN "$BIN" stat --quiet "$plain" "${kp[@]}")
    tr=$(best $PIN perf script -i "$plain" "${kr[@]}")
    echo "perf.data   $pd: $n samples${k:+, with the bundle kallsyms}; $(compare "$tp" stat "$tr" "perf script") (target >= 20x)"
fi

# 3. tracefs text throughput (one core), on >= 256 MB of real event lines
txt=$(largest "$TRACES/*/trace.txt.zst")
if [ -n "$txt" ]; then
    zstd -q -d -c "$txt" > "$WORK/one.txt"
    : > "$WORK/big.txt"
    while [ "$(stat -c %s "$WORK/big.txt")" -lt $((256 << 20)) ]; do cat "$WORK/one.txt" >> "$WORK/big.txt"; done
    mb=$(echo "$(stat -c %s "$WORK/big.txt") / 1000000" | bc -l)
    n=$(records "$WORK/big.txt")
    read -r tp tc <<<"$(RUNS=3 best $PIN "$BIN" stat --quiet "$WORK/big.txt")"
    echo "text        $(printf %.0f "$mb") MB, $n events: $(printf %.0f "$(echo "$mb / $tp" | bc -l)") MB/s on one core (target >= 200 MB/s); $(printf %.2f "$(echo "$n / $tp / 1000000" | bc -l)") M events/s"
    # 4. import into SQLite (best of 3 wall times; the database is written afresh each time), from the
    # text above and from every shipped trace.dat in one database. The import runs two threads (the
    # reader, and one that only inserts into SQLite), so it is not pinned to one core. "read" is the
    # same input through `pagehint stat` (best of 3, no database, pinned); the rest of the import's
    # time is what SQLite adds beyond the read. Peak RSS of the import on one copy of the text and on
    # all of it: memory must not grow with the input.
    imp() {
        local b="" s e
        for _ in 1 2 3; do
            rm -f "$WORK/imp.sqlite"
            s=$(now); "$BIN" import --quiet "$@" --db "$WORK/imp.sqlite" 2>/dev/null || { echo "bench: import failed: $*" >&2; return 1; }; e=$(now)
            b=$(min "$b" "$(echo "$e - $s" | bc -l)")
        done
        echo "$b"
    }
    # statall FILE...: best of 3 wall times of `pagehint stat` over every file, one after the other
    statall() {
        local b="" s e f
        for _ in 1 2 3; do
            s=$(now); for f in "$@"; do $PIN "$BIN" stat --quiet "$f" >/dev/null 2>&1; done; e=$(now)
            b=$(min "$b" "$(echo "$e - $s" | bc -l)")
        done
        echo "$b"
    }
    readsql() { printf 'read %.2fs + SQLite %.2fs' "$2" "$(echo "$1 - $2" | bc -l)"; }
    t=$(imp "$WORK/big.txt")
    echo "import      $n events of text into SQLite in $(printf %.2f "$t")s on 2 threads (not pinned): $(printf %.2f "$(echo "$n / $t / 1000000" | bc -l)") M events/s (target >= 1 M/s); $(readsql "$t" "$tp")"
    dats=$(ls $TRACES/*/trace.dat 2>/dev/null | tr '\n' ' ')
    if [ -n "$dats" ]; then
        nd=0; for f in $dats; do nd=$((nd + $(records "$f"))); done
        t=$(imp $dats)
        td=$(statall $dats)
        echo "import      $nd events of $(echo $dats | wc -w) trace.dat files into SQLite in $(printf %.2f "$t")s on 2 threads (not pinned): $(printf %.2f "$(echo "$nd / $t / 1000000" | bc -l)") M events/s; $(readsql "$t" "$td")"
    fi
    impmem() { rm -f "$WORK/imp.sqlite"; /usr/bin/time -f %M -o "$WORK/imp.rss" "$BIN" import --quiet "$1" --db "$WORK/imp.sqlite" >/dev/null 2>&1; tail -1 "$WORK/imp.rss"; }
    m1=$(impmem "$WORK/one.txt"); mb=$(impmem "$WORK/big.txt")
    echo "import      peak RSS: $((m1 / 1024)) MB on $(( $(stat -c %s "$WORK/one.txt") >> 20 )) MB of text, $((mb / 1024)) MB on $(( $(stat -c %s "$WORK/big.txt") >> 20 )) MB"
    rm -f "$WORK/imp.sqlite" "$WORK/imp.rss"
    # 5. peak memory as input grows: 256 MB and 1 GB of text
    r1=$( { /usr/bin/time -f %M "$BIN" stat --quiet "$WORK/big.txt" >/dev/null; } 2>&1 | tail -1)
    for _ in 1 2 3; do cat "$WORK/big.txt"; done >> "$WORK/huge.txt"; cat "$WORK/big.txt" >> "$WORK/huge.txt"
    r4=$( { /usr/bin/time -f %M "$BIN" stat --quiet "$WORK/huge.txt" >/dev/null; } 2>&1 | tail -1)
    echo "memory      peak RSS: $((r1 / 1024)) MB on $(( $(stat -c %s "$WORK/big.txt") >> 20 )) MB of text, $((r4 / 1024)) MB on $(( $(stat -c %s "$WORK/huge.txt") >> 20 )) MB (target < 200 MB on 1 GB)"
fi

# 6. replay throughput: the replay loop alone on events held in memory (decoding is section 1-3), one
# core, G09 with default policies, no host budget (no first pass). Large folios make one event many
# 4 KiB pages of work: both rates are printed. "bytes per tracked frame" is the resident memory of the
# frames (mincore; with a host budget, the host LRU links too), the pfn index's slots, the page-cache index's memory (its blocks and block map, as
# allocated), the most the per-process mappings held at once and the deferred tails' bookkeeping (a bit per
# frame, the deferred heads), divided by the frames tracked; "bytes per file" is what the model keeps per file (file ids and
# keys, inode → file, the page-cache index's file entries), its first tables included.
# The last line sums up the 20 M events/s target over every input: each rate is 1 / (hook steps per event x
# time per step), both printed per input. A replay of a shipped trace lasts 0.3 to 4 ms, so each rate is the
# best of REPLAYS (default 40) replays and of REPLAY_SECONDS (default 3) seconds of replays, with their median:
# on a shared machine the speed of one process swings by up to half for a second or more at a time (one
# binary, 40 replays per process, k6.18-seq-reread: 13.3-14.5 or 19.5-20.5 M events/s, process by process).
REPLAYS=${REPLAYS:-40}
REPLAY_SECONDS=${REPLAY_SECONDS:-3}
met=(); below=(); mmet=(); mover=(); medmet=0; medall=0
verdict() { # NAME OUTPUT
    local r m; r=$(sed -n 's/.*: \([0-9.]*\) M events\/s.*/\1/p' <<<"$2")
    [ -n "$r" ] || { below+=("$1 (failed)"); return 0; }
    if [ "$(echo "$r >= 20" | bc -l)" = 1 ]; then met+=("$1 $r"); else below+=("$1 $r"); fi
    m=$(sed -n 's/.*(median of [0-9]* replays \([0-9.]*\);.*/\1/p' <<<"$2")
    if [ -n "$m" ]; then
        medall=$((medall + 1))
        if [ "$(echo "$m >= 20" | bc -l)" = 1 ]; then medmet=$((medmet + 1)); fi
    fi
}
# memverdict NAME OUTPUT: the memory target, on a replay under a host budget (its LRU links included)
memverdict() {
    local m; m=$(sed -n 's/.* \([0-9.]*\) bytes per tracked frame.*/\1/p' <<<"$2")
    [ -n "$m" ] || { mover+=("$1 (failed)"); return 0; }
    if [ "$(echo "$m <= 64" | bc -l)" = 1 ]; then mmet+=("$1 $m"); else mover+=("$1 $m"); fi
}
for b in $(ls -d "$TRACES"/k6.*-*/ 2>/dev/null | grep -v -- -perf/); do
    out=$($PIN "$BIN" bench-replay "$b" --repeat "$REPLAYS" --min-seconds "$REPLAY_SECONDS" 2>/dev/null | tail -1 || true)
    echo "replay      $(basename "$b"): $out"
    verdict "$(basename "$b")" "$out"
    # Memory with a host budget (the default replay has one: 60% of the frames touched), whose LRU links
    # are 8 bytes per frame: 39 MiB is about that on the larger 6.18 traces; any budget keeps the links.
    mem=$("$BIN" bench-replay "$b" --repeat 1 --host-budget 39MiB 2>/dev/null | tail -1 || true)
    memverdict "$(basename "$b")" "$mem"
done
if [ -s "$WORK/big.txt" ]; then
    out=$($PIN "$BIN" bench-replay "$WORK/big.txt" --repeat 3 --min-seconds "$REPLAY_SECONDS" 2>/dev/null | tail -1)
    echo "replay      $(( $(stat -c %s "$WORK/big.txt") >> 20 )) MB text: $out (target >= 20 M events/s)"
    verdict "$(( $(stat -c %s "$WORK/big.txt") >> 20 ))-MB-text" "$out"
fi
commas() { local IFS=,; echo "$*" | sed 's/,/, /g'; }
echo "replay      target >= 20 M events/s (G09, defaults, one core; best replay): met on ${#met[@]} of $(( ${#met[@]} + ${#below[@]} )) inputs${met:+ ($(commas "${met[@]}"))}${below:+; below it: $(commas "${below[@]}")}; by the median replay, met on $medmet of $medall"
echo "memory      target <= 64 bytes per tracked frame (frames, pfn index, page-cache index, mappings, deferred tails' bits, host LRU links under a 39 MiB host budget; per-file tables apart, printed as bytes per file): met on ${#mmet[@]} of $(( ${#mmet[@]} + ${#mover[@]} )) inputs${mover:+; above it: $(commas "${mover[@]}")}"
# Folio batching on the 6.18 traces (large folios): without it, and under a host budget of 40 MiB (about
# 60% of the frames these traces touch: the host evicts), with and without it.
for b in $(ls -d "$TRACES"/k6.18-*-*/ 2>/dev/null | grep -v -- -perf/); do
    off=$($PIN "$BIN" bench-replay "$b" --repeat "$REPLAYS" --no-folio-batching 2>/dev/null | tail -1 | sed 's/ M events\/s.*/ M events\/s/; s/.*: //' || true)
    bon=$($PIN "$BIN" bench-replay "$b" --repeat "$REPLAYS" --host-budget 40MiB 2>/dev/null | tail -1 | sed 's/ M events\/s.*/ M events\/s/; s/.*: //' || true)
    boff=$($PIN "$BIN" bench-replay "$b" --repeat "$REPLAYS" --host-budget 40MiB --no-folio-batching 2>/dev/null | tail -1 | sed 's/ M events\/s.*/ M events\/s/; s/.*: //' || true)
    echo "replay      $(basename "$b"): one step per page $off; host budget 40 MiB: $bon batched, $boff one step per page"
done
fb=$("$BIN" replay "$(ls -d "$TRACES"/k6.18-*/ | head -1)" --host-budget unlimited --json --quiet 2>/dev/null | sed -n 's/.*"frame_bytes":\([0-9]*\).*/\1/p')
echo "model       $fb bytes of frame state per tracked frame (target <= 64 per tracked frame, indices included: see the replay lines), plus at most 5.7 to 11.4 bytes of pfn index (a hash table of 4-byte slots, 35-70% full; a large folio's pages take one slot per 16) and about 4 bytes of page-cache index per cached page of a file with more than one (a file with one page keeps it in its own entry)"
