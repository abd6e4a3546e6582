# The payload of tests/kernel_matrix.rs, run by the guest as `sh ./run.sh` in
# /work (busybox sh, as root, on the loop-mounted ext4). Runs every scenario
# once, each in a fresh directory under /work/runs (on ext4, so opening a file
# there reaches ext4_file_open), and keeps what each produced as items. At the
# end it prints every item on stdout, framed so the host can split them again:
#
#   @@ITEM <name> <size in bytes>@@
#   <exactly that many bytes><newline>
#   @@END <name>@@
#
# An item is a scenario's stdout, stderr or exit status (SCENARIO.stdout,
# SCENARIO.stderr, SCENARIO.status), its duration in seconds
# (SCENARIO.seconds), or a fact of the guest the host checks (facts.*).
# params.sh, written by the test, sets BURST_CALLS.
# shellcheck shell=dash

set -u
. ./params.sh

WORK=/work
ITEMS=/tmp/items
RUNS=$WORK/runs
mkdir -p "$ITEMS" "$RUNS"

# uptime_cs: seconds since boot, in hundredths.
uptime_cs() {
    read -r up _ </proc/uptime
    echo "${up%.*}${up#*.}"
}

# item NAME: stdin becomes item NAME.
item() {
    cat >"$ITEMS/$1"
}

# fresh NAME FILE...: a new directory $RUNS/NAME holding copies of FILEs.
fresh() {
    dir="$RUNS/$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    for f in "$@"; do
        cp "$WORK/$f" "$dir/$f"
    done
}

# scenario NAME DIR CMD...: run CMD in DIR; keep stdout, stderr, status and
# the time it took.
scenario() {
    name="$1" dir="$2"
    shift 2
    t0="$(uptime_cs)"
    (cd "$dir" && "$@" >"$ITEMS/$name.stdout" 2>"$ITEMS/$name.stderr" </dev/null)
    echo "$?" | item "$name.status"
    t1="$(uptime_cs)"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 100 }' | item "$name.seconds"
}

# count_kprobes: lines of the kernel's list of registered kprobes.
count_kprobes() {
    grep -c . /sys/kernel/debug/kprobes/list
}

# Facts about the guest.
uname -r | item facts.release
cat /sys/bus/event_source/devices/kprobe/type | item facts.kprobe-pmu-type
ulimit -l | item facts.shell-memlock
./bpf-progs | item facts.bpf-progs-before
count_kprobes | item facts.kprobes-before

# The loader's cache, where the loader looks for it (the initramfs has none).
mkdir -p /etc
cp "$WORK/ld.so.cache" /etc/ld.so.cache

# (a) The lab: all 14 probes, on the three builds of file-io.
for build in file-io file-io-static file-io-nopie; do
    fresh "lab-$build" "$build"
    scenario "lab-$build" "$dir" "$WORK/trace" "./$build"
    cat "$dir/output.txt" | item "lab-$build.output"
done

# (b) Every event of the process: the exec and the loader's opens too; then
# the same with the execve and openat system calls, naming each file.
fresh all file-io
scenario all "$dir" "$WORK/trace" -a ./file-io
fresh all-named file-io
scenario all-named "$dir" "$WORK/trace" -a -s execve,openat -k vfs_open,ext4_file_open ./file-io

# (c) A misspelled kernel function: nothing attaches, file-io never runs.
fresh misspelled file-io
scenario misspelled "$dir" "$WORK/trace" -k vfs_opn ./file-io
ls -1 "$dir" | item misspelled.files

# A kernel function that exists but cannot be traced.
grep -c ' exc_int3$' /proc/kallsyms | item facts.kallsyms-exc_int3
grep -c '^exc_int3$' /sys/kernel/tracing/available_filter_functions | item facts.filter-exc_int3
fresh unprobeable file-io
scenario unprobeable "$dir" "$WORK/trace" -k exc_int3 ./file-io
ls -1 "$dir" | item unprobeable.files

# RLIMIT_MEMLOCK: the tracer's own limit, read by the command it runs.
fresh memlock
scenario memlock "$dir" "$WORK/trace" -s exit_group -- /bin/sh -c \
    'grep "^Max locked memory" /proc/$PPID/limits >limits.txt'
cat "$dir/limits.txt" | item memlock.limits

# (d) Lost events: a burst of uprobe+uretprobe events into a one-page ring.
fresh burst burst
scenario burst "$dir" "$WORK/trace" --ring-pages 1 -u hit ./burst "$BURST_CALLS"

# (e) The language: the lab solution written in bpftrace's syntax, and the
# lab text's kstack one-liner (kprobes exist here).
fresh lab-bt file-io lab.bt
scenario lab-bt "$dir" "$WORK/trace" lab.bt -c ./file-io
cat "$dir/output.txt" | item lab-bt.output
fresh kstack file-io
scenario kstack "$dir" "$WORK/trace" -e 'kprobe:ext4_file_open { print(kstack()); exit(); }' -c ./file-io

# (f) How uprobes are attached: BPF links where the kernel has them (6.10+),
# perf events before; --explain tells which and shows the calls.
fresh links file-io
scenario links "$dir" "$WORK/trace" --explain -u native ./file-io

# Ctrl-C while kprobes are attached (--watch, the lab's two-terminal way):
# nothing must be left behind.
fresh watch file-io
t0="$(uptime_cs)"
(cd "$dir" && exec "$WORK/trace" --watch ./file-io >"$ITEMS/watch.stdout" 2>"$ITEMS/watch.stderr" </dev/null) &
tracer=$!
tries=0
until grep -q '^Attaching' "$ITEMS/watch.stderr" 2>/dev/null || [ "$tries" -ge 600 ]; do
    usleep 100000
    tries=$((tries + 1))
done
(cd "$dir" && ./file-io)
echo "$?" | item watch.file-io-status
count_kprobes | item facts.kprobes-during
grep -c ' vfs_open' /sys/kernel/debug/kprobes/list | item facts.kprobes-during-vfs_open
./bpf-progs | item facts.bpf-progs-during
usleep 500000
kill -INT "$tracer"
wait "$tracer"
echo "$?" | item watch.status
t1="$(uptime_cs)"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 100 }' | item watch.seconds
count_kprobes | item facts.kprobes-after
grep -c . /sys/kernel/tracing/kprobe_events | item facts.kprobe-events-after
# A BPF link puts its program only after RCU grace periods (bpf_link_free defers
# it), so the programs of links closed at exit may be listed a few ms longer; a
# leaked one stays: wait up to 2 s for the count of before.
tries=0
until [ "$(./bpf-progs)" = "$(cat "$ITEMS/facts.bpf-progs-before")" ] || [ "$tries" -ge 20 ]; do
    usleep 100000
    tries=$((tries + 1))
done
./bpf-progs | item facts.bpf-progs-after

# Send every item, framed.
for f in "$ITEMS"/*; do
    name="${f##*/}"
    echo "@@ITEM $name $(wc -c <"$f")@@"
    cat "$f"
    echo
    echo "@@END $name@@"
done
