#!/usr/bin/env bash
# Starts the local single-node KRaft Kafka 4 broker (KRaft is Kafka 4's only mode) in the background
# and waits until it accepts clients. Idempotent: a running broker is left alone. Data, logs and the
# pid file live in KAFKA_STATE_DIR ($ETL_STATE_DIR/kafka). The storage is formatted once (kafka-storage
# format). The quorum is static (controller.quorum.voters, still supported by 4.x): one node needs
# no dynamic membership, and storage formatted by the earlier 3.9 broker starts as it is (a dynamic
# quorum, `format --standalone`, could not read it).
# Settings (defaults: jobs/lib/config/spec.ts, docs/configuration.md): KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, KAFKA_HEAP_OPTS, KAFKA_START_TIMEOUT (seconds).
# KAFKA_SASL_SSL=1 adds a SASL_SSL listener on KAFKA_SASL_SSL_PORT: TLS from KAFKA_TLS_DIR
# (broker.pem, ca.pem: scripts/kafka/make-tls.sh), SCRAM-SHA-256 and -512 logins of the user
# STREAM_SASL_USERNAME with STREAM_SASL_PASSWORD (read from the environment as given: the config
# command never prints a secret). The password reaches Kafka's tools through a 0600 argument file
# (java @file), never a command line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
config_env KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_HEAP_OPTS KAFKA_SASL_SSL KAFKA_SASL_SSL_PORT KAFKA_TLS_DIR STREAM_SASL_USERNAME
DATA="$STATE/data"
PIDFILE="$STATE/broker.pid"
LOG="$STATE/broker.log"
PORT="$KAFKA_PORT"
CPORT="$KAFKA_CONTROLLER_PORT"
TIMEOUT="$KAFKA_START_TIMEOUT"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

SASL_SSL="$KAFKA_SASL_SSL"
SPORT="$KAFKA_SASL_SSL_PORT"
TLS="$KAFKA_TLS_DIR"
SASL_USER="${STREAM_SASL_USERNAME:-}"
SASL_PASSWORD="${STREAM_SASL_PASSWORD:-}"

if alive && port_open "$PORT"; then
  if [[ "$SASL_SSL" == 1 ]] && ! port_open "$SPORT"; then
    echo "kafka:start: the running broker (pid $(cat "$PIDFILE")) has no SASL_SSL listener on $SPORT; stop it first (npm run kafka:stop)" >&2
    exit 1
  fi
  echo "kafka:start: broker already running (pid $(cat "$PIDFILE"), localhost:$PORT)"
  exit 0
fi
if ! alive && port_open "$PORT"; then
  echo "kafka:start: port $PORT is taken by another process (not our broker); set KAFKA_PORT" >&2
  exit 1
