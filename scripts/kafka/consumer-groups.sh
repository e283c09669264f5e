#!/usr/bin/env bash
# kafka-consumer-groups from the same jars as the broker (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand).
# Usage: bash scripts/kafka/consumer-groups.sh --bootstrap-server localhost:9092 --describe --group G
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
kafka_tool -Xmx256m org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
