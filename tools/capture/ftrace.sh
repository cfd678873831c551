#!/bin/sh
# tools/capture/ftrace.sh — capture page-cache/reclaim events of a command with tracefs and save
# them, with the ground truth around them, as a pagehint capture bundle (trace.txt = tracefs text).
# POSIX sh; runs under busybox. Needs root.
PH_PROG=ftrace.sh
PH_TOOL=ftrace
PH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$PH_DIR/lib.sh"

PH_USAGE="Usage: $PH_PROG [options] [--] COMMAND [ARGS...]

Enables the pagehint event set (filemap, pagemap, vmscan, writeback, kmem, exceptions,
sched fork/exit; events the running kernel lacks are skipped and listed in meta.json) in a
private tracefs instance, runs COMMAND, and writes a capture bundle:
  meta.json  trace.txt  formats/  kallsyms  uname.txt  vmstat.before  vmstat.after
  [memory.stat]  [fincore.txt]
tracefs is restored to the state it was found in, also after a failure or INT/TERM/HUP.
The exit status is COMMAND's (128+N after signal N).

ftrace.sh options:
      --stream            stream trace_pipe into trace.txt while COMMAND runs (long runs;
                          the ring buffer is then only a staging area)
      --instance NAME     tracefs instance name (default pagehint-PID; must not exist)
      --global            use the top-level tracefs buffer instead of an instance (its
                          settings are restored afterwards, and a buffer found empty is
                          left empty; entries someone else left there are kept: trace.txt
                          then holds them too, and this capture's entries stay behind with
                          them (warned, and in meta.json global_buffer_entries_before);
                          with --stream, such entries make the capture refuse to start)

Example:
  $PH_PROG -s --memcg-limit 64M -b 65536 -o out --fincore /data -- tools/workloads/memcg-reclaim.sh --dir /data"

ph_tool_opt() {
    case $1 in
        --stream) PH_STREAM=1; PH_SHIFT=1 ;;
        --global) PH_GLOBAL=1; PH_SHIFT=1 ;;
        --instance) [ $# -ge 2 ] || ph_usage_error "$1 needs a name"; PH_INSTANCE=$2; PH_SHIFT=2 ;;
        --instance=*) PH_INSTANCE=${1#*=}; PH_SHIFT=1 ;;
        *) PH_SHIFT=0 ;;
    esac
}

ph_init "$0" "$@"
ph_parse_args "$@"
shift $(($# - PH_NCMD))
[ "$PH_GLOBAL" = 1 ] && [ -n "$PH_INSTANCE" ] && ph_usage_error "--global and --instance exclude each other"
ph_need_root
ph_need_cmd awk sed mkfifo
[ "$PH_ZSTD" = 1 ] || [ "$PH_PACK" = 1 ] || [ -n "$PH_KALLSYMS_REF" ] && ph_need_cmd zstd

ph_make_tmp
ph_install_traps
ph_mount_tracefs
ph_resolve_events
ph_make_bundle_dir
ph_setup_tracefs
ph_save_formats

ph_tracefs_capture "$@"
[ "$PH_STREAM" = 1 ] || ph_save_trace_text
ph_report_lost
PH_LOST_JSON=$(ph_lost_json)
ph_compress_bundle
ph_write_meta
_rc=$(ph_exit_status)
ph_restore
ph_pack_bundle
[ "$PH_QUIET" = 1 ] || ph_log "bundle: $PH_OUT$([ "$PH_PACK" = 1 ] && echo .tar.zst)"
exit "$_rc"
