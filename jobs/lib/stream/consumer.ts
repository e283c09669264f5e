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
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { SourceTable, StreamDestination } from '../catalog-types';
import { logger } from '../log';
import { DuckDbWarehouse } from '../warehouse/duckdb';
import { applyStreamWritesDuckDb, readOffsetsDuckDb, type DuckStreamWrite } from '../warehouse/duckdb-stream';
import { type QuarantineRow, type Row, streamEventId, type StreamOffset, type StreamWrite, type Warehouse } from '../warehouse/types';
import { drainAvailability, markAvailabilityPending } from './availability';
import {
  availabilityTopic,
  createKafka,
  deadLetterTopic,
  ensureTopics,
  sourceOf,
  topicFor,
  waitForBroker,
  type StreamConfig,
} from './config';
import { deadLetterValue, decodeEvent, decodeEventText, quarantineRaw, type Decoded, type RejectedEvent } from './events';
import { flushOutbox, idempotentProducer, queueOutbox, type OutboxMessage } from './outbox';
import { publishSnapshot, refreshProductMirror, snapshotRequestedAt, type MirrorState } from './stream-file';

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

/** One warehouse transaction of the consumer: a group commit or an availability step. */
export interface CommitInfo {
  readonly kind: 'batch' | 'availability';
  readonly ms: number;
  /** Events (batch) or broadcast events queued (availability). */
  readonly events: number;
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
  /** Called after each warehouse transaction (commit durations for tests and benchmarks). */
  readonly onCommit?: (c: CommitInfo) => void;
  readonly kafka?: Kafka;
}

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * A partition slice, decoded, without its Kafka messages: a slice waits in memory for its commit,
 * and a message object (with its key and value views, which keep the whole fetch response alive)
 * held that long made most of the consumer's garbage collection.
 */
interface DecodedSlice<E> {
  /** Per message, in order. */
  readonly offsets: readonly string[];
  readonly decoded: readonly Decoded<E>[];
  /** Producer timestamps (ms), per message. */
  readonly timestamps: Float64Array;
  /** The message of each rejected event, by index: its dead-letter copy keeps the bytes. */
  readonly rejected: ReadonlyMap<number, KafkaMessage>;
}

function decodeSlice<E>(messages: readonly KafkaMessage[], decode: (m: KafkaMessage) => Decoded<E>): DecodedSlice<E> {
  const offsets: string[] = new Array(messages.length);
  const decoded: Decoded<E>[] = new Array(messages.length);
  const timestamps = new Float64Array(messages.length);
  const rejected = new Map<number, KafkaMessage>();
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    offsets[i] = m.offset;
    timestamps[i] = Number(m.timestamp);
    const d = (decoded[i] = decode(m));
    if (!d.ok) rejected.set(i, m);
  }
  return { offsets, decoded, timestamps, rejected };
}

/** Index of the slice's first message at or past `from` (offsets grow): 0 in the usual case, length when none. */
function firstFresh(offsets: readonly string[], from: bigint | undefined): number {
  if (from === undefined || BigInt(offsets[0]) >= from) return 0;
  const i = offsets.findIndex((o) => BigInt(o) >= from);
  return i < 0 ? offsets.length : i;
}

/** A slice's events, sorted (StreamConsumer.sortEvents). */
interface SortedEvents<E> {
  readonly events: E[];
  readonly quarantine: QuarantineRow[];
  /** Producer timestamps (ms) of the accepted events. */
  readonly timestamps: number[];
  readonly dlq: { m: KafkaMessage; q: QuarantineRow }[];
  /** The offset to resume the partition from after the slice. */
  readonly offsets: [StreamOffset];
}

/** Longest the availability drain is put off while commits follow one another. */
const AVAILABILITY_MAX_DELAY_MS = 1000;

interface Applied {
  rows: number;
  quarantined: number;
  timestamps: number[];
}

