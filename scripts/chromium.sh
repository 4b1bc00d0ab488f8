#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/web): Playwright drives /usr/bin/chromium and
# never downloads a browser of its own (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1).
#
#   scripts/chromium.sh            install Debian's `chromium` package if /usr/bin/chromium is
#                                  absent, and a Simplified Chinese font (`fonts-wqy-microhei`)
#                                  if fontconfig knows none, so the pages' Chinese renders in
#                                  screenshots (as root, with apt-get); then print the browser's
#                                  path: the only thing this script ever writes to stdout.
#
# CHROMIUM overrides the path looked for. Installing takes a minute or two the first time; two
# runs at once wait for each other (apt's own lock).
set -euo pipefail

BROWSER=${CHROMIUM:-/usr/bin/chromium}

say() { echo "chromium.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

has_cjk_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh-cn family 2>/dev/null)" ]; }

missing=()
[ -x "$BROWSER" ] || missing+=(chromium)
has_cjk_font || missing+=(fonts-wqy-microhei)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        [ -x "$BROWSER" ] || die "$BROWSER is absent; as root on Debian this script installs it, otherwise install the 'chromium' package or set CHROMIUM"
        say "warning: no Simplified Chinese font; Chinese pages render as boxes (install fonts-wqy-microhei)"
    else
        say "installing Debian's ${missing[*]} (takes a minute or two)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
        [ -x "$BROWSER" ] || die "the 'chromium' package did not install $BROWSER"
    fi
fi
printf '%s\n' "$BROWSER"
