#!/usr/bin/env bash
# Starts Airflow 3 locally (`npm run airflow`): `airflow standalone` = api-server (UI and REST API
# at http://localhost:8080) + scheduler + dag-processor + triggerer, LocalExecutor, SQLite
# metadata DB under AIRFLOW_HOME, DAG folder dags/, examples off.
#
# Stop it with ONE Ctrl-C (or SIGTERM): every process of this Airflow - api-server, scheduler,
# dag-processor, triggerer, task workers - gets SIGTERM, then SIGKILL after AIRFLOW_STOP_TIMEOUT
# seconds (default 15). A backgrounded one: `npm run airflow:stop` (= `scripts/airflow.sh stop`,
# same AIRFLOW_HOME), which finds it by its pid file $AIRFLOW_HOME/airflow.pid.
#
# Login (Airflow's simple auth manager, role admin): AIRFLOW_ADMIN_USER (default admin) and
# AIRFLOW_ADMIN_PASSWORD; without one, a random password is made on the first start and kept in
# $AIRFLOW_HOME/admin_password (0600), and the start says where it is (as `airflow standalone`
# does). No password is ever passed on a command line (visible in `ps`).
#
# Env (all optional):
#   AIRFLOW_HOME            default $ETL_STATE_DIR/airflow (config, SQLite DB, logs, generated secrets)
#   AIRFLOW_PORT            default 8080;  AIRFLOW_BIND_HOST  default 127.0.0.1
#   AIRFLOW_ADMIN_USER      default admin; AIRFLOW_ADMIN_PASSWORD  default: generated (see above)
#   ETL_RUNNER              docker (default) | local: how the DAGs run the jobs (docs/airflow.md)
#   ETL_WAREHOUSE_POOL      default duckdb_warehouse: the 1-slot pool serializing warehouse writes
#   DOCKER_URL, DOCKER_NETWORK, ETL_SOURCE_DIR, ETL_STATE_DIR, DUCKDB_PATH, WAREHOUSE, ...
#                           read by the DAGs and the jobs, passed through unchanged
#   AIRFLOW_SKIP_SETUP=1    do not run scripts/setup-airflow.sh first
#   AIRFLOW_ENV_FILE        default .env: KEY=value lines applied when KEY is not already set
# `scripts/airflow.sh env` prints the Airflow env exports instead of starting (for `airflow` CLI use):
#   eval "$(bash scripts/airflow.sh env)" && airflow dags list
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Never fails: the stop must go on when whoever started us has closed our output.
log() { printf '[airflow] %s\n' "$*" >&2 2>/dev/null || true; }

# Values from .env (AIRFLOW_ENV_FILE) when not already set in the environment.
ENV_FILE="${AIRFLOW_ENV_FILE:-.env}"
if [[ -f "$ENV_FILE" ]]; then
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    [[ -n "${!key+x}" ]] && continue
    value="${value%\"}"; value="${value#\"}"
    [[ -n "$value" ]] || continue
    export "$key=$value"
  done < <(grep -E '^[A-Z_][A-Z0-9_]*=' "$ENV_FILE" || true)
fi

# Defaults from the config spec (jobs/lib/config/spec.ts): AIRFLOW_HOME is $ETL_STATE_DIR/airflow.
. "$ROOT/scripts/config-env.sh"
config_env AIRFLOW_HOME AIRFLOW_STOP_TIMEOUT
(umask 077 && mkdir -p "$AIRFLOW_HOME") # private when made here: it holds the secrets below
AIRFLOW_HOME="$(cd "$AIRFLOW_HOME" && pwd)"
PIDFILE="$AIRFLOW_HOME/airflow.pid"
STOP_TIMEOUT="$AIRFLOW_STOP_TIMEOUT"

