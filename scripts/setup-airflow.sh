#!/usr/bin/env bash
# Installs Apache Airflow 3 (+ docker and standard providers) into the project venv
# .venv-airflow/ from the full pinned freeze requirements/airflow.txt. Idempotent and cached:
# when the venv's marker equals the hash of the requirements file (and the Python version),
# nothing is done. Installs with `--no-deps` (the freeze is complete), through uv when it can
# be installed from PyPI (much faster), else through pip.
#
# Env:
#   AIRFLOW_PYTHON   interpreter for the venv (default: python3.11 if present, else python3; 3.10-3.13)
#   AIRFLOW_VENV     venv directory (default .venv-airflow)
#   AIRFLOW_SETUP_FORCE=1   reinstall even when the marker matches
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[setup-airflow] %s\n' "$*" >&2; }

REQS="requirements/airflow.txt"
VENV="${AIRFLOW_VENV:-.venv-airflow}"
UV_VERSION="0.13.9"
if [[ -n "${AIRFLOW_PYTHON:-}" ]]; then
  PY="$AIRFLOW_PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
  PY="python3.11"
else
  PY="python3"
fi
command -v "$PY" >/dev/null 2>&1 || { log "no Python interpreter '$PY' (set AIRFLOW_PYTHON)"; exit 1; }
PY_VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PY_VERSION" in
  3.10|3.11|3.12|3.13) ;;
  *) log "Airflow 3 needs Python 3.10-3.13, '$PY' is $PY_VERSION (set AIRFLOW_PYTHON)"; exit 1 ;;
esac
[[ "$PY_VERSION" == 3.11 ]] || log "warning: $REQS was resolved for Python 3.11, using $PY_VERSION"

WANT="$(sha256sum "$REQS" | cut -d' ' -f1) python$PY_VERSION"
MARKER="$VENV/.requirements.sha256"
if [[ "${AIRFLOW_SETUP_FORCE:-0}" != 1 && -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" \
      && -x "$VENV/bin/airflow" ]]; then
  log "$VENV is up to date ($REQS unchanged)"
  exit 0
fi

start=$(date +%s)
stage() { log "$* (+$(( $(date +%s) - start )) s)"; }
if [[ -x "$VENV/bin/python" ]] \
   && [[ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$PY_VERSION" ]]; then
  log "recreating $VENV (Python version changed)"
  rm -rf "$VENV"
fi
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
rm -f "$MARKER"
stage "venv $VENV ready; installing uv"

if "$VENV/bin/python" -m pip install -q "uv==$UV_VERSION" 2>/dev/null; then
  stage "installing $REQS with uv $UV_VERSION"
  "$VENV/bin/uv" pip install --python "$VENV/bin/python" --no-deps -r "$REQS"
else
  stage "uv unavailable, installing $REQS with pip (silent; several minutes on a cold cache)"
  "$VENV/bin/python" -m pip install -q --no-deps -r "$REQS"
fi
stage "packages installed; pip check and airflow version"
"$VENV/bin/python" -m pip check
"$VENV/bin/airflow" version >/dev/null
echo "$WANT" >"$MARKER"
log "Airflow $("$VENV/bin/python" -c 'import airflow; print(airflow.__version__)') ready in $VENV ($(( $(date +%s) - start ))s)"
