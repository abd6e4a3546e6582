#!/bin/bash
# run-guest.sh SUITE PAYLOAD_DIR OUT_DIR
#
# Boot Debian SUITE's stock cloud kernel under QEMU (TCG), run
# `sh ./run.sh` from PAYLOAD_DIR inside it (on a loop-mounted ext4 image at
# /work) and write what came back to OUT_DIR:
#   stdout, stderr  the payload's streams, byte for byte
#   status          its exit status (decimal, newline-terminated)
#   uname           the guest's `uname -r`
#   console.log     the raw serial console (kernel messages, init's progress)
#   report.raw      the raw report channel (second serial port)
# Exits 0 when the guest reported, whatever the payload's status; non-zero with
# a message when it did not (boot failure, timeout, setup error).
#
# Environment (all optional):
#   TRACE_MATRIX_CACHE     cache dir (default /var/cache/trace-matrix)
#   TRACE_MATRIX_TIMEOUT   seconds before the guest is killed (default 300)
#   TRACE_MATRIX_SMP       guest CPUs (default 1)
#   TRACE_MATRIX_ACCEL     QEMU accelerator (default tcg; KVM hangs on the
#                          project's VMs)
#   TRACE_MATRIX_MEM_MB    guest memory (default 512 + twice the image size)
#   TRACE_MATRIX_IMAGE_MB  size of the ext4 image (default: from the payload)
#   TRACE_MATRIX_APPEND    extra kernel command line (e.g. loglevel=7)
#   TRACE_MATRIX_BUSYBOX   static busybox to use (default /bin/busybox)
#   TRACE_MATRIX_KEEP=1    keep the work dir (initramfs, image) for debugging
set -euo pipefail

# shellcheck source=tests/matrix/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PATH="$PATH:/usr/sbin:/sbin"

TIMEOUT="${TRACE_MATRIX_TIMEOUT:-300}"
SMP="${TRACE_MATRIX_SMP:-1}"
ACCEL="${TRACE_MATRIX_ACCEL:-tcg}"
BUSYBOX="${TRACE_MATRIX_BUSYBOX:-/bin/busybox}"
# The dynamic loader and libc go in always, so any gcc-built program runs.
BASE_LIBS=(/lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/libc.so.6)

usage() {
    echo "usage: $0 SUITE PAYLOAD_DIR OUT_DIR" >&2
    exit 2
}

# now: seconds since the epoch with milliseconds.
now() {
    date +%s.%N | cut -c1-14
}

# elapsed START: seconds since START, one decimal.
elapsed() {
    awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'
}

# check_number NAME VALUE: a positive decimal.
check_number() {
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive whole number, not '$2'"
}

# is_elf FILE
is_elf() {
    [[ "$(head -c 4 "$1" 2>/dev/null)" == $'\x7fELF' ]]
}

# payload_libs DIR: absolute paths of the shared libraries the ELF files in DIR
# load, as ldd reports them.
payload_libs() {
    local f
    while IFS= read -r -d '' f; do
        is_elf "$f" || continue
        ldd "$f" 2>/dev/null | awk '
            $2 == "=>" && $3 ~ /^\// { print $3; next }
            $1 ~ /^\// { print $1 }
        ' || true
    done < <(find "$1" -type f -print0)
}

# stage_rootfs KDIR PAYLOAD_DIR STAGE: fill STAGE with the guest's files.
stage_rootfs() {
    local kdir="$1" payload="$2" stage="$3" lib
    mkdir -p "$stage/bin" "$stage/lib/modules"
    cp "$BUSYBOX" "$stage/bin/busybox"
    cp "$MATRIX_DIR/guest-init.sh" "$stage/init"
    chmod 755 "$stage/init" "$stage/bin/busybox"
    if [[ -f "$kdir/loop.ko" ]]; then
        cp "$kdir/loop.ko" "$stage/lib/modules/loop.ko"
    fi
    for lib in "${BASE_LIBS[@]}" $(payload_libs "$payload" | sort -u); do
        [[ -e "$stage$lib" ]] && continue
        [[ -e "$lib" ]] || die "$lib (needed by the payload) does not exist on the host"
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}

