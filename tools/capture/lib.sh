# tools/capture/lib.sh — code shared by ftrace.sh, trace-dat.sh and perf.sh (POSIX sh, busybox-safe).
#
# Sourced, never executed. A capture script sets PH_PROG, PH_TOOL and PH_USAGE, then calls
#   ph_init "$0" "$@"      (records the exact command line)
#   ph_parse_args "$@"     (common options; tool-specific ones are handled by ph_tool_opt)
# and drives the capture with the ph_* functions below. Every change made to tracefs or to the
# memory cgroup hierarchy is recorded in PH_TMP and undone by ph_restore, which runs from the
# EXIT trap (also reached after INT, TERM and HUP).

PH_VERSION=0.3.0
PH_TRACEFS=${PAGEHINT_TRACEFS:-/sys/kernel/tracing}
PH_MEMCG_ROOT=${PAGEHINT_MEMCG_ROOT:-/sys/fs/cgroup/memory}

# Event set of the pagehint capture recipe. "a|b" means: a, or b on kernels that only have the
# older name. Entries with '*' are expanded against the running kernel (may match nothing).
PH_DEFAULT_EVENTS='
filemap:mm_filemap_add_to_page_cache
filemap:mm_filemap_delete_from_page_cache
filemap:mm_filemap_get_pages
filemap:mm_filemap_map_pages
filemap:mm_filemap_fault
pagemap:mm_lru_insertion
pagemap:mm_lru_activate
vmscan:mm_vmscan_lru_isolate
vmscan:mm_vmscan_lru_shrink_inactive
vmscan:mm_vmscan_lru_shrink_active
vmscan:mm_vmscan_write_folio|vmscan:mm_vmscan_writepage
vmscan:mm_vmscan_direct_reclaim_begin
vmscan:mm_vmscan_direct_reclaim_end
vmscan:mm_vmscan_memcg_reclaim_begin
vmscan:mm_vmscan_memcg_reclaim_end
vmscan:mm_vmscan_memcg_softlimit_reclaim_begin
vmscan:mm_vmscan_memcg_softlimit_reclaim_end
vmscan:mm_vmscan_node_reclaim_begin
vmscan:mm_vmscan_node_reclaim_end
vmscan:mm_vmscan_kswapd_wake
vmscan:mm_vmscan_kswapd_sleep
vmscan:mm_vmscan_wakeup_kswapd
vmscan:mm_vmscan_*reclaim_begin
vmscan:mm_vmscan_*reclaim_end
vmscan:mm_vmscan_*kswapd*
writeback:writeback_dirty_folio|writeback:writeback_dirty_page
writeback:folio_wait_writeback|writeback:wait_on_page_writeback
kmem:mm_page_alloc
kmem:mm_page_free
kmem:mm_page_free_batched
exceptions:page_fault_user
sched:sched_process_fork
sched:sched_process_exit
'

# ---------------------------------------------------------------- messages, quoting, JSON

ph_log()  { echo "$PH_PROG: $*" >&2; }
ph_warn() { echo "$PH_PROG: warning: $*" >&2; }
ph_die()  { echo "$PH_PROG: error: $*" >&2; exit 2; }
ph_usage_error() { echo "$PH_PROG: error: $* (see --help)" >&2; exit 2; }

# one argument, quoted for sh when needed
ph_shquote() {
    case $1 in
        '' | *[!A-Za-z0-9_./:=,+@%^-]*)
            printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
        *) printf '%s' "$1" ;;
    esac
}

# all arguments, quoted, space separated
ph_shjoin() {
    _sj=""
    for _a in "$@"; do
        if [ -z "$_sj" ]; then _sj=$(ph_shquote "$_a"); else _sj="$_sj $(ph_shquote "$_a")"; fi
    done
    printf '%s' "$_sj"
}

# JSON string literal of $1
ph_json_str() {
    printf '"'
    printf '%s' "$1" | awk 'BEGIN { ORS = "" }
        { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r")
          if (NR > 1) printf "\\n"
          printf "%s", $0 }'
    printf '"'
}

# JSON array of strings from the arguments
ph_json_arr() {
    printf '['
    _ja_first=1
    for _a in "$@"; do
        [ $_ja_first = 1 ] || printf ', '
        _ja_first=0
        ph_json_str "$_a"
    done
    printf ']'
}

# JSON array of strings from the lines of a file
ph_json_arr_file() {
    printf '['
    if [ -s "$1" ]; then
        _ja_first=1
        while IFS= read -r _l || [ -n "$_l" ]; do
            [ -n "$_l" ] || continue
            [ $_ja_first = 1 ] || printf ', '
            _ja_first=0
            ph_json_str "$_l"
        done < "$1"
    fi
    printf ']'
}

ph_bool() { if [ "$1" = 1 ]; then printf true; else printf false; fi; }
ph_num_or_null() { case $1 in '' | *[!0-9-]*) printf null ;; *) printf '%s' "$1" ;; esac; }
ph_utc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

ph_is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }

# size with optional K/M/G suffix -> bytes
ph_size_bytes() {
    case $1 in
        *[kK]) _n=${1%?}; _m=1024 ;;
        *[mM]) _n=${1%?}; _m=1048576 ;;
        *[gG]) _n=${1%?}; _m=1073741824 ;;
        *) _n=$1; _m=1 ;;
    esac
    ph_is_uint "$_n" || return 1
    echo $((_n * _m))
}

# ---------------------------------------------------------------- argument parsing

