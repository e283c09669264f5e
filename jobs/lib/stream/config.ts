/**
 * Stream-layer settings from the environment (documented in .env.example and docs/configuration.md),
 * topic names, and the kafkajs client. Topics: `<TOPIC_NAME>_<source>` per stream source,
 * `<TOPIC_NAME>_dead_letter` for poison events, `<TOPIC_NAME>_vendor_availability` for the
 * sold-out / back-in-stock broadcast.
 */
import { type Admin, Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import { catalog } from '../../catalog';
import type { StreamDestination } from '../catalog-types';
import { findSource } from '../catalog-check';
import { streamFileSettings, streamSettings, kafkajsLogLevel } from '../config';
import { UsageError } from '../errors';
import { logger } from '../log';

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
export function streamFiles(env?: NodeJS.ProcessEnv): { duckdbPath: string; batchDuckdbPath: string; snapshotPath: string } {
  return streamFileSettings(env);
}

export function loadStreamConfig(env?: NodeJS.ProcessEnv, overrides: Partial<StreamConfig> = {}): StreamConfig {
  return { ...streamSettings(env), ...overrides };
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

const LEVELS: Record<number, string> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs logs go through winston (warn and up unless KAFKAJS_LOG_LEVEL says otherwise). */
export function createKafka(cfg: StreamConfig, clientId = 'store-etl', extra: Partial<KafkaConfig> = {}): Kafka {
  const level = ({ error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG } as const)[
    kafkajsLogLevel()
  ];
  return new Kafka({
    clientId,
    brokers: cfg.brokers,
    logLevel: level,
    logCreator: () => ({ namespace, level: l, log }: LogEntry) => {
      const { message, ...rest } = log;
      logger.log(LEVELS[l] ?? 'info', `kafka: ${message}`, { namespace, ...rest });
    },
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 5000 },
    ...extra,
  });
}

/** Creates the topics when missing (idempotent), with STREAM_PARTITIONS partitions. */
export async function ensureTopics(kafka: Kafka, cfg: StreamConfig, topics: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [...new Set(topics)].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: false, // kafkajs gives up early on a cold broker; waited for below
        topics: missing.map((topic) => ({ topic, numPartitions: cfg.partitions, replicationFactor: 1 })),
      });
      await waitForTopicMetadata(admin, missing);
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * A broker that has just started can acknowledge a new topic before it serves the topic's
 * metadata ("This server does not host this topic-partition"): wait, bounded, until every
 * partition has a leader, so the first produce or offset fetch does not fail.
 */
export async function waitForTopicMetadata(admin: Admin, topics: readonly string[], timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
      if (meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leader after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until a broker answers (metadata request), retrying with exponential backoff up to 30 s
 * and one log line per attempt, instead of failing after kafkajs' own ~20 s of retries.
 * Throws after `cfg.brokerWaitMs` (0 = never) or when `cancelled()` turns true.
 */
export async function waitForBroker(cfg: StreamConfig, cancelled: () => boolean = () => false): Promise<void> {
  const probe = createKafka(cfg, 'store-etl-probe', { retry: { retries: 0 }, connectionTimeout: 3000 });
  const t0 = Date.now();
  let delay = 1000;
  for (let attempt = 1; ; attempt++) {
    const admin = probe.admin();
    try {
      await admin.connect();
      await admin.listTopics();
      if (attempt > 1) logger.info('stream: broker reachable', { brokers: cfg.brokers.join(','), waitedMs: Date.now() - t0 });
      return;
    } catch (e) {
      const waited = Date.now() - t0;
      if (cancelled()) throw new Error('stopped while waiting for the Kafka broker');
      if (cfg.brokerWaitMs > 0 && waited + delay > cfg.brokerWaitMs) {
        throw new Error(`Kafka broker at ${cfg.brokers.join(',')} did not answer within ${cfg.brokerWaitMs} ms: ${(e as Error).message}`);
      }
      logger.warn(`stream: waiting for the Kafka broker at ${cfg.brokers.join(',')} (attempt ${attempt}, next try in ${delay / 1000} s)`, {
        error: (e as Error).message,
      });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30000);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

/** High watermarks (next offset to be written) of each partition of `topics`: "topic:partition" -> offset. */
export async function endOffsets(kafka: Kafka, topics: readonly string[]): Promise<Map<string, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = new Map<string, bigint>();
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) out.set(`${topic}:${p.partition}`, BigInt(p.high));
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}
