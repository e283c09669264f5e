/**
 * The stream consumers: one kafkajs consumer in group TOPIC_GROUP reading the topics of the
 * chosen stream destinations, micro-batching with eachBatch, writing through the warehouse.
 *
 * Exactly once into DuckDB: each micro-batch (one topic partition) is written in ONE transaction
 * with the next offset of that partition (`_stream_offsets`). The offset is read again under the
 * same exclusive open of the warehouse file, and events below it are skipped, so a batch that is
 * redelivered after a kill, a rebalance or a broker restart is never applied twice; on joining
 * the group the consumer seeks to the stored offsets, so nothing is skipped either. Kafka's own
 * committed offsets are only a hint (committed after the warehouse commit).
 *
 * Poison events (not JSON, schema failure) are quarantined (`_quarantine`, with the reason) and
 * queued for the dead-letter topic in the same transaction; they never stop the consumer.
 */
import { randomUUID } from 'node:crypto';
import type { Batch, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { SourceTable, StreamDestination } from '../catalog-types';
import { logger } from '../log';
import { DuckDbWarehouse } from '../warehouse/duckdb';
import { applyStreamWritesDuckDb, readOffsetsDuckDb } from '../warehouse/duckdb-stream';
import { type QuarantineRow, type Row, streamEventId, type StreamWrite, type Warehouse } from '../warehouse/types';
import { refreshAvailability, type AvailabilityScope } from './availability';
import {
  availabilityTopic,
  createKafka,
  deadLetterTopic,
  ensureTopics,
  sourceOf,
  topicFor,
  type StreamConfig,
} from './config';
import { deadLetterValue, decodeEvent, quarantineRaw } from './events';
import { flushOutbox, OUTBOX_BASE64, OUTBOX_NULL } from './outbox';

export interface BatchInfo {
  readonly destination: string;
  readonly topic: string;
  readonly partition: number;
  readonly rows: number;
  readonly quarantined: number;
  /** Producer timestamps (ms) of the applied events. */
  readonly eventTimestamps: readonly number[];
  /** When the transaction committed (ms): the rows are queryable from then on. */
  readonly committedAt: number;
}

export interface TableStats {
  rows: number;
  quarantined: number;
  batches: number;
}

export interface StreamConsumerOptions {
  readonly cfg: StreamConfig;
  readonly tables: readonly StreamDestination[];
  readonly warehouse: Warehouse;
  readonly onBatch?: (b: BatchInfo) => void;
  readonly kafka?: Kafka;
}

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

interface Applied {
  rows: number;
  quarantined: number;
  timestamps: number[];
}

/** One partition's fetched batch waiting for the next group commit. */
interface Pending {
  readonly batch: Batch;
  readonly resolve: (a: Applied | null) => void;
  readonly reject: (e: unknown) => void;
}

export class StreamConsumer {
  readonly runId = `stream-${new Date().toISOString()}-${randomUUID().slice(0, 8)}`;
  readonly stats: Record<string, TableStats> = {};
  /** Next offset per "topic:partition" already in the warehouse. */
  readonly positions = new Map<string, bigint>();
  private readonly kafka: Kafka;
  private readonly byTopic = new Map<string, { dest: StreamDestination; source: SourceTable }>();
  private consumer: Consumer | null = null;
  private producer: Producer | null = null;
  private ready: Promise<void> = Promise.resolve();
  private readonly startedAt = new Date();
  private stopping: Promise<void> | null = null;
  private queue: Pending[] = [];
  private readonly kafkaCommitAt = new Map<string, number>();
  private flushing = false;
  private crashed: Error | null = null;

  constructor(private readonly opts: StreamConsumerOptions) {
    this.kafka = opts.kafka ?? createKafka(opts.cfg, 'store-etl-consumer');
    for (const dest of opts.tables) {
      const source = sourceOf(dest);
      this.byTopic.set(topicFor(opts.cfg, source.name), { dest, source });
      this.stats[dest.name] = { rows: 0, quarantined: 0, batches: 0 };
    }
  }

  get topics(): string[] {
    return [...this.byTopic.keys()];
  }

  get failure(): Error | null {
    return this.crashed;
  }

  private get duck(): DuckDbWarehouse | null {
    return this.opts.warehouse instanceof DuckDbWarehouse ? this.opts.warehouse : null;
  }

  private get dataset(): string {
    return this.opts.tables[0]?.dataset ?? 'store';
  }

  async start(): Promise<void> {
    const { cfg, warehouse } = this.opts;
    await ensureTopics(this.kafka, cfg, [...this.topics, deadLetterTopic(cfg), availabilityTopic(cfg)]);
    await warehouse.ensureSchema();
    this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
    await this.producer.connect();
    const duck = this.duck;
    if (duck) {
      // Repairs availability after a batch reload of stock, and publishes what a kill left queued.
      await duck.withConnection(async (c) => {
        await c.run('BEGIN TRANSACTION');
        try {
          await refreshAvailability(c, this.dataset, { all: true }, availabilityTopic(cfg), `start:${this.runId}`, new Date());
          await c.run('COMMIT');
        } catch (e) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw e;
        }
        await flushOutbox(c, this.dataset, this.producer!);
      });
    }
    await this.loadPositions();
    const consumer = this.kafka.consumer({
      groupId: cfg.group,
      sessionTimeout: cfg.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(cfg.sessionTimeoutMs / 5)),
      rebalanceTimeout: Math.max(cfg.sessionTimeoutMs * 2, 20000),
      maxBytesPerPartition: cfg.maxBatchBytes,
      maxBytes: cfg.maxBatchBytes * 4,
      maxWaitTimeInMs: 100,
      retry: { initialRetryTime: 300, retries: 10, maxRetryTime: 5000 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const ready = this.onAssigned(e.payload.memberAssignment).catch((err) => {
        logger.error('stream: reading stored offsets failed', { error: (err as Error).message });
        throw err;
      });
      ready.catch(() => undefined); // awaited (and rethrown) by the next batch, never unhandled
      this.ready = ready;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const err = e.payload.error;
      logger.error('stream: consumer crashed', { error: err.message, restart: e.payload.restart });
      if (!e.payload.restart) this.crashed = err;
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions fetched together are handed over concurrently and committed together (group commit).
      partitionsConsumedConcurrently: 32,
      eachBatch: (p) => this.eachBatch(p),
    });
    logger.info('stream: consuming', { group: cfg.group, topics: this.topics, warehouse: warehouse.location });
  }

  private async loadPositions(): Promise<void> {
    for (const o of await this.opts.warehouse.readOffsets(this.opts.cfg.group, this.topics)) {
      this.positions.set(tpKey(o.topic, o.partition), BigInt(o.offset));
    }
  }

  /** After a (re)join: read the warehouse offsets again and seek the assigned partitions to them. */
  private async onAssigned(assignment: Record<string, number[]>): Promise<void> {
    await this.loadPositions();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const pos = this.positions.get(tpKey(topic, partition));
        if (pos === undefined || this.stopping) continue;
        try {
          this.consumer?.seek({ topic, partition, offset: pos.toString() });
        } catch (e) {
          // Stopping (the group was left meanwhile): the next start seeks again.
          logger.debug('stream: seek skipped', { topic, partition, error: (e as Error).message });
        }
      }
    }
  }

  private build(
    dest: StreamDestination,
    source: SourceTable,
    topic: string,
    partition: number,
    messages: KafkaMessage[],
  ): { write: StreamWrite; scope: AvailabilityScope; timestamps: number[]; dlq: { m: KafkaMessage; q: QuarantineRow }[] } {
    const now = new Date();
    const upserts: Row[] = [];
    const eventIds: string[] = [];
    const quarantine: QuarantineRow[] = [];
    const timestamps: number[] = [];
    const dlq: { m: KafkaMessage; q: QuarantineRow }[] = [];
    for (const m of messages) {
      const d = decodeEvent(dest, source, m.value, now);
      if (d.ok) {
        upserts.push(d.row);
        eventIds.push(streamEventId(topic, partition, m.offset));
        timestamps.push(Number(m.timestamp));
      } else {
        const q: QuarantineRow = {
          runId: this.runId,
          destination: dest.name,
          source: source.name,
          // Where the event is in Kafka: `<topic>:<partition>`, and the offset as its line.
          file: `${topic}:${partition}`,
          line: Number(m.offset),
          column: d.column,
          reasonCode: d.code,
          reason: d.reason,
          raw: quarantineRaw(source, m.value),
        };
        quarantine.push(q);
        dlq.push({ m, q });
      }
    }
    const last = BigInt(messages[messages.length - 1].offset);
    const scope: AvailabilityScope =
      dest.table === 'fact_shoppingcarts'
        ? { cartIds: upserts.map((r) => String(r.shopping_cart_id)) }
        : { productIds: upserts.filter((r) => r.product_id != null).map((r) => String(r.product_id)) };
    return {
      write: {
        destination: dest,
        consumerGroup: this.opts.cfg.group,
        upserts,
        eventIds,
        quarantine,
        offsets: [{ topic, partition, offset: (last + 1n).toString() }],
      },
      scope,
      timestamps,
      dlq,
    };
  }

  /** The dead-letter copy: key and value byte for byte (a tombstone stays null), see deadLetterValue. */
  private dlqMessage(topic: string, partition: number, m: KafkaMessage, q: QuarantineRow) {
    const source = this.byTopic.get(topic)!.source;
    return {
      key: m.key ?? null,
      value: deadLetterValue(source, m.value),
      headers: {
        source_topic: topic,
        source_partition: String(partition),
        source_offset: m.offset,
        destination: q.destination,
        reason_code: q.reasonCode,
        reason: q.reason,
        ...(q.column ? { column: q.column } : {}),
      },
    };
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await this.ready;
    if (!isRunning() || isStale() || batch.messages.length === 0) return;
    const { topic, partition } = batch;
    const target = this.byTopic.get(topic);
    if (!target) return;
    const { dest, source } = target;
    const key = tpKey(topic, partition);
    const lastOffset = batch.messages[batch.messages.length - 1].offset;
    let applied: Applied | null = null;
    const duck = this.duck;
    const cfg = this.opts.cfg;

    if (duck) {
      applied = await new Promise<Applied | null>((resolve, reject) => {
        this.queue.push({ batch, resolve, reject });
        if (!this.flushing) {
          this.flushing = true;
          // Let the other partitions of the same fetch join this commit.
          setImmediate(() => void this.flushQueue(duck));
        }
      });
    } else {
      const from = this.positions.get(key) ?? 0n;
      const fresh = batch.messages.filter((m) => BigInt(m.offset) >= from);
      if (fresh.length > 0) {
        const b = this.build(dest, source, topic, partition, fresh);
        if (b.dlq.length > 0) {
          await this.producer!.send({
            topic: deadLetterTopic(cfg),
            acks: -1,
            messages: b.dlq.map(({ m, q }) => this.dlqMessage(topic, partition, m, q)),
          });
        }
        await this.opts.warehouse.applyStreamBatch(b.write);
        applied = { rows: b.write.upserts.length, quarantined: b.write.quarantine.length, timestamps: b.timestamps };
      }
    }
    const committedAt = Date.now();
    const next = BigInt(lastOffset) + 1n;
    if ((this.positions.get(key) ?? -1n) < next) this.positions.set(key, next);
    resolveOffset(lastOffset);
    if (applied) {
      const s = this.stats[dest.name];
      s.rows += applied.rows;
      s.quarantined += applied.quarantined;
      s.batches += 1;
      if (applied.quarantined > 0) {
        logger.warn('stream: poison events quarantined', { destination: dest.name, events: applied.quarantined, topic, partition });
      }
      logger.debug('stream: batch applied', { destination: dest.name, topic, partition, rows: applied.rows, next: next.toString() });
      this.opts.onBatch?.({
        destination: dest.name,
        topic,
        partition,
        rows: applied.rows,
        quarantined: applied.quarantined,
        eventTimestamps: applied.timestamps,
        committedAt,
      });
    }
    // Kafka's committed offset is only a hint (monitoring, lag tools): at most once a second.
    const now = Date.now();
    if (now - (this.kafkaCommitAt.get(key) ?? 0) >= 1000) {
      this.kafkaCommitAt.set(key, now);
      try {
        await this.consumer?.commitOffsets([{ topic, partition, offset: next.toString() }]);
      } catch (e) {
        logger.debug('stream: kafka offset commit failed (the warehouse offset is authoritative)', { error: (e as Error).message });
      }
    }
    await heartbeat();
  }

  /**
   * Group commit: every queued partition batch is applied in ONE warehouse transaction under one
   * open of the DuckDB file, with their offsets; batches queued meanwhile form the next commit.
   */
  private async flushQueue(duck: DuckDbWarehouse): Promise<void> {
    const cfg = this.opts.cfg;
    try {
      while (this.queue.length > 0) {
        const items = this.queue;
        this.queue = [];
        const t0 = Date.now();
        const marks: Record<string, number> = {};
        try {
          const results = await duck.withConnection(async (c) => {
            marks.open = Date.now() - t0;
            // The fence: stored offsets are read under the same exclusive open as the write.
            const stored = new Map(
              (await readOffsetsDuckDb(c, cfg.group, [...new Set(items.map((i) => i.batch.topic))], this.dataset)).map((o) => [
                tpKey(o.topic, o.partition),
                BigInt(o.offset),
              ]),
            );
            const built = items.map(({ batch }) => {
              const { topic, partition } = batch;
              const { dest, source } = this.byTopic.get(topic)!;
              const from = stored.get(tpKey(topic, partition));
              if (from !== undefined) this.positions.set(tpKey(topic, partition), from);
              const fresh = batch.messages.filter((m) => BigInt(m.offset) >= (from ?? 0n));
              return fresh.length === 0 ? null : { topic, partition, dest, ...this.build(dest, source, topic, partition, fresh) };
            });
            const real = built.filter((b): b is NonNullable<typeof b> => b !== null);
            if (real.length > 0) {
              await applyStreamWritesDuckDb(
                c,
                real.map((b) => b.write),
                async (tx) => {
                  for (const b of real) {
                    for (const { m, q } of b.dlq) {
                      const msg = this.dlqMessage(b.topic, b.partition, m, q);
                      // The outbox's text columns carry bytes as base64 (outbox.ts decodes them).
                      await tx.run(
                        `INSERT INTO "${b.dest.dataset}"._stream_outbox VALUES ($1, $2, $3, $4, $5, now()::TIMESTAMP) ON CONFLICT (id) DO NOTHING`,
                        [`dlq:${b.topic}:${b.partition}:${m.offset}`, deadLetterTopic(cfg), msg.key?.toString('base64') ?? null,
                          msg.value?.toString('base64') ?? OUTBOX_NULL, JSON.stringify({ ...msg.headers, [OUTBOX_BASE64]: '1' })],
                      );
                    }
                  }
                  const scope = {
                    productIds: real.flatMap((b) => b.scope.productIds ?? []),
                    cartIds: real.flatMap((b) => b.scope.cartIds ?? []),
                  };
                  const head = real[0];
                  await refreshAvailability(tx, this.dataset, scope, availabilityTopic(cfg),
                    `avail:${head.topic}:${head.partition}:${head.write.offsets[0].offset}`, new Date());
                },
              );
              marks.commit = Date.now() - t0;
              await flushOutbox(c, this.dataset, this.producer!);
              marks.outbox = Date.now() - t0;
            }
            return built.map((b) =>
              b ? { rows: b.write.upserts.length, quarantined: b.write.quarantine.length, timestamps: b.timestamps } : null,
            );
          });
          logger.debug('stream: group commit', { partitions: items.length, ms: Date.now() - t0, ...marks });
          items.forEach((it, i) => it.resolve(results[i]));
        } catch (e) {
          for (const it of items) it.reject(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** True when every partition in `ends` ("topic:partition" -> high watermark) is consumed. */
  caughtUp(ends: ReadonlyMap<string, bigint>): boolean {
    for (const [k, high] of ends) if ((this.positions.get(k) ?? 0n) < high) return false;
    return true;
  }

  /** Waits until caught up with `ends`; throws on a consumer crash or after `timeoutMs`. */
  async waitCaughtUp(ends: ReadonlyMap<string, bigint>, timeoutMs = 600000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.caughtUp(ends)) {
      if (this.crashed) throw this.crashed;
      if (Date.now() > deadline) throw new Error(`stream consumer did not catch up within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Graceful stop: finishes the batch in hand, leaves the group, records the run per table. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    await this.consumer?.disconnect().catch((e) => logger.warn('stream: consumer disconnect', { error: (e as Error).message }));
    await this.producer?.disconnect().catch(() => undefined);
    const endedAt = new Date();
    for (const dest of this.opts.tables) {
      const s = this.stats[dest.name];
      if (s.batches === 0) continue;
      await this.opts.warehouse
        .recordRun({
          runId: this.runId,
          destination: dest.name,
          mode: 'stream',
          startedAt: this.startedAt,
          endedAt,
          rowsIn: s.rows + s.quarantined,
          rowsLoaded: s.rows,
          rowsQuarantined: s.quarantined,
          rowsOut: s.rows,
          status: this.crashed ? 'failed' : 'success',
          error: this.crashed?.message ?? null,
          report: JSON.stringify({ batches: s.batches }),
        })
        .catch((e) => logger.warn('stream: could not record the run', { error: (e as Error).message }));
    }
    logger.info('stream: stopped', { stats: this.stats });
  }
}
