# tools/workloads/common.sh — shared by the workload scripts (POSIX sh, busybox-safe). Sourced.
#
# Every workload has the phases prepare (create data, sync, drop caches), run (the measured
# part) and clean (remove the data); --phase all (the default) runs the three in order.
# To capture only the measured part:
#   W --phase prepare --dir D;  ftrace.sh ... -- W --phase run --dir D;  W --phase clean --dir D
# When the capture tool exports PAGEHINT_TRACE_MARKER (a tracefs trace_marker file), phase
# boundaries are written there and show up in the trace as print entries.
#
# --busybox runs a workload in the userland of the 6.1 guest (tools/guest/): its shell and the
# commands it starts (find, cat, awk, dd, ...) are applets of one static busybox
# ($PAGEHINT_BUSYBOX, default /bin/busybox, Debian's busybox-static), so that traces of the same
# workload on two kernels share their user-space side (a program busybox lacks, such as
# mmaprand, still comes from PATH). Sourcing this file with --busybox among the
# arguments re-executes the script as `busybox sh SCRIPT ARGS` unless it already runs in that
# busybox; busybox sh then runs applets in preference to PATH (FEATURE_SH_STANDALONE, set in
# Debian's build). The host shell and one dirname run before the re-execution: to keep them out of
# a capture, start the run phase as `busybox sh SCRIPT --busybox ...` (tools/corpus/capture-6.18.sh).
# After the page-cache drop of prepare, --busybox reads the busybox binary back into the page
# cache: in the guest every process is that busybox, and drop_caches keeps pages that are mapped,
# so the run phase there finds busybox resident and pages none of it in.

WL_PHASE=all
WL_DIR=""
WL_DIR_GIVEN=0
WL_KEEP=0
WL_ALLOW_TMPFS=0
WL_NODROP=0
WL_USERLAND=system
WL_BUSYBOX=${PAGEHINT_BUSYBOX:-/bin/busybox}

wl_log() { echo "$WL_NAME: $*"; }
wl_die() { echo "$WL_NAME: error: $*" >&2; exit 2; }
wl_usage_error() { echo "$WL_NAME: error: $* (see --help)" >&2; exit 2; }
wl_is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
wl_need_uint() { # name value
    wl_is_uint "$2" && [ "$2" -gt 0 ] || wl_usage_error "$1 wants a positive integer, not '$2'"
}

WL_COMMON_USAGE='Common options:
  -d, --dir DIR        data directory (default: a new directory under $PAGEHINT_DATA_DIR or
                       /var/tmp; must be on a disk filesystem, not tmpfs); needed when --phase
                       is not "all"
      --phase PHASE    all (default), prepare, run or clean
      --keep           with --phase all: keep the data (no clean phase)
      --no-drop-caches do not drop the page cache at the end of prepare
      --allow-tmpfs    accept a tmpfs/ramfs data directory (page-cache events then differ)
      --busybox        run the shell and its commands as applets of a static busybox
                       ($PAGEHINT_BUSYBOX or /bin/busybox; the userland of the 6.1 guest),
                       kept in the page cache across the drop of prepare
  -h, --help           this text'

# wl_common_opt "$@": sets WL_SHIFT (0 = not a common option)
wl_common_opt() {
    WL_SHIFT=0
    case $1 in
        -h | --help) printf '%s\n\n%s\n' "$WL_USAGE" "$WL_COMMON_USAGE"; exit 0 ;;
        -d | --dir) [ $# -ge 2 ] || wl_usage_error "$1 needs a directory"; WL_DIR=$2; WL_DIR_GIVEN=1; WL_SHIFT=2 ;;
        --dir=*) WL_DIR=${1#*=}; WL_DIR_GIVEN=1; WL_SHIFT=1 ;;
        --phase) [ $# -ge 2 ] || wl_usage_error "$1 needs a phase"; WL_PHASE=$2; WL_SHIFT=2 ;;
        --phase=*) WL_PHASE=${1#*=}; WL_SHIFT=1 ;;
        --keep) WL_KEEP=1; WL_SHIFT=1 ;;
        --no-drop-caches) WL_NODROP=1; WL_SHIFT=1 ;;
        --allow-tmpfs) WL_ALLOW_TMPFS=1; WL_SHIFT=1 ;;
        --busybox) WL_USERLAND=busybox; WL_SHIFT=1 ;;
    esac
}

# "$@" of the workload script: with --busybox, re-execute it under busybox sh (see the top)
wl_busybox_reexec() {
    _bb=0 _skip=0
    for _a in "$@"; do
        if [ "$_skip" = 1 ]; then _skip=0; continue; fi
        case $_a in
            --busybox) _bb=1 ;;
            -d | --dir | --phase) _skip=1 ;; # their value is not an option
        esac
    done
    [ "$_bb" = 1 ] || return 0
    [ -f "$WL_BUSYBOX" ] && [ -x "$WL_BUSYBOX" ] || wl_die "--busybox: no executable $WL_BUSYBOX (install busybox-static, or set PAGEHINT_BUSYBOX)"
    [ /proc/$$/exe -ef "$WL_BUSYBOX" ] && return 0
    exec "$WL_BUSYBOX" sh "$0" "$@"
}

