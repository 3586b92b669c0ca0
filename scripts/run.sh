#!/usr/bin/env bash
# The README's two commands, on a fresh machine with Python 3.11, pip and apt:
#
#   bash scripts/run.sh serve   # set up, index the bundled corpus, serve it on http://127.0.0.1:8000
#   bash scripts/run.sh test    # set up (and install Chromium for the browser test), run the whole suite
#
# Setup makes ./.venv and installs the project with the exact versions in
# constraints.txt. Extra arguments go to pytest (test) or to `serve` (serve).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian's python3 ships venv separately.
            rm -rf "$VENV"
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
}

browser() {
    # The browser test drives Debian's Chromium; install it when missing.
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    serve)
        setup
        "$VENV/bin/search-service" reindex
        exec "$VENV/bin/search-service" serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
        ;;
    test)
        setup
        browser
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: bash scripts/run.sh serve|test [args...]" >&2
        exit 64
        ;;
esac
