#!/bin/bash
# tools/guest/build.sh — build a bootable Debian 6.1 qemu guest for trace captures.
#
# Produces, under the work dir ($PAGEHINT_GUEST_DIR, default /var/tmp/pagehint-guest):
#   vmlinuz            the Debian 6.1 kernel (extracted from the .deb, never installed on the host)
#   initramfs.cpio.gz  busybox + virtio_pci/virtio_blk/ext4 modules; switch_root to the root disk
#   rootfs.img         ext4 root disk (mkfs.ext4 -d, no loop mount) with busybox, trace-cmd, perf,
#                      fincore, zstd, their libraries, tools/capture, tools/workloads, mmaprand
#   kernel.release     e.g. 6.1.0-56-amd64
# Idempotent: downloads are cached, each stage is rebuilt only when its inputs change.
set -euo pipefail

PROG=build.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
    cat <<'EOF'
Usage: tools/guest/build.sh [options]

Build the Debian 6.1 guest (kernel, initramfs, ext4 root disk) used by tools/guest/run.sh.

Options:
  --dir DIR          work dir (default: $PAGEHINT_GUEST_DIR or /var/tmp/pagehint-guest)
  --kernel PKG       kernel package to use, e.g. linux-image-6.1.0-56-amd64-unsigned
                     (default: the one cached in the work dir, else the newest
                     linux-image-6.1.0-N-amd64-unsigned that apt knows)
  --refresh-kernel   forget the cached kernel choice and pick the newest again
  --rootfs-mb N      size of the root disk image in MiB (default 1536; sparse)
  --force            rebuild every stage
  -h, --help         show this help