# image_mb PAYLOAD_DIR: size of the ext4 image, MiB.
image_mb() {
    if [[ -n "${TRACE_MATRIX_IMAGE_MB:-}" ]]; then
        check_number TRACE_MATRIX_IMAGE_MB "$TRACE_MATRIX_IMAGE_MB"
        echo "$TRACE_MATRIX_IMAGE_MB"
        return
    fi
    local kib
    kib="$(du -sk "$1" | cut -f1)"
    local mb=$((kib * 2 / 1024 + 32))
    ((mb >= 64)) || mb=64
    echo "$mb"
}

# build_initrd KDIR PAYLOAD_DIR WORK: write WORK/initrd.gz; prints the image
# size in MiB.
build_initrd() {
    local kdir="$1" payload="$2" work="$3" stage="$3/rootfs" mb
    stage_rootfs "$kdir" "$payload" "$stage"
    mb="$(image_mb "$payload")"
    truncate -s "${mb}M" "$stage/payload.img"
    if ! MKE2FS_CONFIG="$MATRIX_DIR/mke2fs.conf" mkfs.ext4 -q -F -t ext4 -L payload \
        -d "$payload" "$stage/payload.img" >"$work/mkfs.log" 2>&1; then
        cat "$work/mkfs.log" >&2
        die "mkfs.ext4 -d $payload failed (is the payload larger than ${mb} MiB? set TRACE_MATRIX_IMAGE_MB)"
    fi
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
        gzip -1 >"$work/initrd.gz"
    echo "$mb"
}

# find_report RAW...: copy the first RAW file that holds a complete report,
# without carriage returns, to $WORK/report and succeed; fail if none does.
find_report() {
    local raw
    for raw in "$@"; do
        [[ -f "$raw" ]] || continue
        tr -d '\r' <"$raw" >"$WORK/report"
        if grep -aq '^@@TRACE-MATRIX-DONE@@$' "$WORK/report"; then
            REPORT_SOURCE="$raw"
            return 0
        fi
    done
    return 1
}

