#!/usr/bin/env bash
# Stops the local Kafka broker started by start.sh (SIGTERM = controlled shutdown, SIGKILL after
# KAFKA_STOP_TIMEOUT seconds, default 30). Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/config-env.sh"
config_env KAFKA_STATE_DIR KAFKA_STOP_TIMEOUT
STATE="$KAFKA_STATE_DIR"
PIDFILE="$STATE/broker.pid"
TIMEOUT="$KAFKA_STOP_TIMEOUT"
if [[ ! -f "$PIDFILE" ]] || ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  rm -f "$PIDFILE"
  echo "kafka:stop: broker not running"
  exit 0
fi
pid=$(cat "$PIDFILE")
kill -TERM "$pid"
for ((i = 0; i < TIMEOUT * 2; i++)); do
  kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "kafka:stop: broker stopped (pid $pid)"; exit 0; }
  sleep 0.5
done
echo "kafka:stop: broker did not stop in ${TIMEOUT}s, killing pid $pid" >&2
kill -KILL "$pid" 2>/dev/null || true
rm -f "$PIDFILE"