Requires (host): apt-get, dpkg-deb, busybox (static), cpio, gzip, mkfs.ext4, gcc with static
libc, trace-cmd, perf, fincore, zstd, ldd. Never installs anything on the host.
EOF
}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
W=${PAGEHINT_GUEST_DIR:-/var/tmp/pagehint-guest}
KPKG=""
REFRESH=0
ROOTFS_MB=1536
FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || die "--dir needs a value"; W=$2; shift 2 ;;
        --kernel) [ $# -ge 2 ] || die "--kernel needs a value"; KPKG=$2; shift 2 ;;
        --refresh-kernel) REFRESH=1; shift ;;
        --rootfs-mb) [ $# -ge 2 ] || die "--rootfs-mb needs a value"; ROOTFS_MB=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
case "$ROOTFS_MB" in ''|*[!0-9]*) die "--rootfs-mb must be a number of MiB" ;; esac
case "$W" in "$REPO"|"$REPO"/*) die "work dir $W must be outside the repository" ;; esac

for t in apt-get apt-cache dpkg-deb cpio gzip mkfs.ext4 gcc ldd trace-cmd fincore zstd timeout sha256sum; do
    command -v "$t" >/dev/null 2>&1 || die "missing host tool '$t'"
done
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || die "missing host tool 'busybox' (install busybox-static)"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || die "$BUSYBOX is not static (install busybox-static)"

mkdir -p "$W/dl"
W=$(cd "$W" && pwd)
# rootfs.img is the backing file of a running guest's snapshot: never rebuild under a run.sh
exec 9>"$W/run.lock"
flock -n 9 || die "a guest is running from $W (lock $W/run.lock); try again when it has finished"

# ---------------------------------------------------------------- kernel package
if [ -z "$KPKG" ] && [ "$REFRESH" = 0 ] && [ -s "$W/kernel.pkg" ]; then
    KPKG=$(cat "$W/kernel.pkg")
fi
if [ -z "$KPKG" ]; then
    KPKG=$(timeout 120 apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' \
           | awk '{print $1}' | sort -V | tail -n 1) || true
    [ -n "$KPKG" ] || die "apt knows no linux-image-6.1.0-N-amd64-unsigned package (run apt-get update?)"
fi
case "$KPKG" in linux-image-6.1.*) ;; *) die "kernel package '$KPKG' is not a linux-image-6.1.* package" ;; esac

DEB=$(ls "$W"/dl/"${KPKG}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$DEB" ] || [ "$FORCE" = 1 ]; then
    log "downloading $KPKG"
    (cd "$W/dl" && timeout 600 apt-get download "$KPKG" >/dev/null 2>"$W/dl/apt.err") \
        || { cat "$W/dl/apt.err" >&2; die "apt-get download $KPKG failed"; }
    DEB=$(ls "$W"/dl/"${KPKG}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$DEB" ] || die "apt-get download produced no .deb for $KPKG"
fi
echo "$KPKG" > "$W/kernel.pkg"

KX="$W/kernel-x"
if [ "$FORCE" = 1 ] || [ ! -f "$KX/.done" ] || [ "$(cat "$KX/.done")" != "$(basename "$DEB")" ]; then
    log "extracting $(basename "$DEB")"
    rm -rf "$KX"; mkdir -p "$KX"
    dpkg-deb -x "$DEB" "$KX" || die "dpkg-deb -x $DEB failed"
    KREL=$(ls "$KX/lib/modules" | head -n 1)
    [ -n "$KREL" ] || die "no lib/modules/<release> in $DEB"
    log "generating modules.dep for $KREL (busybox depmod)"
    "$BUSYBOX" depmod -b "$KX" "$KREL" || die "depmod failed"
    basename "$DEB" > "$KX/.done"
fi
KREL=$(ls "$KX/lib/modules" | head -n 1)
case "$KREL" in 6.1.*) ;; *) die "extracted kernel release '$KREL' is not 6.1" ;; esac
cp -f "$KX/boot/vmlinuz-$KREL" "$W/vmlinuz"
cp -f "$KX/boot/config-$KREL" "$W/config"
echo "$KREL" > "$W/kernel.release"
echo "$(basename "$DEB" .deb)" > "$W/kernel.deb"

# ---------------------------------------------------------------- initramfs
MODDIR="$KX/lib/modules/$KREL"
WANT_MODS="virtio_pci virtio_blk crc32c_generic ext4"
declare -A SEEN=()
ORDER=()
modpath() { # module name -> path relative to $MODDIR (from modules.dep)
    local n=$1 alt
    alt=$(echo "$n" | tr '_' '-')
    awk -F: -v a="$n" -v b="$alt" '{ p=$1; s=p; sub(/.*\//,"",s); sub(/\.ko(\.[a-z]+)?$/,"",s);
        if (s==a || s==b) { print p; exit } }' "$MODDIR/modules.dep"
}
resolve() { # depth-first: dependencies before the module itself
    local rel=$1 d
    [ -n "${SEEN[$rel]:-}" ] && return 0
    SEEN[$rel]=1
    for d in $(awk -F: -v p="$rel" '$1==p { print $2 }' "$MODDIR/modules.dep"); do
        resolve "$d"
    done
    ORDER+=("$rel")
}
for m in $WANT_MODS; do
    rel=$(modpath "$m")
    [ -n "$rel" ] || die "module $m not found in $MODDIR/modules.dep"
    resolve "$rel"
done

IRD="$W/initramfs"
IR_SIG=$(printf '%s\n' "$KREL" "${ORDER[@]}" | cat - "$0" "$BUSYBOX" | sha256sum | cut -c1-16)
if [ "$FORCE" = 1 ] || [ ! -s "$W/initramfs.cpio.gz" ] || [ "$(cat "$W/initramfs.sig" 2>/dev/null)" != "$IR_SIG" ]; then
    log "building initramfs (${ORDER[*]##*/})"
    rm -rf "$IRD"; mkdir -p "$IRD"/{bin,dev,proc,sys,newroot,lib/modules}
    cp "$BUSYBOX" "$IRD/bin/busybox"
    for a in sh mount umount insmod sleep cat echo switch_root poweroff ls mkdir; do
        ln -s busybox "$IRD/bin/$a"
    done
    : > "$IRD/modules.order"
    for rel in "${ORDER[@]}"; do
        mkdir -p "$IRD/lib/modules/$(dirname "$rel")"
        cp "$MODDIR/$rel" "$IRD/lib/modules/$rel"
        echo "$rel" >> "$IRD/modules.order"
    done
    cat > "$IRD/init" <<'EOF'
