/**
 * The stream consumer: one member of group TOPIC_GROUP reading the topics of the chosen stream
 * destinations and writing them through a sink, exactly once. It puts the parts together:
 * group.ts (Kafka: group, fetch, heartbeats, offset commits), scheduler.ts (group commit,
 * back-pressure), a sink per warehouse (sink.ts: DuckDB, BigQuery), and keeps the positions, the
 * stats and the run records.
 *
 * Exactly once: each commit stores the next offset of its partitions in the warehouse in the
 * same transaction as the rows, and the sink skips events below the stored offsets (a fence
 * against redelivery after a kill, a rebalance or a zombie member); on joining the group the
 * consumer seeks to them, so nothing is skipped either. Kafka's committed offsets are only a
 * hint (committed after the warehouse commit). Poison events are quarantined with the reason
 * and copied to the dead-letter topic; they never stop the consumer.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { Catalog, StreamDestination } from '../catalog-types';
import { logger } from '../log';
import type { RunRecord } from '../warehouse/types';
import { availabilityTopic, deadLetterTopic, sourceOf, topicFor, type StreamConfig } from './config';
import type { FieldDrift } from '../drift';
import { streamDrift } from './events';
import { GroupMember, tpKey, type PartitionOffset, type TopicTarget } from './group';
import { createKafka, ensureTopics, idempotentProducer, waitForBroker } from './kafka';
import { CommitScheduler } from './scheduler';
import type { CommitInfo, PutResult, SinkFactory, StreamSink } from './sink';
import type { DecodedSlice } from './slices';

export type { CommitInfo } from './sink';

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
  /** When the events were fetched (decoded) (ms). */
  readonly fetchedAt: number;
}

export interface TableStats {
  rows: number;
  quarantined: number;
  batches: number;
}

export interface StreamConsumerOptions {
  readonly cfg: StreamConfig;
  /** The store's catalog (jobs/catalog.ts), handed down: the stream layer knows no concrete store. */
  readonly catalog: Catalog;
  readonly tables: readonly StreamDestination[];
  /** The warehouse side, e.g. duckDbSink(streamDuckDbWarehouse(...)) or bigQuerySink(warehouse). */
  readonly sink: SinkFactory;
  readonly onBatch?: (b: BatchInfo) => void;
  /** Called after each warehouse transaction (commit durations for tests and benchmarks). */
  readonly onCommit?: (c: CommitInfo) => void;
  readonly kafka?: Kafka;
}

export class StreamConsumer {
  readonly runId = `stream-${new Date().toISOString()}-${randomUUID().slice(0, 8)}`;
  readonly stats: Record<string, TableStats> = {};
  /** Next offset per "topic:partition" already in the warehouse. */
  readonly positions = new Map<string, bigint>();
  private readonly kafka: Kafka;
  private readonly targets = new Map<string, TopicTarget>();
  private readonly producer: Producer;
  private readonly sink: StreamSink;
  private readonly scheduler: CommitScheduler;
  private readonly group: GroupMember;
  private readonly startedAt = new Date();
  private stopping: Promise<void> | null = null;

  constructor(private readonly opts: StreamConsumerOptions) {
    const { cfg } = opts;
    this.kafka = opts.kafka ?? createKafka(cfg, 'store-etl-consumer');
    for (const dest of opts.tables) {
      const source = sourceOf(opts.catalog, dest);
      this.targets.set(topicFor(cfg, source.name), { dest, source });
      this.stats[dest.name] = { rows: 0, quarantined: 0, batches: 0 };
    }
    this.producer = idempotentProducer(this.kafka);
    this.sink = opts.sink({
      cfg,
      catalog: opts.catalog,
      runId: this.runId,
      topics: this.topics,
      dataset: opts.tables[0]?.dataset ?? 'store',
      producer: this.producer,
      onCommit: opts.onCommit,
    });
    this.scheduler = new CommitScheduler(this.sink, cfg, {
      settled: (slice, r) => this.settled(slice, r),
      failed: (slice, e) => this.commitFailed(slice, e),
      committed: async (offsets) => void (await this.group.commit(offsets)),
    });
    this.group = new GroupMember({
      kafka: this.kafka,
      cfg,
      targets: this.targets,
      scheduler: this.scheduler,
      decode: (dest, source, value, now) => this.sink.decode(dest, source, value, now),
      decodeLines: this.sink.decodeLines,
      onAssigned: (a) => this.onAssigned(a),
      soleMember: !this.sink.scalesOut,
    });
  }

