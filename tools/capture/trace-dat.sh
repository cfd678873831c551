#!/bin/sh
# tools/capture/trace-dat.sh — the ftrace.sh capture, saved both as tracefs text (trace.txt) and as a
# trace-cmd file (trace.dat, written by `trace-cmd extract` from the same ring buffer).
# POSIX sh; runs under busybox. Needs root and trace-cmd.
PH_PROG=trace-dat.sh
PH_TOOL=trace-dat
PH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$PH_DIR/lib.sh"

PH_USAGE="Usage: $PH_PROG [options] [--] COMMAND [ARGS...]

Same capture as ftrace.sh (private tracefs instance, pagehint event set, restore on exit).
When COMMAND has ended, the ring buffer is first read as text through 'trace' (this does not
consume it) into trace.txt, then 'trace-cmd extract' writes the same entries to trace.dat
(trace-cmd's default file version: 7 with zstd sections for trace-cmd 3.x).
'trace-cmd record' is not used: it insists on function-tracer control files that some
kernels refuse to write.
With an instance (the default), trace-cmd runs in a private mount namespace (unshare -m) in
which the tracefs mount shows only the capture instance, as the top level: trace.dat holds
the instance's entries only, and the top-level ring buffer and its settings are neither read
nor changed. (trace-cmd before 3.2 extracts, consumes and clears the top-level buffer even
with -B, and disables its events.) Without unshare, trace-cmd 3.2 or later is run with -B;
an older one is refused.

trace-dat.sh options:
      --no-text           do not write trace.txt
      --v6                also write trace.v6.dat (trace-cmd convert --file-version 6
                          --compression none)
      --report            also write trace.report.txt (trace-cmd report of trace.dat)
      --instance NAME     tracefs instance name (default pagehint-PID; must not exist)
      --global            use the top-level tracefs buffer instead of an instance (its
                          settings are restored afterwards; trace-cmd extract consumes the
                          whole buffer, so it must be empty at the start, and is left empty)

Example:
  $PH_PROG -s --pid-filter -b 32768 --v6 -o out -- tools/workloads/seq-reread.sh"

PH_NO_TEXT=0
PH_V6=0
PH_REPORT=0
ph_tool_opt() {
    case $1 in
        --no-text) PH_NO_TEXT=1; PH_SHIFT=1 ;;
        --v6) PH_V6=1; PH_SHIFT=1 ;;
        --report) PH_REPORT=1; PH_SHIFT=1 ;;
        --global) PH_GLOBAL=1; PH_SHIFT=1 ;;
        --instance) [ $# -ge 2 ] || ph_usage_error "$1 needs a name"; PH_INSTANCE=$2; PH_SHIFT=2 ;;
        --instance=*) PH_INSTANCE=${1#*=}; PH_SHIFT=1 ;;
        --stream) ph_usage_error "--stream is not available here: trace-cmd extract needs the ring buffer unread" ;;
        *) PH_SHIFT=0 ;;
    esac
}

