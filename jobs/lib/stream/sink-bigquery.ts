/**
 * The BigQuery sink: one transaction per slice, through the adapter's applyStreamBatch (rows +
 * quarantined events + offsets, fenced by the group's stored offsets). Dead letters are sent
 * before the write. Several consumer processes may share the group (scalesOut), each writing
 * its own partitions; a member that lost a partition is fenced by the stored offsets (its
 * transaction changes nothing once they are past its first event; it then reads on from them). Vendor availability is kept by
 * ONE of the processes, the availability role (availability-role.ts), in a local state store.
 */
import { logger } from '../log';
import { streamEventId, type Row, type RunRecord, type StreamOffset, type StreamWrite, type Warehouse } from '../warehouse/types';
import { AvailabilityRole, roleTargets } from './availability-role';
import type { AvailabilityWarehouse } from './availability-store';
import { createKafka } from './kafka';
import { deadLetterTopic } from './config';
import { decodeEvent } from './events';
import type { PutResult, SinkContext, SinkFactory, StreamSink } from './sink';
import { deadLetterMessage, eachSlice, firstFresh, sortEvents, type DecodedSlice, type EachSlice } from './slices';

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class BigQuerySink implements StreamSink {
  readonly groupCommit = false;
  readonly scalesOut = true;
  readonly standby = false;
  readonly decode = decodeEvent;
  /** Next offset per partition known to be stored (open, then each put): events below are skipped. */
  private readonly stored = new Map<string, bigint>();
  /** Vendor availability, kept by the one process that holds this role. */
  readonly availability: AvailabilityRole;

  constructor(
    private readonly wh: StreamWarehouse,
    private readonly ctx: SinkContext,
  ) {
    this.availability = new AvailabilityRole(wh, ctx, createKafka(ctx.cfg, 'store-etl-availability'), roleTargets(ctx));
  }

  get location(): string {
    return this.wh.location;
  }

  async claim(): Promise<void> {}

  async start(): Promise<void> {
    await this.wh.ensureSchema();
    // Joins the role's group: the process that gets the role loads the store from BigQuery.
    await this.availability.start();
  }

  async open(): Promise<StreamOffset[]> {
    const offsets = await this.wh.readOffsets(this.ctx.cfg.group, this.ctx.topics);
    for (const o of offsets) this.stored.set(tpKey(o.topic, o.partition), BigInt(o.offset));
    return offsets;
  }

  async put(slices: readonly DecodedSlice<unknown>[], _more: boolean): Promise<{ results: PutResult[]; commitMs: number | null }> {
    const results: PutResult[] = [];
    for (const slice of slices) results.push(await this.putOne(eachSlice(slice as DecodedSlice<Row>)));
    return { results, commitMs: null };
  }

  private async putOne(slice: EachSlice<Row>): Promise<PutResult> {
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
      // `from`: fenced whole when another member stored an offset past its first event.
      offsets: [{ ...b.offsets[0], from: slice.offsets[first] }],
    };
    if (b.dlq.length > 0) {
      await producer.send({ topic: deadLetterTopic(cfg), acks: -1, messages: b.dlq.map((d) => deadLetterMessage(slice, d)) });
    }
    const next = BigInt(b.offsets[0].offset);
    const t0 = Date.now();
    const applied = await this.wh.applyStreamBatch(write);
    // One transaction of the consumer, reported as the DuckDB sink reports its group commit.
    this.ctx.onCommit?.({ kind: 'batch', ms: Date.now() - t0, events: b.events.length + b.quarantine.length });
    if (!applied) {
      // Fenced: nothing applied, nothing counted. Past the batch (a retried transaction, a
      // redelivery), nothing is left to do; inside it (another member applied a part), the rest
      // is fetched again from the stored offset.
      const now = (await this.wh.readOffsets(cfg.group, [topic])).find((o) => o.partition === partition);
      const at = now ? BigInt(now.offset) : next;
      this.stored.set(tpKey(topic, partition), at);
      return at < next ? { gap: at } : null;
    }
    this.stored.set(tpKey(topic, partition), next);
    return { rows: b.events.length, quarantined: b.quarantine.length, timestamps: b.timestamps };
  }

  async flush(): Promise<void> {}

  async stop(runs: readonly RunRecord[]): Promise<void> {
    // The holder's last drain (bounded); the role moves to another process.
    await this.availability.stop();
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
