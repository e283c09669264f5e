#!/usr/bin/env bash
# Runs dbt on the store's dbt project (dbt_project/) with the toolchain in .venv-dbt.
#
#   bash scripts/dbt-build.sh              # dbt build, then dbt docs generate (DBT_DOCS=0 skips docs)
#   bash scripts/dbt-build.sh parse        # any other dbt command: dbt <args> with the same setup
#   DBT_TARGET=bigquery bash scripts/dbt-build.sh compile
#
# Before dbt runs, profiles.yml is written from env (scripts/dbt-profiles.ts) to DBT_PROFILES_DIR
# (default <ETL_STATE_DIR>/dbt). On the duckdb target the warehouse file must exist (the batch
# pipeline, `npm start`, creates it): dbt would otherwise create an empty file and fail later.
#
# Env: DBT_TARGET (duckdb|bigquery), DUCKDB_PATH, STREAM_DUCKDB_PATH, STREAM_SNAPSHOT_PATH,
# STREAM_SNAPSHOT_WAIT_S, ETL_STATE_DIR, DBT_PROFILES_DIR, DBT_VENV,
# DBT_TARGET_PATH / DBT_LOG_PATH (dbt's own), DBT_DOCS, DBT_THREADS, DBT_LOCK_RETRIES, and for
# bigquery GCP_PROJECT_ID, BIGQUERY_DATASET, BIGQUERY_LOCATION, GOOGLE_APPLICATION_CREDENTIALS.
# Their defaults are the spec's (jobs/lib/config/spec.ts, docs/configuration.md), exported as
# resolved by the config command (scripts/config-env.sh), never repeated here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. "$ROOT/scripts/config-env.sh"
# Resolved once and exported, so dbt, profiles.yml and the snapshot step see the same values.
config_env DBT_VENV DBT_TARGET DBT_PROFILES_DIR DBT_TARGET_PATH DBT_LOG_PATH DBT_DOCS DBT_LOCK_RETRIES \
  DUCKDB_PATH STREAM_DUCKDB_PATH STREAM_SNAPSHOT_PATH STREAM_SNAPSHOT_WAIT_S
VENV="$DBT_VENV"
DBT="$VENV/bin/dbt"
if [[ ! -x "$DBT" ]]; then
  echo "dbt-build: $DBT not found - run 'npm run setup:dbt' (bash scripts/setup-dbt.sh) first" >&2
  exit 2
fi

export DBT_SEND_ANONYMOUS_USAGE_STATS=false DBT_VERSION_CHECK=false
# No ANSI colours when the output goes to a log (npm start's logger, Airflow task logs).
[[ -t 1 ]] || export DBT_USE_COLORS="${DBT_USE_COLORS:-false}"
# (dbt's own paths come absolute from the config command: dbt runs from dbt_project/.)

# profiles.yml from env: the compiled script when dist/ has a current one, otherwise that file
# and the config module it reads are compiled alone (they need nothing else of the project).
PROFILES_JS="$(current_js scripts/dbt-profiles.ts)"
node "$PROFILES_JS" >/dev/null

if [[ "$DBT_TARGET" == duckdb ]]; then
  WAREHOUSE="$DUCKDB_PATH"
  cmd=build
  for a in "$@"; do [[ "$a" == -* ]] || { cmd="$a"; break; }; done
  case "$cmd" in
    parse|compile|deps|clean|debug|ls|list) ;;
    *)
      if [[ ! -f "$WAREHOUSE" ]]; then
        echo "dbt-build: warehouse $WAREHOUSE does not exist - run the batch pipeline (npm start) first" >&2
        exit 3
      fi
      # The stream tables: dbt attaches a snapshot of the stream layer's file (alias `stream`),
      # made current here (from the running consumer, or copied when no consumer holds the file).
      "$VENV/bin/python" "$ROOT/scripts/dbt_stream_snapshot.py"
      ;;
  esac
fi

cd "$ROOT/dbt_project"
if [[ $# -gt 0 ]]; then
  exec "$DBT" "$@" --target "$DBT_TARGET"
fi

# DuckDB admits one writing process: a job or a stream micro-batch holding the file makes dbt fail
# with a lock error. Such a run is retried (the build is idempotent) DBT_LOCK_RETRIES times
# (default 5), backing off 2, 4, 8, 16, 30 s; any other failure is final.
LOCK_RE='Could not set lock|Conflicting lock|database is locked'
with_lock_retry() {
  local out rc attempt=0 delay=2
  out="$(mktemp)"
  while true; do
    set +e
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    if [[ $rc -eq 0 || "$DBT_TARGET" != duckdb ]] || ! grep -Eq "$LOCK_RE" "$out" \
       || (( attempt >= DBT_LOCK_RETRIES )); then
      rm -f "$out"
      return "$rc"
    fi
    attempt=$((attempt + 1))
    echo "dbt-build: the warehouse is locked by another writer; retry $attempt of $DBT_LOCK_RETRIES in ${delay}s" >&2
    sleep "$delay"
    delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
  done
}

start=$(date +%s)
TARGET_DIR="$DBT_TARGET_PATH"
with_lock_retry "$DBT" build --target "$DBT_TARGET"
# `dbt docs generate` rewrites run_results.json: keep the build's results beside it.
cp "$TARGET_DIR/run_results.json" "$TARGET_DIR/build_results.json"
if [[ "$DBT_DOCS" != 0 ]]; then
  with_lock_retry "$DBT" docs generate --target "$DBT_TARGET" --static
  echo "dbt-build: docs at $TARGET_DIR/static_index.html (open it in a browser, or: dbt docs serve)"
fi
echo "dbt-build: dbt build on target $DBT_TARGET done in $(( $(date +%s) - start ))s"
