#!/bin/sh
# tools/capture/perf.sh — capture the pagehint event set with `perf record -g` (tracepoints with
# kernel+user callchains, plus perf's MMAP2/COMM/FORK/EXIT records) into a capture bundle.
# POSIX sh; runs under busybox. Needs root and perf.
PH_PROG=perf.sh
PH_TOOL=perf
PH_DIR=$(cd "$(dirname "$0")" && pwd)
. "$PH_DIR/lib.sh"

PH_USAGE="Usage: $PH_PROG [options] [--] COMMAND [ARGS...]

Records the pagehint event set (events the running kernel lacks are skipped and listed in
meta.json) with 'perf record -g', system-wide (-a) by default, while COMMAND runs. Bundle:
  meta.json  perf.data  perf.record.log  formats/  kallsyms  uname.txt  vmstat.before
  vmstat.after  [perf.script.txt]  [memory.stat]  [fincore.txt]
perf.data holds addresses only: kallsyms (copied from /proc/kallsyms at the end of the capture)
resolves kernel frames. perf does not change tracefs settings.
--pid-filter records COMMAND's process tree only (perf follows the forked command) instead of -a.
--stacktrace is implied (-g); --buffer-kb N becomes perf's --mmap-pages NK.

perf.sh options:
  -z, --zstd-records[=N]  perf record -z: zstd-compressed records (level N, perf default 1)
      --script            also write perf.script.txt (perf script, kernel frames resolved
                          with the saved kallsyms)
      --no-exclude-perf   do not pass --exclude-perf (it is used when perf supports it)
      --perf PATH         perf binary (default: perf in PATH)

Example:
  $PH_PROG -z --script -o out -- tools/workloads/mmap-random.sh"

PF_Z=""
PF_SCRIPT=0
PF_EXCLUDE=1
PF_PERF=perf
ph_tool_opt() {
    case $1 in
        -z | --zstd-records) PF_Z=default; PH_SHIFT=1 ;;
        -z[0-9]* ) PF_Z=${1#-z}; PH_SHIFT=1 ;;
        --zstd-records=*) PF_Z=${1#*=}; PH_SHIFT=1 ;;
        --script) PF_SCRIPT=1; PH_SHIFT=1 ;;
        --no-exclude-perf) PF_EXCLUDE=0; PH_SHIFT=1 ;;
        --perf) [ $# -ge 2 ] || ph_usage_error "$1 needs a path"; PF_PERF=$2; PH_SHIFT=2 ;;
        --perf=*) PF_PERF=${1#*=}; PH_SHIFT=1 ;;
        --stream | --global | --instance | --instance=*) ph_usage_error "$1 applies to the tracefs tools only" ;;
        *) PH_SHIFT=0 ;;
    esac
}

ph_init "$0" "$@"
ph_parse_args "$@"
shift $(($# - PH_NCMD))
case $PF_Z in '' | default) ;; *) { ph_is_uint "$PF_Z" && [ "$PF_Z" -ge 1 ] && [ "$PF_Z" -le 22 ]; } || ph_usage_error "-z wants a level 1..22, not '$PF_Z'" ;; esac
PH_STACKTRACE=1
ph_need_root
ph_need_cmd awk sed mkfifo "$PF_PERF"
[ "$PH_ZSTD" = 1 ] || [ "$PH_PACK" = 1 ] || [ -n "$PH_KALLSYMS_REF" ] && ph_need_cmd zstd
PF_VERSION=$("$PF_PERF" version 2>/dev/null | awk '{ print $3; exit }')
[ -n "$PF_VERSION" ] || ph_die "'$PF_PERF version' printed nothing; is it perf?"
PH_REFTOOLS_JSON="\"perf\": $(ph_json_str "$PF_VERSION")"
if [ "$PF_EXCLUDE" = 1 ] && ! "$PF_PERF" record -h 2>&1 | grep -q -e '--exclude-perf'; then
    ph_warn "this perf has no --exclude-perf; perf's own activity will be in the capture"
    PF_EXCLUDE=0
fi

ph_make_tmp
ph_install_traps
ph_mount_tracefs
ph_resolve_events
ph_make_bundle_dir
ph_save_formats
ph_setup_memcg

# perf record command line, built by prepending to the command in "$@"
if [ -n "$PH_MEMCG" ]; then
    # the command joins the memory cgroup before it starts; perf itself stays outside
    set -- sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$PH_MEMCG" "$@"
