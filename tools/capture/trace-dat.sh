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

trace-dat.sh options:
      --no-text           do not write trace.txt
      --v6                also write trace.v6.dat (trace-cmd convert --file-version 6
                          --compression none)
      --report            also write trace.report.txt (trace-cmd report of trace.dat)
      --instance NAME     tracefs instance name (default pagehint-PID; must not exist)
      --global            use the top-level tracefs buffer instead of an instance

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

# trace-cmd extract reads (consumes) the per-CPU raw buffers; with -B it also removes the
# instance afterwards, which ph_restore tolerates.
if [ "$PH_GLOBAL" = 1 ]; then
    set -- trace-cmd extract -o "$PH_OUT/trace.dat"
else
    set -- trace-cmd extract -B "$PH_INSTANCE" -o "$PH_OUT/trace.dat"
fi
TC_EXTRACT_CMD=$(ph_shjoin "$@")
[ "$PH_QUIET" = 1 ] || ph_log "$TC_EXTRACT_CMD"
"$@" > "$PH_TMP/extract.log" 2>&1 || { cat "$PH_TMP/extract.log" >&2; ph_die "trace-cmd extract failed"; }
[ -s "$PH_OUT/trace.dat" ] || ph_die "trace-cmd extract wrote no trace.dat"
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

PH_EXTRA_JSON="  \"trace_dat\": {\"file\": \"trace.dat\", \"file_version\": $(ph_num_or_null "$TC_FILE_VERSION"), \"extract_command\": $(ph_json_str "$TC_EXTRACT_CMD"), \"convert_command\": $(ph_json_str "$TC_CONVERT_CMD"), \"report_command\": $(ph_json_str "$TC_REPORT_CMD"), \"same_capture_as_trace_txt\": $([ "$PH_NO_TEXT" = 1 ] && echo false || echo true)},"

ph_compress_bundle
ph_write_meta
_rc=$(ph_exit_status)
ph_restore
ph_pack_bundle
[ "$PH_QUIET" = 1 ] || ph_log "bundle: $PH_OUT$([ "$PH_PACK" = 1 ] && echo .tar.zst)"
exit "$_rc"
