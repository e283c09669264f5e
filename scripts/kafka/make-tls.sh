#!/usr/bin/env bash
# Makes the TLS files of the local broker's SASL_SSL listener in DIR (default KAFKA_TLS_DIR) with
# openssl: a CA of its own (ca.pem, the file clients trust: STREAM_SSL_CA_FILE) and a broker
# certificate for localhost/127.0.0.1 signed by it. broker.pem holds the broker's private key
# (PKCS#8, what Kafka's PEM keystore reads) and the chain. Keys are 0600 in a 0700 folder; the CA's
# key is removed once it has signed (nothing else is ever signed with it).
# Usage: bash scripts/kafka/make-tls.sh [DIR]. Existing files are kept (remove DIR to renew).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
. "$ROOT/scripts/config-env.sh"
if [[ $# -ge 1 ]]; then DIR="$1"; else config_env KAFKA_TLS_DIR; DIR="$KAFKA_TLS_DIR"; fi
if [[ -f "$DIR/broker.pem" && -f "$DIR/ca.pem" ]]; then
  echo "kafka:tls: $DIR already has broker.pem and ca.pem"
  exit 0
fi
command -v openssl >/dev/null || { echo "kafka:tls: openssl not found" >&2; exit 1; }
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
work="$(mktemp -d "$DIR/.make.XXXXXX")"
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=store-etl local Kafka CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 825 -extfile "$work/ext" -out "$work/broker.crt" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$work/broker.key" -out "$work/broker.p8"
cat "$work/broker.p8" "$work/broker.crt" "$work/ca.pem" >"$work/broker.pem"
chmod 644 "$work/ca.pem"
mv "$work/broker.pem" "$DIR/broker.pem"
mv "$work/ca.pem" "$DIR/ca.pem"
echo "kafka:tls: made $DIR/ca.pem (the CA clients trust) and $DIR/broker.pem"
