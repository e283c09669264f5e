#!/usr/bin/env bash
# Fetches Apache Kafka's jars from Maven Central into .state/kafka/libs (idempotent, cached).
# Needs Java 17+ and Maven. KAFKA_STATE_DIR overrides the folder (default $ETL_STATE_DIR/kafka).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/scripts/kafka"
. "$ROOT/scripts/config-env.sh"
config_env KAFKA_STATE_DIR
STATE="$KAFKA_STATE_DIR"
LIBS="$STATE/libs"
STAMP="$LIBS/.pom.sha256"
# On a clean Debian machine (CI) as root: install a JRE and Maven from Debian's packages.
if { ! command -v java >/dev/null || ! command -v mvn >/dev/null; } && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  t=$(date +%s)
  echo "setup:kafka: installing Java 17 and Maven (apt-get) ..."
  apt-get -o DPkg::Lock::Timeout=600 update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq openjdk-17-jre-headless maven >/dev/null
  echo "setup:kafka: Java and Maven installed ($(( $(date +%s) - t )) s)"
fi
command -v java >/dev/null || { echo "setup:kafka: java not found (Java 17+ required)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup:kafka: mvn not found (Maven required)" >&2; exit 1; }
want="$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "setup:kafka: jars already in $LIBS ($(ls "$LIBS"/*.jar | wc -l) jars)"
  exit 0
fi
mkdir -p "$STATE"
rm -rf "$LIBS.tmp"
start=$(date +%s)
echo "setup:kafka: resolving Kafka jars from Maven Central (cached in ~/.m2; silent, minutes when cold) ..."
# A line every 30 s while Maven is quiet, so a slow download does not look like a hang.
( while sleep 30; do echo "setup:kafka: still resolving jars (+$(( $(date +%s) - start )) s)"; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$LIBS.tmp" -DincludeScope=runtime -Dmdep.useRepositoryLayout=false
kill "$ticker" 2>/dev/null || true
rm -rf "$LIBS"
mv "$LIBS.tmp" "$LIBS"
echo "$want" > "$STAMP"
echo "setup:kafka: $(ls "$LIBS"/*.jar | wc -l) jars in $LIBS ($(( $(date +%s) - start )) s)"
