#!/bin/sh
# tools/guest/capture-corpus.sh — guest-side script (busybox sh) that captures the standard
# pagehint workloads on the running kernel with the repository's capture tools.
#
# Run on the host with:   tools/guest/run.sh --out DIR --script tools/guest/capture-corpus.sh
# Each bundle is written to /results/bundles/<prefix>-<name>/ (prefix: k<major.minor> of the
# running kernel), which run.sh brings back as DIR/bundles/.
#
# Parameters (environment, or run.sh --param K=V):
#   CAPTURES   space-separated list of captures to run (default: all, see CAPTURE_LIST below)
#   BUFFER_KB  per-CPU ring buffer size in KiB for trace-dat.sh (default 32768)
#   PERF_BUFFER_KB   perf mmap size in KiB for perf.sh (default 16384)
#   ZSTD_LEVEL zstd level for the bundle files (default 19)
#   PAGEHINT_TOOLS   where tools/capture and tools/workloads live (default /opt/pagehint/tools)
#
# Before capturing, the multi-gen LRU is switched off (on 6.1 it emits no isolate/shrink events);
# its previous and resulting state are written to /results/lru_gen.txt.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
[ -f /job/params.env ] && . /job/params.env
set -u
TOOLS=${PAGEHINT_TOOLS:-/opt/pagehint/tools}
CAP=$TOOLS/capture
WL=$TOOLS/workloads
BUFFER_KB=${BUFFER_KB:-32768}
PERF_BUFFER_KB=${PERF_BUFFER_KB:-16384}
ZSTD_LEVEL=${ZSTD_LEVEL:-19}
KVER=$(uname -r | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
PREFIX=${PREFIX:-k$KVER}
OUT=/results/bundles
DATA=${DATA_DIR:-/data}
mkdir -p "$OUT" "$DATA"

# name | capture tool + options | workload script | workload options
# Mirrors tools/corpus/capture-6.18.sh (same tools, options and bundle names), with workloads
# scaled down for the 384 MiB guest and for the corpus size limit: 6.1 has no large folios,
# so the same MiB produce several times more page-cache events than on 6.18.
CAPTURE_LIST='
seq-reread|trace-dat.sh -s --pid-filter|seq-reread.sh|--size 32 --passes 2
memcg-reclaim|trace-dat.sh -s --pid-filter --memcg-limit 16M|memcg-reclaim.sh|--files 4 --size 16
mmap-random|trace-dat.sh -s --pid-filter|mmap-random.sh|--size 32 --touches 2000 --seed 1
write-fsync|trace-dat.sh -s --pid-filter --v6 --report|write-fsync.sh|--size 8 --rewrite-kib 1024 --append-kib 256
small-files|trace-dat.sh -s --pid-filter|small-files.sh|--files 1000 --size 4 --dirs 20
memcg-reclaim-perf|perf.sh --pid-filter --script -z --memcg-limit 16M|memcg-reclaim.sh|--files 4 --size 16
mmap-random-perf|perf.sh --pid-filter --script|mmap-random.sh|--size 32 --touches 2000 --seed 1
'
[ -n "${CAPTURE_LIST_OVERRIDE:-}" ] && CAPTURE_LIST=$CAPTURE_LIST_OVERRIDE
CAPTURES=${CAPTURES:-all}
KS=$OUT/$PREFIX-kallsyms.zst

log() { echo "capture-corpus: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }

for t in "$CAP/trace-dat.sh" "$CAP/perf.sh" "$WL/common.sh"; do
    [ -f "$t" ] || { log "error: $t missing (rebuild the guest after tools/capture and tools/workloads exist)"; exit 2; }
done

{
    echo "before=$(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo absent)"
    if [ -w /sys/kernel/mm/lru_gen/enabled ]; then echo n > /sys/kernel/mm/lru_gen/enabled; fi
    echo "after=$(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null || echo absent)"
} > /results/lru_gen.txt
log "lru_gen: $(tr '\n' ' ' < /results/lru_gen.txt)"
cat /proc/cmdline > /results/cmdline.txt
cp /etc/pagehint-guest.txt /results/guest-versions.txt 2>/dev/null
cat /proc/meminfo > /results/meminfo.txt
# one kallsyms for every bundle of this boot (no modules are loaded after boot); a bundle whose
# /proc/kallsyms differs at the end of its capture gets its own copy (lib.sh --kallsyms-ref)
cat /proc/kallsyms | zstd -q -"$ZSTD_LEVEL" -T0 > "$KS.tmp" && mv "$KS.tmp" "$KS"
log "kallsyms: $KS"

fail=0
echo "$CAPTURE_LIST" | while IFS='|' read -r name tool wl wlopts; do
    [ -n "$name" ] || continue
    case " $CAPTURES " in *" all "*|*" $name "*) ;; *) continue ;; esac
    b=$OUT/$PREFIX-$name
    d=$DATA/$name
    log "=== $name: $tool -- $wl $wlopts"
    t0=$(now)
    # shellcheck disable=SC2086
    "$WL/$wl" --phase prepare --dir "$d" $wlopts || { log "error: prepare of $name failed"; echo "$name prepare" >> /results/failed; continue; }
    t1=$(now)
    # shellcheck disable=SC2086
    set -- $tool
    tool_sh=$1; shift
    case $tool_sh in
        perf.sh) buf=$PERF_BUFFER_KB ;;
        *) buf=$BUFFER_KB; set -- "$@" --instance pagehint ;;
    esac
    [ "$ZSTD_LEVEL" = 19 ] || set -- "$@" --zstd-level "$ZSTD_LEVEL"
    # shellcheck disable=SC2086
    sh "$CAP/$tool_sh" "$@" -b "$buf" --kallsyms-ref "$KS" --zstd --fincore "$d" -o "$b" \
        -- "$WL/$wl" --phase run --dir "$d" $wlopts
    rc=$?
    t2=$(now)
    [ "$rc" = 0 ] || { log "error: capture of $name exited $rc"; echo "$name capture $rc" >> /results/failed; }
    # shellcheck disable=SC2086
    "$WL/$wl" --phase clean --dir "$d" $wlopts >/dev/null 2>&1
    sync
    echo 3 > /proc/sys/vm/drop_caches
    echo "$name prepare_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') capture_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') status=$rc" >> /results/timings.txt
    log "$name done in $(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s (guest clock), $(du -sk "$b" 2>/dev/null | cut -f1) kB"
done
[ -f /results/failed ] && { log "failed: $(tr '\n' ';' < /results/failed)"; exit 1; }
log "all captures done"
exit 0
