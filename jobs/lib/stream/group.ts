/**
 * The consumer group member: joins TOPIC_GROUP, fetches (eachBatch), heartbeats while fetched
 * slices wait for their commits, seeks, and commits offsets to the group (for monitoring: the
 * warehouse's stored offsets are the truth). A fetched batch is cut into slices of the commit
 * size, decoded, and handed to the commit scheduler.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { SourceTable, StreamDestination } from '../catalog-types';
import { logger } from '../log';
import type { StreamConfig } from './config';
import type { Decoded } from './events';
import { kafkaRetry } from './kafka';
import { soleOwnerAssigner } from './sole-owner';
import type { CommitScheduler } from './scheduler';
import type { DecodedSlice, RawMessage } from './slices';

export const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * How much the group fetches at a time: a partition's STREAM_MAX_BATCH_BYTES, four partitions'
 * worth per fetch, waiting at most 100 ms for more. kafkajs decodes a whole fetch response in one
 * go, so its size bounds how long a finished warehouse commit can wait to be seen (a 4 MB fetch
 * held the JavaScript thread up to 200 ms at full speed, 1 MB mostly 20-45 ms). bench:stream's client
 * floor reads with these too.
 */
export const fetchSettings = (cfg: StreamConfig) => ({
  maxBytesPerPartition: cfg.maxBatchBytes,
  maxBytes: cfg.maxBatchBytes * 4,
  maxWaitTimeInMs: 100,
});

export interface TopicTarget {
  readonly dest: StreamDestination;
  readonly source: SourceTable;
}

export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
}

export interface GroupOptions {
  readonly kafka: Kafka;
  readonly cfg: StreamConfig;
  readonly targets: ReadonlyMap<string, TopicTarget>;
  readonly scheduler: CommitScheduler;
  readonly decode: (dest: StreamDestination, source: SourceTable, value: Buffer | null, now: Date) => Decoded<unknown>;
  /** Tried first when given: a slice accepted whole, as lines (StreamSink.decodeLines). */
  readonly decodeLines?: (dest: StreamDestination, source: SourceTable, values: readonly (Buffer | null)[]) => string | null;
  /** After each join, before the next batch is handled: where to resume each assigned partition. */
  readonly onAssigned: (assignment: Record<string, number[]>) => Promise<void>;
  /**
   * One member takes every partition (a DuckDB sink: one writer per stream file): a process that
   * joins while another holds them gets none and stops with an error saying so.
   */
  readonly soleMember: boolean;
}

/** A fetched part of one partition, decoded (the fetch's messages are not kept). */
export function decodeSlice(
  topic: string,
  partition: number,
  target: TopicTarget,
  messages: readonly KafkaMessage[],
  opts: Pick<GroupOptions, 'decode' | 'decodeLines'>,
): DecodedSlice<unknown> {
  const now = new Date();
  const offsets = messages.map((m) => m.offset);
  const timestamps = new Float64Array(messages.length);
  for (let i = 0; i < messages.length; i++) timestamps[i] = Number(messages[i].timestamp);
  const slice = { topic, partition, dest: target.dest, source: target.source, offsets, timestamps, fetchedAt: now.getTime() };
  const lines = opts.decodeLines?.(target.dest, target.source, messages.map((m) => m.value));
  if (lines) return { ...slice, lines };
  const decoded: Decoded<unknown>[] = new Array(messages.length);
  const rejected = new Map<number, RawMessage>();
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const d = (decoded[i] = opts.decode(target.dest, target.source, m.value, now));
    if (!d.ok) rejected.set(i, { offset: m.offset, key: m.key ?? null, value: m.value });
  }
  return { ...slice, decoded, rejected };
}

export class GroupMember {
  /** When this member first joined the group (ms): benchmarks measure throughput from here. */
  joinedAt: number | null = null;
  /** A crash kafkajs does not restart from. */
  crashed: Error | null = null;
  /** Partitions assigned to this member now ("topic:partition"): the only ones it commits to Kafka. */
  assigned = new Set<string>();
  private consumer: Consumer | null = null;
  private ready: Promise<void> = Promise.resolve();
  /** Stopping: fetched batches are no longer handed over (the member stays until leave()). */
  private fetching = true;

  constructor(private readonly opts: GroupOptions) {}