ph_init() {
    PH_CMDLINE=$(ph_shjoin "$@")
    PH_OUT=""
    PH_STACKTRACE=0
    PH_PIDFILTER=0
    PH_MEMCG_LIMIT=""
    PH_MEMCG_LIMIT_BYTES=""
    PH_BUFFER_KB=""
    PH_INSTANCE=""
    PH_GLOBAL=0
    PH_STREAM=0
    PH_PACK=0
    PH_ZSTD=0
    PH_ZSTD_LEVEL=19
    PH_FINCORE_LIST=""
    PH_EXTRA_EVENTS=""
    PH_DEFAULT_SET=1
    PH_KALLSYMS_REF=""
    PH_QUIET=0
    PH_CHILD=""
    PH_STREAMER=""
    PH_RELEASER=""
    PH_INTERRUPTED=""
    PH_RESTORED=0
    PH_MOUNTED_TRACEFS=0
    PH_MEMCG=""
    PH_TMP=""
    PH_STATE_SAVED=0
    PH_INSTANCE_CREATED=0
    # --global: entries the top-level ring buffer held when the capture found it
    PH_GLOBAL_ENTRIES_BEFORE=""
    # a capture script that reads the ring buffer destructively sets this to what does so
    # ("trace-cmd extract"); --stream (trace_pipe) does too
    PH_CONSUMER=""
    PH_WORKLOAD_RC=""
    PH_FILES_NOTE=""
    # capture scripts may append NAME=text lines to extend meta.json ("tool_extra")
    PH_EXTRA_JSON=""
    PH_REFTOOLS_JSON=""
    PH_LOST_JSON="null"
    PH_T=""
}

PH_COMMON_USAGE='Common options:
  -o, --output DIR        bundle directory to create (default: ./pagehint-TOOL-UTCSTAMP);
                          must not exist or be empty
  -s, --stacktrace        attach a kernel stack to every event
      --pid-filter        record only the command and its descendants
      --memcg-limit SIZE  run the command in a new cgroup-v1 memory cgroup with this limit
                          (bytes, or K/M/G suffix, e.g. 64M); its memory.stat is saved
  -b, --buffer-kb N       per-CPU ring buffer size in KiB (default: kernel default)
      --event SYS:NAME    also enable this event (repeatable)
      --no-default-events enable only the --event events
      --fincore PATH      at the end, record `fincore --bytes` of PATH (repeatable; a
                          directory stands for every regular file below it)
      --kallsyms-ref FILE do not copy /proc/kallsyms when it is identical to FILE (plain or
                          .zst); meta.json then names FILE and its sha256 instead
      --zstd              compress the large files of the bundle individually (zstd)
      --zstd-level N      compression level for --zstd and --pack (default 19)
      --pack              write BUNDLE.tar.zst instead of the directory
  -q, --quiet             fewer progress messages
  -h, --help              this text
  -V, --version           print the tool version'

# ph_parse_args "$@" — common options; ph_tool_opt "$@" gets the others. Sets PH_NCMD to the
# number of trailing arguments that form the command (the caller shifts the rest away).
ph_parse_args() {
    PH_NCMD=0
    while [ $# -gt 0 ]; do
        case $1 in
            -h | --help) printf '%s\n\n%s\n' "$PH_USAGE" "$PH_COMMON_USAGE"; exit 0 ;;
            -V | --version) echo "$PH_PROG $PH_VERSION"; exit 0 ;;
            -o | --output) [ $# -ge 2 ] || ph_usage_error "$1 needs a directory"; PH_OUT=$2; shift 2 ;;
            --output=*) PH_OUT=${1#*=}; shift ;;
            -s | --stacktrace) PH_STACKTRACE=1; shift ;;
            --no-stacktrace) PH_STACKTRACE=0; shift ;;
            --pid-filter) PH_PIDFILTER=1; shift ;;
            --memcg-limit) [ $# -ge 2 ] || ph_usage_error "$1 needs a size"; PH_MEMCG_LIMIT=$2; shift 2 ;;
            --memcg-limit=*) PH_MEMCG_LIMIT=${1#*=}; shift ;;
            -b | --buffer-kb) [ $# -ge 2 ] || ph_usage_error "$1 needs a number"; PH_BUFFER_KB=$2; shift 2 ;;
            --buffer-kb=*) PH_BUFFER_KB=${1#*=}; shift ;;
            --event) [ $# -ge 2 ] || ph_usage_error "$1 needs SYS:NAME"; PH_EXTRA_EVENTS="$PH_EXTRA_EVENTS
$2"; shift 2 ;;
            --event=*) PH_EXTRA_EVENTS="$PH_EXTRA_EVENTS
${1#*=}"; shift ;;
            --no-default-events) PH_DEFAULT_SET=0; shift ;;
            --fincore) [ $# -ge 2 ] || ph_usage_error "$1 needs a path"; PH_FINCORE_LIST="$PH_FINCORE_LIST
$2"; shift 2 ;;
            --fincore=*) PH_FINCORE_LIST="$PH_FINCORE_LIST
${1#*=}"; shift ;;
            --kallsyms-ref) [ $# -ge 2 ] || ph_usage_error "$1 needs a file"; PH_KALLSYMS_REF=$2; shift 2 ;;
            --kallsyms-ref=*) PH_KALLSYMS_REF=${1#*=}; shift ;;
            --zstd) PH_ZSTD=1; shift ;;
            --zstd-level) [ $# -ge 2 ] || ph_usage_error "$1 needs a number"; PH_ZSTD_LEVEL=$2; shift 2 ;;
            --zstd-level=*) PH_ZSTD_LEVEL=${1#*=}; shift ;;
            --pack) PH_PACK=1; shift ;;
            -q | --quiet) PH_QUIET=1; shift ;;
            --) shift; break ;;
            -*)
                PH_SHIFT=0
                ph_tool_opt "$@"
                [ "$PH_SHIFT" -gt 0 ] || ph_usage_error "unknown option '$1'"
                shift "$PH_SHIFT" ;;
            *) break ;;
        esac
    done
    [ $# -gt 0 ] || ph_usage_error "no command given (usage: $PH_PROG [options] -- COMMAND [ARGS...])"
    PH_WORKLOAD_CMDLINE=$(ph_shjoin "$@")
    PH_WORKLOAD_JSON=$(ph_json_arr "$@")

    if [ -n "$PH_BUFFER_KB" ]; then
        ph_is_uint "$PH_BUFFER_KB" && [ "$PH_BUFFER_KB" -gt 0 ] || ph_usage_error "--buffer-kb wants a positive integer, not '$PH_BUFFER_KB'"
    fi
    ph_is_uint "$PH_ZSTD_LEVEL" && [ "$PH_ZSTD_LEVEL" -ge 1 ] && [ "$PH_ZSTD_LEVEL" -le 22 ] \
        || ph_usage_error "--zstd-level wants 1..22, not '$PH_ZSTD_LEVEL'"
    if [ -n "$PH_MEMCG_LIMIT" ]; then
        PH_MEMCG_LIMIT_BYTES=$(ph_size_bytes "$PH_MEMCG_LIMIT") && [ "$PH_MEMCG_LIMIT_BYTES" -gt 0 ] \
            || ph_usage_error "--memcg-limit wants a size such as 64M, not '$PH_MEMCG_LIMIT'"
    fi
    if [ -n "$PH_KALLSYMS_REF" ] && [ ! -f "$PH_KALLSYMS_REF" ]; then
        ph_usage_error "--kallsyms-ref: no such file '$PH_KALLSYMS_REF'"
    fi
    if [ -n "$PH_INSTANCE" ]; then
        case $PH_INSTANCE in *[!A-Za-z0-9_.-]* | .* ) ph_usage_error "bad instance name '$PH_INSTANCE'" ;; esac
    fi
    [ "$PH_DEFAULT_SET" = 1 ] || [ -n "$(echo "$PH_EXTRA_EVENTS" | tr -d ' \n')" ] \
        || ph_usage_error "--no-default-events needs at least one --event"
    if [ -z "$PH_OUT" ]; then
        PH_OUT="./pagehint-$PH_TOOL-$(date -u +%Y%m%dT%H%M%SZ)"
    fi
    PH_OUT=${PH_OUT%/}
    if [ -e "$PH_OUT" ]; then
        [ -d "$PH_OUT" ] || ph_usage_error "output '$PH_OUT' exists and is not a directory"
        [ -z "$(ls -A "$PH_OUT")" ] || ph_usage_error "output directory '$PH_OUT' is not empty"
    fi
    if [ "$PH_PACK" = 1 ] && [ -e "$PH_OUT.tar.zst" ]; then
        ph_usage_error "'$PH_OUT.tar.zst' already exists"
    fi
    PH_NCMD=$#
}

