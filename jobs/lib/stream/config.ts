/**
 * Stream-layer settings from the environment (documented in .env.example and docs/configuration.md)
 * and topic names (the kafkajs client: kafka.ts). Topics: `<TOPIC_NAME>_<source>` per stream source,
 * `<TOPIC_NAME>_dead_letter` for poison events, `<TOPIC_NAME>_vendor_availability` for the
 * sold-out / back-in-stock broadcast.
 */
import type { Catalog, StreamDestination } from '../catalog-types';
import { findSource } from '../catalog-check';
import { type KafkaSecurity, streamFileSettings, streamSettings } from '../config';
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
  /** TLS and SASL of a secured cluster (STREAM_SECURITY_PROTOCOL ...), used by every client createKafka makes. */
  readonly security: KafkaSecurity;
}

/**
 * The Node flags every consumer process starts with: the stream image's ENTRYPOINT, `npm run
 * consume` and `npm run bench:stream` (tests/deploy/consumer-node-flags.test.ts keeps them equal).
 * V8 reads them only at start-up, so they cannot be set from here.
 *
 * A young generation of 64 MiB semi-spaces, not Node 20's 16: a catch-up allocates a fetch's
 * records (kafkajs's objects and Buffer views, the slices' texts) faster than a 16 MiB
 * semi-space is scavenged, so most of them were copied twice and promoted to the old generation
 * before their commit freed them. Cost ~110 MiB more resident memory at full speed (one run); gave
 * 1.18-1.47x the events/s and 0.5-1.7 us less CPU per event (docs/benchmarks.md, ninth session).
 */
export const CONSUMER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** The state directory and the DuckDB files of the stream layer, from the environment. */
export function streamFiles(env?: NodeJS.ProcessEnv): { duckdbPath: string; batchDuckdbPath: string; snapshotPath: string } {
  return streamFileSettings(env);
}

export function loadStreamConfig(env?: NodeJS.ProcessEnv, overrides: Partial<StreamConfig> = {}): StreamConfig {
  return { ...streamSettings(env), ...overrides };
}

/** The stream destinations of the catalog, in a stable order. */
export const streamDestinations = (catalog: Catalog): StreamDestination[] =>
  catalog.destinations.filter((d): d is StreamDestination => d.mode === 'stream');

export const sourceOf = (catalog: Catalog, dest: StreamDestination) => findSource(catalog, dest.sources[0]);

export const topicFor = (cfg: Pick<StreamConfig, 'topicPrefix'>, sourceName: string): string =>
  `${cfg.topicPrefix}_${sourceName}`;
export const deadLetterTopic = (cfg: Pick<StreamConfig, 'topicPrefix'>): string => `${cfg.topicPrefix}_dead_letter`;
export const availabilityTopic = (cfg: Pick<StreamConfig, 'topicPrefix'>): string =>
  `${cfg.topicPrefix}_vendor_availability`;

/** Accepts `store.fact_shoppingcarts`, `fact_shoppingcarts` or the source name `shoppingcart`. */
/** The stream tables named by `--table` options (each may list several, comma-separated); all when none. */
export function resolveStreamTables(catalog: Catalog, options: readonly string[] | undefined): StreamDestination[] {
  const all = streamDestinations(catalog);
  const names = (options ?? []).flatMap((t) => t.split(',')).filter(Boolean);
  if (names.length === 0) return all;
  return names.map((n) => {
    const d = all.find((x) => x.name === n || x.table === n || x.sources[0] === n);
    if (!d) throw new UsageError(`unknown stream table '${n}' (known: ${all.map((x) => x.table).join(', ')})`);
    return d;
  });
}
