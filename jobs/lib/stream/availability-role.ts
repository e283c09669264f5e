/**
 * The availability role of the BigQuery consumers: with N consumer processes in one group, each
 * writes only its own partitions, but availability needs every cart and listing. So every process
 * also joins a second group, `<TOPIC_GROUP>.availability`, on the same topics, whose assigner
 * (sole-owner.ts) gives every partition to ONE member: that member keeps the availability state
 * store (availability-store.ts) and feeds it every event of every partition; the others fetch
 * nothing. Kafka's membership elects it, and moves the role when it dies or leaves; the new holder
 * loads the store from one snapshot of BigQuery (tables + the main group's stored offsets) and
 * reads on from those offsets.
 *
 * The store is fed from the topics, but never runs ahead of BigQuery: an event goes in once the
 * main group's committed offset in Kafka has passed it (a member commits there right after its
 * BigQuery transaction). So the availability rows it merges were computed from rows BigQuery
 * holds, and a next holder, loading a later snapshot, only moves forward from them (rows computed
 * ahead of the tables made a next holder publish a transition back and forth). This group commits
 * no offsets: the store's own positions (from the snapshot, then advanced by each batch) are
 * where it reads on, after every join.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { logger } from '../log';
import { AvailabilityStore, type AvailabilityWarehouse } from './availability-store';
import { sourceOf, streamDestinations, topicFor } from './config';
import { decodeEvent } from './events';
import { decodeSlice, tpKey, type TopicTarget } from './group';
import { kafkaRetry } from './kafka';
import type { SinkContext } from './sink';
import { firstFresh, type DecodedSlice } from './slices';
import { soleOwnerAssigner } from './sole-owner';
import type { DuckStreamEvent } from '../warehouse/duckdb/stream-write';

/** How long a stop waits for the store to reach what the group stored in BigQuery. */
const STOP_CATCH_UP_MS = 15000;
/** A drain put off while batches followed one another runs after this long without one. */
const IDLE_DRAIN_MS = 1000;
/** How often the main group's committed offsets are read, and how long a partition waits for them. */
const COMMITTED_POLL_MS = 200;
/** A failed load of the store is tried again after this long. */
const RELOAD_AFTER_MS = 5000;

export const availabilityGroup = (group: string): string => `${group}.availability`;

export class AvailabilityRole {
  private consumer: Consumer | null = null;
  /** The store while this process holds the role, else null. */
  private store: AvailabilityStore | null = null;
  /** The role group's partitions assigned to this process (all of them, or none). */
  private partitions: { topic: string; partition: number }[] = [];
  private loadFailedAt = 0;
  /** The join's handling (load or seeks): batches wait for it. */
  private ready: Promise<void> = Promise.resolve();
  private idleTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly admin: Admin;
  /** The main group's committed offsets ("topic:partition" -> next), read at most every COMMITTED_POLL_MS. */
  private readonly committed = new Map<string, bigint>();
  private committedReadAt = 0;

  constructor(
    private readonly wh: AvailabilityWarehouse,
    private readonly ctx: SinkContext,
    private readonly kafka: Kafka,
    private readonly targets: ReadonlyMap<string, TopicTarget>,
  ) {
    this.admin = kafka.admin();
  }

  /** This process holds the role now (its store is loaded). */
  get holds(): boolean {
    return this.store !== null;
  }

