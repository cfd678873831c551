#!/bin/sh
# tools/workloads/write-fsync.sh — buffered writes, fsync, then a partial rewrite and fsync again:
# dirty pages, writeback and waits on writeback.
WL_NAME=write-fsync
WL_USAGE="Usage: write-fsync.sh [options]

prepare: nothing but the data directory (and a page-cache drop).
run:     1) write a new file of --size MiB (dd, 1 MiB blocks) and fsync it;
         2) rewrite --rewrite-kib KiB in the middle of it in place (4 KiB blocks) and fsync;
         3) append --append-kib KiB and fsync.
clean:   remove the file.

Options:
  -s, --size MIB        file size in MiB (default 16)
  -r, --rewrite-kib N   KiB rewritten in place (default 1024)
  -a, --append-kib N    KiB appended at the end (default 256)"
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

SIZE=16
REWRITE=1024
APPEND=256
while [ $# -gt 0 ]; do
    wl_common_opt "$@"
    if [ "$WL_SHIFT" -gt 0 ]; then shift "$WL_SHIFT"; continue; fi
    case $1 in
        -s | --size) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SIZE=$2; shift 2 ;;
        -r | --rewrite-kib) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; REWRITE=$2; shift 2 ;;
        -a | --append-kib) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; APPEND=$2; shift 2 ;;
        *) wl_usage_error "unknown argument '$1'" ;;
    esac
done
wl_need_uint --size "$SIZE"
wl_need_uint --rewrite-kib "$REWRITE"
wl_need_uint --append-kib "$APPEND"
[ $((REWRITE)) -le $((SIZE * 1024)) ] || wl_usage_error "--rewrite-kib is larger than the file"
wl_check_common
F=$WL_DIR/write-fsync.dat

wl_prepare() {
    rm -f "$F"
    wl_drop_caches
}
wl_run() {
    rm -f "$F"
    t=$(wl_now_cs)
    wl_mark "step=write"
    dd if=/dev/zero of="$F" bs=1048576 count="$SIZE" conv=fsync 2>/dev/null || wl_die "writing $F failed"
    wl_log "wrote $F: $SIZE MiB in 1 MiB blocks, then fsync ($(wl_elapsed "$t"))"
    t=$(wl_now_cs)
    # rewrite the middle: start at (size/2 - rewrite/2) KiB, in 4 KiB blocks
    blocks=$((REWRITE / 4)); [ $blocks -gt 0 ] || blocks=1
    seek=$(((SIZE * 1024 / 2 - REWRITE / 2) / 4))
    wl_mark "step=rewrite"
    dd if=/dev/urandom of="$F" bs=4096 seek="$seek" count="$blocks" conv=notrunc,fsync 2>/dev/null \
        || wl_die "rewriting $F failed"
    wl_log "rewrote $((blocks * 4)) KiB in place at offset $((seek * 4)) KiB (4 KiB blocks), then fsync ($(wl_elapsed "$t"))"
    t=$(wl_now_cs)
    ablocks=$((APPEND / 4)); [ $ablocks -gt 0 ] || ablocks=1
    wl_mark "step=append"
    dd if=/dev/urandom of="$F" bs=4096 seek=$((SIZE * 256)) count="$ablocks" conv=notrunc,fsync 2>/dev/null \
        || wl_die "appending to $F failed"
    wl_log "appended $((ablocks * 4)) KiB (4 KiB blocks), then fsync ($(wl_elapsed "$t"))"
}
wl_clean() { rm -f "$F"; wl_log "removed $F"; }
wl_main
