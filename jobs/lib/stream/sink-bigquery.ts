/**
 * The BigQuery sink: one transaction per slice, through the adapter's applyStreamBatch (rows +
 * quarantined events + offsets, fenced by the group's stored offsets). Dead letters are sent
 * before the write. Vendor availability is kept by a local state store (availability-store.ts):
 * each committed slice goes into it, and its drain publishes the transitions and merges the
 * changed rows into BigQuery.
 */
import { logger } from '../log';
import { streamEventId, type Row, type RunRecord, type StreamOffset, type StreamWrite, type Warehouse } from '../warehouse/types';
import { AvailabilityStore, type AvailabilityWarehouse } from './availability-store';
import { deadLetterTopic } from './config';
import { decodeEvent } from './events';
import type { PutResult, SinkContext, SinkFactory, StreamSink } from './sink';
import { deadLetterMessage, firstFresh, sortEvents, type DecodedSlice } from './slices';

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class BigQuerySink implements StreamSink {
  readonly groupCommit = false;
  readonly standby = false;
  readonly decode = decodeEvent;
  /** Next offset per partition known to be stored (open, then each put): events below are skipped. */
  private readonly stored = new Map<string, bigint>();
  private readonly availability: AvailabilityStore;

  constructor(
    private readonly wh: StreamWarehouse,
    private readonly ctx: SinkContext,
  ) {
    this.availability = new AvailabilityStore(wh, ctx);
  }

  get location(): string {
    return this.wh.location;
  }

  async claim(): Promise<void> {}

  async start(): Promise<void> {
    await this.wh.ensureSchema();
    // Availability's inputs from BigQuery; every product recomputed (what a kill left unpublished goes out).
    await this.availability.load();
  }

  async open(): Promise<StreamOffset[]> {
    const offsets = await this.wh.readOffsets(this.ctx.cfg.group, this.ctx.topics);
    for (const o of offsets) this.stored.set(tpKey(o.topic, o.partition), BigInt(o.offset));
    return offsets;
  }

  async put(slices: readonly DecodedSlice<unknown>[], more: boolean): Promise<{ results: PutResult[]; commitMs: number | null }> {
    const results: PutResult[] = [];
    for (const slice of slices) results.push(await this.putOne(slice as DecodedSlice<Row>));
    // The slices are committed: availability never fails them (what fails stays pending).
    await this.availability.committed(more);
    return { results, commitMs: null };
  }

  private async putOne(slice: DecodedSlice<Row>): Promise<PutResult> {
    const { cfg, producer } = this.ctx;
    const { topic, partition } = slice;
    const first = firstFresh(slice.offsets, this.stored.get(tpKey(topic, partition)));
    if (first === slice.offsets.length) return null;
    const b = sortEvents(this.ctx.runId, slice, first);
    // Each row with a stable id (its insertId).
    const eventIds: string[] = [];
    for (let i = first; i < slice.offsets.length; i++) {
      if (slice.decoded[i].ok) eventIds.push(streamEventId(topic, partition, slice.offsets[i]));
    }
    const write: StreamWrite = {
      destination: slice.dest,
      consumerGroup: cfg.group,
      upserts: b.events,
      eventIds,
      quarantine: b.quarantine,
      offsets: b.offsets,
    };
    if (b.dlq.length > 0) {
      await producer.send({ topic: deadLetterTopic(cfg), acks: -1, messages: b.dlq.map((d) => deadLetterMessage(slice, d)) });
    }
    const t0 = Date.now();
    const applied = await this.wh.applyStreamBatch(write);
    this.stored.set(tpKey(topic, partition), BigInt(b.offsets[0].offset));
    // One transaction of the consumer, reported as the DuckDB sink reports its group commit.
    this.ctx.onCommit?.({ kind: 'batch', ms: Date.now() - t0, events: b.events.length + b.quarantine.length });
    // In BigQuery now (applied, or by an earlier attempt of a retried transaction): into the
    // state store too, which fences by its own offsets.
    await this.availability.apply(this.ctx.runId, slice).catch((e) =>
      logger.error('stream: availability state store could not take a committed slice', { error: (e as Error).message }),
    );
    // Fenced (the group's stored offset was already past it): nothing applied, nothing counted.
    if (!applied) return null;
    return { rows: b.events.length, quarantined: b.quarantine.length, timestamps: b.timestamps };
  }

  flush(): Promise<void> {
    return this.availability.flush();
  }

  async stop(runs: readonly RunRecord[]): Promise<void> {
    // The last drain, bounded: the next start recomputes and publishes what is left.
    await Promise.race([this.availability.drain(), new Promise((r) => setTimeout(r, 10000).unref())]);
    await this.availability.close();
    for (const run of runs) {
      await this.wh.recordRun(run).catch((e) => logger.warn('stream: could not record the run', { error: (e as Error).message }));
    }
  }
}

/** A warehouse taking one transaction per slice that can also hold availability (BigQuery). */
export type StreamWarehouse = Warehouse & AvailabilityWarehouse;

/** The sink of a warehouse taking one transaction per slice (BigQuery). */
export const bigQuerySink =
  (wh: StreamWarehouse): SinkFactory =>
  (ctx) =>
    new BigQuerySink(wh, ctx);
