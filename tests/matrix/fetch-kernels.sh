#!/bin/bash
# fetch-kernels.sh [SUITE...]: download Debian's newest
# linux-image-*-cloud-amd64-unsigned package of each SUITE (default: bullseye
# bookworm trixie) and extract the kernel image, its config and the loop module
# into $TRACE_MATRIX_CACHE/kernels/SUITE. A suite already in the cache is not
# looked up again unless TRACE_MATRIX_REFRESH=1.
#
# Prints one line per suite on stdout: SUITE KERNEL_RELEASE KERNEL_DIR.
#
# Every suite, the machine's own included, is resolved through a private apt
# state (sources list, lists dir, cache) under the cache dir, pointed at the
# Debian mirror of the machine's own apt sources, so the system's apt state is
# neither used nor changed. TRACE_MATRIX_MIRROR overrides the mirror URI and
# TRACE_MATRIX_KEYRING the keyring the suite's Release file is checked with.
set -euo pipefail

# shellcheck source=tests/matrix/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KEYRING="${TRACE_MATRIX_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"

usage() {
    echo "usage: $0 [SUITE...]   (default: ${MATRIX_DEFAULT_SUITES[*]})" >&2
    exit 2
}

# own_codename: VERSION_CODENAME of the machine's own Debian release. Other
# distributions (Ubuntu included) have no Debian mirror in their sources.
own_codename() {
    local id code
    # shellcheck disable=SC1091
    id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck disable=SC1091
    code="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ "$id" == debian ]] || die "this machine runs '${id:-unknown}', not Debian, so its apt sources name no Debian mirror; set TRACE_MATRIX_MIRROR to a Debian mirror URI"
    [[ -n "$code" ]] || die "/etc/os-release has no VERSION_CODENAME; set TRACE_MATRIX_MIRROR to a Debian mirror URI"
    echo "$code"
}

# deb822_mirror CODENAME FILE...: the first URI of an enabled "deb" stanza of
# the deb822 .sources FILEs whose Suites include CODENAME.
deb822_mirror() {
    local code="$1"
    shift
    awk -v code="$code" '
        function flush() {
            if (!found && (" " types " ") ~ / deb / && enabled != "no" &&
                (" " suites " ") ~ (" " code " ")) {
                split(uris, u, /[ \t]+/)
                if (u[1] != "") { print u[1]; found = 1 }
            }
            types = ""; uris = ""; suites = ""; enabled = "yes"
        }
        BEGIN { enabled = "yes" }
        FNR == 1 { flush() }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { next }
        {
            i = index($0, ":")
            if (i == 0) next
            key = tolower(substr($0, 1, i - 1))
            val = substr($0, i + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = tolower(val)
        }
        END { flush() }
    ' "$@"
}

# oneline_mirror CODENAME FILE...: the URI of the first "deb" line of the
# one-line-style FILEs whose suite is CODENAME.
oneline_mirror() {
    local code="$1"
    shift
    awk -v code="$code" '
        $1 != "deb" { next }
        {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == code) { print $i; exit }
        }
    ' "$@"
}

