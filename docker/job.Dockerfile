# syntax=docker/dockerfile:1
# One small image per batch destination table; its entrypoint is the table's job CLI.
#
#   podman build --build-arg TABLE=fact_orders -t store-etl/fact_orders:latest -f docker/job.Dockerfile .
#   podman run --rm -v "$PWD/data_source:/data/source:ro" -v "$PWD/.state:/data/state" \
#     store-etl/fact_orders:latest [--help]
#
# Stage `build` installs all dependencies and compiles the TypeScript; the runtime stage gets
# only the compiled jobs, their SQL transforms and the production dependencies, and runs as
# the non-root user `node` (uid 1000). Airflow runs these images with DockerOperator (dags/).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci's postinstall applies them (patch-package; docs/stream.md: kafkajs record decoding).
COPY patches ./patches
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY jobs ./jobs
# tsc compiles jobs/ only (scripts/ and tests/ are not in the build context's COPY);
# the SQL transforms are read next to the compiled pipeline (dist/jobs/transforms/).
RUN npx tsc -p tsconfig.json \
 && mkdir -p dist/jobs/transforms \
 && cp jobs/transforms/*.sql dist/jobs/transforms/ \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
 && rm -rf dist/tests dist/scripts \
 && find dist -name '*.map' -delete

FROM ${NODE_IMAGE} AS runtime
ARG TABLE
LABEL org.opencontainers.image.title="store-etl job ${TABLE}" \
      org.opencontainers.image.description="Batch job loading store.${TABLE} into the warehouse"
ENV NODE_ENV=production \
    ETL_TABLE=${TABLE} \
    ETL_SOURCE_DIR=/data/source \
    ETL_STATE_DIR=/data/state
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The official node image has the user `node` (uid 1000); a locally made base may not.
RUN test -n "${TABLE}" || { echo "build-arg TABLE is required (e.g. --build-arg TABLE=fact_orders)" >&2; exit 1; } \
 && test -f "dist/jobs/${TABLE}.js" || { echo "no job CLI dist/jobs/${TABLE}.js for TABLE=${TABLE}" >&2; exit 1; } \
 && ln -s "dist/jobs/${TABLE}.js" /app/job.js \
 && (id -u node >/dev/null 2>&1 || useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin node) \
 && mkdir -p /data/source /data/state \
 && chown node:node /data/state
USER node
ENTRYPOINT ["node", "/app/job.js"]
