#!/bin/bash
# tools/guest/run.sh — boot the Debian 6.1 guest built by build.sh, run one guest script in it,
# and bring its /results back to a host directory.
#
# Disks (virtio-blk, found in the guest by serial number, so their order does not matter):
#   pagehint-root     rootfs.img, opened with snapshot=on (the image itself is never modified)
#   pagehint-job      raw tar stream: job.sh (the guest script), timeout, params.env, extra files
#   pagehint-results  raw zeroed disk; the guest writes a tar stream of /results onto it and the
#                     host unpacks it with plain `tar -x` (no loop mount, no root needed for that)
set -euo pipefail

PROG=run.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
    cat <<'EOF'
Usage: tools/guest/run.sh [options] --out DIR [--script GUEST_SCRIPT]

Boot the 6.1 guest under qemu, run GUEST_SCRIPT inside it (busybox sh, as root, with tracefs,
debugfs and the cgroup v1 memory controller mounted), copy what it writes to /results into DIR.

Options:
  --out DIR          host directory for the results (created; must be empty or absent)
  --script FILE      guest script to run (default: tools/guest/smoke.sh, a short tracefs capture)
  --param K=V        export K=V to the guest script (repeatable; also written to params.env)
  --add FILE         put FILE into the job disk as /job/<basename> (repeatable)
  --timeout SECS     hard limit for the whole qemu run (default 3600); the guest script gets
                     this minus 60 s
  --accel MODE       auto | kvm | tcg (default auto: kvm only if a probe boot reaches the
                     initramfs within 30 s, with -cpu host, max or qemu64; the verdict is
                     cached in the work dir)
  --mem MB           guest memory (default 384)
  --smp N            guest CPUs (default 2)
  --results-mb N     size of the results disk (default 512)
  --dir DIR          work dir (default: $PAGEHINT_GUEST_DIR or /var/tmp/pagehint-guest)
  --no-build         do not run build.sh first
  -h, --help         show this help

The serial console goes to DIR/serial.log; the guest script's own output is also in
DIR/job.log and its exit status in DIR/job.rc. Exit status: 0 if the guest script exited 0.
EOF
}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${PAGEHINT_GUEST_DIR:-/var/tmp/pagehint-guest}
OUT=""
SCRIPT="$REPO/tools/guest/smoke.sh"
PARAMS=()
ADDS=()
TMO=3600
ACCEL=auto
MEM=384
SMP=2
RES_MB=512
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift 2 ;;
        --script) [ $# -ge 2 ] || die "--script needs a value"; SCRIPT=$2; shift 2 ;;
        --param) [ $# -ge 2 ] || die "--param needs a value"; PARAMS+=("$2"); shift 2 ;;
        --add) [ $# -ge 2 ] || die "--add needs a value"; ADDS+=("$2"); shift 2 ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs a value"; TMO=$2; shift 2 ;;
        --accel) [ $# -ge 2 ] || die "--accel needs a value"; ACCEL=$2; shift 2 ;;
        --mem) [ $# -ge 2 ] || die "--mem needs a value"; MEM=$2; shift 2 ;;
        --smp) [ $# -ge 2 ] || die "--smp needs a value"; SMP=$2; shift 2 ;;
        --results-mb) [ $# -ge 2 ] || die "--results-mb needs a value"; RES_MB=$2; shift 2 ;;
        --dir) [ $# -ge 2 ] || die "--dir needs a value"; W=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ -n "$OUT" ] || die "--out DIR is required (see --help)"
[ -f "$SCRIPT" ] || die "guest script $SCRIPT not found"
for n in "$TMO" "$MEM" "$SMP" "$RES_MB"; do
    case "$n" in ''|*[!0-9]*) die "'$n' is not a number" ;; esac
done
[ "$TMO" -ge 120 ] || die "--timeout must be at least 120 s"
case "$ACCEL" in auto|kvm|tcg) ;; *) die "--accel must be auto, kvm or tcg" ;; esac
for p in "${PARAMS[@]+"${PARAMS[@]}"}"; do
    case "$p" in [A-Za-z_]*=*) ;; *) die "--param '$p' is not K=V" ;; esac
done
for f in "${ADDS[@]+"${ADDS[@]}"}"; do [ -f "$f" ] || die "--add $f: no such file"; done
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then die "output dir $OUT is not empty"; fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (install qemu-system-x86)"
command -v tar >/dev/null && command -v timeout >/dev/null || die "tar and timeout are needed"

if [ "$BUILD" = 1 ]; then
    PAGEHINT_GUEST_DIR=$W "$REPO/tools/guest/build.sh" --dir "$W" || die "build.sh failed"
fi
for f in vmlinuz initramfs.cpio.gz rootfs.img kernel.release; do
    [ -s "$W/$f" ] || die "$W/$f missing (run tools/guest/build.sh)"
done
W=$(cd "$W" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Refuse to run two guests at once on this work dir.
exec 9>"$W/run.lock"
flock -n 9 || die "another run.sh is using $W (lock $W/run.lock)"

CMDLINE="console=ttyS0,115200 loglevel=5 panic=-1 oops=panic rw"

KVM_CPU=host
qemu_base() { # accel-specific args
    case "$1" in
        kvm) echo "-accel kvm -cpu $KVM_CPU" ;;
        tcg) echo "-accel tcg,thread=multi -cpu max" ;;
    esac
}