  get topics(): string[] {
    return [...this.targets.keys()];
  }

  get failure(): Error | null {
    return this.group.crashed;
  }

  /** The partitions ("topic:partition") this member holds now. */
  get assigned(): ReadonlySet<string> {
    return this.group.assigned;
  }

  /** When this member first joined the group (ms): benchmarks measure throughput from here. */
  get joinedAt(): number | null {
    return this.group.joinedAt;
  }

  async start(): Promise<void> {
    const { cfg } = this.opts;
    const cancelled = () => this.stopping !== null;
    await this.sink.claim(cancelled);
    await waitForBroker(cfg, cancelled);
    await ensureTopics(this.kafka, cfg, [...this.topics, deadLetterTopic(cfg), availabilityTopic(cfg)]);
    await this.producer.connect();
    await this.sink.start();
    await this.loadPositions();
    await this.group.join();
    logger.info('stream: consuming', { group: cfg.group, topics: this.topics, warehouse: this.sink.location });
  }

  private async loadPositions(): Promise<void> {
    for (const o of await this.sink.open()) this.positions.set(tpKey(o.topic, o.partition), BigInt(o.offset));
  }

  /**
   * After a (re)join: read the warehouse offsets again, seek the assigned partitions to them and
   * commit them to the group (an evicted member's last commits may not have reached Kafka).
   */
  private async onAssigned(assignment: Record<string, number[]>): Promise<void> {
    await this.loadPositions();
    const mine: PartitionOffset[] = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const pos = this.positions.get(tpKey(topic, partition));
        if (pos === undefined || this.stopping) continue;
        mine.push({ topic, partition, offset: pos });
        this.group.seek(topic, partition, pos);
      }
    }
    await this.group.commit(mine);
  }

  /** A slice's put finished: positions, stats and the onBatch report; a gap is fetched again. */
  private settled(slice: DecodedSlice<unknown>, r: PutResult): void {
    const { topic, partition, dest } = slice;
    const destination = dest.name;
    const key = tpKey(topic, partition);
    if (r && 'gap' in r) {
      // The stored offset is below the slice: fetch again from there.
      this.positions.set(key, r.gap);
      logger.warn('stream: batch starts after the stored offset, refetching', { topic, partition });
      this.group.seek(topic, partition, r.gap);
      return;
    }
    const committedAt = Date.now();
    const next = BigInt(slice.offsets[slice.offsets.length - 1]) + 1n;
    if ((this.positions.get(key) ?? -1n) < next) this.positions.set(key, next);
    if (!r) return;
    const s = this.stats[destination];
    s.rows += r.rows;
    s.quarantined += r.quarantined;
    s.batches += 1;
    if (r.quarantined > 0) logger.warn('stream: poison events quarantined', { destination, events: r.quarantined, topic, partition });
    logger.debug('stream: batch applied', { destination, topic, partition, rows: r.rows, next: next.toString() });
    this.opts.onBatch?.({ destination, topic, partition, rows: r.rows, quarantined: r.quarantined, eventTimestamps: r.timestamps, committedAt, fetchedAt: slice.fetchedAt });
  }

  /**
   * A group commit failed (nothing of it was written): fetch the partition again from its
   * stored position; slices of it queued meanwhile start past that position and are refetched
   * the same way (a gap).
   */
  private commitFailed(slice: DecodedSlice<unknown>, e: unknown): void {
    const { topic, partition } = slice;
    const from = this.positions.get(tpKey(topic, partition)) ?? BigInt(slice.offsets[0]);
    logger.error('stream: warehouse commit failed; fetching the partition again from its stored offset', {
      topic,
      partition,
      offset: from.toString(),
      error: (e as Error).message,
    });
    if (!this.stopping) this.group.seek(topic, partition, from);
  }

  /** True when every partition in `ends` ("topic:partition" -> high watermark) is consumed. */
  caughtUp(ends: ReadonlyMap<string, bigint>): boolean {
    for (const [k, high] of ends) if ((this.positions.get(k) ?? 0n) < high) return false;
    return true;
  }

  /**
   * Waits until caught up with `ends` and nothing handed to the sink is still settling; throws on
   * a consumer crash or after `timeoutMs`. Positions read back from the warehouse (on a
   * rebalance, or another member's partitions) can be ahead of this member's own last commit
   * while it settles: waiting for it keeps the run's stats whole when this returns.
   */
  async waitCaughtUp(ends: ReadonlyMap<string, bigint>, timeoutMs = 600000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let refreshAt = Date.now() + 1000;
    while (!this.caughtUp(ends) || this.scheduler.busy) {
      if (this.group.crashed) throw this.group.crashed;
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
   * wait for each other for ever).
   */
  private async refreshOtherPositions(ends: ReadonlyMap<string, bigint>): Promise<void> {
    const assigned = this.group.assigned;
    const behind = [...ends].filter(([k, high]) => !assigned.has(k) && (this.positions.get(k) ?? 0n) < high);
    if (behind.length === 0) return;
    try {
      for (const o of await this.sink.open()) {
        const k = tpKey(o.topic, o.partition);
        if (!assigned.has(k) && (this.positions.get(k) ?? -1n) < BigInt(o.offset)) this.positions.set(k, BigInt(o.offset));
      }
    } catch (e) {
      logger.debug('stream: reading stored offsets failed', { error: (e as Error).message });
    }
  }

  /** Graceful stop: finishes the batch in hand, leaves the group, records the run per table. */
  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    if (this.sink.standby) {
      // Stopped as a standby: it never held the file nor joined the group.
      logger.info('stream: stopped (standby)');
      return;
    }
    // Still a member while the commits in flight finish: each commits its offsets to the group
    // (a member that left cannot commit). No new fetch is handed over meanwhile.
    this.group.stopFetching();
    // The slices already handed to the group commit are committed (and counted) before the run is recorded.
    await this.scheduler.idle();
    // The group's offsets for monitoring, once more before leaving: the warehouse's, for the
    // partitions held now (a commit refused during a rebalance is repaired here).
    await this.loadPositions().catch((e) => logger.warn('stream: reading stored offsets at stop failed', { error: (e as Error).message }));
    const committed = await this.group.commit(
      [...this.positions].map(([k, offset]) => {
        const i = k.lastIndexOf(':');
        return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset };
      }),
    );
    if (!committed) logger.warn('stream: offsets not committed to the Kafka group at stop; the next start commits them');
    await this.group.leave();
    await this.sink.stop(this.runs());
    await this.producer.disconnect().catch(() => undefined);
    logger.info('stream: stopped', { stats: this.stats });
  }

  /** Schema drift per field seen by this process, per destination (status output, docs/schema-contracts.md). */
  drift(): Record<string, FieldDrift[]> {
    return Object.fromEntries(this.opts.tables.map((dest) => [dest.name, streamDrift(dest, sourceOf(this.opts.catalog, dest))]));
  }

  /** One run per table that applied something. */
  private runs(): RunRecord[] {
    const endedAt = new Date();
    const crashed = this.group.crashed;
    return this.opts.tables
      .filter((dest) => this.stats[dest.name].batches > 0)
      .map((dest) => {
        const s = this.stats[dest.name];
        return {
          runId: this.runId,
          destination: dest.name,
          mode: 'stream' as const,
          startedAt: this.startedAt,
          endedAt,
          rowsIn: s.rows + s.quarantined,
          rowsLoaded: s.rows,
          rowsQuarantined: s.quarantined,
          rowsOut: s.rows,
          status: crashed ? ('failed' as const) : ('success' as const),
          error: crashed?.message ?? null,
          // Schema drift per field this process saw (docs/schema-contracts.md): in _etl_runs.report.
          report: JSON.stringify({ batches: s.batches, drift: streamDrift(dest, sourceOf(this.opts.catalog, dest)) }),
        };
      });
  }
}
