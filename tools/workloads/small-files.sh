#!/bin/sh
# tools/workloads/small-files.sh — a tree of thousands of small files, read back after the page
# cache was dropped (many inodes, one small folio each).
WL_NAME=small-files
WL_USAGE="Usage: small-files.sh [options]

prepare: create --files files of --size KiB in --dirs subdirectories (one awk process), sync,
         drop the page cache.
run:     read every file back (find -exec cat), --passes times.
clean:   remove the tree.

With --busybox the shell, find, cat and awk of every phase are applets of the static busybox
that is the whole userland of the 6.1 guest, instead of the host's shell and GNU tools, and
prepare reads busybox back into the page cache after the drop (in the guest it stays resident):
use it to compare this workload across kernels. To trace none of the host's shell, start the
run phase as: busybox sh small-files.sh --phase run --dir DIR --busybox ...

Options:
  -n, --files N        number of files (default 2000)
  -s, --size KIB       size of each file in KiB (default 4)
      --dirs N         number of subdirectories (default 20)
  -p, --passes N       read passes (default 1)"
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

NFILES=2000
SIZE=4
NDIRS=20
PASSES=1
while [ $# -gt 0 ]; do
    wl_common_opt "$@"
    if [ "$WL_SHIFT" -gt 0 ]; then shift "$WL_SHIFT"; continue; fi
    case $1 in
        -n | --files) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; NFILES=$2; shift 2 ;;
        -s | --size) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SIZE=$2; shift 2 ;;
        --dirs) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; NDIRS=$2; shift 2 ;;
        -p | --passes) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; PASSES=$2; shift 2 ;;
        *) wl_usage_error "unknown argument '$1'" ;;
    esac
done
wl_need_uint --files "$NFILES"
wl_need_uint --size "$SIZE"
wl_need_uint --dirs "$NDIRS"
wl_need_uint --passes "$PASSES"
wl_check_common
TREE=$WL_DIR/small-files

wl_prepare() {
    rm -rf "$TREE"
    mkdir -p "$TREE" || wl_die "cannot create $TREE"
    t=$(wl_now_cs)
    awk -v dir="$TREE" -v n="$NFILES" -v kib="$SIZE" -v nd="$NDIRS" 'BEGIN {
        line = sprintf("%063d\n", 0)              # 64 bytes
        block = ""; for (i = 0; i < 16; i++) block = block line   # 1 KiB
        data = ""; for (i = 0; i < kib; i++) data = data block
        for (d = 0; d < nd; d++) system(sprintf("mkdir -p %s/d%03d", dir, d))
        for (i = 0; i < n; i++) {
            f = sprintf("%s/d%03d/f%05d", dir, i % nd, i)
            printf "%s", data > f
            close(f)
        }
    }' || wl_die "creating the tree failed"
    wl_log "created $NFILES files of $SIZE KiB in $NDIRS directories under $TREE ($(wl_elapsed "$t"))"
    wl_drop_caches
}
wl_run() {
    [ -d "$TREE" ] || wl_die "$TREE missing (run --phase prepare first)"
    p=1
    while [ $p -le "$PASSES" ]; do
        wl_mark "pass=$p"
        t=$(wl_now_cs)
        find "$TREE" -type f -exec cat {} + > /dev/null || wl_die "reading the tree failed"
        wl_log "pass $p: read back $NFILES files ($((NFILES * SIZE)) KiB) with find -exec cat in $(wl_elapsed "$t")"
        p=$((p + 1))
    done
}
wl_clean() { rm -rf "$TREE"; wl_log "removed $TREE"; }
wl_main
