#!/usr/bin/env bash
# Starts the local single-node KRaft Kafka broker (no ZooKeeper) in the background and waits until
# it accepts clients. Idempotent: a running broker is left alone. Data, logs and the pid file live in
# KAFKA_STATE_DIR ($ETL_STATE_DIR/kafka). The storage is formatted once (kafka-storage format).
# Settings (defaults: jobs/lib/config/spec.ts, docs/configuration.md): KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, KAFKA_HEAP_OPTS, KAFKA_START_TIMEOUT (seconds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/config-env.sh"
config_env KAFKA_STATE_DIR KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_HEAP_OPTS
STATE="$KAFKA_STATE_DIR"
LIBS="$STATE/libs"
DATA="$STATE/data"
PIDFILE="$STATE/broker.pid"
LOG="$STATE/broker.log"
PORT="$KAFKA_PORT"
CPORT="$KAFKA_CONTROLLER_PORT"
TIMEOUT="$KAFKA_START_TIMEOUT"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if alive && port_open "$PORT"; then
  echo "kafka:start: broker already running (pid $(cat "$PIDFILE"), localhost:$PORT)"
  exit 0
fi
if ! alive && port_open "$PORT"; then
  echo "kafka:start: port $PORT is taken by another process (not our broker); set KAFKA_PORT" >&2
  exit 1
fi
if ! ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
  bash "$ROOT/scripts/kafka/setup.sh"
fi

mkdir -p "$DATA"
CONF="$STATE/server.properties"
cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:$CPORT
listeners=PLAINTEXT://localhost:$PORT,CONTROLLER://localhost:$CPORT
advertised.listeners=PLAINTEXT://localhost:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
num.network.threads=2
num.io.threads=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
PROPS
cat > "$STATE/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$LOG
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.raft=WARN
log4j.logger.kafka.log.LogCleaner=WARN
PROPS
TOOLS_LOG4J="$STATE/tools-log4j.properties"
printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n' > "$TOOLS_LOG4J"

if [[ ! -f "$DATA/meta.properties" ]]; then
  CLUSTER_ID="$(java -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid)"
  java -Dlog4j.configuration="file:$TOOLS_LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool format \
    -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted
  echo "kafka:start: formatted KRaft storage in $DATA (cluster $CLUSTER_ID)"
fi

start=$(date +%s)
started_before=$(grep -c "Kafka Server started" "$LOG" 2>/dev/null || true)
# setsid: the broker outlives the shell (and npm) that started it; stop.sh ends it by pid.
setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -Djava.awt.headless=true -Dlog4j.configuration="file:$STATE/log4j.properties" \
  -Dkafka.logs.dir="$STATE" -cp "$LIBS/*" kafka.Kafka "$CONF" >"$STATE/broker.out" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
pid=$(cat "$PIDFILE")
while true; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "kafka:start: broker exited during start; last lines of $STATE/broker.out and $LOG:" >&2
    tail -n 20 "$STATE/broker.out" "$LOG" >&2 2>/dev/null || true
    rm -f "$PIDFILE"
    exit 1
  fi
  now_started=$(grep -c "Kafka Server started" "$LOG" 2>/dev/null || true)
  if port_open "$PORT" && [[ "${now_started:-0}" != "${started_before:-0}" ]]; then
    break
  fi
  if (( $(date +%s) - start > TIMEOUT )); then
    echo "kafka:start: broker not ready after ${TIMEOUT}s (see $LOG)" >&2
    exit 1
  fi
  sleep 0.5
done
echo "kafka:start: broker ready on localhost:$PORT (pid $pid, $(( $(date +%s) - start )) s)"
