#!/bin/sh
# tools/workloads/seq-reread.sh — sequential re-read of a large file after dropping caches:
# the first pass misses (readahead, page-cache insertions), later passes hit (get_pages).
WL_NAME=seq-reread
WL_USAGE="Usage: seq-reread.sh [options]

prepare: write a file of --size MiB, sync, drop the page cache.
run:     read it sequentially --passes times (dd, 1 MiB blocks).
clean:   remove the file.

Options:
  -s, --size MIB       file size in MiB (default 64)
  -p, --passes N       read passes (default 2)"
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

SIZE=64
PASSES=2
while [ $# -gt 0 ]; do
    wl_common_opt "$@"
    if [ "$WL_SHIFT" -gt 0 ]; then shift "$WL_SHIFT"; continue; fi
    case $1 in
        -s | --size) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SIZE=$2; shift 2 ;;
        -p | --passes) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; PASSES=$2; shift 2 ;;
        *) wl_usage_error "unknown argument '$1'" ;;
    esac
done
wl_need_uint --size "$SIZE"
wl_need_uint --passes "$PASSES"
wl_check_common
F=$WL_DIR/seq-reread.dat

wl_prepare() {
    wl_make_file "$F" "$SIZE"
    wl_log "wrote $F ($SIZE MiB)"
    wl_drop_caches
}
wl_run() {
    [ -f "$F" ] || wl_die "$F missing (run --phase prepare first)"
    p=1
    while [ $p -le "$PASSES" ]; do
        wl_mark "pass=$p"
        t=$(wl_now_cs)
        dd if="$F" of=/dev/null bs=1048576 2>/dev/null || wl_die "reading $F failed"
        wl_log "pass $p: read $F sequentially ($SIZE MiB, 1 MiB blocks) in $(wl_elapsed "$t")"
        p=$((p + 1))
    done
}
wl_clean() { rm -f "$F"; wl_log "removed $F"; }
wl_main
