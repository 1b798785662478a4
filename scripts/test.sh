#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite. Exit code is pytest's,
# except that "no tests collected" (pytest's 5) is turned into a loud failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
stamp=.venv/.nija-installed
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# Reinstall when pyproject.toml changed since the last install.
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
fi

.venv/bin/ruff check --quiet . || { echo "ruff check failed" >&2; exit 1; }
.venv/bin/ruff format --check --quiet . || { echo "ruff format: files need formatting" >&2; exit 1; }
# The layers: dependencies point down only (contracts in pyproject.toml).
.venv/bin/lint-imports --no-cache >/tmp/nija-lint-imports.$$ 2>&1 \
    || { cat /tmp/nija-lint-imports.$$ >&2; rm -f /tmp/nija-lint-imports.$$; echo "import contracts broken" >&2; exit 1; }
rm -f /tmp/nija-lint-imports.$$
# Types ([tool.mypy] in pyproject.toml): the package, then the scripts, which must be
# checked on their own (bot.py would otherwise collide with the package bot/).
{ .venv/bin/mypy && .venv/bin/mypy bot.py check_*.py; } >/tmp/nija-mypy.$$ 2>&1 \
    || { cat /tmp/nija-mypy.$$ >&2; rm -f /tmp/nija-mypy.$$; echo "mypy found type errors" >&2; exit 1; }
rm -f /tmp/nija-mypy.$$

set +e
# Three workers on two cores: the daemon tests mostly wait on cycles, not the CPU.
.venv/bin/python -m pytest -n "${NIJA_TEST_WORKERS:-4}" --dist worksteal "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "ERROR: pytest collected no tests; refusing to call that a pass." >&2
    exit 1
fi
exit "$rc"
