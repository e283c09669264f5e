/**
 * The Kafka client side of the stream layer: the kafkajs client (logs through winston, one set of
 * retry settings), topics, waiting for the broker, end offsets and the idempotent producer. The
 * consumer group lives in group.ts; these two (and the producer/outbox using a Producer) are the
 * only modules that use kafkajs.
 */
import fs from 'node:fs';
import { type Admin, Kafka, logLevel, Partitioners, type KafkaConfig, type LogEntry, type Producer, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import { type KafkaSecurity, kafkajsLogLevel } from '../config';
import { logger } from '../log';
import { retry, RETRY_POLICIES } from '../retry';
import type { StreamConfig } from './config';

const LEVELS: Record<number, string> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs's retries, from the kafkaClient policy; `retries` differs per use (client, consumer, producer). */
export const kafkaRetry = (retries: number = RETRY_POLICIES.kafkaClient.retries): RetryOptions => ({
  initialRetryTime: RETRY_POLICIES.kafkaClient.baseDelayMs,
  maxRetryTime: RETRY_POLICIES.kafkaClient.maxDelayMs,
  retries,
});

const readPem = (file: string, setting: string): Buffer => {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${setting} ${file} cannot be read: ${(e as Error).message}`);
  }
};

/** kafkajs's `ssl` and `sasl` options for STREAM_SECURITY_PROTOCOL: TLS for *ssl, a login for sasl_*. */
export function securityOptions(sec: KafkaSecurity): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: { ssl?: ConnectionOptions | boolean; sasl?: SASLOptions } = {};
  if (sec.tls) {
    const { caFile, certFile, keyFile } = sec.tls;
    const tls: ConnectionOptions = {};
    if (caFile) tls.ca = [readPem(caFile, 'STREAM_SSL_CA_FILE')];
    if (certFile) tls.cert = readPem(certFile, 'STREAM_SSL_CERT_FILE');
    if (keyFile) tls.key = readPem(keyFile, 'STREAM_SSL_KEY_FILE');
    out.ssl = Object.keys(tls).length > 0 ? tls : true; // true: the system's CAs
  }
  if (sec.sasl) {
    const { mechanism, username, password } = sec.sasl;
    out.sasl = { mechanism, username, password } as SASLOptions;
  }
  return out;
}

/**
 * A failure a retry cannot mend: the broker refused the login (kafkajs's
 * KafkaJSSASLAuthenticationError) or its TLS certificate does not check out against the CA.
 */
export function isKafkaAuthFailure(e: unknown): boolean {
  for (let x = e as { name?: string; code?: string; message?: string; cause?: unknown } | undefined; x; x = x.cause as typeof x) {
    if (x.name === 'KafkaJSSASLAuthenticationError') return true;
    if (typeof x.code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(x.code)) return true;
  }
  return false;
}

/** One line for a refused login or certificate, naming the settings to look at. */
export function kafkaAuthMessage(cfg: StreamConfig, e: unknown): string {
  const what = (e as Error).message;
  const sasl = cfg.security.sasl;
  return /SASL/i.test((e as Error).name ?? '') || /SASL/.test(what)
    ? `Kafka at ${cfg.brokers.join(',')} refused the login of '${sasl?.username}' (${sasl?.mechanism}): check STREAM_SASL_USERNAME, STREAM_SASL_PASSWORD and STREAM_SASL_MECHANISM (${what})`
    : `Kafka at ${cfg.brokers.join(',')}: TLS certificate not trusted, check STREAM_SSL_CA_FILE (${what})`;
}

/**
 * kafkajs logs go through winston (warn and up unless KAFKAJS_LOG_LEVEL says otherwise). Every
 * client (producer, consumer, admin) is made here, so all connect alike: TLS and SASL from
 * `cfg.security`.
 */
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
    retry: kafkaRetry(),
    ...securityOptions(cfg.security),
    ...extra,
  });
}

/**
 * The client of a producer that must outlive a broker outage (replays): while the broker is down
 * it is the client's connection retries, not the producer's, that give up (~25 s with the client
 * policy), so here they have no limit either; a send waits for the broker.
 */
export const producerKafka = (cfg: StreamConfig, clientId = 'store-etl-producer'): Kafka =>
  createKafka(cfg, clientId, { retry: kafkaRetry(Number.MAX_SAFE_INTEGER) });

/** Runs `fn` with a connected admin client of `kafka`, disconnected afterwards. */
async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Creates the topics when missing (idempotent), with STREAM_PARTITIONS partitions. */
export function ensureTopics(kafka: Kafka, cfg: StreamConfig, topics: readonly string[]): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = [...new Set(topics)].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: false, // kafkajs gives up early on a cold broker; waited for below
        topics: missing.map((topic) => ({ topic, numPartitions: cfg.partitions, replicationFactor: 1 })),
      });
      await waitForTopicMetadata(admin, missing);
    }
  });
}

/**
 * Deletes the topics that exist among `topics` (scratch topics of a benchmark: a million events
 * each, which a local broker otherwise keeps, and loads again at every start).
 */
export function deleteTopics(kafka: Kafka, topics: readonly string[]): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const present = [...new Set(topics)].filter((t) => existing.has(t));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
  });
}

/**
 * A broker that has just started can acknowledge a new topic before it serves the topic's
 * metadata ("This server does not host this topic-partition"): wait, bounded, until every
 * partition has a leader, so the first produce or offset fetch does not fail.
 */
export async function waitForTopicMetadata(admin: Admin, topics: readonly string[], timeoutMs = 15000): Promise<void> {
  const notReady = new Error(`topics ${topics.join(', ')} have no leader after ${timeoutMs} ms`);
  await retry({ ...RETRY_POLICIES.topicMetadata, deadlineMs: timeoutMs }, async () => {
    const { topics: meta } = await admin.fetchTopicMetadata({ topics: [...topics] });
    if (!meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) throw notReady;
  });
}

/**
 * Waits until a broker answers (metadata request), retrying with exponential backoff up to 30 s
 * and one log line per attempt, instead of failing after kafkajs' own ~20 s of retries.
 * Throws after `cfg.brokerWaitMs` (0 = never) or when `cancelled()` turns true.
 */
export async function waitForBroker(cfg: StreamConfig, cancelled: () => boolean = () => false): Promise<void> {
  const probe = createKafka(cfg, 'store-etl-probe', { retry: { retries: 0 }, connectionTimeout: 3000 });
  const brokers = cfg.brokers.join(',');
  const policy = { ...RETRY_POLICIES.brokerWait, deadlineMs: cfg.brokerWaitMs > 0 ? cfg.brokerWaitMs : undefined };
  await retry(
    policy,
    async (attempt) => {
      const admin = probe.admin();
      try {
        await admin.connect();
        await admin.listTopics();
        if (attempt > 1) logger.info('stream: broker reachable', { brokers });
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    {
      retryable: (e) => !isKafkaAuthFailure(e),
      giveUp: (e) =>
        new Error(
          isKafkaAuthFailure(e)
            ? kafkaAuthMessage(cfg, e)
            : `Kafka broker at ${brokers} did not answer within ${cfg.brokerWaitMs} ms: ${(e as Error).message}`,
        ),
      onRetry: ({ attempt, delayMs, error }) => {
        if (cancelled()) throw new Error('stopped while waiting for the Kafka broker');
        logger.warn(`stream: waiting for the Kafka broker at ${brokers} (attempt ${attempt}, next try in ${delayMs / 1000} s)`, {
          error: (error as Error).message,
        });
      },
    },
  );
}

/** High watermarks (next offset to be written) of each partition of `topics`: "topic:partition" -> offset. */
export function endOffsets(kafka: Kafka, topics: readonly string[]): Promise<Map<string, bigint>> {
  return withAdmin(kafka, async (admin) => {
    const out = new Map<string, bigint>();
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) out.set(`${topic}:${p.partition}`, BigInt(p.high));
    }
    return out;
  });
}

/**
 * The producer of the stream layer (replays and the outbox): idempotent, so a retried request
 * (e.g. after "not the leader" on a fresh topic) is written once; kafkajs requires one request in
 * flight and acks=-1 for it, and retries without limit (a send waits for the broker).
 */
export const idempotentProducer = (kafka: Kafka): Producer =>
  kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: kafkaRetry(Number.MAX_SAFE_INTEGER),
  });
