# Shared helpers for the kernel-matrix scripts. Sourced, never executed.
# shellcheck shell=bash

# These variables are used by the scripts that source this file.
# shellcheck disable=SC2034

# Where downloaded packages, apt state and extracted kernels live.
MATRIX_CACHE="${TRACE_MATRIX_CACHE:-/var/cache/trace-matrix}"
# The directory holding these scripts (guest-init.sh, mke2fs.conf).
MATRIX_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The suites the smoke test covers; others are accepted on the command line.
MATRIX_DEFAULT_SUITES=(bullseye bookworm trixie)

# die MESSAGE...: print an error naming the script and exit 1.
die() {
    echo "$(basename "$0"): error: $*" >&2
    exit 1
}

# note MESSAGE...: progress message on stderr.
note() {
    echo "$(basename "$0"): $*" >&2
}

# need_tools TOOL...: fail with the list of missing commands and the packages
# that provide them.
need_tools() {
    local missing=() t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        die "missing commands: ${missing[*]} (install the Debian packages listed in tests/matrix/README.md)"
    fi
}

# check_suite NAME: a Debian codename is lower-case letters only.
check_suite() {
    [[ "$1" =~ ^[a-z]+$ ]] || die "'$1' is not a Debian suite codename (expected e.g. bullseye, bookworm, trixie)"
}

# kernel_dir SUITE: where fetch-kernels.sh leaves the extracted kernel.
kernel_dir() {
    echo "$MATRIX_CACHE/kernels/$1"
}