# tool-specific options: a capture script redefines ph_tool_opt "$@"; it sets PH_SHIFT to the
# number of arguments it consumed (0 = unknown option)
ph_tool_opt() { PH_SHIFT=0; }

ph_need_root() {
    [ "$(id -u)" = 0 ] || ph_die "must run as root"
}

ph_need_cmd() {
    for _c in "$@"; do
        command -v "$_c" >/dev/null 2>&1 || ph_die "'$_c' not found in PATH"
    done
}

# ---------------------------------------------------------------- tracefs

ph_mount_tracefs() {
    if [ ! -e "$PH_TRACEFS/tracing_on" ]; then
        [ -d "$PH_TRACEFS" ] || ph_die "$PH_TRACEFS does not exist (no tracefs support?)"
        mount -t tracefs nodev "$PH_TRACEFS" 2>/dev/null || ph_die "cannot mount tracefs on $PH_TRACEFS"
        PH_MOUNTED_TRACEFS=1
        echo mounted > "$PH_TMP/tracefs-mounted"
        [ "$PH_QUIET" = 1 ] || ph_log "mounted tracefs on $PH_TRACEFS"
    fi
    [ -w "$PH_TRACEFS/tracing_on" ] || ph_die "$PH_TRACEFS is not writable"
}

# expand the requested event list against the running kernel
# writes $PH_TMP/events.requested, events.enabled, events.missing
ph_resolve_events() {
    : > "$PH_TMP/events.requested"
    : > "$PH_TMP/events.enabled"
    : > "$PH_TMP/events.missing"
    {
        [ "$PH_DEFAULT_SET" = 1 ] && printf '%s\n' "$PH_DEFAULT_EVENTS"
        printf '%s\n' "$PH_EXTRA_EVENTS"
    } | while IFS= read -r _spec; do
        _spec=$(echo "$_spec" | tr -d ' \t')
        [ -n "$_spec" ] || continue
        echo "$_spec" >> "$PH_TMP/events.requested"
        case $_spec in
            *'*'*)
                _sys=${_spec%%:*}; _pat=${_spec#*:}
                for _d in "$PH_TRACEFS/events/$_sys"/$_pat; do
                    [ -d "$_d" ] && echo "$_sys:${_d##*/}" >> "$PH_TMP/events.enabled"
                done
                continue ;;
        esac
        _found=""
        _rest=$_spec
        while [ -n "$_rest" ]; do
            _alt=${_rest%%|*}
            case $_rest in *'|'*) _rest=${_rest#*|} ;; *) _rest="" ;; esac
            case $_alt in *:*) ;; *) ph_die "event '$_alt' is not of the form SYSTEM:NAME" ;; esac
            if [ -d "$PH_TRACEFS/events/${_alt%%:*}/${_alt#*:}" ]; then _found=$_alt; break; fi
        done
        if [ -n "$_found" ]; then
            echo "$_found" >> "$PH_TMP/events.enabled"
        else
            echo "${_spec%%|*}" >> "$PH_TMP/events.missing"
        fi
    done
    # keep first occurrence only
    awk '!seen[$0]++' "$PH_TMP/events.enabled" > "$PH_TMP/events.tmp" && mv "$PH_TMP/events.tmp" "$PH_TMP/events.enabled"
    [ -s "$PH_TMP/events.enabled" ] || ph_die "none of the requested events exists on this kernel"
    if [ -s "$PH_TMP/events.missing" ] && [ "$PH_QUIET" != 1 ]; then
        ph_log "events not available on $(uname -r): $(tr '\n' ' ' < "$PH_TMP/events.missing")"
    fi
}

# snapshot of a tracefs directory's control files (instance or top level)
ph_state_snapshot() { # dir file
    {
        for _f in tracing_on current_tracer buffer_size_kb trace_clock; do
            [ -e "$1/$_f" ] && echo "$_f=$(cat "$1/$_f")"
        done
        echo "set_event=$(tr '\n' ' ' < "$1/set_event")"
        [ -e "$1/set_event_pid" ] && echo "set_event_pid=$(tr '\n' ' ' < "$1/set_event_pid")"
        echo "trace_options=$(tr '\n' ' ' < "$1/trace_options")"
    } > "$2"
}

# entries in the ring buffer of a tracefs directory (top level or instance), all CPUs
ph_buffer_entries() { # dir
    awk '/^entries:/ { s += $2 } END { print s + 0 }' "$1"/per_cpu/cpu*/stats 2>/dev/null
}

