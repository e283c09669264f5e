#!/usr/bin/env bash
# Prepares a Docker-compatible container engine on a machine without Docker (idempotent):
#   1. installs podman, runc and debootstrap from Debian if missing;
#   2. builds a local stand-in for the base image docker.io/library/node:20-bookworm-slim
#      (no registry can be reached here) from a debootstrap rootfs plus this machine's node+npm,
#      so docker/job.Dockerfile builds unchanged;
#   3. starts podman's Docker API socket (for Airflow's DockerOperator) if it is not answering.
#
# Env:
#   CONTAINERS_CONF   podman settings (default: docker/podman/containers.conf of this repo)
#   PODMAN_SOCKET     socket path (default /run/podman/podman.sock); DOCKER_URL=unix://$PODMAN_SOCKET
#   ETL_BASE_IMAGE    name of the base image to provide (default docker.io/library/node:20-bookworm-slim)
#   ETL_STATE_DIR     where the socket service's pid and log go (default .state)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
T0=$(date +%s)
# Every line carries the seconds since the start: the slow stages (apt, debootstrap, import) are silent.
log() { printf '[setup-podman +%ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }

export CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/docker/podman/containers.conf}"
[[ -f "$CONTAINERS_CONF" ]] || { log "CONTAINERS_CONF=$CONTAINERS_CONF does not exist"; exit 1; }
BASE_IMAGE="${ETL_BASE_IMAGE:-docker.io/library/node:20-bookworm-slim}"
SOCKET="${PODMAN_SOCKET:-/run/podman/podman.sock}"
STATE_DIR="${ETL_STATE_DIR:-.state}"
mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi

# 1. packages ---------------------------------------------------------------------------------
missing=()
for bin in podman runc debootstrap; do
  command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || missing+=("$bin")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  # Another apt run (CI, a colleague's setup) may hold the lock: wait for it rather than fail.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq podman runc debootstrap >/dev/null
  log "installed ${missing[*]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"
podman info >/dev/null || { log "podman is installed but 'podman info' fails (CONTAINERS_CONF=${CONTAINERS_CONF:-unset})"; exit 1; }

# 2. base image -------------------------------------------------------------------------------
if podman image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE present"
else
  NODE_BIN="$(command -v node)"
  NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" # .../node_modules/npm
  log "building $BASE_IMAGE from debootstrap + $NODE_BIN ($(node --version)) + npm from $NPM_DIR"
  ROOTFS="$(mktemp -d /tmp/store-etl-rootfs.XXXXXX)"
  trap 'rm -rf "$ROOTFS"' EXIT
  MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  log "debootstrap: a minimal Debian bookworm from $MIRROR (log: $STATE_DIR/debootstrap.log)"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $STATE_DIR/debootstrap.log"; exit 1; }
  log "debootstrap done; adding node and npm"
  # Same layout as the official node image: /usr/local/bin/{node,npm,npx}, npm in /usr/local/lib.
  install -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
  mkdir -p "$ROOTFS/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$ROOTFS/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  # Registries may be reached through a TLS-inspecting proxy here: trust the host's CA bundle.
  changes=(--change 'CMD ["node"]')
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    mkdir -p "$ROOTFS/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
    changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  fi
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  log "importing the rootfs as $BASE_IMAGE"
  tar -C "$ROOTFS" -c . | podman import "${changes[@]}" - "$BASE_IMAGE" >/dev/null
  rm -rf "$ROOTFS"
  trap - EXIT
  podman run --rm "$BASE_IMAGE" node -e 'console.log("base image node", process.version)'
fi

# 3. Docker API socket ------------------------------------------------------------------------
ping_socket() { curl -fsS --max-time 3 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
if ping_socket; then
  log "podman API already answering on unix://$SOCKET"
else
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  log "starting podman system service on unix://$SOCKET (log: $STATE_DIR/podman-service.log)"
  setsid nohup podman system service --time=0 "unix://$SOCKET" >"$STATE_DIR/podman-service.log" 2>&1 &
  echo $! >"$STATE_DIR/podman-service.pid"
  for _ in $(seq 1 50); do ping_socket && break; sleep 0.2; done
  ping_socket || { log "podman API did not come up, see $STATE_DIR/podman-service.log"; exit 1; }
fi
log "ready: DOCKER_URL=unix://$SOCKET (stop the service with: kill \$(cat $STATE_DIR/podman-service.pid))"