  async join(): Promise<void> {
    const { cfg, kafka } = this.opts;
    const consumer = kafka.consumer({
      groupId: cfg.group,
      sessionTimeout: cfg.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(cfg.sessionTimeoutMs / 5)),
      rebalanceTimeout: Math.max(cfg.sessionTimeoutMs * 2, 20000),
      ...fetchSettings(cfg),
      retry: kafkaRetry(10),
      ...(this.opts.soleMember ? { partitionAssigners: [soleOwnerAssigner(() => this.assigned.size > 0)] } : {}),
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.joinedAt ??= Date.now();
      this.assigned = new Set(Object.entries(e.payload.memberAssignment).flatMap(([t, ps]) => ps.map((p) => tpKey(t, p))));
      if (this.opts.soleMember && this.assigned.size === 0) {
        this.crashed = new Error(
          `another consumer process holds every partition of group '${cfg.group}': with WAREHOUSE=duckdb the group ` +
            'takes ONE consumer (one writer per stream file). Stop the other one, or use WAREHOUSE=bigquery to scale out',
        );
        logger.error(`stream: ${this.crashed.message}`);
      }
      const ready = this.opts.onAssigned(e.payload.memberAssignment).catch((err) => {
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
    await consumer.subscribe({ topics: [...this.opts.targets.keys()], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions fetched together are handed over concurrently and committed together (group commit).
      partitionsConsumedConcurrently: 32,
      eachBatch: (p) => this.eachBatch(p),
    });
  }

  /** Fetch the partition from `offset` next; skipped when the group was left (the next start seeks again). */
  seek(topic: string, partition: number, offset: bigint): void {
    try {
      this.consumer?.seek({ topic, partition, offset: offset.toString() });
    } catch (e) {
      logger.debug('stream: seek skipped', { topic, partition, error: (e as Error).message });
    }
  }

  /**
   * Commits warehouse offsets to the group, for monitoring only: partitions assigned to this
   * member; a failure (evicted, rebalancing) is logged and repaired by the next join or the stop.
   * False when it failed.
   */
  async commit(offsets: readonly PartitionOffset[]): Promise<boolean> {
    const mine = offsets.filter((o) => this.assigned.has(tpKey(o.topic, o.partition)));
    if (mine.length === 0 || !this.consumer) return true;
    try {
      await this.consumer.commitOffsets(mine.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() })));
      return true;
    } catch (e) {
      logger.debug('stream: kafka offset commit failed (the warehouse offset is authoritative)', { error: (e as Error).message });
      return false;
    }
  }

  /**
   * The first step of a stop: fetched batches are no longer handed over and the topics are
   * paused, but the member stays in the group, so the commits still in flight commit their
   * offsets to it; leave() follows once they are done.
   */
  stopFetching(): void {
    this.fetching = false;
    try {
      this.consumer?.pause([...this.opts.targets.keys()].map((topic) => ({ topic })));
    } catch (e) {
      logger.debug('stream: pause skipped', { error: (e as Error).message });
    }
  }

  async leave(): Promise<void> {
    await this.consumer?.disconnect().catch((e) => logger.warn('stream: consumer disconnect', { error: (e as Error).message }));
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    await this.ready;
    const running = () => this.fetching && isRunning() && !isStale();
    if (!running() || batch.messages.length === 0) return;
    const { topic, partition } = batch;
    const target = this.opts.targets.get(topic);
    if (!target) return;
    const scheduler = this.opts.scheduler;
    // Keep the session alive while this batch waits for its commits (kafkajs sends at most one
    // heartbeat per heartbeatInterval, however often this is called).
    const beat = setInterval(() => {
      heartbeat().catch((e) => logger.debug('stream: heartbeat failed', { error: (e as Error).message }));
    }, 500);
    try {
      for (let i = 0; i < batch.messages.length; ) {
        // A turn of the event loop before each slice: kafkajs hands out a fetch's partitions in
        // one chain of promise callbacks, and a warehouse commit's completion (a callback from
        // DuckDB's thread) waits until that chain ends: without the turn, a commit that finished
        // waited for the rest of the fetch to be decoded (up to 200 ms at full speed), and so
        // did the next commit.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (!running()) return;
        const part = batch.messages.slice(i, i + scheduler.sliceEvents);
        i += part.length;
        // Decoded now, while the commit before runs; the slice keeps numbers, not `part`: its
        // messages are freed once decoded. The stored offsets stay the truth: a failed commit
        // seeks the partition back to them, a redelivered slice is fenced.
        if (!(await scheduler.submit(decodeSlice(topic, partition, target, part, this.opts)))) return;
        resolveOffset(part[part.length - 1].offset);
        await scheduler.backPressure(running);
      }
    } finally {
      clearInterval(beat);
    }
    await heartbeat().catch(() => undefined);
  }
}
