#!/usr/bin/env bash
# Run the NIJA daemon: what a VPS user (and deploy/nija.service) runs.
#
# On first use, or when pyproject.toml is newer than the last install, creates .venv and
# installs NIJA into it (no dev tools); then replaces itself with `.venv/bin/python bot.py`,
# passing every argument on, so systemd's SIGTERM reaches the daemon directly.
# With no broker keys set, the daemon runs a demo on simulated accounts.
# PYTHON=/path/to/python3.11 ./start.sh picks the interpreter that creates .venv.
set -euo pipefail

# Work from this script's own directory, wherever it is started from (even via a symlink),
# so .venv, .env and data/ are always the ones next to it.
self="$(readlink -f "${BASH_SOURCE[0]}" 2>/dev/null || echo "${BASH_SOURCE[0]}")"
cd "$(dirname "$self")"

PYTHON="${PYTHON:-python3}"
# Not scripts/test.sh's stamp: that one promises the dev tools are installed too.
stamp=.venv/.nija-start-installed

if [ ! -x .venv/bin/python ]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "start.sh: $PYTHON not found. Install Python 3.11 or newer," \
            "or run: PYTHON=/path/to/python3.11 ./start.sh" >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        found="$("$PYTHON" -V 2>&1 || true)"
        echo "start.sh: NIJA needs Python 3.11 or newer, but $PYTHON is ${found:-unknown}." \
            "Install python3.11 (or newer) and run: PYTHON=python3.11 ./start.sh" >&2
        exit 1
    fi
    echo "start.sh: creating .venv with $("$PYTHON" -V 2>&1)" >&2
    "$PYTHON" -m venv .venv
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "start.sh: installing NIJA and its dependencies into .venv (needs the package index)" >&2
    .venv/bin/python -m pip install --quiet -e .
    touch "$stamp"
fi

exec .venv/bin/python bot.py "$@"
