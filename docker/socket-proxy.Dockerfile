# syntax=docker/dockerfile:1
# The engine socket proxy (store-etl/socket-proxy:latest): Debian's HAProxy between the Airflow
# scheduler and the container engine's API socket, letting through only what the DAG tasks need
# (docker/socket-proxy/haproxy.cfg; docs/security.md). The same idea as Tecnativa's
# docker-socket-proxy, built from Debian's maintained haproxy package instead of a pulled image.
#
#   podman build -t store-etl/socket-proxy:latest -f docker/socket-proxy.Dockerfile .
#   podman run --rm -v /run/podman/podman.sock:/run/engine.sock -v /tmp/p:/run/engine-proxy \
#     -e ENGINE_PROXY_MOUNT_ROOTS=/srv/store-etl/data_source:/srv/store-etl/.state store-etl/socket-proxy:latest
#
# Runs as Debian's `haproxy` user; compose adds the engine socket's group (DOCKER_GID).
# Base: node:20-bookworm-slim, the project's one base image (built locally where nothing can be
# pulled, scripts/setup-podman.sh); only Debian packages are used from it.
ARG NODE_IMAGE=node:20-bookworm-slim
FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="store-etl socket-proxy" \
      org.opencontainers.image.description="HAProxy allow-list in front of the container engine's API for Airflow's DockerOperator"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy curl \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/engine-proxy \
 && chown haproxy:haproxy /run/engine-proxy \
 && haproxy -vv | grep -q 'PCRE2'
COPY docker/socket-proxy/haproxy.cfg /etc/haproxy/haproxy.cfg
COPY docker/socket-proxy/entrypoint.sh /usr/local/bin/socket-proxy
RUN chmod 0755 /usr/local/bin/socket-proxy \
 && ENGINE_PROXY_MOUNT_ROOTS=/srv/a ENGINE_PROXY_LISTEN=/tmp/x.sock ENGINE_PROXY_UPSTREAM=/tmp/y.sock ENGINE_PROXY_GID=0 \
    ENGINE_PROXY_SOURCE_RE='(?!([/][s][r][v][/][a])[/"])' haproxy -c -f /etc/haproxy/haproxy.cfg
USER haproxy
VOLUME /run/engine-proxy
# HAProxy as PID 1 ignores SIGTERM; SIGUSR1 is its soft stop (hard-stop-after in haproxy.cfg).
STOPSIGNAL SIGUSR1
ENTRYPOINT ["/usr/local/bin/socket-proxy"]