/** A slice of one partition's fetched batch waiting for the next group commit. */
interface Pending {
  readonly topic: string;
  readonly partition: number;
  /** Decoded when queued: decoding overlaps the commit before. */
  readonly slice: DecodedSlice<string | Row>;
  /** null: nothing new; 'gap': the stored offset is below this slice (refetch from there). */
  readonly resolve: (a: Applied | null | 'gap') => void;
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
  /** Partitions assigned to this member now ("topic:partition"): the only ones it commits to Kafka. */
  private assigned = new Set<string>();
  private outboxRetry: NodeJS.Timeout | null = null;
  /** Events per commit now: STREAM_COMMIT_MAX_EVENTS, lowered while commits run long (time bound). */
  private commitLimit: number;
  /** When this member first joined the group (ms): benchmarks measure throughput from here. */
  joinedAt: number | null = null;
  private flushing = false;
  private crashed: Error | null = null;
  /** Held stream file: housekeeping (mirror refresh, snapshot) between commits. */
  private housekeeping: NodeJS.Timeout | null = null;
  private readonly mirror: MirrorState = { stat: null, marker: null };
  /** Something was committed since the last snapshot. */
  private dirty = true;
  /** When the last snapshot started (requests newer than this are served). */
  private snapshotAt = 0;
  /** Periodic snapshots count from here (the start, then each snapshot). */
  private periodicFrom = 0;
  private mirrorCheckedAt = 0;
  /** Held stream file: the offsets stored in it (the fence), known after the first commit. */
  private storedOffsets: Map<string, bigint> | null = null;
  /** Slices handed to the group commit whose commit has not finished (DuckDB pipeline). */
  private readonly inflight = new Set<Promise<void>>();
  private inflightEvents = 0;
  /** Availability/outbox work left by commits made under load (drained by the next quiet moment). */
  private drainOwed = false;
  private drainedAt = 0;