# save what we are going to change in a tracefs directory (top-level mode)
ph_save_state() { # dir
    _s=$PH_TMP/saved
    mkdir -p "$_s"
    # the ring buffer is cleared again on restore only if it was empty
    echo "${PH_GLOBAL_ENTRIES_BEFORE:-$(ph_buffer_entries "$1")}" > "$_s/buffer_entries"
    cat "$1/tracing_on" > "$_s/tracing_on"
    cat "$1/set_event" > "$_s/set_event"
    if [ -e "$1/set_event_pid" ]; then cat "$1/set_event_pid" > "$_s/set_event_pid"; fi
    cat "$1/current_tracer" > "$_s/current_tracer"
    for _o in stacktrace event-fork; do
        [ -e "$1/options/$_o" ] && cat "$1/options/$_o" > "$_s/opt-$_o"
    done
    # buffer size: one value, or per CPU when they differ ("X"); "N (expanded: M)" keeps M
    _bs=$(cat "$1/buffer_size_kb")
    case $_bs in
        *expanded:*) _bs=$(echo "$_bs" | sed 's/.*expanded: *\([0-9]*\).*/\1/') ;;
    esac
    if ph_is_uint "$_bs"; then
        echo "$_bs" > "$_s/buffer_size_kb"
    else
        for _c in "$1"/per_cpu/cpu*; do
            echo "${_c##*/} $(cat "$_c/buffer_size_kb" | sed 's/[^0-9].*//')"
        done > "$_s/buffer_size_kb.percpu"
    fi
    PH_STATE_SAVED=1
}

ph_restore_state() { # dir
    _s=$PH_TMP/saved
    [ -d "$_s" ] || return 0
    echo 0 > "$1/tracing_on" 2>/dev/null
    : > "$1/set_event" 2>/dev/null
    while IFS= read -r _e; do
        [ -n "$_e" ] && echo "$_e" >> "$1/set_event" 2>/dev/null
    done < "$_s/set_event"
    if [ -f "$_s/set_event_pid" ]; then
        : > "$1/set_event_pid" 2>/dev/null
        for _p in $(cat "$_s/set_event_pid"); do
            echo "$_p" >> "$1/set_event_pid" 2>/dev/null
        done
    fi
    for _o in stacktrace event-fork; do
        [ -f "$_s/opt-$_o" ] && cat "$_s/opt-$_o" > "$1/options/$_o" 2>/dev/null
    done
    if [ "$(cat "$1/current_tracer")" != "$(cat "$_s/current_tracer")" ]; then
        cat "$_s/current_tracer" > "$1/current_tracer" 2>/dev/null
    fi
    if [ -f "$_s/buffer_size_kb" ]; then
        _want=$(cat "$_s/buffer_size_kb")
        _now=$(sed 's/[^0-9].*//' "$1/buffer_size_kb")
        [ "$_now" = "$_want" ] || echo "$_want" > "$1/buffer_size_kb" 2>/dev/null
    elif [ -f "$_s/buffer_size_kb.percpu" ]; then
        while read -r _c _v; do
            echo "$_v" > "$1/per_cpu/$_c/buffer_size_kb" 2>/dev/null
        done < "$_s/buffer_size_kb.percpu"
    fi
    # An empty buffer is left empty: the capture's entries are removed (also after an error or a
    # signal; reading 'trace' does not consume them). Entries found there stay, and so do ours.
    if [ "$(cat "$_s/buffer_entries" 2>/dev/null)" = 0 ]; then
        { : > "$1/trace"; } 2>/dev/null || ph_warn "could not clear the ring buffer of $1"
    fi
    cat "$_s/tracing_on" > "$1/tracing_on" 2>/dev/null
}

# --global: what to do with entries someone else left in the top-level ring buffer. A capture that
# reads it through 'trace' (not consuming) keeps them: they also appear in its trace text, ahead of
# its own entries, and its entries cannot be removed without theirs, so both stay behind (a warning
# and meta.json "global_buffer_entries_before" say so). A capture that consumes the buffer (--stream,
# trace-cmd extract) would take them away, and refuses to start.
ph_check_global_buffer() {
    PH_GLOBAL_ENTRIES_BEFORE=$(ph_buffer_entries "$PH_TRACEFS")
    ph_is_uint "$PH_GLOBAL_ENTRIES_BEFORE" || ph_die "cannot read $PH_TRACEFS/per_cpu/cpu*/stats"
    [ "$PH_GLOBAL_ENTRIES_BEFORE" -gt 0 ] || return 0
    _consumer=$PH_CONSUMER
    [ "$PH_STREAM" = 1 ] && _consumer="--stream (reading trace_pipe)"
    if [ -n "$_consumer" ]; then
        ph_die "the top-level ring buffer holds $PH_GLOBAL_ENTRIES_BEFORE entries this capture did not write, and $_consumer would consume them; capture in an instance (without --global), or clear the buffer first (echo > $PH_TRACEFS/trace) if they are not needed"
    fi
    ph_warn "the top-level ring buffer holds $PH_GLOBAL_ENTRIES_BEFORE entries this capture did not write: they are kept, so trace.txt holds them too, ahead of this capture's entries, and this capture's entries stay in the buffer with them afterwards (an instance capture, without --global, keeps them apart)"
}

