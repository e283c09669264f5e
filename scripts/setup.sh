#!/usr/bin/env bash
# Installs everything beyond `npm ci` that the full test suite and the local stack use, each part
# idempotent and cached (a second run takes seconds):
#   Python venvs for Airflow (.venv-airflow) and dbt (.venv-dbt), Kafka's jars (Maven Central),
#   the BigQuery double's ZetaSQL engine (tools/zetasql-double, jars from Maven Central),
#   podman + a local base image + the Docker API socket, Chromium for the UI test.
# System packages come from Debian (apt-get) and need root; without root the missing parts are
# reported and the tests that need them skip locally (in CI, CI=true, they fail instead).
#
#   npm run setup            everything
#   SETUP_ONLY="dbt kafka" npm run setup    just some parts (airflow dbt kafka zetasql podman chromium)
#
# A part that fails is reported as FAILED, never as ready. Under CI=true the first failure stops
# the run with a non-zero exit (so a CI run fails here, not in a suite timing out later); locally
# the other parts still run, the suites needing the failed part skip with their reason, and the
# script ends with the list of failed parts (exit 0, so `npm test` still runs what it can).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PARTS="${SETUP_ONLY:-airflow dbt kafka zetasql podman chromium}"
log() { printf '[setup] %s\n' "$*" >&2; }

# Another apt run may hold the lock (CI, a colleague's setup): wait for it rather than fail.
APT=(apt-get -o DPkg::Lock::Timeout=600)
apt_updated=""
apt_install() {
  if [[ "$(id -u)" != 0 ]]; then
    log "not root: cannot install $* (install them yourself, or run as root)"
    return 1
  fi
  if [[ -z "$apt_updated" ]]; then
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" update -qq >/dev/null || return 1
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
}

setup_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  log "chromium: installing Chromium and fonts from Debian (UI test; a few minutes on a cold machine)"
  apt_install chromium fonts-liberation
}

failed=()
for part in $PARTS; do
  start=$(date +%s)
  log "$part: setting up"
  case "$part" in
    airflow) cmd=(bash scripts/setup-airflow.sh) ;;
    dbt) cmd=(bash scripts/setup-dbt.sh) ;;
    kafka) cmd=(bash scripts/kafka/setup.sh) ;;
    zetasql) cmd=(bash scripts/setup-zetasql.sh) ;;
    podman) cmd=(bash scripts/setup-podman.sh) ;;
    chromium) cmd=(setup_chromium) ;;
    *) log "unknown part '$part' (known: airflow dbt kafka zetasql podman chromium)"; exit 64 ;;
  esac
  if "${cmd[@]}"; then
    log "$part ready ($(( $(date +%s) - start )) s)"
  else
    rc=$?
    log "$part FAILED (exit $rc after $(( $(date +%s) - start )) s): the suites that need it will not run"
    [[ "${CI:-}" != true ]] || { log "CI=true: stopping at the first failed setup part"; exit 1; }
    failed+=("$part")
  fi
done
if ((${#failed[@]})); then
  log "setup finished with failed parts: ${failed[*]} (their suites are skipped locally; see the lines above)"
fi