# The processes of this instance: Airflow runs in a session of its own (setsid), whose id is
# kept in $SIDFILE; its children rename themselves (setproctitle), which also wipes their
# /proc/<pid>/environ, so they are found by that session and by descent. Children that leave the
# session still carry ETL_AIRFLOW_INSTANCE=<AIRFLOW_HOME> (unless renamed), and their
# descendants are included too. Only these processes are ever signalled.
SIDFILE="$AIRFLOW_HOME/airflow.sid"
MARKER="ETL_AIRFLOW_INSTANCE=$AIRFLOW_HOME"
instance_pids() {
  local sid="" d p stat rest ppid sess changed
  local -A parent=() mine=()
  # The recorded session counts only while its leader is still ours (a pid can be reused).
  if [[ -f "$SIDFILE" ]]; then
    sid="$(<"$SIDFILE")"
    grep -qzx "$MARKER" "/proc/$sid/environ" 2>/dev/null || sid=""
  fi
  for d in /proc/[0-9]*; do
    p="${d#/proc/}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    read -r stat 2>/dev/null <"$d/stat" || continue
    rest="${stat##*) }" # state ppid pgrp session ...
    read -r _ ppid _ sess _ <<<"$rest"
    parent[$p]="$ppid"
    if [[ -n "$sid" && "$sess" == "$sid" ]] || grep -qzx "$MARKER" "$d/environ" 2>/dev/null; then
      mine[$p]=1
    fi
  done
  changed=1
  while ((changed)); do
    changed=0
    for p in "${!parent[@]}"; do
      if [[ -z "${mine[$p]:-}" && -n "${mine[${parent[$p]}]:-}" ]]; then mine[$p]=1; changed=1; fi
    done
  done
  echo "${!mine[@]}"
}

# SIGTERM to every process of this instance, SIGKILL to what is left after STOP_TIMEOUT seconds.
stop_instance() {
  local pids
  pids="$(instance_pids)"
  [[ -n "$pids" ]] || return 0
  log "stopping Airflow ($(wc -w <<<"$pids") processes of $AIRFLOW_HOME)"
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 2; i++)); do
    [[ -n "$(instance_pids)" ]] || { log "stopped"; return 0; }
    sleep 0.5
  done
  pids="$(instance_pids)"
  if [[ -n "$pids" ]]; then
    log "still running after ${STOP_TIMEOUT}s, killing: $pids"
    kill -KILL $pids 2>/dev/null || true
  fi
  log "stopped"
}