fi
set -- -- "$@"
[ "$PF_EXCLUDE" = 1 ] && set -- --exclude-perf "$@"
sed '1!G;h;$!d' "$PH_TMP/events.enabled" > "$PH_TMP/events.reversed"
while IFS= read -r _e; do set -- -e "$_e" "$@"; done < "$PH_TMP/events.reversed"
[ -n "$PH_BUFFER_KB" ] && set -- -m "${PH_BUFFER_KB}K" "$@"
case $PF_Z in '') ;; default) set -- -z "$@" ;; *) set -- "--compression-level=$PF_Z" "$@" ;; esac
[ "$PH_PIDFILTER" = 1 ] || set -- -a "$@"
set -- record -o "$PH_OUT/perf.data" -g "$@"
PF_RECORD_CMD="$PF_PERF $(ph_shjoin "$@")"

ph_stop_child() {
    # perf record stops on INT, writes its file and terminates the forked command
    kill -s INT "$PH_CHILD" 2>/dev/null
}

PH_MEMCG_SAVED=$PH_MEMCG
PH_MEMCG=""            # ph_start_child must not move perf into the group
ph_start_child "$PF_PERF" "$@" 2> "$PH_OUT/perf.record.log"
PH_MEMCG=$PH_MEMCG_SAVED
ph_save_common_before
PH_START_UTC=$(ph_utc)
PH_START_S=$(date +%s)
[ "$PH_QUIET" = 1 ] || ph_log "$PF_RECORD_CMD"
ph_release_child
ph_wait_child
[ "$PH_QUIET" = 1 ] || sed "s/^/$PH_PROG: perf: /" "$PH_OUT/perf.record.log" >&2
PH_END_UTC=$(ph_utc)
PH_END_S=$(date +%s)
ph_save_common_after
[ -s "$PH_OUT/perf.data" ] || ph_die "perf record wrote no perf.data (status $PH_WORKLOAD_RC)"

# lost records as perf counts them
"$PF_PERF" report -i "$PH_OUT/perf.data" --stats > "$PH_TMP/stats" 2>/dev/null
PF_LOST=$(awk '/^ *LOST events:/ { n += $3 } END { print n + 0 }' "$PH_TMP/stats")
PF_LOST_SAMPLES=$(awk '/^ *LOST_SAMPLES events:/ { n += $3 } END { print n + 0 }' "$PH_TMP/stats")
PF_SAMPLES=$(awk '/^ *SAMPLE events:/ { print $3; exit }' "$PH_TMP/stats")
PH_LOST_TOTAL=$((PF_LOST + PF_LOST_SAMPLES))
PH_LOST_JSON="{\"total\": $PH_LOST_TOTAL, \"source\": \"perf report --stats (LOST and LOST_SAMPLES records)\", \"lost_records\": $PF_LOST, \"lost_samples_records\": $PF_LOST_SAMPLES, \"samples\": $(ph_num_or_null "$PF_SAMPLES")}"
if [ "$PH_LOST_TOTAL" -gt 0 ]; then
    ph_warn "perf reports $PF_LOST LOST and $PF_LOST_SAMPLES LOST_SAMPLES records; use a larger --buffer-kb"
elif [ "$PH_QUIET" != 1 ]; then
    ph_log "no lost records ($PF_SAMPLES samples)"
fi

PF_SCRIPT_CMD=""
if [ "$PF_SCRIPT" = 1 ]; then
    cat /proc/kallsyms > "$PH_TMP/kallsyms"
    PF_SCRIPT_CMD="$PF_PERF script -i perf.data --kallsyms kallsyms"
    [ "$PH_QUIET" = 1 ] || ph_log "$PF_SCRIPT_CMD > perf.script.txt"
    "$PF_PERF" script -i "$PH_OUT/perf.data" --kallsyms "$PH_TMP/kallsyms" \
        > "$PH_OUT/perf.script.txt" 2> "$PH_TMP/script.log" \
        || { cat "$PH_TMP/script.log" >&2; ph_die "perf script failed"; }
fi

PH_EXTRA_JSON="  \"perf\": {\"file\": \"perf.data\", \"record_command\": $(ph_json_str "$PF_RECORD_CMD"), \"system_wide\": $([ "$PH_PIDFILTER" = 1 ] && echo false || echo true), \"zstd_records\": $([ -n "$PF_Z" ] && echo true || echo false), \"exclude_perf\": $(ph_bool "$PF_EXCLUDE"), \"script_command\": $(ph_json_str "$PF_SCRIPT_CMD")},"

ph_compress_bundle
ph_write_meta
_rc=$(ph_exit_status)
ph_restore
ph_pack_bundle
[ "$PH_QUIET" = 1 ] || ph_log "bundle: $PH_OUT$([ "$PH_PACK" = 1 ] && echo .tar.zst)"
exit "$_rc"
