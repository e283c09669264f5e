#!/usr/bin/env bash
# kafka-consumer-perf-test from the same jars as the broker (org.apache.kafka.tools.ConsumerPerformance).
# Usage: bash scripts/kafka/consumer-perf-test.sh --bootstrap-server localhost:9092 --topic T --num-records N
# Kafka 4.x deprecates --messages for --num-records (the old name prints a warning and
# goes away later): --messages is passed on as --num-records.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
args=()
for a in "$@"; do
  if [[ "$a" == --messages ]]; then args+=(--num-records); else args+=("$a"); fi
done
kafka_tool -Xmx512m org.apache.kafka.tools.ConsumerPerformance "${args[@]}"