#!/bin/sh
# initramfs init: load virtio/ext4 modules, find the disk whose serial is pagehint-root,
# mount it and switch_root to its /sbin/init.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "initramfs: loading modules"
while read -r m; do
    insmod "/lib/modules/$m" || echo "initramfs: insmod $m failed"
done < /modules.order
root=""
i=0
while [ -z "$root" ] && [ $i -lt 200 ]; do
    for s in /sys/block/vd*/serial; do
        [ -f "$s" ] || continue
        if [ "$(cat "$s")" = "pagehint-root" ]; then
            d=${s%/serial}; root=/dev/${d##*/}
        fi
    done
    [ -n "$root" ] && [ -b "$root" ] && break
    root=""
    i=$((i + 1)); sleep 0.1
done
if [ -z "$root" ]; then
    echo "initramfs: FATAL: no virtio disk with serial pagehint-root"; ls /sys/block
    poweroff -f
fi
echo "initramfs: root is $root"
mount -t ext4 -o rw "$root" /newroot || { echo "initramfs: FATAL: cannot mount $root"; poweroff -f; }
[ -x /newroot/sbin/init ] || { echo "initramfs: FATAL: no /sbin/init on $root"; poweroff -f; }
umount /proc
umount /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
EOF
    chmod 755 "$IRD/init"
    (cd "$IRD" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$W/initramfs.cpio.gz.tmp"
    mv "$W/initramfs.cpio.gz.tmp" "$W/initramfs.cpio.gz"
    echo "$IR_SIG" > "$W/initramfs.sig"
fi

# ---------------------------------------------------------------- root disk
# The real perf binary: /usr/bin/perf may be Debian's version-dispatching wrapper script.
find_perf() {
    local c
    for c in /usr/bin/perf_6.1 /usr/lib/linux-tools-6.1/perf /usr/bin/perf; do
        if [ -x "$c" ] && file -L "$c" | grep -q ELF; then echo "$c"; return 0; fi
    done
    return 1
}
PERF=$(find_perf) || die "no perf ELF binary for 6.1 found (install linux-perf)"
"$PERF" version 2>/dev/null | grep -q ' 6\.1\.' || log "warning: $PERF reports '$("$PERF" version 2>&1)', not 6.1"
TRACECMD=$(command -v trace-cmd)
FINCORE=$(command -v fincore)
ZSTD=$(command -v zstd)
[ -n "$TRACECMD" ] && [ -n "$FINCORE" ] && [ -n "$ZSTD" ] || die "trace-cmd, fincore and zstd are needed"

GUEST_INIT="$REPO/tools/guest/rootfs-init.sh"
[ -f "$GUEST_INIT" ] || die "missing $GUEST_INIT"
MMAPRAND_C="$REPO/tools/workloads/mmaprand.c"

# Signature of everything that goes into the root disk.
rootfs_sig() {
    {
        echo "$KREL $ROOTFS_MB"
        sha256sum "$0" "$GUEST_INIT" "$PERF" "$TRACECMD" "$FINCORE" "$ZSTD" "$BUSYBOX"
        for d in capture workloads guest; do
            if [ -d "$REPO/tools/$d" ]; then
                (cd "$REPO/tools" && find "$d" -type f | LC_ALL=C sort | xargs -r sha256sum)
            fi
        done
    } | sha256sum | cut -c1-16
}
RF_SIG=$(rootfs_sig)
if [ "$FORCE" = 1 ] || [ ! -s "$W/rootfs.img" ] || [ "$(cat "$W/rootfs.sig" 2>/dev/null)" != "$RF_SIG" ]; then
    ST="$W/rootfs-staging"
    log "staging root disk in $ST"
    rm -rf "$ST"
    mkdir -p "$ST"/{bin,sbin,etc,proc,sys,dev,tmp,root,mnt,results,job,data,var/tmp,usr/bin,usr/sbin,lib64,opt/pagehint/tools}
    chmod 1777 "$ST/tmp" "$ST/var/tmp"
    cp "$BUSYBOX" "$ST/bin/busybox"
    for a in $("$BUSYBOX" --list); do
        case "$a" in busybox) continue ;; esac
        [ -e "$ST/bin/$a" ] || ln -s busybox "$ST/bin/$a"
    done
    # dynamically linked tools keep their host paths; their libraries are copied by ldd
    copy_with_libs() {
        local bin=$1 dst=$2 lib
        install -D -m 755 "$bin" "$ST$dst"
        for lib in $(ldd "$bin" | awk '/=> \//{print $3} /^\t\/[^ ]*ld-linux/{print $1}'); do
            [ -e "$ST$lib" ] && continue
            install -D -m 755 "$(readlink -f "$lib")" "$ST$lib"
        done
    }
    copy_with_libs "$PERF" /usr/bin/perf
    copy_with_libs "$TRACECMD" /usr/bin/trace-cmd
    copy_with_libs "$FINCORE" /usr/bin/fincore
    copy_with_libs "$ZSTD" /usr/bin/zstd
    # fincore, zstd etc. must win over busybox applets of the same name
    for a in fincore zstd; do rm -f "$ST/bin/$a"; ln -s "/usr/bin/$a" "$ST/bin/$a"; done
    LDSO=$(ldd "$PERF" | awk '/ld-linux/{print $1; exit}')
    [ -e "$ST$LDSO" ] || install -D -m 755 "$(readlink -f "$LDSO")" "$ST$LDSO"
    for pd in /usr/lib/x86_64-linux-gnu/traceevent/plugins /usr/lib/x86_64-linux-gnu/trace-cmd/plugins; do
        if [ -d "$pd" ]; then
            mkdir -p "$ST$pd"; cp -a "$pd"/. "$ST$pd"/
            for so in "$pd"/*.so; do
                [ -e "$so" ] || continue
                for lib in $(ldd "$so" 2>/dev/null | awk '/=> \//{print $3}'); do
                    [ -e "$ST$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$ST$lib"
                done
            done
        fi
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ST/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$ST/etc/group"
    echo pagehint-k61 > "$ST/etc/hostname"
    : > "$ST/etc/fstab"
    # repository tools (whatever exists now; run.sh rebuilds when they change)
    for d in capture workloads; do
        if [ -d "$REPO/tools/$d" ]; then cp -a "$REPO/tools/$d" "$ST/opt/pagehint/tools/"; fi
    done
    cp -a "$REPO/tools/guest" "$ST/opt/pagehint/tools/"
    if [ -f "$MMAPRAND_C" ]; then
        log "compiling mmaprand statically"
        gcc -O2 -static -o "$ST/opt/pagehint/tools/workloads/mmaprand" "$MMAPRAND_C" \
            || die "static build of $MMAPRAND_C failed"
        ln -sf /opt/pagehint/tools/workloads/mmaprand "$ST/usr/bin/mmaprand"
    fi
    install -m 755 "$GUEST_INIT" "$ST/sbin/init"
    {
        echo "kernel_package=$KPKG"
        echo "kernel_deb=$(basename "$DEB")"
        echo "kernel_release=$KREL"
        echo "perf=$("$PERF" version 2>&1)"
        echo "trace_cmd=$("$TRACECMD" --help 2>&1 | awk '/version/{print; exit}')"
        echo "busybox=$("$BUSYBOX" 2>&1 | head -n 1)"
        echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } > "$ST/etc/pagehint-guest.txt"
    cp "$ST/etc/pagehint-guest.txt" "$W/guest-versions.txt"
    need_mb=$(( $(du -sm "$ST" | cut -f1) + 64 ))
    [ "$ROOTFS_MB" -ge "$need_mb" ] || die "--rootfs-mb $ROOTFS_MB is smaller than the $need_mb MiB needed"
    log "creating rootfs.img (${ROOTFS_MB} MiB, ext4, from staging)"
    rm -f "$W/rootfs.img.tmp"
    truncate -s "${ROOTFS_MB}M" "$W/rootfs.img.tmp"
    mkfs.ext4 -q -F -L pagehint-root -E root_owner=0:0 -d "$ST" "$W/rootfs.img.tmp" \
        || die "mkfs.ext4 -d failed"
    mv "$W/rootfs.img.tmp" "$W/rootfs.img"
    echo "$RF_SIG" > "$W/rootfs.sig"
fi
log "ready: kernel $KREL, $W/{vmlinuz,initramfs.cpio.gz,rootfs.img}"