# KVM probe: the paravirtual /dev/kvm here can create VMs, but -cpu host aborts on an MSR and
# the 6.1 kernel hangs in its decompressor with the default model. Boot the kernel + initramfs (no disks) with each
# CPU model for up to 30 s and accept KVM only if the initramfs init starts. The verdict
# (a CPU model, or "no") is cached per kernel + qemu version in WORK/kvm-probe.txt.
probe_kvm() {
    local key cache log cpu verdict=no
    key="v3 $(cat "$W/kernel.release") $(qemu-system-x86_64 --version | head -n 1)"
    cache="$W/kvm-probe.txt"
    if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$key" ]; then
        sed -n 2p "$cache"; return 0
    fi
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        for cpu in host max qemu64; do
            log "probing KVM with -cpu $cpu (up to 30 s)"
            log="$W/kvm-probe-$cpu.log"
            rm -f "$log"
            timeout -k 5 30 qemu-system-x86_64 -accel kvm -cpu "$cpu" -m "$MEM" -smp 1 -nographic \
                -no-reboot -monitor none -serial "file:$log" -kernel "$W/vmlinuz" \
                -initrd "$W/initramfs.cpio.gz" -append "console=ttyS0 earlyprintk=ttyS0 panic=-1" \
                >/dev/null 2>"$log.err" || true
            if grep -q "initramfs: loading modules" "$log" 2>/dev/null; then verdict=$cpu; break; fi
            log "KVM with -cpu $cpu did not boot: $(head -c 160 "$log.err" | tr '\n' ' ')$(grep -q . "$log" 2>/dev/null || echo '(no console output)')"
        done
    fi
    printf '%s\n%s\n' "$key" "$verdict" > "$cache"
    echo "$verdict"
}

if [ "$ACCEL" = auto ]; then
    v=$(probe_kvm)
    if [ "$v" != no ]; then ACCEL=kvm; KVM_CPU=$v; else ACCEL=tcg; fi
    log "accelerator: $ACCEL$([ "$ACCEL" = kvm ] && echo " (-cpu $KVM_CPU)")"
fi

# Job disk: a tar stream padded to a whole number of MiB.
JT="$W/job.tmp"
rm -rf "$JT"; mkdir -p "$JT"
cp "$SCRIPT" "$JT/job.sh"
echo $(( TMO - 60 )) > "$JT/timeout"
: > "$JT/params.env"
for p in "${PARAMS[@]+"${PARAMS[@]}"}"; do
    k=${p%%=*}; v=${p#*=}
    printf "export %s='%s'\n" "$k" "$(printf '%s' "$v" | sed "s/'/'\\\\''/g")" >> "$JT/params.env"
done
for f in "${ADDS[@]+"${ADDS[@]}"}"; do cp "$f" "$JT/"; done
tar -c -f "$W/job.img" -C "$JT" .
truncate -s %1M "$W/job.img"

rm -f "$W/results.img"
truncate -s "${RES_MB}M" "$W/results.img"

SERIAL="$OUT/serial.log"
log "booting 6.1 guest ($ACCEL, ${MEM} MiB, ${SMP} cpus, limit ${TMO}s); console -> $SERIAL"
t0=$(date +%s)
set +e
# shellcheck disable=SC2046
TMPDIR="$W" timeout -k 10 "$TMO" qemu-system-x86_64 $(qemu_base "$ACCEL") \
    -m "$MEM" -smp "$SMP" -nographic -no-reboot -monitor none -serial "file:$SERIAL" \
    -kernel "$W/vmlinuz" -initrd "$W/initramfs.cpio.gz" -append "$CMDLINE" \
    -drive "file=$W/rootfs.img,if=none,id=root,format=raw,snapshot=on,cache=unsafe" \
    -device virtio-blk-pci,drive=root,serial=pagehint-root \
    -drive "file=$W/job.img,if=none,id=job,format=raw,readonly=on" \
    -device virtio-blk-pci,drive=job,serial=pagehint-job \
    -drive "file=$W/results.img,if=none,id=res,format=raw,cache=writeback" \
    -device virtio-blk-pci,drive=res,serial=pagehint-results \
    -nic none </dev/null >"$OUT/qemu.out" 2>&1
qrc=$?
set -e
t1=$(date +%s)
log "qemu exited with status $qrc after $((t1 - t0)) s"
[ "$qrc" = 124 ] && log "qemu was killed by the ${TMO}s timeout"

if ! tar -x -f "$W/results.img" -C "$OUT" 2>"$OUT/untar.err"; then
    log "could not unpack the results disk ($(head -c 200 "$OUT/untar.err"))"
    tail -n 30 "$SERIAL" >&2 || true
    die "no results from the guest"
fi
rm -f "$OUT/untar.err"
{
    echo "accel=$ACCEL"
    echo "mem_mb=$MEM"
    echo "smp=$SMP"
    echo "qemu=$(qemu-system-x86_64 --version | head -n 1)"
    echo "cmdline=$CMDLINE"
    echo "wall_seconds=$((t1 - t0))"
    echo "qemu_status=$qrc"
    cat "$W/guest-versions.txt" 2>/dev/null
} > "$OUT/run-info.txt"
jrc=$(cat "$OUT/job.rc" 2>/dev/null || echo missing)
if [ "$jrc" != 0 ]; then
    tail -n 30 "$SERIAL" >&2 || true
    die "guest script exit status: $jrc (see $OUT/job.log, $SERIAL)"
fi
log "done: results in $OUT ($(du -sh "$OUT" | cut -f1))"