# PH_T: the tracefs directory the capture uses
ph_setup_tracefs() {
    if [ "$PH_GLOBAL" = 1 ]; then
        PH_T=$PH_TRACEFS
        ph_check_global_buffer
        ph_save_state "$PH_T"
    else
        [ -n "$PH_INSTANCE" ] || PH_INSTANCE="pagehint-$$"
        PH_T=$PH_TRACEFS/instances/$PH_INSTANCE
        [ -d "$PH_TRACEFS/instances" ] || ph_die "this kernel has no tracefs instances (use --global)"
        [ ! -e "$PH_T" ] || ph_die "tracefs instance '$PH_INSTANCE' already exists"
        mkdir "$PH_T" 2>/dev/null || ph_die "cannot create tracefs instance $PH_T"
        PH_INSTANCE_CREATED=1
        echo "$PH_T" > "$PH_TMP/instance-created"
    fi
    echo 0 > "$PH_T/tracing_on"
    : > "$PH_T/set_event"
    if [ -e "$PH_T/set_event_pid" ]; then : > "$PH_T/set_event_pid"; fi
    [ -e "$PH_T/options/event-fork" ] && echo 0 > "$PH_T/options/event-fork"
    if [ -n "$PH_BUFFER_KB" ]; then
        echo "$PH_BUFFER_KB" > "$PH_T/buffer_size_kb" || ph_die "cannot set buffer_size_kb to $PH_BUFFER_KB"
    fi
    if [ "$PH_STACKTRACE" = 1 ]; then
        echo 1 > "$PH_T/options/stacktrace" || ph_die "cannot enable options/stacktrace"
    else
        echo 0 > "$PH_T/options/stacktrace"
    fi
    while IFS= read -r _e; do
        echo "$_e" >> "$PH_T/set_event" 2>/dev/null || ph_die "cannot enable event $_e"
    done < "$PH_TMP/events.enabled"
    if [ "$PH_GLOBAL" = 1 ] && [ "$PH_GLOBAL_ENTRIES_BEFORE" != 0 ]; then
        # entries found in the top-level buffer are kept: count lost events from here on
        ph_read_cpu_stats
        mv "$PH_TMP/cpustats" "$PH_TMP/cpustats.base"
    else
        : > "$PH_T/trace"
    fi
    PH_BUFFER_KB_EFFECTIVE=$(sed 's/[^0-9].*//' "$PH_T/buffer_size_kb")
    PH_TRACE_CLOCK=$(sed 's/.*\[\(.*\)\].*/\1/' "$PH_T/trace_clock")
}

# per-CPU ring buffer statistics -> $PH_TMP/cpustats (cpu entries overrun commit_overrun dropped read)
ph_read_cpu_stats() {
    : > "$PH_TMP/cpustats"
    for _c in "$PH_T"/per_cpu/cpu*; do
        [ -f "$_c/stats" ] || continue
        awk -v cpu="${_c##*cpu}" '
            /^entries:/ { e = $2 } /^overrun:/ { o = $2 } /^commit overrun:/ { co = $3 }
            /^dropped events:/ { d = $3 } /^read events:/ { r = $3 }
            END { print cpu, e + 0, o + 0, co + 0, d + 0, r + 0 }' "$_c/stats" >> "$PH_TMP/cpustats"
    done
    sort -n "$PH_TMP/cpustats" -o "$PH_TMP/cpustats"
    if [ -f "$PH_TMP/cpustats.base" ]; then
        # counters from before the capture (entries found in the top-level buffer were kept)
        awk 'NR == FNR { o[$1] = $3; co[$1] = $4; d[$1] = $5; r[$1] = $6; next }
             { print $1, $2, $3 - o[$1], $4 - co[$1], $5 - d[$1], $6 - r[$1] }' \
            "$PH_TMP/cpustats.base" "$PH_TMP/cpustats" > "$PH_TMP/cpustats.tmp" \
            && mv "$PH_TMP/cpustats.tmp" "$PH_TMP/cpustats"
    fi
    PH_LOST_TOTAL=$(awk '{ s += $3 + $4 + $5 } END { print s + 0 }' "$PH_TMP/cpustats")
}

ph_report_lost() {
    if [ "${PH_LOST_TOTAL:-0}" -gt 0 ]; then
        ph_warn "LOST $PH_LOST_TOTAL ring-buffer entries (per CPU: $(awk '{ printf "cpu%s overrun=%s commit_overrun=%s dropped=%s; ", $1, $3, $4, $5 }' "$PH_TMP/cpustats")) — use a larger --buffer-kb or --stream"
    elif [ "$PH_QUIET" != 1 ]; then
        ph_log "no lost events (per-CPU overrun/dropped counters are 0)"
    fi
}

ph_lost_json() {
    printf '{"total": %s, "source": "tracefs per_cpu/cpuN/stats", "per_cpu": [' "${PH_LOST_TOTAL:-0}"
    awk 'BEGIN { ORS = "" } { if (NR > 1) print ", "
        printf "{\"cpu\": %s, \"entries_left\": %s, \"overrun\": %s, \"commit_overrun\": %s, \"dropped\": %s, \"read\": %s}", $1, $2, $3, $4, $5, $6 }' "$PH_TMP/cpustats"
    printf ']}'
}

# ---------------------------------------------------------------- process handling

# the pid and all its descendants, parents first
ph_descendants() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
        { pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " "); kids[f[2]] = kids[f[2]] " " pid }
        END { q[1] = root; n = 1; i = 1
              while (i <= n) { p = q[i++]; print p; m = split(kids[p], k, " ")
                               for (j = 1; j <= m; j++) q[++n] = k[j] } }'
}

ph_kill_tree() { # pid signal
    _pids=$(ph_descendants "$1")
    # shellcheck disable=SC2086
    [ -n "$_pids" ] && kill -s "$2" $_pids 2>/dev/null
    return 0
}

ph_on_signal() { # NAME
    if [ -n "$PH_INTERRUPTED" ]; then
        ph_log "second SIG$1, giving up"
        exit $(ph_signum "$1")
    fi
    PH_INTERRUPTED=$1
    ph_log "caught SIG$1: stopping the command and saving what was captured"
    if [ -n "$PH_CHILD" ]; then
        ph_stop_child
    else
        exit $(ph_signum "$1")
    fi
}

ph_signum() {
    case $1 in INT) echo 130 ;; TERM) echo 143 ;; HUP) echo 129 ;; *) echo 1 ;; esac
}

# default: TERM the command's tree; perf.sh overrides (it forwards to perf record)
ph_stop_child() {
    ph_kill_tree "$PH_CHILD" TERM
}

ph_install_traps() {
    trap 'ph_on_exit' EXIT
    ph_install_signal_traps
}

ph_install_signal_traps() {
    trap 'ph_on_signal INT' INT
    trap 'ph_on_signal TERM' TERM
    trap 'ph_on_signal HUP' HUP
}

ph_on_exit() {
    _rc=$?
    ph_restore
    [ -n "$PH_TMP" ] && [ -d "$PH_TMP" ] && rm -rf "$PH_TMP"
    exit $_rc
}

