/**
 * The DuckDB sink: group commits into the stream file. It owns the file (a second process waits
 * as a standby until the first exits), fences every commit with the offsets stored in it, writes
 * the slices' rows, quarantined events, dead-letter copies (outbox), pending availability and its
 * first step in ONE transaction (warehouse/duckdb/stream-write.ts), and leaves the rest to its
 * housekeeping.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { RunRecord, StreamOffset } from '../warehouse/types';
import type { DuckDbWarehouse } from '../warehouse/duckdb/warehouse';
import { applyStagedCommit, readOffsetsDuckDb, stageCommit, type DuckStreamEvent, type DuckStreamWrite, type StagedCommit } from '../warehouse/duckdb/stream-write';
import { TextStage } from '../warehouse/duckdb/text-stage';
import { withTransaction } from '../sql/statements';
import { logger } from '../log';
import { markAvailabilityPending } from './availability';
import { afterStepInCommit, availabilityStepInCommit, pendingInCommit } from './availability-commit';
import { availabilityTopic, deadLetterTopic } from './config';
import { decodeEventText } from './events';
import { decodeLines } from './lines';
import { Housekeeping } from './housekeeping';
import { queueOutbox, type OutboxMessage } from './outbox';
import type { PutResult, SinkContext, SinkFactory, StreamSink } from './sink';
import { deadLetterMessage, firstFresh, sortEvents, type DeadLetter, type DecodedSlice } from './slices';

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

interface Built {
  readonly slice: DecodedSlice<DuckStreamEvent>;
  readonly write: DuckStreamWrite;
  readonly timestamps: number[];
  readonly dlq: DeadLetter[];
}

/**
 * What a commit did about availability: no step (put off in a catch-up, or the commit went again
 * without it), a step (its id tags the transitions it queued), or nothing to step (no product
 * pending but parked ones; the dead letters it queued for the outbox).
 */
type StepOutcome =
  | { readonly kind: 'none' }
  | { readonly kind: 'ran'; readonly stepId: string }
  | { readonly kind: 'nothing'; readonly pending: number; readonly deadLetters: number };

export class DuckDbSink implements StreamSink {
  readonly groupCommit = true;
  // One writer per stream file: the group takes one consumer process.
  readonly scalesOut = false;
  readonly decode = decodeEventText;
  readonly decodeLines = decodeLines;
  private readonly housekeeping: Housekeeping;
  /** Held stream file: the offsets stored in it (the fence), known after the first commit. */
  private stored: Map<string, bigint> | null = null;
  /** Held stream file: the text stage on its side connection, where puts stage their commit early. */
  private stage: TextStage | null = null;

  constructor(
    private readonly wh: DuckDbWarehouse,
    private readonly ctx: SinkContext,
  ) {
    this.housekeeping = new Housekeeping(wh, ctx);
  }

  get location(): string {
    return this.wh.location;
  }

  get standby(): boolean {
    return this.wh.holds && !this.wh.isOpen;
  }

  async claim(cancelled: () => boolean): Promise<void> {
    // The stream file first: a second process on it waits here as a standby and joins the
    // group only once it holds the file (the first exited or died).
    if (this.wh.holds) await this.wh.acquire(cancelled);
  }

  async start(): Promise<void> {
    await this.wh.ensureSchema();
    if (this.wh.holds) this.stage = TextStage.on(await this.wh.sideConnection());
    // Repairs availability after a batch reload of stock, and publishes what a kill left queued.
    await this.wh.withConnection((c) =>
      this.housekeeping.repair(c, () => withTransaction(c, (tx) => markAvailabilityPending(tx, this.ctx.dataset, { all: true }))),
    );
  }

  open(): Promise<StreamOffset[]> {
    return this.wh.readOffsets(this.ctx.cfg.group, this.ctx.topics);
  }

