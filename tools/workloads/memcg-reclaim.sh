#!/bin/sh
# tools/workloads/memcg-reclaim.sh — read several hundred MiB of files; run it in a small memory
# cgroup (ftrace.sh --memcg-limit 64M) so that reading forces memcg reclaim of the page cache.
WL_NAME=memcg-reclaim
WL_USAGE="Usage: memcg-reclaim.sh [options]

prepare: write --files files of --size MiB each, sync, drop the page cache.
run:     read all files sequentially --passes times (dd, 1 MiB blocks). Inside a memory cgroup
         whose limit is below the total, this produces memcg reclaim (mm_vmscan_lru_isolate,
         mm_vmscan_lru_shrink_inactive, memcg_reclaim_begin/end, page-cache deletions).
clean:   remove the files.
Typical: ftrace.sh -s --memcg-limit 64M -- memcg-reclaim.sh --dir D   (256 MiB read by default)

Options:
  -n, --files N        number of files (default 4)
  -s, --size MIB       size of each file in MiB (default 64)
  -p, --passes N       read passes over all files (default 1)"
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

NFILES=4
SIZE=64
PASSES=1
while [ $# -gt 0 ]; do
    wl_common_opt "$@"
    if [ "$WL_SHIFT" -gt 0 ]; then shift "$WL_SHIFT"; continue; fi
    case $1 in
        -n | --files) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; NFILES=$2; shift 2 ;;
        -s | --size) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SIZE=$2; shift 2 ;;
        -p | --passes) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; PASSES=$2; shift 2 ;;
        *) wl_usage_error "unknown argument '$1'" ;;
    esac
done
wl_need_uint --files "$NFILES"
wl_need_uint --size "$SIZE"
wl_need_uint --passes "$PASSES"
wl_check_common

wl_prepare() {
    i=1
    while [ $i -le "$NFILES" ]; do
        wl_make_file "$WL_DIR/reclaim-$i.dat" "$SIZE"
        i=$((i + 1))
    done
    wl_log "wrote $NFILES files of $SIZE MiB in $WL_DIR ($((NFILES * SIZE)) MiB)"
    wl_drop_caches
}
wl_run() {
    cg=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup 2>/dev/null)
    lim=""
    [ -n "$cg" ] && [ -r "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" ] \
        && lim=$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes")
    wl_log "memory cgroup ${cg:-?}, limit ${lim:-unknown} bytes"
    p=1
    while [ $p -le "$PASSES" ]; do
        t=$(wl_now_cs)
        i=1
        while [ $i -le "$NFILES" ]; do
            f=$WL_DIR/reclaim-$i.dat
            [ -f "$f" ] || wl_die "$f missing (run --phase prepare first)"
            wl_mark "pass=$p file=$i"
            dd if="$f" of=/dev/null bs=1048576 2>/dev/null || wl_die "reading $f failed"
            i=$((i + 1))
        done
        wl_log "pass $p: read $NFILES files, $((NFILES * SIZE)) MiB, in $(wl_elapsed "$t")"
        p=$((p + 1))
    done
}
wl_clean() {
    i=1
    while [ $i -le "$NFILES" ]; do rm -f "$WL_DIR/reclaim-$i.dat"; i=$((i + 1)); done
    wl_log "removed $NFILES files from $WL_DIR"
}
wl_main