fi
if [[ "$SASL_SSL" == 1 ]]; then
  if port_open "$SPORT"; then
    echo "kafka:start: port $SPORT is taken by another process; set KAFKA_SASL_SSL_PORT" >&2
    exit 1
  fi
  if [[ ! -f "$TLS/broker.pem" || ! -f "$TLS/ca.pem" ]]; then
    echo "kafka:start: KAFKA_SASL_SSL=1 needs $TLS/broker.pem and ca.pem: bash scripts/kafka/make-tls.sh $TLS" >&2
    exit 1
  fi
  if [[ -z "$SASL_USER" || -z "$SASL_PASSWORD" ]]; then
    echo "kafka:start: KAFKA_SASL_SSL=1 needs STREAM_SASL_USERNAME and STREAM_SASL_PASSWORD (the SCRAM user it creates)" >&2
    exit 1
  fi
  # Kafka's SCRAM option syntax ([name=...,password=...]) has no quoting these would survive.
  if [[ "$SASL_USER$SASL_PASSWORD" =~ [][,=\\\"[:space:]] ]]; then
    echo "kafka:start: STREAM_SASL_USERNAME/STREAM_SASL_PASSWORD of the local broker must not contain , = [ ] \\ \" or spaces" >&2
    exit 1
  fi
fi
# Idempotent and quick when the jars match scripts/kafka/pom.xml; after a version change it
# replaces them (jars of another Kafka version must never start with this configuration).
bash "$ROOT/scripts/kafka/setup.sh" >&2

mkdir -p "$DATA"
CONF="$STATE/server.properties"
LISTENERS="PLAINTEXT://localhost:$PORT,CONTROLLER://localhost:$CPORT"
ADVERTISED="PLAINTEXT://localhost:$PORT"
PROTOCOLS="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
if [[ "$SASL_SSL" == 1 ]]; then
  LISTENERS="$LISTENERS,SASL_SSL://localhost:$SPORT"
  ADVERTISED="$ADVERTISED,SASL_SSL://localhost:$SPORT"
  PROTOCOLS="$PROTOCOLS,SASL_SSL:SASL_SSL"
fi
cat > "$CONF" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:$CPORT
listeners=$LISTENERS
advertised.listeners=$ADVERTISED
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$PROTOCOLS
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
# SASL_SSL: SCRAM logins (credentials in the cluster metadata, salted; no password in this file),
# TLS with a PEM keystore (private key + chain in one file, no keytool or keystore password).
if [[ "$SASL_SSL" == 1 ]]; then
  cat >> "$CONF" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS/broker.pem
PROPS
fi

# Runs a Kafka tool whose arguments hold the SCRAM password: they go in a 0600 argument file that
# java expands (java @file), so no process list shows them; the file is removed right after.
kafka_tool_secret() {
  local heap="$1" args rc=0
  shift
  args="$(umask 077 && mktemp "$STATE/.args.XXXXXX")"
  local a
  for a in "$@"; do a="${a//\\/\\\\}"; printf '"%s"\n' "${a//\"/\\\"}"; done >"$args"
  kafka_tool "$heap" "@$args" || rc=$?
  rm -f "$args"
  return "$rc"
}
scram_spec() { printf 'SCRAM-SHA-%s=[%s%spassword=%s]' "$1" "$2" "${2:+,}" "$SASL_PASSWORD"; }
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

# SCRAM users: in the bootstrap metadata when formatting (a client can log in from the first
# second), with kafka-configs once the broker runs when the storage already existed.
scram_later=0
if [[ ! -f "$DATA/meta.properties" ]]; then
  CLUSTER_ID="$(kafka_tool -Xmx256m kafka.tools.StorageTool random-uuid)"
  if [[ "$SASL_SSL" == 1 ]]; then
    kafka_tool_secret -Xmx256m kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted \
      --add-scram "$(scram_spec 256 "name=$SASL_USER")" --add-scram "$(scram_spec 512 "name=$SASL_USER")" >/dev/null # it prints the salted keys
  else
    kafka_tool -Xmx256m kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted
  fi
  echo "kafka:start: formatted KRaft storage in $DATA (cluster $CLUSTER_ID)"
elif [[ "$SASL_SSL" == 1 ]]; then
  scram_later=1
fi

start=$(date +%s)
# This start's "Kafka Server started" line is one stamped from now on (log4j's [yyyy-MM-dd HH:mm:ss,SSS],
# local time like date's): counting the lines instead failed when the log rolled over during the start.
since="[$(date '+%Y-%m-%d %H:%M:%S')"
started_since() { cat "$LOG"* 2>/dev/null | grep "Kafka Server started" | awk -v s="$since" '$0 >= s { found = 1 } END { exit !found }'; }
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
  if port_open "$PORT" && started_since; then
    break
  fi
  if (( $(date +%s) - start > TIMEOUT )); then
    echo "kafka:start: broker not ready after ${TIMEOUT}s (see $LOG)" >&2
    exit 1
  fi
  sleep 0.5
done
if [[ "$scram_later" == 1 ]]; then
  kafka_tool_secret -Xmx256m org.apache.kafka.tools.ConfigCommand --bootstrap-server "localhost:$PORT" --alter \
    --entity-type users --entity-name "$SASL_USER" --add-config "$(scram_spec 256 ""),$(scram_spec 512 "")" >/dev/null
  echo "kafka:start: SCRAM user $SASL_USER set"
fi
if [[ "$SASL_SSL" == 1 ]]; then
  echo "kafka:start: broker ready on localhost:$PORT, SASL_SSL on localhost:$SPORT (pid $pid, $(( $(date +%s) - start )) s)"
else
  echo "kafka:start: broker ready on localhost:$PORT (pid $pid, $(( $(date +%s) - start )) s)"
fi
