#!/bin/sh
# /sbin/init of the pagehint 6.1 guest root disk (busybox sh).
#
# Mounts proc/sys/dev, tracefs, debugfs and the cgroup v1 memory controller, then reads the job
# disk (virtio serial "pagehint-job", a raw tar stream) into /job and runs /job/job.sh with the
# time limit given in /job/timeout (seconds). Everything the job leaves in /results is written as
# a tar stream onto the results disk (serial "pagehint-results"). Ends with poweroff -f.
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
umask 022

say() { echo "guest-init: $*"; }

mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts 2>/dev/null; }
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing || say "WARNING: cannot mount tracefs"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
mkdir -p /sys/fs/cgroup/memory
mount -t cgroup -o memory memory /sys/fs/cgroup/memory || say "WARNING: cannot mount cgroup v1 memory controller"
mount -o remount,rw / 2>/dev/null
hostname -F /etc/hostname 2>/dev/null
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/self/fd/0 /dev/stdin 2>/dev/null
ln -sf /proc/self/fd/1 /dev/stdout 2>/dev/null
ln -sf /proc/self/fd/2 /dev/stderr 2>/dev/null

disk_by_serial() { # serial -> /dev/vdX
    for s in /sys/block/vd*/serial; do
        [ -f "$s" ] || continue
        if [ "$(cat "$s")" = "$1" ]; then d=${s%/serial}; echo "/dev/${d##*/}"; return 0; fi
    done
    return 1
}

say "kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpus, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
say "uptime at init: $(cut -d' ' -f1 /proc/uptime) s"

rc=0
JOB=$(disk_by_serial pagehint-job || true)
RES=$(disk_by_serial pagehint-results || true)
if [ -z "$JOB" ]; then
    say "no job disk; nothing to do"
    rc=2
else
    mkdir -p /job /results
    if ! tar -x -f "$JOB" -C /job; then
        say "ERROR: cannot read the job tar from $JOB"
        rc=3
    elif [ ! -f /job/job.sh ]; then
        say "ERROR: job tar has no job.sh"
        rc=3
    else
        limit=$(cat /job/timeout 2>/dev/null || echo 3000)
        say "running job.sh (limit ${limit}s)"
        t0=$(cut -d' ' -f1 /proc/uptime)
        # output goes to the console and to /results/job.log
        set -o pipefail
        timeout "$limit" sh /job/job.sh 2>&1 | tee /results/job.log
        rc=$?
        set +o pipefail
        t1=$(cut -d' ' -f1 /proc/uptime)
        say "job.sh exit status $rc after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s (guest clock)"
    fi
fi
echo "$rc" > /results/job.rc 2>/dev/null
if [ -n "$RES" ]; then
    say "writing /results to $RES"
    if tar -c -f "$RES" -C /results .; then
        sync
        say "results written ($(du -sk /results | cut -f1) kB)"
    else
        say "ERROR: writing results tar to $RES failed"
    fi
else
    say "WARNING: no results disk"
fi
sync
say "poweroff"
poweroff -f
sleep 5
echo o > /proc/sysrq-trigger
