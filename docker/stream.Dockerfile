# syntax=docker/dockerfile:1
# The stream image: the Kafka consumer (default command) and the producer, one image for both.
#
#   podman build -t store-etl/stream:latest -f docker/stream.Dockerfile .
#   podman run --rm store-etl/stream:latest dist/jobs/stream-consumer.js --help   # consumer
#   podman run --rm store-etl/stream:latest dist/scripts/produce.js --help         # producer
#
# Same two stages as docker/job.Dockerfile (the build stage's first layers are identical, so a
# builder reuses its cached `npm ci`); the runtime stage runs as the non-root user `node`.
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
COPY scripts/produce.ts ./scripts/produce.ts
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
 && rm -rf dist/tests \
 && find dist -name '*.map' -delete

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="store-etl stream" \
      org.opencontainers.image.description="Kafka stream consumer and producer of the store ETL"
ENV NODE_ENV=production \
    ETL_SOURCE_DIR=/data/source \
    ETL_STATE_DIR=/data/state
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN test -f dist/jobs/stream-consumer.js && test -f dist/scripts/produce.js \
 && (id -u node >/dev/null 2>&1 || useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin node) \
 && mkdir -p /data/source /data/state \
 && chown node:node /data/state
USER node
# The consumer's Node flags (CONSUMER_NODE_FLAGS in jobs/lib/stream/config.ts: why, and the test
# that keeps this line, `npm run consume` and `npm run bench:stream` equal).
ENTRYPOINT ["node", "--max-semi-space-size=64"]
CMD ["dist/jobs/stream-consumer.js"]
