/**
 * The group commit: decoded slices queue here and are handed to the sink together, up to the
 * commit size, while the fetch that brought them goes on (the sink's groupCommit), bounded by the
 * events in flight (back-pressure). The commit size has a time bound: a commit that took over a
 * fifth of the session timeout halves the next ones (down to 100 events); quick ones let it grow
 * back to STREAM_COMMIT_MAX_EVENTS.
 */
import { testHooks } from '../config';
import { logger } from '../log';
import { holdWhileFileExists } from '../test-hold';
import type { StreamConfig } from './config';
import type { PutResult, StreamSink } from './sink';
import type { DecodedSlice } from './slices';

export interface SchedulerHooks {
  /** A slice's put finished (before the next commit's results are handed out). */
  settled(slice: DecodedSlice<unknown>, result: PutResult): void;
  /** A pipelined slice's put failed (nothing of its commit was written). */
  failed(slice: DecodedSlice<unknown>, e: unknown): void;
  /**
   * After each commit: the offsets written, to commit to Kafka (for monitoring). Called in the
   * background, one call at a time in commit order; idle() waits for them.
   */
  committed(offsets: { topic: string; partition: number; offset: bigint }[]): Promise<void>;
}

interface Queued {
  readonly slice: DecodedSlice<unknown>;
  readonly resolve: (r: PutResult) => void;
  readonly reject: (e: unknown) => void;
}

export class CommitScheduler {
  /** Events per commit now: STREAM_COMMIT_MAX_EVENTS, lowered while commits run long. */
  private limit: number;
  private queue: Queued[] = [];
  private draining = false;
  /** Slices handed over whose put has not finished (pipelined sinks). */
  private readonly inflight = new Set<Promise<void>>();
  private inflightEvents = 0;
  /** The Kafka offset commits, chained: the next warehouse commit does not wait for a broker round trip. */
  private kafkaCommits: Promise<void> = Promise.resolve();

  constructor(
    private readonly sink: StreamSink,
    private readonly cfg: StreamConfig,
    private readonly hooks: SchedulerHooks,
  ) {
    this.limit = cfg.commitMaxEvents;
  }

  /** Events per slice (a larger fetch is split over several commits). */
  get sliceEvents(): number {
    return this.limit;
  }

  /**
   * Hands a slice to the next commit. A group-commit sink: returns at once (the result reaches
   * the hooks); otherwise waits for its put and throws its failure. False: a gap, stop this fetch.
   */
  async submit(slice: DecodedSlice<unknown>): Promise<boolean> {
    const result = new Promise<PutResult>((resolve, reject) => {
      this.queue.push({ slice, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        // Let the other partitions of the same fetch join this commit.
        setImmediate(() => void this.drain());
      }
    });
    if (!this.sink.groupCommit) {
      const r = await result;
      this.hooks.settled(slice, r);
      return !(r && 'gap' in r);
    }
    const events = slice.offsets.length;
    this.inflightEvents += events;
    const done: Promise<void> = result
      .then((r) => this.hooks.settled(slice, r), (e) => this.hooks.failed(slice, e))
      .finally(() => {
        this.inflightEvents -= events;
        this.inflight.delete(done);
      });
    this.inflight.add(done);
    return true;
  }

  /**
   * Waits while more than three times STREAM_COMMIT_MAX_EVENTS events are in flight (and
   * `running()`): a commit running, the next one handed over early, and a whole one queued
   * behind them (with twice, the early one was rarely whole).
   */
  async backPressure(running: () => boolean): Promise<void> {
    while (this.inflightEvents > 3 * this.cfg.commitMaxEvents && this.inflight.size > 0 && running()) {
      await Promise.race(this.inflight);
    }
  }

  /** Whether a slice handed over is queued or its put has not settled yet. */
  get busy(): boolean {
    return this.draining || this.queue.length > 0 || this.inflight.size > 0;
  }

  /** Waits until every slice handed over is settled and its offsets were committed to Kafka. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    await this.kafkaCommits;
  }

  private queuedEvents(): number {
    let n = 0;
    for (const q of this.queue) n += q.slice.offsets.length;
    return n;
  }

  private take(): Queued[] {
    let take = 0;
    let events = 0;
    const most = this.sink.groupCommit ? this.queue.length : 1;
    while (take < most && (take === 0 || events + this.queue[take].slice.offsets.length <= this.limit)) {
      events += this.queue[take].slice.offsets.length;
      take++;
    }
    return this.queue.splice(0, take);
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        await this.commitQueued();
        await this.sink.flush();
        if (this.queue.length === 0) break; // slices queued during the flush: commit them too
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Commits what is queued, in order. A group-commit sink is handed the next commit while the
   * one before runs (at most two puts in flight): it prepares it meanwhile (DuckDbSink stages its
   * text), and its turn on the warehouse follows the one before at once. Only a whole commit is
   * handed over early: a smaller one waits for the put before it to gather more (a steady
   * trickle keeps whole commits).
   */
  private async commitQueued(): Promise<void> {
    const depth = this.sink.groupCommit ? 2 : 1;
    const running: Promise<void>[] = [];
    while (this.queue.length > 0 || running.length > 0) {
      while (this.queue.length > 0 && (running.length === 0 || (running.length < depth && this.queuedEvents() >= this.limit))) {
        running.push(this.commit(this.take()));
      }
      await running.shift();
    }
  }

  /** One put of `items`; its results (or its failure) reach their slices. Never throws. */
  private async commit(items: Queued[]): Promise<void> {
    const t0 = Date.now();
    try {
      // Test hook, inert unless set: holds before the transaction (test-hold.ts).
      await holdWhileFileExists(testHooks().streamHoldFile);
      const { results, commitMs } = await this.sink.put(
        items.map((it) => it.slice),
        this.queue.length > 0,
      );
      if (commitMs !== null) this.adapt(commitMs);
      logger.debug('stream: group commit', { partitions: items.length, ms: Date.now() - t0, commitMs });
      // After the warehouse transaction, in the background: the warehouse's offsets are the
      // truth, the group's are for monitoring, and a broker round trip (17-57 ms on a busy
      // machine) before each commit was a part of every event's latency.
      const offsets = items.flatMap((it, i) => {
        const r = results[i];
        if (!r || 'gap' in r) return [];
        const { topic, partition, offsets } = it.slice;
        return [{ topic, partition, offset: BigInt(offsets[offsets.length - 1]) + 1n }];
      });
      this.kafkaCommits = this.kafkaCommits.then(() => this.hooks.committed(offsets)).catch(() => undefined);
      items.forEach((it, i) => it.resolve(results[i]));
    } catch (e) {
      for (const it of items) it.reject(e);
    }
  }

  private adapt(ms: number): void {
    const target = this.cfg.sessionTimeoutMs / 5;
    const before = this.limit;
    if (ms > target) this.limit = Math.max(100, Math.floor(this.limit / 2));
    else if (ms < target / 4) this.limit = Math.min(this.cfg.commitMaxEvents, this.limit * 2);
    if (this.limit < before) logger.info('stream: long commit, fewer events per commit', { ms, events: this.limit });
  }
}
