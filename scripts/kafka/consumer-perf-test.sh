#!/usr/bin/env bash
# kafka-consumer-perf-test from the same jars as the broker (org.apache.kafka.tools.ConsumerPerformance).
# Usage: bash scripts/kafka/consumer-perf-test.sh --bootstrap-server localhost:9092 --topic T --messages N
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/config-env.sh"
config_env KAFKA_STATE_DIR
STATE="$KAFKA_STATE_DIR"
[[ -f "$STATE/tools-log4j.properties" ]] || printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%%d] %%p %%m (%%c)%%n\n' > "$STATE/tools-log4j.properties"
exec java -Xmx512m -Dlog4j.configuration="file:$STATE/tools-log4j.properties" -cp "$STATE/libs/*" \
  org.apache.kafka.tools.ConsumerPerformance "$@"