  constructor(private readonly opts: StreamConsumerOptions) {
    this.kafka = opts.kafka ?? createKafka(opts.cfg, 'store-etl-consumer');
    this.commitLimit = opts.cfg.commitMaxEvents;
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
    // The stream file first: a second process on it waits here as a standby and joins the
    // group only once it holds the file (the first exited or died).
    if (this.duck?.holds) await this.duck.acquire(() => this.stopping !== null);
    await waitForBroker(cfg, () => this.stopping !== null);
    await ensureTopics(this.kafka, cfg, [...this.topics, deadLetterTopic(cfg), availabilityTopic(cfg)]);
    await warehouse.ensureSchema();
    this.producer = idempotentProducer(this.kafka);
    await this.producer.connect();
    const duck = this.duck;
    if (duck) {
      // Repairs availability after a batch reload of stock, and publishes what a kill left queued.
      await duck.withConnection(async (c) => {
        if (duck.holds) await refreshProductMirror(c, cfg.batchDuckdbPath, this.dataset, this.mirror);
        await c.run('BEGIN TRANSACTION');
        try {
          await markAvailabilityPending(c, this.dataset, { all: true });
          await c.run('COMMIT');
        } catch (e) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw e;
        }
        await this.afterCommit(c);
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
      this.joinedAt ??= Date.now();
      this.assigned = new Set(Object.entries(e.payload.memberAssignment).flatMap(([t, ps]) => ps.map((p) => tpKey(t, p))));
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
    if (duck?.holds) {
      // The first periodic snapshot one interval from now (a request or the stop publish sooner).
      this.periodicFrom = Date.now();
      this.scheduleHousekeeping();
    }
    logger.info('stream: consuming', { group: cfg.group, topics: this.topics, warehouse: warehouse.location });
  }

  /**
   * Held stream file, between commits (never inside one): refreshes the dim_products mirror when
   * the batch file changed (every STREAM_SNAPSHOT_INTERVAL_MS), and publishes the snapshot for
   * dbt when asked (request file) or, when something changed, every STREAM_SNAPSHOT_INTERVAL_MS.
   */
  private scheduleHousekeeping(): void {
    const duck = this.duck;
    if (!duck || this.housekeeping || this.stopping) return;
    this.housekeeping = setTimeout(() => {
      this.housekeeping = null;
      if (this.stopping) return;
      // While commits follow one another, flushQueue runs the housekeeping between them.
      if (this.flushing || !this.housekeepingDue()) return this.scheduleHousekeeping();
      void this.inFlushSlot(() => duck.withConnection((c) => this.housekeep(c))).finally(() => this.scheduleHousekeeping());
    }, Math.min(500, this.opts.cfg.snapshotIntervalMs));
    this.housekeeping.unref();
  }

  private housekeepingDue(): boolean {
    const now = Date.now();
    return this.snapshotDue(now) || this.mirrorDue(now);
  }

  /** The batch file's dim_products is checked every STREAM_SNAPSHOT_INTERVAL_MS. */
  private mirrorDue(now: number): boolean {
    return now - this.mirrorCheckedAt >= this.opts.cfg.snapshotIntervalMs;
  }

  /** A snapshot is due when dbt asked for one, or every STREAM_SNAPSHOT_INTERVAL_MS when something changed. */
  private snapshotDue(now: number): boolean {
    const cfg = this.opts.cfg;
    return (
      snapshotRequestedAt(cfg.snapshotPath) > this.snapshotAt ||
      (this.dirty && now - Math.max(this.snapshotAt, this.periodicFrom) >= cfg.snapshotIntervalMs)
    );
  }

  /** Mirror check and snapshot when due; never fails (tried again at the next tick). */
  private async housekeep(c: DuckDBConnection): Promise<void> {
    const cfg = this.opts.cfg;
    const now = Date.now();
    try {
      if (this.mirrorDue(now)) {
        this.mirrorCheckedAt = now;
        if (await refreshProductMirror(c, cfg.batchDuckdbPath, this.dataset, this.mirror)) {
          this.dirty = true;
          await this.afterCommit(c);
        }
      }
      // After the mirror step: a refreshed mirror makes the file dirty.
      if (this.snapshotDue(now)) await this.snapshot(c);
    } catch (e) {
      logger.warn('stream: housekeeping failed; tried again later', { error: (e as Error).message });
    }
  }

  private async snapshot(c: DuckDBConnection): Promise<void> {
    const t0 = Date.now();
    this.dirty = false;
    await publishSnapshot(c, this.opts.cfg.snapshotPath);
    // Stamped with the start: a request dropped while copying asks for the next one.
    this.snapshotAt = t0;
    logger.debug('stream: snapshot published', { file: this.opts.cfg.snapshotPath, ms: Date.now() - t0 });
  }

  private async loadPositions(): Promise<void> {
    for (const o of await this.opts.warehouse.readOffsets(this.opts.cfg.group, this.topics)) {
      this.positions.set(tpKey(o.topic, o.partition), BigInt(o.offset));
    }
  }

  /**
   * After a (re)join: read the warehouse offsets again, seek the assigned partitions to them and
   * commit them to the group (an evicted member's last commits may not have reached Kafka).
   */
  private async onAssigned(assignment: Record<string, number[]>): Promise<void> {
    await this.loadPositions();
    const mine: { topic: string; partition: number; offset: bigint }[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const pos = this.positions.get(tpKey(topic, partition));
        if (pos === undefined || this.stopping) continue;
        mine.push({ topic, partition, offset: pos });
        try {
          this.consumer?.seek({ topic, partition, offset: pos.toString() });
        } catch (e) {
          // Stopping (the group was left meanwhile): the next start seeks again.
          logger.debug('stream: seek skipped', { topic, partition, error: (e as Error).message });
        }
      }
    }
    await this.commitKafka(mine);
  }

  /**
   * Commits warehouse offsets to the group, for monitoring only: partitions assigned to this
   * member; a failure (evicted, rebalancing) is logged and repaired by the next join.
   */
  private async commitKafka(offsets: readonly { topic: string; partition: number; offset: bigint }[]): Promise<void> {
    const mine = offsets.filter((o) => this.assigned.has(tpKey(o.topic, o.partition)));
    if (mine.length === 0 || !this.consumer) return;
    try {
      await this.consumer.commitOffsets(mine.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() })));
    } catch (e) {
      logger.debug('stream: kafka offset commit failed (the warehouse offset is authoritative)', { error: (e as Error).message });
    }
  }

  /** afterCommit, never failing the commit before it; a failure leaves the work pending. */
  private async drainAfterCommit(c: DuckDBConnection): Promise<void> {
    this.drainOwed = false;
    this.drainedAt = Date.now();
    await this.afterCommit(c).catch((e) => {
      logger.error('stream: availability/outbox after the commit failed; retried after the next commit', {
        error: (e as Error).message,
      });
    });
  }

  /** After a warehouse commit: drains the availability work in bounded steps, then publishes the outbox. */
  private async afterCommit(c: DuckDBConnection): Promise<void> {
    const cfg = this.opts.cfg;
    await drainAvailability(c, this.dataset, availabilityTopic(cfg), cfg.availabilityStepRows, (s) => {
      logger.debug('stream: availability step', s);
      this.opts.onCommit?.({ kind: 'availability', ms: s.ms, events: s.events });
    });
    const r = await flushOutbox(c, this.dataset, this.producer!);
    if (r.pending) this.scheduleOutboxRetry();
  }

  /**
   * A slice's events from index `from` on, sorted into accepted ones, with their producer
   * timestamps, and quarantined ones, with their dead-letter copies; and the slice's next offset.
   */
  private sortEvents<E>(
    dest: StreamDestination,
    source: SourceTable,
    topic: string,
    partition: number,
    slice: DecodedSlice<E>,
    from: number,
  ): SortedEvents<E> {
    const events: E[] = [];
    const quarantine: QuarantineRow[] = [];
    const timestamps: number[] = [];
    const dlq: { m: KafkaMessage; q: QuarantineRow }[] = [];
    for (let i = from; i < slice.decoded.length; i++) {
      const d = slice.decoded[i];
      if (d.ok) {
        events.push(d.event);
        timestamps.push(slice.timestamps[i]);
      } else {
        const m = slice.rejected.get(i)!;
        const q = this.quarantineRow(dest, source, topic, partition, m, d);
        quarantine.push(q);
        dlq.push({ m, q });
      }
    }
    const next = (BigInt(slice.offsets[slice.offsets.length - 1]) + 1n).toString();
    return { events, quarantine, timestamps, dlq, offsets: [{ topic, partition, offset: next }] };
  }

  private quarantineRow(
    dest: StreamDestination,
    source: SourceTable,
    topic: string,
    partition: number,
    m: KafkaMessage,
    d: RejectedEvent,
  ): QuarantineRow {
    return {
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
    const { dest } = target;
    // Keep the session alive while this batch waits for its commits (kafkajs sends at most one
    // heartbeat per heartbeatInterval, however often this is called).
    const beat = setInterval(() => {
      heartbeat().catch((e) => logger.debug('stream: heartbeat failed', { error: (e as Error).message }));
    }, 500);
    try {
      for (let i = 0; i < batch.messages.length; ) {
        if (!isRunning() || isStale()) return;
        const part = batch.messages.slice(i, i + this.commitLimit);
        i += part.length;
        const lastOffset = part[part.length - 1].offset;
        const settle = (applied: Applied | null | 'gap') => this.settled(dest.name, topic, partition, lastOffset, applied);
        if (!this.duck) {
          // BigQuery: one transaction per slice, awaited in order.
          const applied = await this.apply(topic, partition, part);
          if (applied === 'gap') return;
          settle(applied);
          resolveOffset(lastOffset);
          continue;
        }
        // DuckDB: the slice joins the group commit and this batch returns without waiting for
        // it, so kafkajs fetches the next batches while DuckDB commits (a pipeline). The events
        // in flight are bounded; the stored offsets stay the truth: a failed commit seeks the
        // partition back to them, a redelivered slice is fenced.
        // The callbacks keep numbers, not `part`: its messages are freed once decoded.
        const events = part.length;
        const firstOffset = BigInt(part[0].offset);
        this.inflightEvents += events;
        const done: Promise<void> = this.apply(topic, partition, part)
          .then(settle, (e) => this.commitFailed(topic, partition, firstOffset, e))
          .finally(() => {
            this.inflightEvents -= events;
            this.inflight.delete(done);
          });
        this.inflight.add(done);
        resolveOffset(lastOffset);
        while (this.inflightEvents > 2 * this.opts.cfg.commitMaxEvents && this.inflight.size > 0 && isRunning() && !isStale()) {
          await Promise.race(this.inflight);
        }
      }
    } finally {
      clearInterval(beat);
    }
    await heartbeat().catch(() => undefined);
  }

  /** A slice's commit finished: positions, stats and the onBatch report. */
  private settled(destination: string, topic: string, partition: number, lastOffset: string, applied: Applied | null | 'gap'): void {
    if (applied === 'gap') return; // seeked back to the stored offset: refetched from there
    const key = tpKey(topic, partition);
    const committedAt = Date.now();
    const next = BigInt(lastOffset) + 1n;
    if ((this.positions.get(key) ?? -1n) < next) this.positions.set(key, next);
    if (!applied) return;
    const s = this.stats[destination];
    s.rows += applied.rows;
    s.quarantined += applied.quarantined;
    s.batches += 1;
    if (applied.quarantined > 0) {
      logger.warn('stream: poison events quarantined', { destination, events: applied.quarantined, topic, partition });
    }
    logger.debug('stream: batch applied', { destination, topic, partition, rows: applied.rows, next: next.toString() });
    this.opts.onBatch?.({
      destination,
      topic,
      partition,
      rows: applied.rows,
      quarantined: applied.quarantined,
      eventTimestamps: applied.timestamps,
      committedAt,
    });
  }

  /**
   * A group commit failed (nothing of it was written): fetch the partition again from its
   * committed position; slices of it queued meanwhile start past that position and are
   * refetched the same way ('gap').
   */
  private commitFailed(topic: string, partition: number, first: bigint, e: unknown): void {
    const from = this.positions.get(tpKey(topic, partition)) ?? first;
    logger.error('stream: warehouse commit failed; fetching the partition again from its stored offset', {
      topic,
      partition,
      offset: from.toString(),
      error: (e as Error).message,
    });
    if (this.stopping) return;
    try {
      this.consumer?.seek({ topic, partition, offset: from.toString() });
    } catch (err) {
      logger.debug('stream: seek skipped', { topic, partition, error: (err as Error).message });
    }
  }

  /** Applies one slice of a partition's batch (DuckDB: through the group commit). */
  private async apply(topic: string, partition: number, messages: KafkaMessage[]): Promise<Applied | null | 'gap'> {
    const duck = this.duck;
    if (duck) {
      return new Promise<Applied | null | 'gap'>((resolve, reject) => {
        const { dest, source } = this.byTopic.get(topic)!;
        const now = new Date();
        const slice = decodeSlice(messages, (m) => decodeEventText(dest, source, m.value, now));
        this.queue.push({ topic, partition, slice, resolve, reject });
        if (!this.flushing) {
          this.flushing = true;
          // Let the other partitions of the same fetch join this commit.
          setImmediate(() => void this.flushQueue(duck));
        }
      });
    }
    const cfg = this.opts.cfg;
    const { dest, source } = this.byTopic.get(topic)!;
    const fresh = messages.slice(firstFresh(messages.map((m) => m.offset), this.positions.get(tpKey(topic, partition))));
    if (fresh.length === 0) return null;
    // BigQuery takes rows (staged here), each with a stable id (its insertId).
    const now = new Date();
    const slice = decodeSlice(fresh, (m) => decodeEvent(dest, source, m.value, now));
    const b = this.sortEvents(dest, source, topic, partition, slice, 0);
    const eventIds = fresh.filter((_, i) => slice.decoded[i].ok).map((m) => streamEventId(topic, partition, m.offset));
    const write: StreamWrite = { destination: dest, consumerGroup: cfg.group, upserts: b.events, eventIds, quarantine: b.quarantine, offsets: b.offsets };
    if (b.dlq.length > 0) {
      await this.producer!.send({
        topic: deadLetterTopic(cfg),
        acks: -1,
        messages: b.dlq.map(({ m, q }) => this.dlqMessage(topic, partition, m, q)),
      });
    }
    const applied = await this.opts.warehouse.applyStreamBatch(write);
    await this.commitKafka([{ topic, partition, offset: BigInt(b.offsets[0].offset) }]);
    // Fenced (the group's stored offset was already past it): nothing applied, nothing counted.
    if (!applied) return null;
    return { rows: b.events.length, quarantined: b.quarantine.length, timestamps: b.timestamps };
  }

  /**
   * Group commit: queued partition slices, up to STREAM_COMMIT_MAX_EVENTS events, are applied in
   * ONE warehouse transaction under one open of the DuckDB file, with their offsets; slices queued
   * meanwhile (or left over) form the next commit.
   */
  private async flushQueue(duck: DuckDbWarehouse): Promise<void> {
    const cfg = this.opts.cfg;
    try {
      while (this.queue.length > 0) {
        let take = 0;
        let events = 0;
        while (take < this.queue.length && (take === 0 || events + this.queue[take].slice.offsets.length <= this.commitLimit)) {
          events += this.queue[take].slice.offsets.length;
          take++;
        }
        const items = this.queue.splice(0, take);
        const t0 = Date.now();
        const marks: Record<string, number> = {};
        const toKafka: { topic: string; partition: number; offset: bigint }[] = [];
        try {
          const results = await duck.withConnection(async (c) => {
            marks.open = Date.now() - t0;
            // The fence: stored offsets are read under the same exclusive open as the write, and
            // advanced slice by slice, so two slices of one partition in this commit (a batch
            // redelivered after a rebalance next to its first delivery) are applied once.
            // A held stream file has no other writer: after the first read, the stored offsets
            // are kept in memory (replaced only once a commit succeeded).
            const fence = new Map(
              duck.holds && this.storedOffsets
                ? this.storedOffsets
                : (await readOffsetsDuckDb(c, cfg.group, this.topics, this.dataset)).map((o) => [
                    tpKey(o.topic, o.partition),
                    BigInt(o.offset),
                  ]),
            );
            marks.fence = Date.now() - t0;
            const built = items.map((it) => {
              const { topic, partition, slice } = it;
              const k = tpKey(topic, partition);
              const { dest, source } = this.byTopic.get(topic)!;
              const from = fence.get(k);
              if (from !== undefined && BigInt(slice.offsets[0]) > from) {
                this.positions.set(k, from);
                return 'gap' as const;
              }
              const first = firstFresh(slice.offsets, from);
              if (first === slice.offsets.length) return null;
              const b = this.sortEvents(dest, source, topic, partition, slice, first);
              fence.set(k, BigInt(b.offsets[0].offset));
              const write: DuckStreamWrite = { destination: dest, source, consumerGroup: cfg.group, events: b.events, quarantine: b.quarantine, offsets: b.offsets };
              return { topic, partition, write, timestamps: b.timestamps, dlq: b.dlq };
            });
            const real = built.filter((b): b is Exclude<typeof b, null | 'gap'> => b !== null && b !== 'gap');
            marks.build = Date.now() - t0;
            if (real.length > 0) {
              await applyStreamWritesDuckDb(
                c,
                real.map((b) => b.write),
                async (tx, staged) => {
                  const dlq: OutboxMessage[] = real.flatMap((b) =>
                    b.dlq.map(({ m, q }) => {
                      const msg = this.dlqMessage(b.topic, b.partition, m, q);
                      return { id: `dlq:${b.topic}:${b.partition}:${m.offset}`, topic: deadLetterTopic(cfg), ...msg };
                    }),
                  );
                  await queueOutbox(tx, this.dataset, dlq);
                  await markAvailabilityPending(tx, this.dataset, { staged });
                },
              );
              marks.commit = Date.now() - t0;
              this.storedOffsets = fence;
              this.dirty = true;
              this.adaptCommitLimit(marks.commit);
              this.opts.onCommit?.({ kind: 'batch', ms: marks.commit, events: real.reduce((a, b) => a + b.write.events.length + b.write.quarantine.length, 0) });
              toKafka.push(...real.map((b) => ({ topic: b.topic, partition: b.partition, offset: BigInt(b.write.offsets[0].offset) })));
              // The batch is committed: a failure from here on must not fail it (it would be
              // redelivered, fenced, and never counted). What is left stays pending for later.
              // Under load (more slices queued) the drain runs at most once per
              // AVAILABILITY_MAX_DELAY_MS: the pending products of many commits, deduplicated,
              // are recomputed together instead of after every commit.
              if (this.queue.length === 0 || Date.now() - this.drainedAt >= AVAILABILITY_MAX_DELAY_MS) {
                await this.drainAfterCommit(c);
              } else {
                this.drainOwed = true;
              }
              marks.after = Date.now() - t0;
            }
            return built.map((b) =>
              b === null || b === 'gap'
                ? b
                : { rows: b.write.events.length, quarantined: b.write.quarantine.length, timestamps: b.timestamps },
            );
          });
          logger.debug('stream: group commit', { partitions: items.length, events, ms: Date.now() - t0, ...marks });
          // After the file is closed again: a broker round trip does not hold the warehouse.
          await this.commitKafka(toKafka);
          items.forEach((it, i) => {
            const r = results[i];
            if (r === 'gap') {
              // Only when the stored offset is below the slice: fetch again from there.
              const from = this.positions.get(tpKey(it.topic, it.partition));
              logger.warn('stream: batch starts after the stored offset, refetching', { topic: it.topic, partition: it.partition });
              if (from !== undefined) this.consumer?.seek({ topic: it.topic, partition: it.partition, offset: from.toString() });
            }
            it.resolve(r);
          });
        } catch (e) {
          for (const it of items) it.reject(e);
        }
        // A long catch-up keeps this loop busy: mirror and snapshot still get their turn.
        if (duck.holds && !this.stopping && this.housekeepingDue()) await duck.withConnection((c) => this.housekeep(c));
      }
      if (this.drainOwed) await duck.withConnection((c) => this.drainAfterCommit(c));
    } finally {
      this.flushing = false;
    }
  }

  /**
   * The time bound of a commit: one that took over a fifth of the session timeout halves the
   * events of the next ones (down to 100); quick ones let it grow back to STREAM_COMMIT_MAX_EVENTS.
   */
  private adaptCommitLimit(ms: number): void {
    const target = this.opts.cfg.sessionTimeoutMs / 5;
    const before = this.commitLimit;
    if (ms > target) this.commitLimit = Math.max(100, Math.floor(this.commitLimit / 2));
    else if (ms < target / 4) this.commitLimit = Math.min(this.opts.cfg.commitMaxEvents, this.commitLimit * 2);
    if (this.commitLimit < before) logger.info('stream: long commit, fewer events per commit', { ms, events: this.commitLimit });
  }

  /** True when every partition in `ends` ("topic:partition" -> high watermark) is consumed. */
  caughtUp(ends: ReadonlyMap<string, bigint>): boolean {
    for (const [k, high] of ends) if ((this.positions.get(k) ?? 0n) < high) return false;
    return true;
  }

  /** Waits until caught up with `ends`; throws on a consumer crash or after `timeoutMs`. */
  async waitCaughtUp(ends: ReadonlyMap<string, bigint>, timeoutMs = 600000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let refreshAt = Date.now() + 1000;
    while (!this.caughtUp(ends)) {
      if (this.crashed) throw this.crashed;
      if (Date.now() > deadline) throw new Error(`stream consumer did not catch up within ${Math.round(timeoutMs / 1000)} s`);
      if (Date.now() >= refreshAt) {
        await this.refreshOtherPositions(ends);
        refreshAt = Date.now() + 1000;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Partitions held by another member of the group advance in the warehouse, not here: read
   * their stored offsets (otherwise two members that each finished their own partitions would
   * wait for each other for ever). Skipped while this process is writing the file.
   */
  private async refreshOtherPositions(ends: ReadonlyMap<string, bigint>): Promise<void> {
    const behind = [...ends].filter(([k, high]) => !this.assigned.has(k) && (this.positions.get(k) ?? 0n) < high);
    if (behind.length === 0 || this.flushing) return;
    await this.inFlushSlot(async () => {
      try {
        for (const o of await this.opts.warehouse.readOffsets(this.opts.cfg.group, this.topics)) {
          const k = tpKey(o.topic, o.partition);
          if (!this.assigned.has(k) && (this.positions.get(k) ?? -1n) < BigInt(o.offset)) this.positions.set(k, BigInt(o.offset));
        }
      } catch (e) {
        logger.debug('stream: reading stored offsets failed', { error: (e as Error).message });
      }
    });
  }

  /**
   * Runs `work` in the flushing slot (one unit of work on the file at a time, commits included;
   * the caller has checked the slot is free), then hands the slot to the commit queue when slices
   * arrived meanwhile.
   */
  private async inFlushSlot<T>(work: () => Promise<T>): Promise<T> {
    this.flushing = true;
    try {
      return await work();
    } finally {
      this.flushing = false;
      const duck = this.duck;
      if (duck && this.queue.length > 0) {
        this.flushing = true;
        void this.flushQueue(duck);
      }
    }
  }

  /** Graceful stop: finishes the batch in hand, leaves the group, records the run per table. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  /**
   * Publishing failed with messages left (e.g. the broker went away): try again in a few
   * seconds even when no batch arrives, instead of waiting for the next commit.
   */
  private scheduleOutboxRetry(): void {
    const duck = this.duck;
    if (!duck || this.outboxRetry || this.stopping) return;
    this.outboxRetry = setTimeout(() => {
      this.outboxRetry = null;
      if (this.stopping) return;
      if (this.flushing) return this.scheduleOutboxRetry(); // the running commit publishes it
      this.inFlushSlot(() => duck.withConnection((c) => flushOutbox(c, this.dataset, this.producer!)))
        .then((r) => {
          if (r.pending) this.scheduleOutboxRetry();
        })
        .catch((e) => {
          logger.warn('outbox: retry failed', { error: (e as Error).message });
          this.scheduleOutboxRetry();
        });
    }, 2000);
  }

  private async doStop(): Promise<void> {
    if (this.outboxRetry) clearTimeout(this.outboxRetry);
    if (this.housekeeping) clearTimeout(this.housekeeping);
    const duck = this.duck;
    if (duck?.holds && !duck.isOpen) {
      // Stopped as a standby: it never held the file nor joined the group.
      logger.info('stream: stopped (standby)');
      return;
    }
    // The group's offsets for monitoring: where the warehouse is, for the partitions held now.
    await this.commitKafka([...this.positions].map(([k, offset]) => {
      const i = k.lastIndexOf(':');
      return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset };
    }));
    await this.consumer?.disconnect().catch((e) => logger.warn('stream: consumer disconnect', { error: (e as Error).message }));
    // The slices already handed to the group commit are committed (and counted) before the run is recorded.
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    // A last attempt for what a failed publish left queued (bounded: the next start publishes it otherwise).
    if (duck && this.producer) {
      for (let i = 0; i < 100 && this.flushing; i++) await new Promise((r) => setTimeout(r, 100));
      const last = duck.withConnection((c) => flushOutbox(c, this.dataset, this.producer!)).catch(() => undefined);
      await Promise.race([last, new Promise((r) => setTimeout(r, 10000).unref())]);
    }
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
    // The last snapshot for dbt: everything this process committed, its runs included.
    if (duck?.holds) {
      await duck
        .withConnection((c) => this.snapshot(c))
        .catch((e) => logger.warn('stream: final snapshot failed', { error: (e as Error).message }));
    }
    logger.info('stream: stopped', { stats: this.stats });
  }
}
