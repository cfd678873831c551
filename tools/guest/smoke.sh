#!/bin/sh
# tools/guest/smoke.sh — guest-side self test (busybox sh): a tiny tracefs capture of page-cache
# events, a trace-cmd extract of it, and a short perf record, written to /results/smoke/.
# Run it with: tools/guest/run.sh --out DIR --script tools/guest/smoke.sh
case "${1:-}" in -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;; esac
set -u
[ -f /job/params.env ] && . /job/params.env
T=/sys/kernel/tracing
O=/results/smoke
mkdir -p "$O"
fail=0
uname -a > "$O/uname.txt"
cat /proc/cmdline > "$O/cmdline.txt"
cat /sys/kernel/mm/lru_gen/enabled > "$O/lru_gen.before" 2>/dev/null
echo n > /sys/kernel/mm/lru_gen/enabled 2>/dev/null
ls $T/events/filemap $T/events/pagemap $T/events/vmscan $T/events/writeback > "$O/events.txt" 2>&1
grep -c . /proc/kallsyms > "$O/kallsyms.count"
mount > "$O/mounts.txt"

dd if=/dev/urandom of=/data/smoke.bin bs=1M count=8 2>/dev/null
sync
echo 3 > /proc/sys/vm/drop_caches
echo 1024 > $T/buffer_size_kb
echo 1 > $T/options/stacktrace
echo 1 > $T/events/filemap/enable
echo 1 > $T/events/pagemap/enable
: > $T/trace
echo 1 > $T/tracing_on
cat /data/smoke.bin > /dev/null
echo 0 > $T/tracing_on
cat $T/trace > "$O/trace.txt"
trace-cmd extract -o "$O/trace.dat" > "$O/extract.log" 2>&1 || { echo "trace-cmd extract failed"; fail=1; }
echo 0 > $T/events/enable
echo 0 > $T/options/stacktrace
: > $T/trace
grep -c 'mm_filemap_add_to_page_cache' "$O/trace.txt" > "$O/add.count"
trace-cmd report "$O/trace.dat" 2>/dev/null | grep -c mm_filemap_add_to_page_cache > "$O/add.dat.count"

echo 3 > /proc/sys/vm/drop_caches
perf record -o "$O/perf.data" -e filemap:mm_filemap_add_to_page_cache -g -a -- sh -c 'cat /data/smoke.bin > /dev/null' \
    > "$O/perf.log" 2>&1 || { echo "perf record failed"; fail=1; }
perf script -i "$O/perf.data" 2>/dev/null | head -n 40 > "$O/perf.script.head"
cp /proc/kallsyms "$O/kallsyms"
echo "smoke: kernel $(uname -r), tracefs and perf work"
echo "smoke: add events in trace text: $(cat "$O/add.count"), in trace.dat: $(cat "$O/add.dat.count")"
echo "smoke: lru_gen was $(cat "$O/lru_gen.before" 2>/dev/null), now $(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null)"
exit $fail