  async start(): Promise<void> {
    const { cfg } = this.ctx;
    const consumer = this.kafka.consumer({
      groupId: availabilityGroup(cfg.group),
      sessionTimeout: cfg.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(cfg.sessionTimeoutMs / 5)),
      rebalanceTimeout: Math.max(cfg.sessionTimeoutMs * 2, 20000),
      maxBytesPerPartition: cfg.maxBatchBytes,
      maxWaitTimeInMs: 100,
      retry: kafkaRetry(10),
      partitionAssigners: [soleOwnerAssigner(() => this.store !== null)],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.partitions = Object.entries(e.payload.memberAssignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      this.take();
    });
    await this.admin.connect();
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.targets.keys()], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: (p) => this.eachBatch(p) });
  }

  /** After a join (or a failed load, again): take the role (load), keep it (seek), or drop it. */
  private take(): void {
    const ready = this.joined();
    ready.catch((err) => {
      this.loadFailedAt = Date.now();
      logger.error('stream: availability role could not take over; trying again', { error: (err as Error).message });
    });
    this.ready = ready.catch(() => undefined);
  }

  private async joined(): Promise<void> {
    const partitions = this.partitions;
    if (partitions.length === 0) return this.drop();
    if (this.stopping) return;
    if (!this.store) {
      const store = new AvailabilityStore(this.wh, this.ctx);
      try {
        await store.load();
      } catch (e) {
        await store.close().catch(() => undefined);
        throw e;
      }
      this.store = store;
      logger.info('stream: this process keeps vendor availability', { group: availabilityGroup(this.ctx.cfg.group) });
    }
    // Resume where the store ends (a partition the group never stored: from the beginning).
    for (const { topic, partition } of partitions) {
      const offset = this.store.positions.get(tpKey(topic, partition)) ?? 0n;
      this.consumer?.seek({ topic, partition, offset: offset.toString() });
    }
  }

  private async drop(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (!this.store) return;
    const store = this.store;
    this.store = null;
    await store.close();
    logger.info('stream: vendor availability moved to another consumer process');
  }

  private async eachBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await this.ready;
    // Holding the role's partitions without a store (its load failed): load again, now and then.
    if (!this.store && this.partitions.length > 0 && !this.stopping && Date.now() - this.loadFailedAt > RELOAD_AFTER_MS) {
      this.take();
      await this.ready;
    }
    const store = this.store;
    const target = this.targets.get(batch.topic);
    if (!store || !target || batch.messages.length === 0 || !isRunning() || isStale()) return;
    const { topic, partition } = batch;
    const k = tpKey(topic, partition);
    const at = store.positions.get(k) ?? 0n;
    if (BigInt(batch.messages[0].offset) > at) {
      // Fetched past the store's position (a seek not yet in effect): read again from there.
      this.consumer?.seek({ topic, partition, offset: at.toString() });
      return;
    }
    // Only what a member committed to BigQuery (and then to the group) goes in.
    const upTo = await this.committedOf(k);
    const messages = batch.messages.filter((m) => BigInt(m.offset) < upTo);
    const slice = messages.length > 0 ? decodeSlice(topic, partition, target, messages, { decode: decodeEvent }) : null;
    if (slice && firstFresh(slice.offsets, at) < slice.offsets.length) {
      await store.apply(this.ctx.runId, slice as DecodedSlice<DuckStreamEvent>);
      await store.committed(batch.offsetLag() !== '0');
      this.scheduleIdleDrain();
    }
    // The rest is not committed yet: this partition is read again from the store's position a
    // little later (paused meanwhile; the other partitions go on).
    if (messages.length < batch.messages.length) this.later(topic, partition, store.positions.get(k) ?? at);
    await heartbeat().catch(() => undefined);
  }

  private later(topic: string, partition: number, offset: bigint): void {
    const tp = [{ topic, partitions: [partition] }];
    try {
      this.consumer?.seek({ topic, partition, offset: offset.toString() });
      this.consumer?.pause(tp);
    } catch (e) {
      logger.debug('stream: availability role could not pause a partition', { error: (e as Error).message });
    }
    setTimeout(() => {
      try {
        this.consumer?.resume(tp);
      } catch {
        // left the group meanwhile
      }
    }, COMMITTED_POLL_MS).unref();
  }

  /** The main group's committed offset of a partition (0 when none). */
  private async committedOf(k: string): Promise<bigint> {
    if (Date.now() - this.committedReadAt >= COMMITTED_POLL_MS) {
      this.committedReadAt = Date.now();
      const topics = [...this.targets.keys()];
      try {
        for (const t of await this.admin.fetchOffsets({ groupId: this.ctx.cfg.group, topics })) {
          for (const p of t.partitions) if (Number(p.offset) >= 0) this.committed.set(tpKey(t.topic, p.partition), BigInt(p.offset));
        }
      } catch (e) {
        logger.debug('stream: reading the group offsets failed', { error: (e as Error).message });
      }
    }
    return this.committed.get(k) ?? 0n;
  }

  /** Recomputes and publishes what is pending now, and merges it (the holder only; never throws). */
  async drain(): Promise<void> {
    await this.store?.drain();
  }

  /** Next offset per "topic:partition" the store has taken in (empty: not the holder). */
  get positions(): ReadonlyMap<string, bigint> {
    return this.store?.positions ?? new Map();
  }

  /** A drain put off under load runs once the batches pause. */
  private scheduleIdleDrain(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.store?.flush(), IDLE_DRAIN_MS);
    this.idleTimer.unref();
  }

  /**
   * The holder first reads on up to the offsets the group stored in BigQuery (bounded), drains
   * and publishes; then the process leaves the role's group (the role moves to another member).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.ready;
    if (this.store) {
      const { cfg, topics } = this.ctx;
      const stored = await this.wh.readOffsets(cfg.group, topics).catch(() => []);
      const deadline = Date.now() + STOP_CATCH_UP_MS;
      const behind = () => stored.some((o) => (this.store?.positions.get(tpKey(o.topic, o.partition)) ?? 0n) < BigInt(o.offset));
      while (this.store && behind() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (behind()) logger.warn('stream: availability store did not reach the stored offsets before stop; the next holder recomputes');
      await this.store?.drain();
    }
    await this.consumer?.disconnect().catch((e) => logger.warn('stream: availability role disconnect', { error: (e as Error).message }));
    await this.admin.disconnect().catch(() => undefined);
    await this.drop();
  }
}

/** The topics the role reads (the consumer's), each with its destination. */
export function roleTargets(ctx: Pick<SinkContext, 'cfg' | 'catalog' | 'topics'>): Map<string, TopicTarget> {
  const byTopic = new Map<string, TopicTarget>();
  for (const dest of streamDestinations(ctx.catalog)) {
    const source = sourceOf(ctx.catalog, dest);
    const topic = topicFor(ctx.cfg, source.name);
    if (ctx.topics.includes(topic)) byTopic.set(topic, { dest, source });
  }
  return byTopic;
}