# host_mirror: the Debian mirror URI the machine's own apt sources use.
host_mirror() {
    if [[ -n "${TRACE_MATRIX_MIRROR:-}" ]]; then
        echo "$TRACE_MATRIX_MIRROR"
        return
    fi
    local code uri="" files=()
    code="$(own_codename)"
    shopt -s nullglob
    files=(/etc/apt/sources.list.d/*.sources)
    if ((${#files[@]})); then
        uri="$(deb822_mirror "$code" "${files[@]}" | head -n1)"
    fi
    if [[ -z "$uri" ]]; then
        files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
        if ((${#files[@]})); then
            uri="$(oneline_mirror "$code" "${files[@]}" | head -n1)"
        fi
    fi
    shopt -u nullglob
    [[ -n "$uri" ]] || die "no 'deb' source for suite $code in /etc/apt/sources.list{,.d/}; set TRACE_MATRIX_MIRROR to a Debian mirror URI"
    echo "${uri%/}"
}

# apt_state SUITE: prepare the private apt state dir of SUITE; sets APT_OPTS.
apt_state() {
    local suite="$1" state mirror
    state="$MATRIX_CACHE/apt/$suite"
    mirror="$(host_mirror)"
    [[ -r "$KEYRING" ]] || die "keyring $KEYRING is missing: install debian-archive-keyring or set TRACE_MATRIX_KEYRING"
    if [[ ! -e "/usr/share/keyrings/debian-archive-$suite-stable.gpg" && -z "${TRACE_MATRIX_KEYRING:-}" ]]; then
        note "warning: the installed debian-archive-keyring has no keyring file for $suite; its Release signature may not verify"
    fi
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    # Only the Packages index is needed: target=Packages skips Contents,
    # DEP-11 and translations.
    echo "deb [signed-by=$KEYRING target=Packages] $mirror $suite main" >"$state/sources.list"
    APT_OPTS=(
        -o "Dir::Etc::sourcelist=$state/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$state/lists"
        -o "Dir::Cache=$state/cache"
        -o "Acquire::Check-Valid-Until=false"
        -o "Acquire::Languages=none"
        -o "APT::Sandbox::User=root"
        -q
    )
}

# newest_package SUITE: "NAME VERSION" of the newest cloud-amd64-unsigned
# kernel image in the (already updated) private lists of SUITE.
newest_package() {
    local names name ver best_name="" best_ver=""
    names="$(apt-cache "${APT_OPTS[@]}" search --names-only '^linux-image-[0-9].*-cloud-amd64-unsigned$' | awk '{print $1}')"
    [[ -n "$names" ]] || die "suite $1 has no linux-image-*-cloud-amd64-unsigned package"
    for name in $names; do
        for ver in $(apt-cache "${APT_OPTS[@]}" show "$name" | awk '/^Version:/ {print $2}'); do
            if [[ -z "$best_ver" ]] || dpkg --compare-versions "$ver" gt "$best_ver"; then
                best_name="$name"
                best_ver="$ver"
            fi
        done
    done
    echo "$best_name $best_ver"
}

# download_deb SUITE NAME VERSION: fetch the package into the deb cache (unless
# there already) and print its path.
download_deb() {
    local suite="$1" name="$2" ver="$3" debs part deb
    debs="$MATRIX_CACHE/debs/$suite"
    deb="$debs/${name}_${ver//:/%3a}_amd64.deb"
    if [[ -s "$deb" ]]; then
        echo "$deb"
        return
    fi
    part="$debs/.partial"
    rm -rf "$part"
    mkdir -p "$part"
    note "$suite: downloading $name $ver"
    (cd "$part" && apt-get "${APT_OPTS[@]}" download "$name=$ver" >&2) ||
        die "$suite: apt-get download $name=$ver failed"
    local got=("$part"/*.deb)
    [[ -s "${got[0]}" ]] || die "$suite: apt-get download left no .deb in $part"
    mv "${got[0]}" "$deb"
    rm -rf "$part"
    echo "$deb"
}

# config_value CONFIG OPTION: y, m or empty.
config_value() {
    sed -n "s/^$2=\\(.*\\)\$/\\1/p" "$1"
}

# require_builtin CONFIG OPTION WHY: the guest needs OPTION=y.
require_builtin() {
    local v
    v="$(config_value "$1" "$2")"
    [[ "$v" == y ]] || die "$(basename "$1") has $2=${v:-unset}; the guest needs it built in ($3)"
}

# decompress_module SRC DST: copy a module, undoing .xz/.zst/.gz compression
# (busybox insmod in the guest only reads plain ELF).
decompress_module() {
    case "$1" in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -qdc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *) die "unknown module compression: $1" ;;
    esac
}

# extract_kernel SUITE DEB NAME VERSION: unpack DEB and install vmlinuz,
# config, release, package and (when loop is a module) loop.ko into the
# kernel dir of SUITE.
extract_kernel() {
    local suite="$1" deb="$2" name="$3" ver="$4" tmp kdir new vmlinuz config release loop ko depends
    kdir="$(kernel_dir "$suite")"
    tmp="$(mktemp -d "$MATRIX_CACHE/extract.XXXXXX")"
    new="$kdir.new"
    rm -rf "$new"
    mkdir -p "$new"
    dpkg-deb -x "$deb" "$tmp"
    vmlinuz="$(find "$tmp/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)"
    [[ -n "$vmlinuz" ]] || die "$deb has no /boot/vmlinuz-*"
    release="${vmlinuz##*/vmlinuz-}"
    config="$tmp/boot/config-$release"
    [[ -f "$config" ]] || die "$deb has no /boot/config-$release"
    require_builtin "$config" CONFIG_BLK_DEV_INITRD "initramfs"
    require_builtin "$config" CONFIG_RD_GZIP "gzip initramfs"
    require_builtin "$config" CONFIG_DEVTMPFS "/dev"
    require_builtin "$config" CONFIG_SERIAL_8250_CONSOLE "serial console and report port"
    require_builtin "$config" CONFIG_EXT4_FS "payload filesystem"
    require_builtin "$config" CONFIG_TRACING "tracefs"
    cp "$vmlinuz" "$new/vmlinuz"
    cp "$config" "$new/config"
    echo "$release" >"$new/release"
    echo "$name $ver" >"$new/package"
    loop="$(config_value "$config" CONFIG_BLK_DEV_LOOP)"
    case "$loop" in
    y) echo "y" >"$new/loop" ;;
    m)
        ko="$(find "$tmp" -path "*/modules/$release/kernel/drivers/block/loop.ko*" | head -n1)"
        [[ -n "$ko" ]] || die "$deb: CONFIG_BLK_DEV_LOOP=m but no loop.ko* under lib/modules/$release"
        decompress_module "$ko" "$new/loop.ko"
        depends="$(tr '\0' '\n' <"$new/loop.ko" | sed -n 's/^depends=//p' | head -n1)"
        [[ -z "$depends" ]] || die "$ko depends on modules ($depends); the guest only loads loop.ko"
        echo "m ${ko##*/}" >"$new/loop"
        ;;
    *) die "$config has CONFIG_BLK_DEV_LOOP=${loop:-unset}; the payload needs a loop device" ;;
    esac
    rm -rf "$tmp" "$kdir"
    mv "$new" "$kdir"
}