# extract_item NAME DEST: decode report item NAME of $WORK/report into DEST
# and check its size and checksum. Returns 1 if the report has no such item.
extract_item() {
    local name="$1" dest="$2" report="$WORK/report" header size sum got
    header="$(grep -a -m1 "^@@TRACE-MATRIX-BEGIN $name [0-9]* [0-9a-f]*@@\$" "$report")" || return 1
    header="${header%@@}"
    read -r _ _ size sum <<<"$header"
    # Kernel messages can only be mixed in when the report came on the
    # console. They start with a "[ seconds.micros]" stamp, a character base64
    # never uses, and end the line they interrupt; the data goes on on the
    # next line. So cut each line at "[" and drop lines that are then not
    # base64; the checksum catches whatever else slips through.
    awk -v begin="@@TRACE-MATRIX-BEGIN $name " -v end="@@TRACE-MATRIX-END $name@@" '
        index($0, begin) == 1 { inside = 1; next }
        inside && $0 == end { exit }
        inside { sub(/\[.*/, ""); if ($0 ~ /^[A-Za-z0-9+\/=]+$/) print }
    ' "$report" | base64 -d | gzip -dc >"$dest" 2>/dev/null ||
        die "report item '$name' in $REPORT_SOURCE does not decode (base64 of gzip expected)"
    got="$(sha256sum "$dest" | cut -d' ' -f1)"
    if [[ "$(stat -c %s "$dest")" != "$size" || "$got" != "$sum" ]]; then
        die "report item '$name' in $REPORT_SOURCE is corrupt (expected $size bytes, sha256 $sum)"
    fi
}

# collect OUT_DIR: write the items of $WORK/report to OUT_DIR.
collect() {
    local out="$1" item
    if extract_item error "$out/guest-error"; then
        die "guest setup failed: $(cat "$out/guest-error") (see $out/console.log)"
    fi
    for item in uname stdout stderr status; do
        extract_item "$item" "$out/$item" || die "the report in $REPORT_SOURCE lacks '$item'"
    done
}

main() {
    (($# == 3)) || usage
    local suite="$1" payload="$2" out="$3" kdir mb mem rc=0 t0 t1
    check_suite "$suite"
    [[ -d "$payload" ]] || die "payload dir '$payload' does not exist"
    [[ -f "$payload/run.sh" ]] || die "payload dir '$payload' has no run.sh"
    check_number TRACE_MATRIX_TIMEOUT "$TIMEOUT"
    check_number TRACE_MATRIX_SMP "$SMP"
    need_tools qemu-system-x86_64 mkfs.ext4 cpio gzip timeout ldd base64 sha256sum awk
    [[ -x "$BUSYBOX" ]] || die "$BUSYBOX not found: install busybox-static or set TRACE_MATRIX_BUSYBOX"
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked; the guest needs a static one (Debian package busybox-static)"
    fi
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    rm -f "$out"/{stdout,stderr,status,uname,console.log,report.raw,guest-error,qemu.log}

    "$MATRIX_DIR/fetch-kernels.sh" "$suite" >/dev/null
    kdir="$(kernel_dir "$suite")"

    WORK="$(mktemp -d "${TMPDIR:-/tmp}/trace-matrix.XXXXXX")"
    if [[ "${TRACE_MATRIX_KEEP:-0}" == 1 ]]; then
        note "keeping $WORK"
    else
        trap 'rm -rf "$WORK"' EXIT
    fi

    t0="$(now)"
    mb="$(build_initrd "$kdir" "$payload" "$WORK")"
    if [[ -n "${TRACE_MATRIX_MEM_MB:-}" ]]; then
        check_number TRACE_MATRIX_MEM_MB "$TRACE_MATRIX_MEM_MB"
        mem="$TRACE_MATRIX_MEM_MB"
    else
        mem=$((512 + 2 * mb))
    fi
    note "$suite: initramfs with a ${mb} MiB image built in $(elapsed "$t0") s; booting $(cat "$kdir/release") (${mem} MiB, ${SMP} CPU)"

    t1="$(now)"
    # QEMU option values escape a comma by doubling it.
    timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
        -accel "$ACCEL" -cpu max -m "$mem" -smp "$SMP" \
        -nodefaults -nographic -no-reboot \
        -kernel "$kdir/vmlinuz" -initrd "$WORK/initrd.gz" \
        -append "console=ttyS0 quiet loglevel=1 panic=-1 ${TRACE_MATRIX_APPEND:-}" \
        -chardev "file,id=console,path=${out//,/,,}/console.log" -serial chardev:console \
        -chardev "file,id=report,path=${out//,/,,}/report.raw" -serial chardev:report \
        </dev/null >"$out/qemu.log" 2>&1 || rc=$?
    note "$suite: guest ran $(elapsed "$t1") s"
    [[ -s "$out/qemu.log" ]] || rm -f "$out/qemu.log"

    if find_report "$out/report.raw" "$out/console.log"; then
        collect "$out"
    elif ((rc == 124)); then
        die "the $suite guest did not report within ${TIMEOUT} s (TRACE_MATRIX_TIMEOUT); see $out/console.log"
    elif [[ -f "$out/qemu.log" ]]; then
        die "the $suite guest stopped without a report (qemu exit status $rc; boot failure?); see $out/console.log and $out/qemu.log"
    else
        die "the $suite guest stopped without a report (qemu exit status $rc; boot failure?); see $out/console.log"
    fi
}

main "$@"
