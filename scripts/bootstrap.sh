#!/usr/bin/env bash
# Creates .venv from the pinned requirements, installing Python 3.11+ with venv first if the
# machine lacks it (Debian's packages; needs root, as on the project's machines).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

python_ok() {
    command -v "$python" >/dev/null 2>&1 &&
        "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

if ! python_ok; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing python3, python3-venv and python3-dev from Debian" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-dev >/dev/null
        python=python3
    fi
    python_ok || { echo "bootstrap: need Python 3.11+ with venv (set PYTHON=...)" >&2; exit 1; }
fi

rm -rf .venv
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# Playwright (the browser tests) drives Debian's chromium (scripts/chromium.sh): never a download
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
# setuptools says, as a warning, that an editable install finds `duopass` through a meta path
# finder: information, not a fault, and the only line a clean bootstrap would print.
PYTHONWARNINGS="ignore:Editable installation" \
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
touch .venv/.installed
