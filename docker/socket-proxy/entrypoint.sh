#!/bin/sh
# Starts HAProxy (haproxy.cfg) after turning the host paths a job container may bind-mount into
# the regex of a mount source outside all of them: "Source":"<not one of them, then / or ">".
#   ENGINE_PROXY_MOUNT_ROOTS    colon-separated folders (or single files) a job may mount
#   ENGINE_PROXY_MOUNT_PARENTS  colon-separated files whose folder a job may mount (DUCKDB_PATH)
#   ENGINE_PROXY_BASE_DIR       the folder relative entries are taken from (the project on the host)
#   ENGINE_PROXY_LISTEN, ENGINE_PROXY_UPSTREAM, ENGINE_PROXY_GID  the sockets and the listener's group
# Empty entries are skipped; an entry with `..` or an unusual character stops the proxy.
set -eu
: "${ENGINE_PROXY_LISTEN:=/run/engine-proxy/docker.sock}"
: "${ENGINE_PROXY_UPSTREAM:=/run/engine.sock}"
: "${ENGINE_PROXY_GID:=$(id -g)}"
: "${ENGINE_PROXY_BASE_DIR:=/}"
: "${ENGINE_PROXY_MOUNT_PARENTS:=}"

fail() { echo "socket-proxy: $*" >&2; exit 64; }
alternatives=""
add_root() {
  root="$1"
  case "$root" in
    "") return 0 ;;
    /*) ;;
    *) root="${ENGINE_PROXY_BASE_DIR%/}/${root#./}" ;;
  esac
  root="${root%/}"
  case "$root" in
    *..*|*[!A-Za-z0-9/._@+=,-]*) fail "mount root '$root' has '..' or a character this proxy does not accept" ;;
  esac
  echo "socket-proxy: job containers may mount $root" >&2
  # Each character as a one-character class: no backslash (haproxy.cfg's quoting would eat it).
  escaped="$(printf '%s' "$root" | sed 's/[^/]/[&]/g')"
  alternatives="${alternatives:+$alternatives|}$escaped"
}
old_ifs="$IFS"
IFS=:
for entry in ${ENGINE_PROXY_MOUNT_ROOTS:-}; do add_root "$entry"; done
for entry in $ENGINE_PROXY_MOUNT_PARENTS; do [ -z "$entry" ] || add_root "$(dirname "$entry")"; done
IFS="$old_ifs"
[ -n "$alternatives" ] || fail "no folder a job may mount: set ENGINE_PROXY_MOUNT_ROOTS"
ENGINE_PROXY_SOURCE_RE="(?!($alternatives)[/\"])"
export ENGINE_PROXY_LISTEN ENGINE_PROXY_UPSTREAM ENGINE_PROXY_GID ENGINE_PROXY_SOURCE_RE
rm -f "$ENGINE_PROXY_LISTEN"
echo "socket-proxy: $ENGINE_PROXY_LISTEN -> $ENGINE_PROXY_UPSTREAM" >&2
exec haproxy -db -f /etc/haproxy/haproxy.cfg
