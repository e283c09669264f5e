/**
 * Stream-layer settings from the environment (documented in .env.example and docs/configuration.md)
 * and topic names (the kafkajs client: kafka.ts). Topics: `<TOPIC_NAME>_<source>` per stream source,
 * `<TOPIC_NAME>_dead_letter` for poison events, `<TOPIC_NAME>_vendor_availability` for the
 * sold-out / back-in-stock broadcast.
 */
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../../catalog';
import type { StreamDestination } from '../catalog-types';
import { findSource } from '../catalog-check';
import { UsageError } from '../errors';

export interface StreamConfig {
  readonly brokers: string[];
  readonly topicPrefix: string;
  readonly group: string;
  /** Partitions of the topics this layer creates. */
  readonly partitions: number;
  /** kafkajs consumer session timeout; a SIGKILLed consumer's partitions move after it. */
  readonly sessionTimeoutMs: number;
  /** Upper bound of one fetch per partition = the largest micro-batch (bytes). */
  readonly maxBatchBytes: number;
  /** Most events in one warehouse commit: a larger fetch is split over several commits. */
  readonly commitMaxEvents: number;
  /** Most availability rows recomputed in one transaction (a step of the availability drain). */
  readonly availabilityStepRows: number;
  /** Give up waiting for the broker at start after this long (0 = wait for ever). */
  readonly brokerWaitMs: number;
  /**
   * The stream layer's own DuckDB file (STREAM_DUCKDB_PATH, default <ETL_STATE_DIR>/stream.duckdb):
   * one consumer process holds it open from start to stop; batch jobs keep DUCKDB_PATH.
   */
  readonly duckdbPath: string;
  /** The batch warehouse file, read briefly for the dim_products mirror (DUCKDB_PATH). */
  readonly batchDuckdbPath: string;
  /**
   * DuckDB's threads in the consumer (STREAM_DUCKDB_THREADS, default: the cores but one): a
   * commit is too small to gain from a second thread, and the consumer's own JavaScript thread
   * (fetching and decoding the next events meanwhile) needs a core.
   */
  readonly duckdbThreads: number;
  /** Read-only copy of the stream file for dbt (STREAM_SNAPSHOT_PATH), replaced atomically. */
  readonly snapshotPath: string;
  /** How often the holder publishes the snapshot when something changed, and checks the batch file. */
  readonly snapshotIntervalMs: number;
}

/** The state directory and the DuckDB files of the stream layer, from the environment. */
export function streamFiles(env: NodeJS.ProcessEnv = process.env): { duckdbPath: string; batchDuckdbPath: string; snapshotPath: string } {
  const stateDir = path.resolve(env.ETL_STATE_DIR || '.state');
  return {
    duckdbPath: path.resolve(env.STREAM_DUCKDB_PATH || path.join(stateDir, 'stream.duckdb')),
    batchDuckdbPath: path.resolve(env.DUCKDB_PATH || path.join(stateDir, 'warehouse.duckdb')),
    snapshotPath: path.resolve(env.STREAM_SNAPSHOT_PATH || path.join(stateDir, 'stream-snapshot.duckdb')),
  };
}

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 1): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got '${v}'`);
  return n;
}

export function loadStreamConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<StreamConfig> = {}): StreamConfig {
  const brokers = (env.BOOTSTRAP_SERVER ?? 'localhost:9092').split(',').map((s) => s.trim()).filter(Boolean);
  const topicPrefix = (env.TOPIC_NAME ?? 'store').trim();
  if (!/^[A-Za-z0-9._-]+$/.test(topicPrefix)) throw new Error(`TOPIC_NAME '${topicPrefix}' is not a valid topic prefix`);
  return {
    brokers,
    topicPrefix,
    group: (env.TOPIC_GROUP ?? 'store-etl').trim(),
    partitions: intEnv(env, 'STREAM_PARTITIONS', 3),
    sessionTimeoutMs: intEnv(env, 'STREAM_SESSION_TIMEOUT_MS', 10000, 6000),
    maxBatchBytes: intEnv(env, 'STREAM_MAX_BATCH_BYTES', 1048576, 1024),
    commitMaxEvents: intEnv(env, 'STREAM_COMMIT_MAX_EVENTS', 100000),
    availabilityStepRows: intEnv(env, 'STREAM_AVAILABILITY_STEP_ROWS', 2000),
    brokerWaitMs: intEnv(env, 'STREAM_BROKER_WAIT_MS', 0, 0),
    ...streamFiles(env),
    duckdbThreads: intEnv(env, 'STREAM_DUCKDB_THREADS', Math.max(1, os.cpus().length - 1)),
    snapshotIntervalMs: intEnv(env, 'STREAM_SNAPSHOT_INTERVAL_MS', 10000, 100),
    ...overrides,
  };
}

/** The stream destinations of the catalog, in a stable order. */
export const streamDestinations = (): StreamDestination[] =>
  catalog.destinations.filter((d): d is StreamDestination => d.mode === 'stream');

export const sourceOf = (dest: StreamDestination) => findSource(catalog, dest.sources[0]);

export const topicFor = (cfg: Pick<StreamConfig, 'topicPrefix'>, sourceName: string): string =>
  `${cfg.topicPrefix}_${sourceName}`;
export const deadLetterTopic = (cfg: Pick<StreamConfig, 'topicPrefix'>): string => `${cfg.topicPrefix}_dead_letter`;
export const availabilityTopic = (cfg: Pick<StreamConfig, 'topicPrefix'>): string =>
  `${cfg.topicPrefix}_vendor_availability`;

/** Accepts `store.fact_shoppingcarts`, `fact_shoppingcarts` or the source name `shoppingcart`. */
/** The stream tables named by `--table` options (each may list several, comma-separated); all when none. */
export function resolveStreamTables(options: readonly string[] | undefined): StreamDestination[] {
  const all = streamDestinations();
  const names = (options ?? []).flatMap((t) => t.split(',')).filter(Boolean);
  if (names.length === 0) return all;
  return names.map((n) => {
    const d = all.find((x) => x.name === n || x.table === n || x.sources[0] === n);
    if (!d) throw new UsageError(`unknown stream table '${n}' (known: ${all.map((x) => x.table).join(', ')})`);
    return d;
  });
}
