#!/usr/bin/env bash
# The README's two commands, on a fresh machine with Python 3.11, pip and apt:
#
#   bash scripts/run.sh serve       # set up, index the bundled corpus, serve it on http://127.0.0.1:8000
#   bash scripts/run.sh test        # set up (Chromium, nginx, Java and Maven too), check style and
#                                   # types (ruff, mypy), run the whole suite on both engines
#   bash scripts/run.sh check       # set up, the style and type checks alone
#   bash scripts/run.sh opensearch  # set up, run a local three-node OpenSearch cluster in the foreground
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
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,opensearch]"
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

proxy() {
    # The deployment test runs Debian's nginx in front of the service; install it when
    # missing, without letting the package start its default site on port 80.
    if [ ! -x /usr/sbin/nginx ]; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        local blocker=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
            $sudo chmod +x /usr/sbin/policy-rc.d
            blocker=1
        fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx-light >/dev/null \
            || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx >/dev/null
        [ -z "$blocker" ] || $sudo rm -f /usr/sbin/policy-rc.d
    fi
}

opensearch_launcher() {
    # The OpenSearch engine's tests run a real cluster from Maven Central's jars
    # (opensearch/pom.xml): Java 17 and Maven, installed when missing.
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null
    fi
    mvn -q -B -f opensearch/pom.xml package
}

checks() {
    # The checks that hold the style, before any test runs (config in pyproject.toml).
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
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
        checks
        browser
        proxy
        opensearch_launcher
        exec "$VENV/bin/python" -m pytest --engine all -m "" "$@"
        ;;
    check)
        setup
        checks
        ;;
    opensearch)
        setup
        opensearch_launcher
        exec "$VENV/bin/python" scripts/opensearch.py "$@"
        ;;
    *)
        echo "usage: bash scripts/run.sh serve|test|check|opensearch [args...]" >&2
        exit 64
        ;;
esac
