#!/usr/bin/env bash
# server.properties from the environment, as in the official apache/kafka image: every
# KAFKA_<NAME> except the JVM/launcher ones becomes a property, lower-cased, with `___` -> `-`,
# `__` -> `_`, `_` -> `.` (KAFKA_NODE_ID=1 -> node.id=1). KRaft storage is formatted on the
# first start with CLUSTER_ID (same default as the official image; a static quorum,
# KAFKA_CONTROLLER_QUORUM_VOTERS, as in docker-compose.yml, so no --standalone); then the broker runs in the
# foreground (exec: SIGTERM reaches it and it shuts down cleanly).
set -euo pipefail
CONF=/opt/kafka/config/server.properties
LIBS='/opt/kafka/libs/*'
: "${CLUSTER_ID:=5L6g3nShT-eMCtK--X86sw}"
: > "$CONF"
while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_OPTS|KAFKA_JVM_PERFORMANCE_OPTS|KAFKA_LOG4J_OPTS|KAFKA_JMX_OPTS|KAFKA_GC_LOG_OPTS|KAFKA_VERSION|KAFKA_HOME|KAFKA_DEBUG) continue ;;
    KAFKA_*) ;;
    *) continue ;;
  esac
  key="${name#KAFKA_}"
  key="$(printf '%s' "$key" | tr '[:upper:]' '[:lower:]' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')"
  printf '%s=%s\n' "$key" "$value" >>"$CONF"
done < <(env)

# Kafka 4 logs through log4j2 (a log4j 1 file would be ignored): to stdout, quiet loggers.
cat > /opt/kafka/config/log4j2.properties <<'PROPS'
status = warn
appender.stdout.type = Console
appender.stdout.name = stdout
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = stdout
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
PROPS
JAVA_OPTS=(${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties)

log_dir="$(sed -n 's/^log\.dirs=//p' "$CONF" | cut -d, -f1)"
if [[ -z "$log_dir" || ! -f "$log_dir/meta.properties" ]]; then
  java "${JAVA_OPTS[@]}" -cp "$LIBS" kafka.tools.StorageTool format --ignore-formatted \
    -t "$CLUSTER_ID" -c "$CONF"
fi
exec java "${JAVA_OPTS[@]}" -cp "$LIBS" kafka.Kafka "$CONF"