if [[ "${1:-}" == stop ]]; then
  trap '' PIPE
  # `npm run airflow:stop`: ask the running script to stop (it cleans up), then make sure.
  if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    pid="$(cat "$PIDFILE")"
    kill -TERM "$pid"
    for ((i = 0; i < (STOP_TIMEOUT + 5) * 2; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  elif [[ -z "$(instance_pids)" ]]; then
    log "airflow:stop: not running (AIRFLOW_HOME=$AIRFLOW_HOME)"
    exit 0
  fi
  stop_instance
  rm -f "$PIDFILE" "$SIDFILE"
  log "airflow:stop: done (AIRFLOW_HOME=$AIRFLOW_HOME)"
  exit 0
fi

VENV="${AIRFLOW_VENV:-.venv-airflow}"
if [[ "${AIRFLOW_SKIP_SETUP:-0}" != 1 ]]; then bash scripts/setup-airflow.sh; fi
export PATH="$ROOT/$VENV/bin:$PATH"
PORT="${AIRFLOW_PORT:-8080}"
ADMIN_USER="${AIRFLOW_ADMIN_USER:-admin}"
POOL="${ETL_WAREHOUSE_POOL:-duckdb_warehouse}"

# Secrets from the environment/.env, else generated once per AIRFLOW_HOME (never committed):
# the JWT signing key shared by the api-server and the task runners, and the UI session key.
secret_file() {
  local f="$AIRFLOW_HOME/$1"
  if [[ ! -s "$f" ]]; then (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$f"); fi
  cat "$f"
}

export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="$ADMIN_USER:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
export AIRFLOW__API__HOST="${AIRFLOW_BIND_HOST:-127.0.0.1}"
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__WORKERS="${AIRFLOW__API__WORKERS:-1}"
export AIRFLOW__API__BASE_URL="http://localhost:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:$PORT/execution/"
export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW__API_AUTH__JWT_SECRET:-$(secret_file jwt_secret)}"
export AIRFLOW__API__SECRET_KEY="${AIRFLOW__API__SECRET_KEY:-$(secret_file api_secret_key)}"
# New or regenerated DAG files show up within 30 s.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"

if [[ "${1:-}" == env ]]; then
  env | grep -E '^(AIRFLOW_HOME|AIRFLOW__[A-Z_]+)=' | grep -v -E 'JWT_SECRET|SECRET_KEY' | sed 's/^/export /; s/=\(.*\)$/="\1"/'
  echo "export PATH=\"$ROOT/$VENV/bin:\$PATH\""
  exit 0
fi

# The admin login: AIRFLOW_ADMIN_PASSWORD, else a random one made on the first start and kept
# (0600) in $ADMIN_PASSWORD_FILE. The simple auth manager reads it from its passwords file
# (rewritten each start, 0600); the values go to python on stdin, never as arguments.
ADMIN_PASSWORD_FILE="$AIRFLOW_HOME/admin_password"
if [[ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]]; then
  ADMIN_PASSWORD="$AIRFLOW_ADMIN_PASSWORD"
  login_hint="the password in AIRFLOW_ADMIN_PASSWORD"
else
  [[ -s "$ADMIN_PASSWORD_FILE" ]] || log "generated a random admin password (first start)"
  ADMIN_PASSWORD="$(secret_file admin_password)"
  login_hint="the password in $ADMIN_PASSWORD_FILE"
fi
rm -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" # made anew, 0600 from its first byte
printf '%s\n%s\n' "$ADMIN_USER" "$ADMIN_PASSWORD" | (umask 077 && python3 -c '
import json, sys
user, password = sys.stdin.read().split("\n")[:2]
print(json.dumps({user: password}))' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")

if [[ "${ETL_RUNNER:-docker}" == local && ! -d dist/jobs ]]; then
  log "ETL_RUNNER=local runs dist/jobs/*.js: building"
  npm run -s build
fi

log "AIRFLOW_HOME=$AIRFLOW_HOME, DAGs from $AIRFLOW__CORE__DAGS_FOLDER, ETL_RUNNER=${ETL_RUNNER:-docker}"
airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
airflow pools set "$POOL" 1 "DuckDB allows one writer at a time: warehouse writes run one by one" >/dev/null
if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  log "an Airflow of $AIRFLOW_HOME already runs (pid $(cat "$PIDFILE")): stop it with \`npm run airflow:stop\`"
  exit 1
fi
echo $$ >"$PIDFILE"
log "UI: http://localhost:$PORT  login: $ADMIN_USER with $login_hint"
log "stop: Ctrl-C, or \`npm run airflow:stop\` from another shell"

# Not exec: this script stays to stop every child on the first Ctrl-C/SIGTERM. Airflow runs in
# its own session, so a Ctrl-C reaches only this script, which then stops the processes in order.
stopping=""
on_signal() {
  [[ -z "$stopping" ]] || return 0
  stopping=1
  trap '' PIPE # a closed stdout/stderr must not kill us halfway through the stop
  stop_instance
  rm -f "$PIDFILE" "$SIDFILE"
  exit 130
}
trap on_signal INT TERM HUP
ETL_AIRFLOW_INSTANCE="$AIRFLOW_HOME" setsid airflow standalone &
child=$!
echo "$child" >"$SIDFILE" # setsid execs in the child (not a group leader): its pid is the session id
set +e
wait "$child"
rc=$?
set -e
# Airflow ended on its own (a crash): do not leave a part of it behind.
[[ -n "$stopping" ]] || { stop_instance; rm -f "$PIDFILE" "$SIDFILE"; }
exit "$rc"
