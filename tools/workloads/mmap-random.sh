#!/bin/sh
# tools/workloads/mmap-random.sh — random reads of a file through mmap (page faults, fault-around,
# filemap_fault / map_pages), using the small C program mmaprand.c.
WL_NAME=mmap-random
WL_USAGE="Usage: mmap-random.sh [options]

prepare: write a file of --size MiB, sync, drop the page cache; make sure mmaprand exists
         (compiled from mmaprand.c with cc into the data directory when no binary is found).
run:     mmaprand touches --touches random pages of the file through a shared read-only mmap.
clean:   remove the file (and the compiled mmaprand).

mmaprand is looked up as: --mmaprand PATH, \$MMAPRAND, next to this script, in PATH, in the data
directory; otherwise it is compiled with \${CC:-cc}.

Options:
  -s, --size MIB       file size in MiB (default 64)
  -t, --touches N      random page touches (default 4000)
      --seed N         random seed (default 1)
      --madv-random    madvise(MADV_RANDOM) before touching (no fault-around readahead)
      --mmaprand PATH  use this mmaprand binary
      --static         compile mmaprand with -static (for systems without a C library)
      --build          always compile mmaprand (into the data directory)"
WL_SELF_DIR=$(cd "$(dirname "$0")" && pwd)
. "$WL_SELF_DIR/common.sh"

SIZE=64
TOUCHES=4000
SEED=1
MADV=""
BIN=${MMAPRAND:-}
STATIC=0
BUILD=0
while [ $# -gt 0 ]; do
    wl_common_opt "$@"
    if [ "$WL_SHIFT" -gt 0 ]; then shift "$WL_SHIFT"; continue; fi
    case $1 in
        -s | --size) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SIZE=$2; shift 2 ;;
        -t | --touches) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; TOUCHES=$2; shift 2 ;;
        --seed) [ $# -ge 2 ] || wl_usage_error "$1 needs a value"; SEED=$2; shift 2 ;;
        --madv-random) MADV=-r; shift ;;
        --mmaprand) [ $# -ge 2 ] || wl_usage_error "$1 needs a path"; BIN=$2; shift 2 ;;
        --static) STATIC=1; shift ;;
        --build) BUILD=1; shift ;;
        *) wl_usage_error "unknown argument '$1'" ;;
    esac
done
wl_need_uint --size "$SIZE"
wl_need_uint --touches "$TOUCHES"
wl_is_uint "$SEED" || wl_usage_error "--seed wants a non-negative integer, not '$SEED'"
if [ -n "$BIN" ] && [ ! -x "$BIN" ]; then wl_usage_error "mmaprand '$BIN' is not executable"; fi
wl_check_common
F=$WL_DIR/mmap-random.dat

find_mmaprand() {
    [ "$BUILD" = 1 ] && { [ -x "$WL_DIR/mmaprand" ] && echo "$WL_DIR/mmaprand"; return 0; }
    if [ -n "$BIN" ]; then echo "$BIN"; return 0; fi
    if [ -x "$WL_SELF_DIR/mmaprand" ]; then echo "$WL_SELF_DIR/mmaprand"; return 0; fi
    if command -v mmaprand >/dev/null 2>&1; then command -v mmaprand; return 0; fi
    if [ -x "$WL_DIR/mmaprand" ]; then echo "$WL_DIR/mmaprand"; return 0; fi
    return 0
}

build_mmaprand() {
    cc=${CC:-cc}
    command -v "$cc" >/dev/null 2>&1 || wl_die "no mmaprand binary and no C compiler ($cc) to build $WL_SELF_DIR/mmaprand.c"
    [ -f "$WL_SELF_DIR/mmaprand.c" ] || wl_die "$WL_SELF_DIR/mmaprand.c not found"
    flags="-O2"
    [ "$STATIC" = 1 ] && flags="$flags -static"
    # shellcheck disable=SC2086
    "$cc" $flags -o "$WL_DIR/mmaprand" "$WL_SELF_DIR/mmaprand.c" || wl_die "compiling mmaprand.c failed"
    wl_log "compiled $WL_DIR/mmaprand ($cc $flags)"
}

wl_prepare() {
    BINP=$(find_mmaprand)
    [ -n "$BINP" ] || build_mmaprand
    wl_make_file "$F" "$SIZE"
    wl_log "wrote $F ($SIZE MiB)"
    wl_drop_caches
}
wl_run() {
    [ -f "$F" ] || wl_die "$F missing (run --phase prepare first)"
    BINP=$(find_mmaprand)
    [ -n "$BINP" ] || { build_mmaprand; BINP=$WL_DIR/mmaprand; }
    wl_log "running $BINP $MADV -s $SEED $F $TOUCHES"
    # shellcheck disable=SC2086
    "$BINP" $MADV -s "$SEED" "$F" "$TOUCHES" || wl_die "mmaprand failed"
}
wl_clean() { rm -f "$F" "$WL_DIR/mmaprand"; wl_log "removed $F"; }
wl_main