# undo everything, idempotent
ph_restore() {
    [ "$PH_RESTORED" = 1 ] && return 0
    PH_RESTORED=1
    # a further INT/TERM/HUP must not cut the restore short (it would leave tracefs half restored)
    trap '' INT TERM HUP
    if [ -n "$PH_STREAMER" ]; then kill "$PH_STREAMER" 2>/dev/null; wait "$PH_STREAMER" 2>/dev/null; fi
    if [ -n "$PH_RELEASER" ]; then kill "$PH_RELEASER" 2>/dev/null; fi
    if [ -n "$PH_CHILD" ] && kill -0 "$PH_CHILD" 2>/dev/null; then
        ph_kill_tree "$PH_CHILD" TERM
        sleep 1
        ph_kill_tree "$PH_CHILD" KILL
        wait "$PH_CHILD" 2>/dev/null
    fi
    if [ "$PH_INSTANCE_CREATED" = 1 ] && [ -d "$PH_T" ]; then
        echo 0 > "$PH_T/tracing_on" 2>/dev/null
        : > "$PH_T/set_event" 2>/dev/null
        rmdir "$PH_T" 2>/dev/null || ph_warn "could not remove tracefs instance $PH_T"
    fi
    if [ "$PH_STATE_SAVED" = 1 ]; then
        ph_restore_state "$PH_T"
    fi
    if [ -n "$PH_MEMCG" ] && [ -d "$PH_MEMCG" ]; then
        _i=0
        while ! rmdir "$PH_MEMCG" 2>/dev/null; do
            _i=$((_i + 1))
            if [ $_i -gt 10 ]; then ph_warn "could not remove memory cgroup $PH_MEMCG"; break; fi
            for _p in $(cat "$PH_MEMCG/cgroup.procs" 2>/dev/null); do kill -s KILL "$_p" 2>/dev/null; done
            sleep 1
        done
    fi
    if [ "$PH_MOUNTED_TRACEFS" = 1 ]; then
        umount "$PH_TRACEFS" 2>/dev/null || ph_warn "could not unmount $PH_TRACEFS"
    fi
    ph_install_signal_traps
}

# ---------------------------------------------------------------- bundle pieces

ph_make_tmp() {
    PH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pagehint-capture.XXXXXX") || ph_die "mktemp failed"
}

ph_make_bundle_dir() {
    mkdir -p "$PH_OUT" || ph_die "cannot create $PH_OUT"
    PH_OUT_ABS=$(cd "$PH_OUT" && pwd)
}

ph_setup_memcg() {
    [ -n "$PH_MEMCG_LIMIT_BYTES" ] || return 0
    [ -f "$PH_MEMCG_ROOT/memory.limit_in_bytes" ] \
        || ph_die "no cgroup-v1 memory controller at $PH_MEMCG_ROOT (needed for --memcg-limit)"
    PH_MEMCG=$PH_MEMCG_ROOT/pagehint-$$
    [ ! -e "$PH_MEMCG" ] || ph_die "memory cgroup $PH_MEMCG already exists"
    mkdir "$PH_MEMCG" || ph_die "cannot create memory cgroup $PH_MEMCG"
    echo "$PH_MEMCG_LIMIT_BYTES" > "$PH_MEMCG/memory.limit_in_bytes" \
        || ph_die "cannot set memory.limit_in_bytes of $PH_MEMCG"
}

ph_save_common_before() {
    cat /proc/vmstat > "$PH_OUT/vmstat.before"
}

ph_save_common_after() {
    cat /proc/vmstat > "$PH_OUT/vmstat.after"
    uname -a > "$PH_OUT/uname.txt"
    if [ -n "$PH_MEMCG" ] && [ -d "$PH_MEMCG" ]; then
        cat "$PH_MEMCG/memory.stat" > "$PH_OUT/memory.stat"
        PH_MEMCG_MAX_USAGE=$(cat "$PH_MEMCG/memory.max_usage_in_bytes" 2>/dev/null)
        PH_MEMCG_FAILCNT=$(cat "$PH_MEMCG/memory.failcnt" 2>/dev/null)
    fi
    ph_save_fincore
    ph_save_kallsyms
}

ph_save_fincore() {
    [ -n "$(echo "$PH_FINCORE_LIST" | tr -d ' \n')" ] || return 0
    if ! command -v fincore >/dev/null 2>&1; then
        ph_warn "fincore not found; fincore.txt not written"
        return 0
    fi
    {
        echo "RES PAGES SIZE FILE"
        printf '%s\n' "$PH_FINCORE_LIST" | while IFS= read -r _p; do
            [ -n "$_p" ] || continue
            if [ -d "$_p" ]; then
                find "$_p" -type f -exec fincore --bytes --noheadings {} + 2>/dev/null
            elif [ -e "$_p" ]; then
                fincore --bytes --noheadings "$_p" 2>/dev/null
            else
                ph_warn "fincore: '$_p' does not exist" 
            fi
        done
    } > "$PH_OUT/fincore.txt"
}

ph_save_kallsyms() {
    PH_KALLSYMS_SHA=$(sha256sum < /proc/kallsyms | cut -d' ' -f1)
    PH_KALLSYMS_SHARED=""
    if [ -n "$PH_KALLSYMS_REF" ]; then
        case $PH_KALLSYMS_REF in
            *.zst) _ref=$(zstd -dc "$PH_KALLSYMS_REF" | sha256sum | cut -d' ' -f1) ;;
            *) _ref=$(sha256sum < "$PH_KALLSYMS_REF" | cut -d' ' -f1) ;;
        esac
        if [ "$_ref" = "$PH_KALLSYMS_SHA" ]; then
            PH_KALLSYMS_SHARED=$PH_KALLSYMS_REF
            # as seen from the bundle directory, when the file is beside the bundle
            _rd=$(cd "$(dirname "$PH_KALLSYMS_REF")" && pwd)
            _bd=$(cd "$(dirname "$PH_OUT")" && pwd)
            if [ "$_rd" = "$_bd" ]; then
                PH_KALLSYMS_SHARED="../$(basename "$PH_KALLSYMS_REF")"
            else
                PH_KALLSYMS_SHARED="$_rd/$(basename "$PH_KALLSYMS_REF")"
            fi
            return 0
        fi
        ph_warn "/proc/kallsyms differs from $PH_KALLSYMS_REF; copying it into the bundle"
    fi
    cat /proc/kallsyms > "$PH_OUT/kallsyms"
}

