#!/bin/busybox sh
# shellcheck shell=dash
# /init of the kernel-matrix guest (busybox sh, PID 1). Copied into the
# initramfs by run-guest.sh; not meant to run on the host.
#
# Mounts proc, sysfs, devtmpfs, tracefs and debugfs, loads the loop module,
# loop-mounts /payload.img (ext4) at /work, runs `sh ./run.sh` there and sends
# a report (uname -r, stdout, stderr, exit status, or a setup error) to the
# host on the second serial port, then powers off.
#
# Report format, markers on lines of their own, each item gzip-compressed
# (the serial port moves only a few hundred KB/s) and base64-encoded; size and
# sha256 are those of the uncompressed item:
#   @@TRACE-MATRIX-REPORT 1@@
#   @@TRACE-MATRIX-BEGIN name size sha256@@
#   base64 lines
#   @@TRACE-MATRIX-END name@@
#   ...
#   @@TRACE-MATRIX-DONE@@

PATH=/bin:/sbin:/usr/bin:/usr/sbin
HOME=/
export PATH HOME

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /work /run
/bin/busybox --install -s

# The initramfs has no /dev/console node, so the kernel started us without
# stdio; take it from devtmpfs.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

log() {
    echo "trace-matrix-init: $*"
}

# Only emergency messages on the console from now on.
dmesg -n 1 2>/dev/null

# report_channel: the second serial port if the kernel made one, else the
# console (the host then has to dig the report out of the kernel noise).
report_channel() {
    if [ -c /dev/ttyS1 ] && stty -F /dev/ttyS1 raw -echo 2>/dev/null; then
        echo /dev/ttyS1
    else
        echo /dev/console
    fi
}

# emit NAME FILE: one report item.
emit() {
    set -- "$1" "$2" "$(wc -c <"$2")" "$(sha256sum "$2" | cut -d' ' -f1)"
    echo "@@TRACE-MATRIX-BEGIN $1 $3 $4@@"
    gzip -c "$2" | base64
    echo "@@TRACE-MATRIX-END $1@@"
}

# finish: send every report item that exists, then power off. Closing the
# serial port waits until its output has drained.
finish() {
    uname -r >/tmp/report.uname
    chan="$(report_channel)"
    log "sending the report on $chan"
    {
        echo "@@TRACE-MATRIX-REPORT 1@@"
        emit uname /tmp/report.uname
        for item in error stdout stderr status; do
            if [ -f "/tmp/report.$item" ]; then
                emit "$item" "/tmp/report.$item"
            fi
        done
        echo "@@TRACE-MATRIX-DONE@@"
    } >"$chan"
    sync
    log "powering off"
    poweroff -f
    sleep 60
}

# fail MESSAGE: report a setup error instead of a payload result.
fail() {
    log "error: $*"
    echo "$*" >/tmp/report.error
    finish
}

mount -t proc proc /proc || fail "mount proc failed"
mount -t sysfs sysfs /sys || fail "mount sysfs failed"
mount -t tracefs tracefs /sys/kernel/tracing || fail "mount tracefs on /sys/kernel/tracing failed"
if grep -qw debugfs /proc/filesystems; then
    mount -t debugfs debugfs /sys/kernel/debug || fail "mount debugfs on /sys/kernel/debug failed"
fi

if [ -f /lib/modules/loop.ko ]; then
    insmod /lib/modules/loop.ko || fail "insmod /lib/modules/loop.ko failed"
fi
mount -t ext4 -o loop /payload.img /work || fail "loop-mounting /payload.img (ext4) at /work failed"
cd /work || fail "cd /work failed"
[ -f ./run.sh ] || fail "the payload has no run.sh"

log "running the payload on $(uname -r)"
sh ./run.sh </dev/null >/tmp/report.stdout 2>/tmp/report.stderr
echo "$?" >/tmp/report.status
log "payload exited with status $(cat /tmp/report.status)"
cd /
umount /work 2>/dev/null
finish