  /**
   * Group commit: the slices are applied in ONE transaction under one open of the file, with
   * their offsets. The fence: stored offsets are read under the same open as the write, and
   * advanced slice by slice, so two slices of one partition in this commit (a batch redelivered
   * after a rebalance next to its first delivery) are applied once. A held stream file has no
   * other writer: after the first read, the stored offsets are kept in memory (replaced only once
   * a commit succeeded).
   *
   * Before its turn on the file, a held file's put stages the commit as if every slice were new
   * (the usual case) on the file's side connection, while the commit before it runs (the
   * scheduler hands the next put over early): the file does not wait for the JavaScript thread
   * between commits. Should the fence cut a slice, the commit is staged again, on its turn.
   */
  async put(slices: readonly DecodedSlice<unknown>[], more: boolean): Promise<{ results: PutResult[]; commitMs: number | null }> {
    const { cfg, topics, dataset } = this.ctx;
    const t0 = Date.now();
    const fresh = slices.map((s) => this.build(s as DecodedSlice<DuckStreamEvent>, 0));
    const early = this.stage ? await stageCommit(this.stage, fresh.map((b) => b.write)) : null;
    try {
      return await this.wh.withConnection(async (c) => {
        const fence = new Map(
          this.wh.holds && this.stored
            ? this.stored
            : (await readOffsetsDuckDb(c, cfg.group, topics, dataset)).map((o) => [tpKey(o.topic, o.partition), BigInt(o.offset)]),
        );
        const built = slices.map((s, i): Built | { gap: bigint } | null => {
          const slice = s as DecodedSlice<DuckStreamEvent>;
          const k = tpKey(slice.topic, slice.partition);
          const from = fence.get(k);
          if (from !== undefined && BigInt(slice.offsets[0]) > from) return { gap: from };
          const first = firstFresh(slice.offsets, from);
          if (first === slice.offsets.length) return null;
          const b = first === 0 ? fresh[i] : this.build(slice, first);
          fence.set(k, BigInt(b.write.offsets[0].offset));
          return b;
        });
        const real = built.filter((b): b is Built => b !== null && 'write' in b);
        let commitMs: number | null = null;
        if (real.length > 0) {
          const asStaged = early !== null && built.every((b, i) => b === fresh[i]);
          const step = await this.commit(c, real, asStaged ? early : null, this.housekeeping.availabilityNow(more));
          commitMs = Date.now() - t0;
          this.stored = fence;
          this.ctx.onCommit?.({ kind: 'batch', ms: commitMs, events: real.reduce((a, b) => a + b.timestamps.length + b.write.quarantine.length, 0) });
          // The batch is committed: a failure from here on must not fail it (it would be
          // redelivered, fenced, and never counted). What is left stays pending for later.
          let left: { pending: number; outbox: number } | undefined;
          if (step.kind === 'ran') {
            const after = await afterStepInCommit(c, dataset, step.stepId).catch(() => undefined);
            if (after) this.ctx.onCommit?.({ kind: 'availability', ms: commitMs, events: after.queued, inCommit: true });
            left = after;
          } else if (step.kind === 'nothing') {
            // Nothing to step: only parked products may be pending, and this commit's dead letters queued.
            left = { pending: step.pending, outbox: step.deadLetters };
          }
          await this.housekeeping.committed(c, more, left);
        }
        const results = built.map((b): PutResult =>
          b === null || !('write' in b) ? b : { rows: b.timestamps.length, quarantined: b.write.quarantine.length, timestamps: b.timestamps },
        );
        return { results, commitMs };
      });
    } finally {
      // Not awaited: the stage drops it on its own connection, between stagings.
      early?.release().catch(() => undefined);
    }
  }

  /** A slice's events from index `first` on, sorted, as this sink writes them. */
  private build(slice: DecodedSlice<DuckStreamEvent>, first: number): Built {
    const b = sortEvents(this.ctx.runId, slice, first);
    const write: DuckStreamWrite = {
      destination: slice.dest,
      source: slice.source,
      consumerGroup: this.ctx.cfg.group,
      events: b.events,
      quarantine: b.quarantine,
      offsets: b.offsets,
    };
    return { slice, write, timestamps: b.timestamps, dlq: b.dlq };
  }

  /**
   * One transaction: the slices' rows, offsets, dead letters, pending availability and, when
   * `withStep` and a product is pending, its first step (availabilityStepInCommit), from the
   * commit `staged` early (null: staged now, on the file's connection). Should it fail, once
   * more without the step (its products stay pending for the drain, which parks one that fails
   * alone).
   */
  private async commit(c: DuckDBConnection, real: readonly Built[], staged: StagedCommit | null, withStep: boolean): Promise<StepOutcome> {
    const { cfg, dataset } = this.ctx;
    const dlq: OutboxMessage[] = real.flatMap((b) =>
      b.dlq.map((d) => ({ id: `dlq:${b.slice.topic}:${b.slice.partition}:${d.m.offset}`, topic: deadLetterTopic(cfg), ...deadLetterMessage(b.slice, d) })),
    );
    const commit = staged ?? (await stageCommit(TextStage.on(c), real.map((b) => b.write)));
    const attempt = async (stepId: string | null): Promise<StepOutcome> => {
      let outcome: StepOutcome = { kind: 'none' };
      await applyStagedCommit(c, commit, async (tx, tables) => {
        await queueOutbox(tx, dataset, dlq);
        await markAvailabilityPending(tx, dataset, { staged: tables });
        if (!stepId) return;
        const pending = await pendingInCommit(tx, dataset);
        if (pending.steppable === 0) {
          outcome = { kind: 'nothing', pending: pending.pending, deadLetters: dlq.length };
          return;
        }
        await availabilityStepInCommit(tx, dataset, availabilityTopic(cfg), cfg.availabilityStepRows, new Date(), stepId);
        outcome = { kind: 'ran', stepId };
      });
      return outcome;
    };
    try {
      if (!withStep) return await attempt(null);
      try {
        return await attempt(randomUUID());
      } catch (e) {
        logger.warn('stream: commit with its availability step failed; committing without it', { error: (e as Error).message });
        return await attempt(null);
      }
    } finally {
      if (!staged) await commit.release();
    }
  }

  flush(): Promise<void> {
    return this.housekeeping.flush();
  }

  async stop(runs: readonly RunRecord[]): Promise<void> {
    // The last staged text dropped before the file (and its side connection) can be closed.
    await this.stage?.idle();
    await this.housekeeping.stop();
    for (const run of runs) {
      await this.wh.recordRun(run).catch((e) => logger.warn('stream: could not record the run', { error: (e as Error).message }));
    }
    await this.housekeeping.finalSnapshot();
  }
}

/** The sink of a DuckDB stream file (streamDuckDbWarehouse). */
export const duckDbSink =
  (wh: DuckDbWarehouse): SinkFactory =>
  (ctx) =>
    new DuckDbSink(wh, ctx);
