# syntax=docker/dockerfile:1
# The dbt image (store-etl/dbt:latest): dbt-core + dbt-duckdb + dbt-bigquery pinned in
# requirements/dbt.txt, the dbt project, and scripts/dbt-build.sh as the entrypoint - the same
# command the local runner uses, so dbt_dag behaves alike in both runners.
#
#   podman build -t store-etl/dbt:latest -f docker/dbt.Dockerfile .
#   podman run --rm -v "$PWD/.state:/data/state" store-etl/dbt:latest            # build + docs
#   podman run --rm -v "$PWD/.state:/data/state" store-etl/dbt:latest parse      # dbt parse
#   # BigQuery: -e DBT_TARGET=bigquery -e GCP_PROJECT_ID=... -e BIGQUERY_DATASET=store
#   #           -v /path/sa.json:/secrets/gcp.json:ro -e GOOGLE_APPLICATION_CREDENTIALS=/secrets/gcp.json
#
# Base image: node:20-bookworm-slim, the base the other images of the project use (no registry
# can be reached on the build machines, so scripts/setup-podman.sh builds that name locally from
# a Debian bookworm debootstrap rootfs + the machine's node; on a machine with a registry it is
# the official image). Node writes profiles.yml from env (scripts/dbt-profiles.ts, as locally);
# Python is Debian bookworm's python3 (3.11), with dbt in a venv at /opt/dbt-venv.
# profiles.yml, dbt's target/ (docs site included) and logs/ go to the mounted state folder
# (/data/state/dbt/...), so the docs outlive the container.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall applies them (patch-package; docs/stream.md: kafkajs record decoding).
COPY patches ./patches
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
# Same first layers as docker/job.Dockerfile: a builder reuses its cached `npm ci`.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY scripts/dbt-profiles.ts scripts/config.ts ./scripts/
COPY jobs/lib/config.ts ./jobs/lib/config.ts
COPY jobs/lib/config ./jobs/lib/config
RUN npx tsc --outDir dist --rootDir . --module commonjs --target ES2022 --esModuleInterop \
      --skipLibCheck --types node scripts/dbt-profiles.ts scripts/config.ts

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="store-etl dbt" \
      org.opencontainers.image.description="dbt build + docs of the store marts (DuckDB or BigQuery)"
# The locally made base carries the build machine's CA bundle (a TLS-inspecting proxy's CA
# included); Debian's ca-certificates, pulled in by python3, regenerates that file without it,
# so the base's bundle is kept aside and put back, and pip is told to use it. On the official
# base (no bundle) nothing is kept and pip uses its own certifi bundle.
RUN if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt /tmp/base-ca.crt; fi \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -f /tmp/base-ca.crt ]; then cp /tmp/base-ca.crt /etc/ssl/certs/ca-certificates.crt && rm /tmp/base-ca.crt; fi
COPY requirements/dbt.txt /tmp/requirements-dbt.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; fi \
 && python3 -m venv /opt/dbt-venv \
 && /opt/dbt-venv/bin/pip install --disable-pip-version-check -q -r /tmp/requirements-dbt.txt \
 && /opt/dbt-venv/bin/pip check \
 && rm /tmp/requirements-dbt.txt
ENV DBT_VENV=/opt/dbt-venv \
    ETL_STATE_DIR=/data/state \
    DBT_PROFILES_DIR=/data/state/dbt \
    DBT_TARGET_PATH=/data/state/dbt/target \
    DBT_LOG_PATH=/data/state/dbt/logs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    DBT_VERSION_CHECK=false
WORKDIR /app
COPY package.json ./
COPY --from=build /app/node_modules/yaml ./node_modules/yaml
COPY --from=build /app/dist ./dist
COPY scripts/dbt-build.sh scripts/config-env.sh ./scripts/
COPY scripts/dbt_stream_snapshot.py ./scripts/dbt_stream_snapshot.py
COPY dbt_project ./dbt_project
# The official node image has the user `node` (uid 1000); a locally made base may not.
RUN (id -u node >/dev/null 2>&1 || useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin node) \
 && rm -rf dbt_project/target dbt_project/logs \
 && mkdir -p /data/state \
 && chown node:node /data/state \
 && /opt/dbt-venv/bin/dbt --version
USER node
ENTRYPOINT ["bash", "/app/scripts/dbt-build.sh"]
