#!/usr/bin/env bash
# Starts the local single-node KRaft Kafka 4 broker (KRaft is Kafka 4's only mode) in the background
# and waits until it accepts clients. Idempotent: a running broker is left alone. Data, logs and the
# pid file live in KAFKA_STATE_DIR ($ETL_STATE_DIR/kafka). The storage is formatted once (kafka-storage
# format). The quorum is static (controller.quorum.voters, still supported by 4.x): one node needs
# no dynamic membership, and storage formatted by the earlier 3.9 broker starts as it is (a dynamic
# quorum, `format --standalone`, could not read it).
# Settings (defaults: jobs/lib/config/spec.ts, docs/configuration.md): KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, KAFKA_HEAP_OPTS, KAFKA_START_TIMEOUT (seconds).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
config_env KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_HEAP_OPTS
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
# Idempotent and quick when the jars match scripts/kafka/pom.xml; after a version change it
# replaces them (jars of another Kafka version must never start with this configuration).
bash "$ROOT/scripts/kafka/setup.sh" >&2

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
# Kafka 4 logs through log4j2 (log4j 1 settings would be ignored): a rolling file, quiet loggers.
cat > "$STATE/log4j2.properties" <<PROPS
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = $LOG
appender.file.filePattern = $LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
PROPS

if [[ ! -f "$DATA/meta.properties" ]]; then
  CLUSTER_ID="$(kafka_tool -Xmx256m kafka.tools.StorageTool random-uuid)"
  kafka_tool -Xmx256m kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted
  echo "kafka:start: formatted KRaft storage in $DATA (cluster $CLUSTER_ID)"
fi

start=$(date +%s)
started_before=$(grep -c "Kafka Server started" "$LOG" 2>/dev/null || true)
# setsid: the broker outlives the shell (and npm) that started it; stop.sh ends it by pid.
setsid nohup java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
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
