#!/usr/bin/env bash
# Builds the executing BigQuery double's engine (tools/zetasql-double: ZetaSQL analysis and
# reference evaluator behind a JSON-lines protocol) for tests/bigquery. Idempotent and cached:
# jars from Maven Central into ~/.m2 and .state/zetasql/libs, classes into .state/zetasql/build.
# A second run with unchanged sources takes a second. Needs Java 17 and Maven.
# ZETASQL_STATE_DIR overrides the folder (default $ETL_STATE_DIR/zetasql).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/tools/zetasql-double"
. "$ROOT/scripts/config-env.sh"
config_env ZETASQL_STATE_DIR
STATE="$ZETASQL_STATE_DIR"
STAMP="$STATE/.sources.sha256"
command -v java >/dev/null || { echo "setup:zetasql: java not found (Java 17+ required)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "setup:zetasql: mvn not found (Maven required)" >&2; exit 1; }
want="$(cd "$SRC" && find pom.xml src -type f | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && [[ -d "$STATE/build/classes" ]] && ls "$STATE"/libs/zetasql-client-*.jar >/dev/null 2>&1; then
  echo "setup:zetasql: engine already built in $STATE"
  exit 0
fi
mkdir -p "$STATE"
start=$(date +%s)
echo "setup:zetasql: resolving ZetaSQL jars (Maven Central, cached in ~/.m2) and compiling the engine ..."
( while sleep 30; do echo "setup:zetasql: still building (+$(( $(date +%s) - start )) s)"; done ) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT
rm -rf "$STATE/libs.tmp" "$STATE/build"
mvn -q -B -f "$SRC/pom.xml" -Dzetasql.build="$STATE/build" compile dependency:copy-dependencies \
  -DoutputDirectory="$STATE/libs.tmp" -DincludeScope=runtime
kill "$ticker" 2>/dev/null || true
rm -rf "$STATE/libs"
mv "$STATE/libs.tmp" "$STATE/libs"
echo "$want" > "$STAMP"
echo "setup:zetasql: engine built, $(ls "$STATE"/libs/*.jar | wc -l) jars in $STATE/libs ($(( $(date +%s) - start )) s)"