# fetch_suite SUITE: make sure the kernel of SUITE is in the cache.
fetch_suite() {
    local suite="$1" kdir pkg name ver deb old
    kdir="$(kernel_dir "$suite")"
    if [[ -f "$kdir/package" && "${TRACE_MATRIX_REFRESH:-0}" != 1 ]]; then
        return
    fi
    apt_state "$suite"
    note "$suite: updating the package lists"
    apt-get "${APT_OPTS[@]}" update >&2 || die "$suite: apt-get update failed (mirror $(host_mirror), keyring $KEYRING)"
    pkg="$(newest_package "$suite")"
    read -r name ver <<<"$pkg"
    if [[ ! -f "$kdir/package" || "$(cat "$kdir/package")" != "$name $ver" ]]; then
        deb="$(download_deb "$suite" "$name" "$ver")"
        note "$suite: extracting $(basename "$deb")"
        extract_kernel "$suite" "$deb" "$name" "$ver"
        for old in "$MATRIX_CACHE/debs/$suite"/*.deb; do
            [[ "$old" == "$deb" ]] || rm -f "$old"
        done
    fi
    # The package lists (~20 MB a suite) are only read on a refresh, which
    # fetches them again anyway.
    rm -rf "$MATRIX_CACHE/apt/$suite/lists" "$MATRIX_CACHE/apt/$suite/cache"
}

main() {
    local suites=("$@") suite lock
    [[ "${1:-}" == -h || "${1:-}" == --help ]] && usage
    ((${#suites[@]})) || suites=("${MATRIX_DEFAULT_SUITES[@]}")
    for suite in "${suites[@]}"; do
        check_suite "$suite"
    done
    need_tools flock
    mkdir -p "$MATRIX_CACHE/locks" 2>/dev/null || die "cannot create $MATRIX_CACHE: set TRACE_MATRIX_CACHE to a writable directory"
    for suite in "${suites[@]}"; do
        lock="$MATRIX_CACHE/locks/$suite.lock"
        (
            # One fetch per suite at a time (the smoke tests run in parallel).
            exec 9>"$lock"
            flock 9
            if [[ ! -f "$(kernel_dir "$suite")/package" || "${TRACE_MATRIX_REFRESH:-0}" == 1 ]]; then
                need_tools apt-get apt-cache dpkg dpkg-deb xz
            fi
            fetch_suite "$suite"
        )
        echo "$suite $(cat "$(kernel_dir "$suite")/release") $(kernel_dir "$suite")"
    done
}

main "$@"
