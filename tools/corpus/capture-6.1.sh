#!/bin/bash
# tools/corpus/capture-6.1.sh — reproduce the kernel-6.1 trace corpus in traces/ end to end:
# build the Debian 6.1 qemu guest (tools/guest/build.sh), boot it and run
# tools/guest/capture-corpus.sh inside it (tools/guest/run.sh), copy the k6.1-* bundles and the
# shared k6.1-kallsyms.zst into the corpus directory, check the size limits, and regenerate
# MANIFEST.md with tools/corpus/manifest.sh.
#
# The guest mirrors tools/corpus/capture-6.18.sh: same capture tools, options and bundle names
# (trace-dat.sh -s --pid-filter for the five workloads, --v6 --report for write-fsync, perf.sh
# --pid-filter --script for memcg-reclaim (-z) and mmap-random), with smaller workloads
# (384 MiB guest; 6.1 page cache has no large folios) and 32 MiB per-CPU ring buffers.
set -euo pipefail
PROG=capture-6.1.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
    cat <<'EOF'
Usage: tools/corpus/capture-6.1.sh [options]

Options:
  --out DIR        corpus directory (default: REPO/traces); existing k6.1-* entries are replaced
  --dir DIR        guest work dir (default: $PAGEHINT_GUEST_DIR or /var/tmp/pagehint-guest)
  --timeout SECS   hard limit for the guest run (default 3600)
  --accel MODE     auto | kvm | tcg (passed to tools/guest/run.sh; default auto)
  --from-run DIR   skip build and guest run; take the bundles from the output dir of an
                   earlier `tools/guest/run.sh --script tools/guest/capture-corpus.sh`
  --no-manifest    do not run tools/corpus/manifest.sh
  -h, --help       show this help

Needs root (qemu, mkfs), network access to the Debian archive for the first build, and the host
tools listed in tools/guest/README.md. Takes about 25 minutes with TCG (most of it zstd -19
inside the emulated guest).
EOF
}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/traces
W=${PAGEHINT_GUEST_DIR:-/var/tmp/pagehint-guest}
TMO=3600
ACCEL=auto
MANIFEST=1
FROM=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
        --dir) [ $# -ge 2 ] || die "--dir needs a directory"; W=$2; shift 2 ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; TMO=$2; shift 2 ;;
        --accel) [ $# -ge 2 ] || die "--accel needs a value"; ACCEL=$2; shift 2 ;;
        --from-run) [ $# -ge 2 ] || die "--from-run needs a directory"; FROM=$2; shift 2 ;;
        --no-manifest) MANIFEST=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -n "$FROM" ]; then
    [ -d "$FROM/bundles" ] || die "$FROM has no bundles/ (not a capture-corpus.sh run?)"
    RUN=$(cd "$FROM" && pwd)
    log "using the bundles of the earlier run $RUN"
else
    RUN="$W/corpus-run-$(date -u +%Y%m%dT%H%M%SZ)"
    log "building the guest"
    PAGEHINT_GUEST_DIR=$W "$REPO/tools/guest/build.sh" --dir "$W"
    log "capturing in the guest (results: $RUN)"
    rc=0
    PAGEHINT_GUEST_DIR=$W "$REPO/tools/guest/run.sh" --dir "$W" --no-build --out "$RUN" --timeout "$TMO" \
        --accel "$ACCEL" --script "$REPO/tools/guest/capture-corpus.sh" || rc=$?
    [ "$rc" = 0 ] || die "guest run failed (status $rc); see $RUN/serial.log and $RUN/job.log"
fi

B=$RUN/bundles
[ -f "$B/k6.1-kallsyms.zst" ] || die "the guest produced no k6.1-kallsyms.zst"
n=0
for m in "$B"/k6.1-*/meta.json; do
    [ -f "$m" ] || continue
    n=$((n + 1))
    lost=$(jq -r '.lost_events.total' "$m")
    [ "$lost" = 0 ] || log "warning: $(basename "$(dirname "$m")") reports $lost lost events"
    st=$(jq -r '.workload_exit_status' "$m")
    [ "$st" = 0 ] || die "$(basename "$(dirname "$m")"): workload exit status $st"
done
[ "$n" -eq 7 ] || die "expected 7 bundles from the guest, got $n"

# size limits: every file <= 5 MB, the whole 6.1 corpus <= 18 MB
big=$(find "$B" -type f -size +5000000c -printf '%P (%s bytes)\n')
[ -z "$big" ] || die "files over 5 MB: $big"
total=$(find "$B" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
[ "$total" -le 18000000 ] || die "6.1 corpus is $total bytes, over the 18 MB limit"
log "6.1 corpus: $n bundles, $total bytes"

rm -rf "$OUT"/k6.1-*
cp -a "$B"/k6.1-* "$OUT"/
cp "$RUN/run-info.txt" "$W/last-corpus-run-info.txt" 2>/dev/null || true
log "copied into $OUT"
if [ "$MANIFEST" = 1 ]; then
    [ -x "$REPO/tools/corpus/manifest.sh" ] || die "tools/corpus/manifest.sh missing"
    "$REPO/tools/corpus/manifest.sh" "$OUT"
fi
log "done"
