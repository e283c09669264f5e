#!/usr/bin/env bash
# Installs the dbt toolchain (dbt-core, dbt-duckdb, dbt-bigquery, duckdb 1.5.x) pinned in
# requirements/dbt.txt into .venv-dbt/ — a venv of its own, since Airflow's pins conflict.
#
# Idempotent and cached: the sha256 of requirements/dbt.txt (plus the Python version) is stored
# in .venv-dbt/.requirements.sha256; a second run with the same requirements does nothing.
# Env: DBT_VENV (default <repo>/.venv-dbt), DBT_PYTHON (default python3.11, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/requirements/dbt.txt"
VENV="${DBT_VENV:-$ROOT/.venv-dbt}"

if [[ -n "${DBT_PYTHON:-}" ]]; then
  PY="$DBT_PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
  PY=python3.11
else
  PY=python3
fi
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PYVER" in
  3.9|3.10|3.11|3.12|3.13) ;;
  *) echo "setup-dbt: Python $PYVER is not supported by the pinned dbt (need 3.9-3.13)" >&2; exit 1 ;;
esac

WANT="$( { sha256sum "$REQ" | cut -d' ' -f1; echo "python-$PYVER"; } | sha256sum | cut -d' ' -f1)"
STAMP="$VENV/.requirements.sha256"

if [[ -x "$VENV/bin/dbt" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "setup-dbt: $VENV is up to date (requirements/dbt.txt unchanged)"
  exit 0
fi

start=$(date +%s)
stage() { echo "setup-dbt: $* (+$(( $(date +%s) - start )) s)"; }
stage "installing dbt into $VENV with $PY ($PYVER)"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
  stage "venv created"
fi
stage "pip install -r requirements/dbt.txt (silent; a few minutes on a cold cache)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
stage "packages installed; pip check"
# The venv must hold exactly what is pinned (a leftover from an older freeze would be masked).
"$VENV/bin/python" -m pip check
DBT_VERSION_CHECK=false "$VENV/bin/dbt" --version | sed -n "1,2p;/Plugins/,\$p"
echo "$WANT" > "$STAMP"
echo "setup-dbt: done in $(( $(date +%s) - start ))s"