wl_check_common() {
    case $WL_PHASE in all | prepare | run | clean) ;; *) wl_usage_error "unknown phase '$WL_PHASE'" ;; esac
    if [ "$WL_USERLAND" = busybox ] && ! [ /proc/$$/exe -ef "$WL_BUSYBOX" ]; then
        wl_die "--busybox: this shell is not $WL_BUSYBOX"
    fi
    if [ "$WL_PHASE" != all ] && [ "$WL_DIR_GIVEN" = 0 ]; then
        wl_usage_error "--phase $WL_PHASE needs --dir"
    fi
    if [ "$WL_DIR_GIVEN" = 0 ]; then
        _base=${PAGEHINT_DATA_DIR:-/var/tmp}
        [ -d "$_base" ] || wl_die "$_base does not exist (set PAGEHINT_DATA_DIR or use --dir)"
        WL_DIR=$(mktemp -d "$_base/pagehint-$WL_NAME.XXXXXX") || wl_die "cannot create a directory in $_base"
        WL_CREATED_DIR=1
    else
        WL_CREATED_DIR=0
        if [ "$WL_PHASE" = clean ]; then
            [ -d "$WL_DIR" ] || { wl_log "nothing to clean in $WL_DIR"; exit 0; }
        else
            mkdir -p "$WL_DIR" || wl_die "cannot create $WL_DIR"
        fi
    fi
    WL_DIR=$(cd "$WL_DIR" && pwd)
    _fs=$(stat -f -c %T "$WL_DIR" 2>/dev/null)
    case $_fs in
        tmpfs | ramfs)
            [ "$WL_ALLOW_TMPFS" = 1 ] || wl_die "$WL_DIR is on $_fs; page-cache behaviour there is not that of a disk filesystem (use --dir on a disk filesystem, or --allow-tmpfs)" ;;
    esac
    WL_FSTYPE=${_fs:-unknown}
}

# time in centiseconds since boot
wl_now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
wl_elapsed() { # start_cs -> "S.SS s"
    awk -v a="$1" -v b="$(wl_now_cs)" 'BEGIN { printf "%.2f s", (b - a) / 100 }'
}

wl_mark() {
    if [ -n "$PAGEHINT_TRACE_MARKER" ] && [ -w "$PAGEHINT_TRACE_MARKER" ]; then
        echo "pagehint-workload: $WL_NAME $*" > "$PAGEHINT_TRACE_MARKER" 2>/dev/null
    fi
    return 0
}

wl_drop_caches() {
    sync
    if [ "$WL_NODROP" = 1 ]; then
        wl_log "page cache not dropped (--no-drop-caches)"
    elif [ -w /proc/sys/vm/drop_caches ]; then
        echo 3 > /proc/sys/vm/drop_caches && wl_log "synced and dropped the page cache (drop_caches=3)"
        if [ "$WL_USERLAND" = busybox ]; then
            cat "$WL_BUSYBOX" > /dev/null && wl_log "read $WL_BUSYBOX back into the page cache"
        fi
    else
        wl_log "warning: cannot drop caches (not root?); reads may hit the cache"
    fi
}

# run the phases; the workload defines wl_prepare, wl_run, wl_clean
wl_main() {
    if [ "$WL_USERLAND" = busybox ]; then
        wl_log "data directory $WL_DIR ($WL_FSTYPE), phase $WL_PHASE, userland $WL_BUSYBOX"
    else
        wl_log "data directory $WL_DIR ($WL_FSTYPE), phase $WL_PHASE"
    fi
    case $WL_PHASE in
        all)
            wl_mark "phase=prepare"; wl_prepare
            wl_mark "phase=run"; wl_run
            wl_mark "phase=end"
            if [ "$WL_KEEP" = 1 ]; then
                wl_log "data kept in $WL_DIR"
            else
                wl_clean
                [ "$WL_CREATED_DIR" = 1 ] && rmdir "$WL_DIR" 2>/dev/null
            fi ;;
        prepare) wl_mark "phase=prepare"; wl_prepare ;;
        run) wl_mark "phase=run"; wl_run; wl_mark "phase=end" ;;
        clean) wl_clean; rmdir "$WL_DIR" 2>/dev/null ;;
    esac
    return 0
}

# write SIZE MiB of data into FILE (from /dev/zero: real blocks, not sparse)
wl_make_file() { # file mib
    dd if=/dev/zero of="$1" bs=1048576 count="$2" 2>/dev/null || wl_die "writing $1 failed"
}

wl_busybox_reexec "$@"
