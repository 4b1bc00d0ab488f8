#!/usr/bin/env bash
# A throwaway SoftHSM token for the test suite: an HSM in files, through PKCS#11.
#
#   scripts/softhsm.sh module      install SoftHSM if absent (Debian's `softhsm2`; needs root) and
#                                  print the path of its PKCS#11 module: the only thing this
#                                  script writes to stdout.
#   scripts/softhsm.sh token DIR LABEL
#                                  the same, then make DIR/softhsm2.conf (its tokens in
#                                  DIR/tokens, nowhere else) if absent and a new token LABEL in
#                                  the first free slot, with the user PIN in $SOFTHSM_PIN and the
#                                  security officer's in $SOFTHSM_SO_PIN (never arguments of this
#                                  script). Processes that set SOFTHSM2_CONF=DIR/softhsm2.conf
#                                  see it. Prints the module's path.
#   scripts/softhsm.sh stop DIR    delete DIR (only one this script made a configuration in).
set -euo pipefail

MARKER=.duopass-softhsm

say() { echo "softhsm.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}
usage() { die "usage: $0 module | $0 token DIR LABEL | $0 stop DIR"; }

module_path() { # Debian's place, then wherever the package put it
    local candidate
    for candidate in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
        [ -f "$candidate" ] && printf '%s\n' "$candidate" && return 0
    done
    if command -v dpkg >/dev/null 2>&1; then
        dpkg -L softhsm2-common libsofthsm2 2>/dev/null | grep -m1 '/libsofthsm2\.so$' && return 0
    fi
    return 1
}

install_softhsm() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        die "SoftHSM is not installed (no softhsm2-util or libsofthsm2.so); as root on Debian this script installs it, otherwise install the 'softhsm2' package"
    fi
    say "SoftHSM not found; installing Debian's 'softhsm2' package"
    local status=0
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            softhsm2 >/dev/null || status=$?
    [ "$status" = 0 ] || die "apt-get install softhsm2 failed (exit status $status)"
}

module() {
    if ! command -v softhsm2-util >/dev/null 2>&1 || ! module_path >/dev/null; then
        install_softhsm
    fi
    module_path || die "softhsm2 is installed but its PKCS#11 module was not found"
}

token() {
    local dir=$1 label=$2
    [ -n "$label" ] && [ "${#label}" -le 32 ] || die "LABEL must be 1 to 32 characters"
    [ -n "${SOFTHSM_PIN:-}" ] && [ -n "${SOFTHSM_SO_PIN:-}" ] || die "set SOFTHSM_PIN and SOFTHSM_SO_PIN"
    local path
    path=$(module)
    mkdir -p "$dir/tokens"
    dir=$(cd "$dir" && pwd)
    if [ ! -e "$dir/softhsm2.conf" ]; then
        printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
            "$dir" >"$dir/softhsm2.conf"
        : >"$dir/$MARKER"
    fi
    # softhsm2-util takes the PINs as arguments; they are test PINs of a throwaway token
    SOFTHSM2_CONF="$dir/softhsm2.conf" softhsm2-util --init-token --free --label "$label" \
        --pin "$SOFTHSM_PIN" --so-pin "$SOFTHSM_SO_PIN" >/dev/null ||
        die "softhsm2-util could not make the token '$label' in $dir/tokens"
    printf '%s\n' "$path"
}

stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    [ -e "$dir/$MARKER" ] || die "$dir was not made by this script; not deleting it"
    rm -rf -- "$dir"
}

case ${1:-} in
    module) [ $# = 1 ] || usage && module ;;
    token) [ $# = 3 ] || usage && token "$2" "$3" ;;
    stop) [ $# = 2 ] || usage && stop "$2" ;;
    *) usage ;;
esac
