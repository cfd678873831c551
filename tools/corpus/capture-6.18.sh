#!/bin/sh
# tools/corpus/capture-6.18.sh — reproduce the kernel-6.18 trace corpus in traces/: the five
# standard workloads captured with kernel stacks, restricted to the workload's process tree
# (memcg-reclaim inside a 64 MiB cgroup-v1 memory cgroup), each as tracefs text + trace.dat v7
# of the same capture; trace.dat v6 and trace-cmd report text for write-fsync; perf.data (+ perf
# script text) for memcg-reclaim (perf record -z) and mmap-random. One kallsyms.zst is shared by
# all bundles (they were captured in one boot; meta.json records its sha256).
# small-files is the cross-kernel pair of k6.1-small-files: the guest's parameters and its
# userland, static busybox (workload option --busybox, run phase started as `busybox sh SCRIPT`
# so that no host shell or GNU tool is traced).
# Only the workloads' run phase is captured; prepare (data creation, sync, drop_caches) and
# clean happen outside the capture. Needs root; run from anywhere.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/traces
DATA=/var/tmp/pagehint-corpus-data
FORCE=0
usage() {
    cat <<USAGE
Usage: capture-6.18.sh [--out DIR] [--data DIR] [--force]

  --out DIR    corpus directory (default: REPO/traces); existing k6.18-* bundles are replaced
  --data DIR   scratch directory for workload data, on a disk filesystem
               (default: /var/tmp/pagehint-corpus-data; removed afterwards)
  --force      run even when the kernel release is not 6.18.*
USAGE
}
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --out) [ $# -ge 2 ] || { echo "capture-6.18.sh: error: --out needs a directory" >&2; exit 2; }; OUT=$2; shift 2 ;;
        --data) [ $# -ge 2 ] || { echo "capture-6.18.sh: error: --data needs a directory" >&2; exit 2; }; DATA=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        *) echo "capture-6.18.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "capture-6.18.sh: error: must run as root" >&2; exit 2; }
case $(uname -r) in
    6.18.*) ;;
    *) [ "$FORCE" = 1 ] || { echo "capture-6.18.sh: error: kernel $(uname -r) is not 6.18 (use --force)" >&2; exit 2; } ;;
esac

CAP=$REPO/tools/capture
WL=$REPO/tools/workloads
BUF=65536
KS=$OUT/k6.18-kallsyms.zst
mkdir -p "$OUT" "$DATA"
DATA=$(cd "$DATA" && pwd)

run() { echo "+ $*"; "$@" || { echo "capture-6.18.sh: error: '$*' failed (status $?)" >&2; exit 1; }; }

# one shared kallsyms for the whole 6.18 corpus
cat /proc/kallsyms | zstd -q -19 -T0 > "$KS.tmp" && mv "$KS.tmp" "$KS"
echo "kallsyms: $KS (sha256 of content $(zstd -dc "$KS" | sha256sum | cut -d' ' -f1))"

# capture_one BUNDLE TOOL "TOOL OPTIONS" WORKLOAD "WORKLOAD OPTIONS" ["SHELL"]
# SHELL: command that runs the workload script in the captured run phase (default: its #! line)
capture_one() {
    b=$OUT/$1 tool=$2 topts=$3 w=$4 wopts=$5 wsh=${6:-}
    rm -rf "$b"
    # shellcheck disable=SC2086
    run "$WL/$w.sh" --phase prepare --dir "$DATA" $wopts
    # shellcheck disable=SC2086
    run "$CAP/$tool" $topts --kallsyms-ref "$KS" --zstd --fincore "$DATA" -o "$b" -- $wsh "$WL/$w.sh" --phase run --dir "$DATA" $wopts
    # shellcheck disable=SC2086
    run "$WL/$w.sh" --phase clean --dir "$DATA" $wopts
}

TD="-s --pid-filter -b $BUF --instance pagehint"
capture_one k6.18-seq-reread      trace-dat.sh "$TD"                          seq-reread    "--size 64 --passes 2"
capture_one k6.18-memcg-reclaim   trace-dat.sh "$TD --memcg-limit 64M"        memcg-reclaim "--files 4 --size 64"
capture_one k6.18-mmap-random     trace-dat.sh "$TD"                          mmap-random   "--size 64 --touches 4000 --seed 1"
capture_one k6.18-write-fsync     trace-dat.sh "$TD --v6 --report"            write-fsync   "--size 16 --rewrite-kib 1024 --append-kib 256"
capture_one k6.18-small-files     trace-dat.sh "$TD"                          small-files   "--files 1000 --size 4 --dirs 20 --busybox" "/bin/busybox sh"

PF="--pid-filter -b 16384 --script"
capture_one k6.18-memcg-reclaim-perf perf.sh "$PF -z --memcg-limit 64M"       memcg-reclaim "--files 4 --size 64"
capture_one k6.18-mmap-random-perf   perf.sh "$PF"                            mmap-random   "--size 64 --touches 4000 --seed 1"

rmdir "$DATA" 2>/dev/null

# tracefs must be as found: report the top-level state
T=/sys/kernel/tracing
echo "tracefs now: tracing_on=$(cat $T/tracing_on) tracer=$(cat $T/current_tracer) events=$(wc -l < $T/set_event) stacktrace=$(cat $T/options/stacktrace) buffer_size_kb=$(cat $T/buffer_size_kb) top_level_entries=$(awk '/^entries:/ { s += $2 } END { print s + 0 }' $T/per_cpu/cpu*/stats) instances='$(ls $T/instances)'"
run "$REPO/tools/corpus/manifest.sh" "$OUT"
