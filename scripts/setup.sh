#!/usr/bin/env bash
# Installs everything beyond `npm ci` that the full test suite and the local stack use, each part
# idempotent and cached (a second run takes seconds):
#   Python venvs for Airflow (.venv-airflow) and dbt (.venv-dbt), Kafka's jars (Maven Central),
#   podman + a local base image + the Docker API socket, Chromium for the UI test.
# System packages come from Debian (apt-get) and need root; without root the missing parts are
# reported and the tests that need them skip locally (in CI, CI=true, they fail instead).
#
#   npm run setup            everything
#   SETUP_ONLY="dbt kafka" npm run setup    just some parts (airflow dbt kafka podman chromium)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PARTS="${SETUP_ONLY:-airflow dbt kafka podman chromium}"
log() { printf '[setup] %s\n' "$*" >&2; }

apt_updated=""
apt_install() {
  if [[ "$(id -u)" != 0 ]]; then
    log "not root: cannot install $* (install them yourself, or run as root)"
    return 1
  fi
  if [[ -z "$apt_updated" ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

for part in $PARTS; do
  start=$(date +%s)
  case "$part" in
    airflow) bash scripts/setup-airflow.sh ;;
    dbt) bash scripts/setup-dbt.sh ;;
    kafka) bash scripts/kafka/setup.sh ;;
    podman) bash scripts/setup-podman.sh || { log "podman setup failed: container tests will not run"; [[ "${CI:-}" != true ]] || exit 1; } ;;
    chromium)
      if ! command -v chromium >/dev/null 2>&1; then
        log "installing Chromium from Debian (UI test)"
        apt_install chromium fonts-liberation || [[ "${CI:-}" != true ]] || exit 1
      fi
      ;;
    *) log "unknown part '$part' (known: airflow dbt kafka podman chromium)"; exit 64 ;;
  esac
  log "$part ready ($(( $(date +%s) - start )) s)"
done
