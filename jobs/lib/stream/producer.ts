/**
 * Replays the stream source files as JSON events: one event per valid row, to
 * `<TOPIC_NAME>_<source>`, keyed by the entity id, at `rate` events/s (null = unlimited).
 * Rows are validated with the catalog's ajv schema before sending; invalid rows are counted as
 * rejected and not sent (the batch layer quarantines them from the same files).
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { SourceTable } from '../catalog-types';
import { openSource } from '../extract';
import { logger } from '../log';
import { createProgress } from '../progress';
import { topicFor, type StreamConfig } from './config';
import { encodeEvent } from './events';
import { ensureTopics, idempotentProducer, producerKafka } from './kafka';

export interface ReplayOptions {
  readonly cfg: StreamConfig;
  readonly sourceDir: string;
  readonly sources: readonly SourceTable[];
  /** Events per second over all sources; null = as fast as the broker takes them. */
  readonly rate: number | null;
  readonly kafka?: Kafka;
  readonly progress?: boolean;
}

export interface ReplayResult {
  readonly perSource: Record<string, { sent: number; rejected: number; topic: string }>;
  readonly sent: number;
  readonly rejected: number;
  readonly seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends messages to `topic` in chunks, paced to `rate` events/s (shared `clock` across calls). */
export async function sendPaced(
  producer: Producer,
  topic: string,
  messages: Message[],
  rate: number | null,
  clock: { start: number; sent: number },
): Promise<void> {
  const chunk = rate === null ? 1000 : Math.max(1, Math.min(500, Math.floor(rate / 50)));
  for (let i = 0; i < messages.length; i += chunk) {
    const part = messages.slice(i, i + chunk);
    if (rate !== null) {
      const due = clock.start + (clock.sent / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await producer.send({ topic, acks: -1, messages: part });
    clock.sent += part.length;
  }
}

export async function replaySources(opts: ReplayOptions): Promise<ReplayResult> {
  const { cfg } = opts;
  const kafka = opts.kafka ?? producerKafka(cfg);
  await ensureTopics(kafka, cfg, opts.sources.map((s) => topicFor(cfg, s.name)));
  // Idempotent: a request retried after "not the leader" on a fresh topic is written once.
  const producer = idempotentProducer(kafka);
  await producer.connect();
  const t0 = Date.now();
  const clock = { start: t0, sent: 0 };
  const perSource: Record<string, { sent: number; rejected: number; topic: string }> = {};
  try {
    for (const source of opts.sources) {
      const topic = topicFor(cfg, source.name);
      const reader = await openSource(source, opts.sourceDir);
      const progress = opts.progress === false ? null : createProgress(`produce ${source.name}`, reader.sizeBytes);
      const stat = { sent: 0, rejected: 0, topic };
      perSource[source.name] = stat;
      let pending: Message[] = [];
      const flush = async () => {
        if (pending.length === 0) return;
        await sendPaced(producer, topic, pending, opts.rate, clock);
        stat.sent += pending.length;
        pending = [];
        progress?.update(reader.counters.bytesRead, stat.sent);
      };
      for await (const row of reader.rows()) {
        if (row.kind !== 'record') {
          stat.rejected++;
          continue;
        }
        const ev = encodeEvent(source, row.record);
        if (Array.isArray(ev)) {
          stat.rejected++;
          if (stat.rejected <= 5) logger.warn('produce: invalid row not sent', { file: source.file, line: row.line, reason: ev[0]?.reason });
          continue;
        }
        pending.push({ key: ev.key, value: ev.value });
        if (pending.length >= (opts.rate === null ? 5000 : Math.max(1, Math.floor(opts.rate / 10)))) await flush();
      }
      await flush();
      progress?.update(reader.sizeBytes, stat.sent);
      progress?.stop();
      logger.info('produce: replayed', { source: source.name, topic, sent: stat.sent, rejected: stat.rejected });
    }
  } finally {
    await producer.disconnect();
  }
  const vals = Object.values(perSource);
  return {
    perSource,
    sent: vals.reduce((a, v) => a + v.sent, 0),
    rejected: vals.reduce((a, v) => a + v.rejected, 0),
    seconds: (Date.now() - t0) / 1000,
  };
}