ph_init "$0" "$@"
ph_parse_args "$@"
shift $(($# - PH_NCMD))
[ "$PH_GLOBAL" = 1 ] && [ -n "$PH_INSTANCE" ] && ph_usage_error "--global and --instance exclude each other"
ph_need_root
ph_need_cmd awk sed mkfifo trace-cmd
[ "$PH_ZSTD" = 1 ] || [ "$PH_PACK" = 1 ] || [ -n "$PH_KALLSYMS_REF" ] && ph_need_cmd zstd
TC_VERSION=$(trace-cmd --version 2>&1 | awk '/version/ { print $3; exit }')
PH_REFTOOLS_JSON="\"trace-cmd\": $(ph_json_str "$TC_VERSION")"
# with --global, extract consumes the top-level buffer: ph_setup_tracefs refuses a non-empty one
PH_CONSUMER="trace-cmd extract"

# How trace-cmd is kept away from the top-level buffer in an instance capture (see tc_run_isolated).
# trace-cmd up to 3.1.x extracts the top level even with -B (upstream fix "trace-cmd extract: Do
# not extract top level unless told to", in 3.2): it copies the top-level entries into trace.dat,
# consumes them, clears the top-level buffer and disables its events.
tc_at_least_3_2() {
    echo "$TC_VERSION" | awk -F. '{ exit !($1 > 3 || ($1 == 3 && $2 >= 2)) }'
}
if [ "$PH_GLOBAL" = 1 ]; then
    TC_ISOLATION=none
elif command -v unshare >/dev/null 2>&1 && command -v mount >/dev/null 2>&1 \
    && unshare -m --propagation private true 2>/dev/null; then
    TC_ISOLATION=mount-namespace
elif tc_at_least_3_2; then
    TC_ISOLATION=trace-cmd-B
else
    ph_die "trace-cmd ${TC_VERSION:-?} would also extract and clear the top-level buffer; an instance capture needs 'unshare -m' (util-linux or busybox) or trace-cmd 3.2 or later (or use --global)"
fi

ph_make_tmp
ph_install_traps
ph_mount_tracefs
ph_resolve_events
ph_make_bundle_dir
ph_setup_tracefs
ph_save_formats

ph_tracefs_capture "$@"
[ "$PH_NO_TEXT" = 1 ] || ph_save_trace_text
ph_report_lost
PH_LOST_JSON=$(ph_lost_json)

# Runs "$@" (a trace-cmd command) in a private mount namespace. There, the tracefs mount point
# trace-cmd uses (libtracefs takes the first tracefs line of /proc/mounts) shows a directory of
# symbolic links: every file of the capture instance, as the top level, and the read-only global
# files trace-cmd copies into trace.dat (saved_cmdlines, saved_tgids, printk_formats, ...). No
# instance is visible; the real tracefs is reachable only through a second mount, in PH_TMP, that
# trace-cmd does not look at. The mounts vanish with the namespace.
tc_run_isolated() {
    _view=$PH_TMP/tc-view
    _real=$PH_TMP/tc-tracefs
    mkdir "$_view" "$_real" || ph_die "cannot create $_view"
    for _e in "$PH_T"/*; do
        ln -s "$_real/instances/$PH_INSTANCE/${_e##*/}" "$_view/${_e##*/}" || ph_die "cannot create $_view"
    done
    for _f in README available_events printk_formats saved_cmdlines saved_cmdlines_size saved_tgids; do
        [ -e "$PH_TRACEFS/$_f" ] && [ ! -e "$_view/$_f" ] && ln -s "$_real/$_f" "$_view/$_f"
    done
    # shellcheck disable=SC2016
    unshare -m --propagation private sh -c '
        real=$1 view=$2 inst=$3; shift 3
        mp=""
        while read -r _dev _dir _type _rest; do
            if [ "$_type" = tracefs ]; then mp=$_dir; break; fi
        done < /proc/mounts
        [ -n "$mp" ] || { echo "no tracefs mount in /proc/mounts" >&2; exit 1; }
        mount -o bind "$mp" "$real" || exit 1
        [ -d "$real/instances/$inst" ] || { echo "no instance $inst under $mp" >&2; exit 1; }
        mount -o bind "$view" "$mp" || exit 1
        exec "$@"' sh "$_real" "$_view" "$PH_INSTANCE" "$@"
}

# trace-cmd extract reads (consumes) the per-CPU raw buffers, then clears them and disables the
# events of every buffer it extracted. trace-cmd 3.1.x also removes a -B instance afterwards
# (ph_restore tolerates that).
case $TC_ISOLATION in
    none | mount-namespace) set -- trace-cmd extract -o "$PH_OUT/trace.dat" ;;
    trace-cmd-B) set -- trace-cmd extract -B "$PH_INSTANCE" -o "$PH_OUT/trace.dat" ;;
