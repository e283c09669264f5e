# Sourced by the scripts of scripts/kafka/: where the jars and state are, and the log4j2 settings
# of Kafka's command-line tools (Kafka 4 logs through log4j2; warnings and errors to stderr only,
# so a tool's stdout stays its output).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/config-env.sh"
config_env KAFKA_STATE_DIR
STATE="$KAFKA_STATE_DIR"
LIBS="$STATE/libs"
TOOLS_LOG4J="$STATE/tools-log4j2.properties"

# Runs a Kafka tool class from the broker's jars: kafka_tool HEAP CLASS ARGS...
kafka_tool() {
  local heap="$1"
  shift
  mkdir -p "$STATE"
  [[ -f "$TOOLS_LOG4J" ]] || cat >"$TOOLS_LOG4J" <<'PROPS'
status = warn
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = stderr
PROPS
  java "$heap" -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$LIBS/*" "$@"
}