# formats/<system>/<event>/format of the enabled events, header_page, header_event,
# and the ftrace entries a text/raw parser meets (kernel_stack, print)
ph_save_formats() {
    _f=$PH_OUT/formats
    mkdir -p "$_f"
    cat "$PH_TRACEFS/events/header_page" > "$_f/header_page"
    cat "$PH_TRACEFS/events/header_event" > "$_f/header_event"
    {
        cat "$PH_TMP/events.enabled"
        echo ftrace:kernel_stack
        echo ftrace:print
    } | while IFS= read -r _e; do
        _sys=${_e%%:*}; _ev=${_e#*:}
        [ -f "$PH_TRACEFS/events/$_sys/$_ev/format" ] || continue
        mkdir -p "$_f/$_sys/$_ev"
        cat "$PH_TRACEFS/events/$_sys/$_ev/format" > "$_f/$_sys/$_ev/format"
    done
}

# runs "$@" in the background, held until ph_release_child: PH_CHILD is its pid before it starts
ph_start_child() {
    mkfifo "$PH_TMP/go" || ph_die "mkfifo failed"
    ( read -r _go < "$PH_TMP/go"; exec "$@" ) &
    PH_CHILD=$!
    if [ -n "$PH_MEMCG" ]; then
        echo "$PH_CHILD" > "$PH_MEMCG/cgroup.procs" || ph_die "cannot move the command into $PH_MEMCG"
    fi
}

# the writer runs in the background: if the held command was killed before it read the fifo,
# a foreground open of the fifo would block forever
ph_release_child() {
    echo go > "$PH_TMP/go" &
    PH_RELEASER=$!
}

ph_wait_child() {
    while :; do
        wait "$PH_CHILD"
        PH_WORKLOAD_RC=$?
        kill -0 "$PH_CHILD" 2>/dev/null || break
    done
    _pid=$PH_CHILD
    PH_CHILD=""
    if [ -n "$PH_RELEASER" ]; then
        kill "$PH_RELEASER" 2>/dev/null
        wait "$PH_RELEASER" 2>/dev/null
        PH_RELEASER=""
    fi
    if [ -n "$PH_INTERRUPTED" ]; then
        ph_log "command (pid $_pid) ended after SIG$PH_INTERRUPTED, status $PH_WORKLOAD_RC"
    elif [ "$PH_WORKLOAD_RC" != 0 ]; then
        ph_warn "command exited with status $PH_WORKLOAD_RC"
    elif [ "$PH_QUIET" != 1 ]; then
        ph_log "command finished (status 0)"
    fi
}

# tracefs-based capture around "$@": everything up to stopping the buffer
ph_tracefs_capture() {
    ph_setup_memcg
    # workloads write phase markers here (they appear as print entries in the trace)
    PAGEHINT_TRACE_MARKER=$PH_T/trace_marker
    export PAGEHINT_TRACE_MARKER
    ph_start_child "$@"
    if [ "$PH_PIDFILTER" = 1 ]; then
        [ -e "$PH_T/set_event_pid" ] || ph_die "this kernel has no set_event_pid"
        echo "$PH_CHILD" > "$PH_T/set_event_pid" || ph_die "cannot write set_event_pid"
        echo 1 > "$PH_T/options/event-fork" || ph_die "cannot enable options/event-fork"
    fi
    if [ "$PH_STREAM" = 1 ]; then
        cat "$PH_T/trace_pipe" > "$PH_OUT/trace.txt" &
        PH_STREAMER=$!
    fi
    ph_save_common_before
    PH_START_UTC=$(ph_utc)
    PH_START_S=$(date +%s)
    [ "$PH_QUIET" = 1 ] || ph_log "capturing into $PH_OUT: $PH_WORKLOAD_CMDLINE"
    echo 1 > "$PH_T/tracing_on"
    [ -n "$PH_INTERRUPTED" ] || ph_release_child
    ph_wait_child
    echo 0 > "$PH_T/tracing_on"
    # No event may be recorded after the workload, even if a reader (trace-cmd extract) turns tracing
    # back on: the text and the extracted trace.dat must hold the same records.
    echo 0 > "$PH_T/events/enable" 2>/dev/null
    PH_END_UTC=$(ph_utc)
    PH_END_S=$(date +%s)
    ph_read_cpu_stats
    ph_save_common_after
    if [ "$PH_STREAM" = 1 ]; then
        # drain: wait until the per-CPU buffers are empty, then stop the reader
        _i=0
        while [ $_i -lt 300 ]; do
            _left=0
            for _c in "$PH_T"/per_cpu/cpu*; do
                _e=$(awk '/^entries:/ { print $2 }' "$_c/stats")
                _left=$((_left + _e))
            done
            [ "$_left" = 0 ] && break
            sleep 0.1 2>/dev/null || sleep 1
            _i=$((_i + 1))
        done
        sleep 1
        kill "$PH_STREAMER" 2>/dev/null
        wait "$PH_STREAMER" 2>/dev/null
        PH_STREAMER=""
        ph_read_cpu_stats
    fi
}

ph_save_trace_text() {
    cat "$PH_T/trace" > "$PH_OUT/trace.txt" || ph_die "cannot read $PH_T/trace"
}

# compress the large files of the bundle individually
ph_compress_bundle() {
    [ "$PH_ZSTD" = 1 ] || return 0
    for _f in trace.txt kallsyms perf.data perf.script.txt trace.report.txt trace.v6.dat; do
        [ -f "$PH_OUT/$_f" ] || continue
        zstd -q -T0 -"$PH_ZSTD_LEVEL" --rm -f "$PH_OUT/$_f" -o "$PH_OUT/$_f.zst" \
            || ph_die "zstd failed on $PH_OUT/$_f"
    done
}

# meta.json; tool-specific JSON members may be given in $PH_EXTRA_JSON (text starting with ',')
ph_write_meta() {
    _m=$PH_OUT/meta.json
    (cd "$PH_OUT" && find . -type f ! -name meta.json | sed 's|^\./||' | LC_ALL=C sort) > "$PH_TMP/files"
    echo meta.json >> "$PH_TMP/files"
    {
        printf '{\n'
        printf '  "bundle_format": "pagehint-capture-bundle/1",\n'
        printf '  "tool": %s,\n' "$(ph_json_str "$PH_TOOL")"
        printf '  "tool_script": %s,\n' "$(ph_json_str "tools/capture/$PH_PROG")"
        printf '  "tool_version": %s,\n' "$(ph_json_str "$PH_VERSION")"
        printf '  "reference_tool_versions": {%s},\n' "$PH_REFTOOLS_JSON"
        printf '  "kernel_release": %s,\n' "$(ph_json_str "$(uname -r)")"
        printf '  "uname": %s,\n' "$(ph_json_str "$(uname -a)")"
        printf '  "hostname": %s,\n' "$(ph_json_str "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)")"
        printf '  "start_utc": %s,\n' "$(ph_json_str "$PH_START_UTC")"
        printf '  "end_utc": %s,\n' "$(ph_json_str "$PH_END_UTC")"
        printf '  "duration_s": %s,\n' "$(ph_num_or_null "$((PH_END_S - PH_START_S))")"
        printf '  "capture_command": %s,\n' "$(ph_json_str "$PH_CMDLINE")"
        printf '  "workload_command": %s,\n' "$(ph_json_str "$PH_WORKLOAD_CMDLINE")"
        printf '  "workload_argv": %s,\n' "$PH_WORKLOAD_JSON"
        printf '  "workload_exit_status": %s,\n' "$(ph_num_or_null "$PH_WORKLOAD_RC")"
        if [ -n "$PH_INTERRUPTED" ]; then
            printf '  "interrupted_by": %s,\n' "$(ph_json_str "SIG$PH_INTERRUPTED")"
        else
            printf '  "interrupted_by": null,\n'
        fi
        printf '  "events_requested": %s,\n' "$(ph_json_arr_file "$PH_TMP/events.requested")"
        printf '  "events_enabled": %s,\n' "$(ph_json_arr_file "$PH_TMP/events.enabled")"
        printf '  "events_missing": %s,\n' "$(ph_json_arr_file "$PH_TMP/events.missing")"
        printf '  "options": {\n'
        printf '    "stacktrace": %s,\n' "$(ph_bool "$PH_STACKTRACE")"
        printf '    "pid_filter": %s,\n' "$(ph_bool "$PH_PIDFILTER")"
        if [ -n "$PH_MEMCG_LIMIT_BYTES" ]; then
            printf '    "memcg": {"controller": "cgroup-v1 memory", "path": %s, "limit_bytes": %s, "max_usage_bytes": %s, "failcnt": %s},\n' \
                "$(ph_json_str "$PH_MEMCG")" "$PH_MEMCG_LIMIT_BYTES" \
                "$(ph_num_or_null "$PH_MEMCG_MAX_USAGE")" "$(ph_num_or_null "$PH_MEMCG_FAILCNT")"
        else
            printf '    "memcg": null,\n'
        fi
        printf '    "buffer_size_kb": %s,\n' "$(ph_num_or_null "$PH_BUFFER_KB_EFFECTIVE")"
        printf '    "buffer_size_kb_requested": %s,\n' "$(ph_num_or_null "$PH_BUFFER_KB")"
        printf '    "stream": %s,\n' "$(ph_bool "$PH_STREAM")"
        printf '    "zstd_files": %s,\n' "$(ph_bool "$PH_ZSTD")"
        if [ -n "$PH_INSTANCE" ] && [ "$PH_GLOBAL" != 1 ]; then
            printf '    "tracefs_instance": %s,\n' "$(ph_json_str "$PH_INSTANCE")"
        else
            printf '    "tracefs_instance": null,\n'
        fi
        printf '    "trace_clock": %s\n' "$(ph_json_str "${PH_TRACE_CLOCK:-}")"
        printf '  },\n'
        printf '  "lost_events": %s,\n' "$PH_LOST_JSON"
        # --global: entries found in the top-level buffer (> 0: trace.txt holds them too, and this
        # capture's entries were left there with them); null for an instance capture
        printf '  "global_buffer_entries_before": %s,\n' "$(ph_num_or_null "$PH_GLOBAL_ENTRIES_BEFORE")"
        if [ -n "$PH_KALLSYMS_SHARED" ]; then
            printf '  "kallsyms": {"file": null, "shared": %s, "sha256": %s, "note": "identical to /proc/kallsyms at the end of this capture; path relative to the bundle directory unless absolute"},\n' \
                "$(ph_json_str "$PH_KALLSYMS_SHARED")" "$(ph_json_str "$PH_KALLSYMS_SHA")"
        else
            _kf=kallsyms; [ -f "$PH_OUT/kallsyms.zst" ] && _kf=kallsyms.zst
            printf '  "kallsyms": {"file": %s, "shared": null, "sha256": %s},\n' \
                "$(ph_json_str "$_kf")" "$(ph_json_str "$PH_KALLSYMS_SHA")"
        fi
        printf '  "fincore_paths": %s,\n' "$(printf '%s\n' "$PH_FINCORE_LIST" | sed '/^$/d' > "$PH_TMP/fc"; ph_json_arr_file "$PH_TMP/fc")"
        [ -n "$PH_EXTRA_JSON" ] && printf '%s\n' "$PH_EXTRA_JSON"
        printf '  "files": %s\n' "$(ph_json_arr_file "$PH_TMP/files")"
        printf '}\n'
    } > "$_m"
}

ph_pack_bundle() {
    [ "$PH_PACK" = 1 ] || return 0
    _parent=$(dirname "$PH_OUT"); _name=$(basename "$PH_OUT")
    tar -cf - -C "$_parent" "$_name" | zstd -q -T0 -"$PH_ZSTD_LEVEL" -o "$PH_OUT.tar.zst" \
        || ph_die "packing $PH_OUT.tar.zst failed"
    rm -rf "$PH_OUT"
    ph_log "wrote $PH_OUT.tar.zst"
}

# final exit status: signal > workload failure > 0
ph_exit_status() {
    if [ -n "$PH_INTERRUPTED" ]; then ph_signum "$PH_INTERRUPTED"
    elif [ -n "$PH_WORKLOAD_RC" ] && [ "$PH_WORKLOAD_RC" != 0 ]; then echo "$PH_WORKLOAD_RC"
    else echo 0
    fi
}