esac
TC_EXTRACT_CMD=$(ph_shjoin "$@")
TC_TOP_BEFORE=""; TC_TOP_AFTER=""
[ "$TC_ISOLATION" = none ] || TC_TOP_BEFORE=$(ph_buffer_entries "$PH_TRACEFS")
if [ "$TC_ISOLATION" = mount-namespace ]; then
    [ "$PH_QUIET" = 1 ] || ph_log "$TC_EXTRACT_CMD (in a mount namespace showing only instance $PH_INSTANCE)"
    tc_run_isolated "$@" > "$PH_TMP/extract.log" 2>&1 \
        || { cat "$PH_TMP/extract.log" >&2; ph_die "trace-cmd extract failed"; }
else
    [ "$PH_QUIET" = 1 ] || ph_log "$TC_EXTRACT_CMD"
    "$@" > "$PH_TMP/extract.log" 2>&1 || { cat "$PH_TMP/extract.log" >&2; ph_die "trace-cmd extract failed"; }
fi
[ -s "$PH_OUT/trace.dat" ] || ph_die "trace-cmd extract wrote no trace.dat"
if [ "$TC_ISOLATION" != none ]; then
    TC_TOP_AFTER=$(ph_buffer_entries "$PH_TRACEFS")
    [ "$TC_TOP_AFTER" -ge "$TC_TOP_BEFORE" ] 2>/dev/null \
        || ph_warn "the top-level ring buffer went from $TC_TOP_BEFORE to $TC_TOP_AFTER entries during the extraction (another reader?)"
fi
# magic "\027\010\104tracing", then the file version as a NUL-terminated decimal string
TC_FILE_VERSION=$(dd if="$PH_OUT/trace.dat" bs=1 skip=10 count=3 2>/dev/null | tr '\000' '\n' | head -n 1 | tr -dc '0-9')

TC_CONVERT_CMD=""
if [ "$PH_V6" = 1 ]; then
    set -- trace-cmd convert -i "$PH_OUT/trace.dat" -o "$PH_OUT/trace.v6.dat" --file-version 6 --compression none
    TC_CONVERT_CMD=$(ph_shjoin "$@")
    [ "$PH_QUIET" = 1 ] || ph_log "$TC_CONVERT_CMD"
    "$@" > "$PH_TMP/convert.log" 2>&1 || { cat "$PH_TMP/convert.log" >&2; ph_die "trace-cmd convert failed"; }
fi
TC_REPORT_CMD=""
if [ "$PH_REPORT" = 1 ]; then
    set -- trace-cmd report -i "$PH_OUT/trace.dat"
    TC_REPORT_CMD=$(ph_shjoin "$@")
    [ "$PH_QUIET" = 1 ] || ph_log "$TC_REPORT_CMD > $PH_OUT/trace.report.txt"
    "$@" > "$PH_OUT/trace.report.txt" 2> "$PH_TMP/report.log" \
        || { cat "$PH_TMP/report.log" >&2; ph_die "trace-cmd report failed"; }
fi

# entries of the top-level buffer around the extraction (trace-cmd must leave them alone)
TC_TOP_JSON=null
[ "$TC_ISOLATION" = none ] || TC_TOP_JSON="{\"before_extract\": $(ph_num_or_null "$TC_TOP_BEFORE"), \"after_extract\": $(ph_num_or_null "$TC_TOP_AFTER")}"
PH_EXTRA_JSON="  \"trace_dat\": {\"file\": \"trace.dat\", \"file_version\": $(ph_num_or_null "$TC_FILE_VERSION"), \"extract_command\": $(ph_json_str "$TC_EXTRACT_CMD"), \"convert_command\": $(ph_json_str "$TC_CONVERT_CMD"), \"report_command\": $(ph_json_str "$TC_REPORT_CMD"), \"same_capture_as_trace_txt\": $([ "$PH_NO_TEXT" = 1 ] && echo false || echo true), \"top_level_isolation\": $(ph_json_str "$TC_ISOLATION"), \"top_level_entries\": $TC_TOP_JSON},"

ph_compress_bundle
ph_write_meta
_rc=$(ph_exit_status)
ph_restore
ph_pack_bundle
[ "$PH_QUIET" = 1 ] || ph_log "bundle: $PH_OUT$([ "$PH_PACK" = 1 ] && echo .tar.zst)"
exit "$_rc"
