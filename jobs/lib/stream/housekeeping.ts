/**
 * The DuckDB sink's work between commits, on the held stream file: after a commit, the
 * availability drain (in bounded steps) and the outbox publish; a publish retried when one failed
 * and no commit came; the dim_products mirror refreshed when the batch file changed; the snapshot
 * for dbt published when asked or, when something changed, every STREAM_SNAPSHOT_INTERVAL_MS at a
 * quiet moment.
 * Every unit of work goes through the warehouse's one connection, one at a time (between commits,
 * never inside one).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { logger } from '../log';
import { RETRY_POLICIES } from '../retry';
import type { DuckDbWarehouse } from '../warehouse/duckdb/warehouse';
import { drainAvailability } from './availability';
import { availabilityTopic } from './config';
import { flushOutbox } from './outbox';
import type { SinkContext } from './sink';
import { publishSnapshot, refreshProductMirror, snapshotRequestedAt, type MirrorState } from './stream-file';

/**
 * Longest the availability drain, and the outbox publish, are put off while commits follow one
 * another: each borrows the file between two commits (a publish twice per chunk), and in a
 * catch-up those turns were a tenth of the window (docs/benchmarks.md).
 */
const AVAILABILITY_MAX_DELAY_MS = 1000;

/** Work put off under load is due when no slice waits (`more` false), or once `since` is AVAILABILITY_MAX_DELAY_MS old. */
const dueNow = (more: boolean, since: number): boolean => !more || Date.now() - since >= AVAILABILITY_MAX_DELAY_MS;
/**
 * A periodic snapshot waits until no commit came for this long: its copy holds the connection
 * (0.3-0.8 s at 150,000 rows on a busy machine) and every event arriving meanwhile waits, which
 * at 10,000 events/s made the p99. While commits follow one another the stream file is newer than
 * any snapshot anyway, so dbt asks for one (served at once) rather than using it.
 */
const SNAPSHOT_QUIET_MS = 1000;

export class Housekeeping {
  /** Something was committed since the last snapshot. */
  private dirty = true;
  /** When the last snapshot started (requests newer than this are served). */
  private snapshotAt = 0;
  /** Periodic snapshots count from here (the start, then each snapshot). */
  private periodicFrom = 0;
  private mirrorCheckedAt = 0;
  private readonly mirror: MirrorState = { stat: null, marker: null };
  /** Availability/outbox work left by commits made under load (done at the next quiet moment). */
  private drainOwed = false;
  private drainedAt = 0;
  private committedAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private outboxRetry: NodeJS.Timeout | null = null;
  /** The outbox publish running in the background, and whether another was asked for meanwhile. */
  private publishing: Promise<void> | null = null;
  private publishAgain = false;
  /** A publish put off by commits made under load (done at the next quiet moment), and when the last began (the start counts). */
  private publishOwed = false;
  private publishedAt = Date.now();
  private stopped = false;

  constructor(
    private readonly wh: DuckDbWarehouse,
    private readonly ctx: SinkContext,
  ) {}

  /** At start: the mirror (held file), every product's availability, what a kill left queued. */
  async repair(c: DuckDBConnection, markAll: () => Promise<void>): Promise<void> {
    if (this.wh.holds) await refreshProductMirror(c, this.ctx.cfg.batchDuckdbPath, this.ctx.dataset, this.mirror);
    await markAll();
    // Never fails the start (a failing product is parked; anything else stays pending and is
    // retried after the next commit): a restart must not become a crash loop.
    await this.drainAfterCommit(c);
    if (this.wh.holds) {
      // The first periodic snapshot one interval from now (a request or the stop publish sooner).
      this.periodicFrom = Date.now();
      this.schedule();
    }
  }

  /**
   * A batch was committed. `left`: what its in-commit availability step left, when it ran
   * (nothing pending and nothing queued, the usual case, is nothing to do); without it, the
   * drain runs now or is put off (availabilityNow).
   */
  async committed(c: DuckDBConnection, more: boolean, left?: { pending: number; outbox: number }): Promise<void> {
    this.dirty = true;
    this.committedAt = Date.now();
    if (!left) {
      // No step in the commit (put off, or the commit went again without it).
      if (this.availabilityNow(more)) await this.drainAfterCommit(c);
      else this.drainOwed = true;
      return;
    }
    this.drainOwed = false;
    this.drainedAt = Date.now();
    if (left.pending > 0 || left.outbox > 0) await this.drainAfterCommit(c, left.pending > 0, more);
  }

  /**
   * Whether a commit's availability work is done now (its first step inside the commit): when no
   * slice waits, or once per AVAILABILITY_MAX_DELAY_MS while commits follow one another (a
   * catch-up: the pending products of many commits, deduplicated, are recomputed together).
   */
  availabilityNow(more: boolean): boolean {
    return dueNow(more, this.drainedAt);
  }

  /** The work commits under load put off. */
  async flush(): Promise<void> {
    if (this.drainOwed) await this.wh.withConnection((c) => this.drainAfterCommit(c)).catch(() => undefined);
    if (this.publishOwed) this.publishSoon(false);
  }

  /** Timers off; then the last publish (bounded: the next start publishes what is left) and snapshot. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.outboxRetry) clearTimeout(this.outboxRetry);
    if (this.timer) clearTimeout(this.timer);
    const last = (this.publishing ?? Promise.resolve())
      .then(() => flushOutbox((fn) => this.wh.withConnection(fn), this.ctx.dataset, this.ctx.producer))
      .catch(() => undefined);
    await Promise.race([last, new Promise((r) => setTimeout(r, 10000).unref())]);
  }

  /** The last snapshot for dbt: everything this process committed, its runs included. */
  async finalSnapshot(): Promise<void> {
    if (!this.wh.holds) return;
    await this.wh
      .withConnection((c) => this.snapshot(c))
      .catch((e) => logger.warn('stream: final snapshot failed', { error: (e as Error).message }));
  }

  /** afterCommit, never failing the commit before it; a failure leaves the work pending. */
  private async drainAfterCommit(c: DuckDBConnection, pending = true, more = false): Promise<void> {
    this.drainOwed = false;
    this.drainedAt = Date.now();
    await this.afterCommit(c, pending, more).catch((e) => {
      logger.error('stream: availability/outbox after the commit failed; retried after the next commit', {
        error: (e as Error).message,
      });
    });
  }

  /**
   * After a warehouse commit: drains the availability work in bounded steps (`pending`: some
   * may be left), then publishes the outbox in the background (`more`: put off while commits
   * follow one another, see publishSoon).
   */
  private async afterCommit(c: DuckDBConnection, pending = true, more = false): Promise<void> {
    const { cfg, dataset, onCommit } = this.ctx;
    if (pending) {
      await drainAvailability(c, dataset, availabilityTopic(cfg), cfg.availabilityStepRows, (s) => {
        logger.debug('stream: availability step', s);
        onCommit?.({ kind: 'availability', ms: s.ms, events: s.events });
      });
    }
    this.publishSoon(more);
  }

  /** Publishes now when due (dueNow), else at the next quiet moment (flush). */
  private publishSoon(more: boolean): void {
    if (!dueNow(more, this.publishedAt)) {
      this.publishOwed = true;
      return;
    }
    this.publishOwed = false;
    this.publishedAt = Date.now();
    this.publish();
  }

  /**
   * Publishes the outbox in the background, one publish at a time (so in order), borrowing the
   * connection only to read and delete: a commit does not wait for the broker's acknowledgement
   * (at 10,000 events/s that wait was a part of the events' latency). Never awaited inside a
   * unit of work on the connection (its units queue behind that one).
   */
  private publish(): void {
    if (this.publishing) {
      this.publishAgain = true;
      return;
    }
    const { dataset, producer, onCommit } = this.ctx;
    this.publishing = (async () => {
      do {
        this.publishAgain = false;
        const t0 = Date.now();
        const r = await flushOutbox((fn) => this.wh.withConnection(fn), dataset, producer);
        if (r.published > 0) onCommit?.({ kind: 'outbox', ms: Date.now() - t0, events: r.published });
        if (r.pending) this.scheduleOutboxRetry();
      } while (this.publishAgain && !this.stopped);
    })()
      .catch((e) => {
        logger.warn('outbox: publish failed; retried', { error: (e as Error).message });
        this.scheduleOutboxRetry();
      })
      .finally(() => (this.publishing = null));
  }

  /**
   * Publishing failed with messages left (e.g. the broker went away): try again in a few
   * seconds even when no batch arrives, instead of waiting for the next commit.
   */
  private scheduleOutboxRetry(): void {
    if (this.outboxRetry || this.stopped) return;
    this.outboxRetry = setTimeout(() => {
      this.outboxRetry = null;
      if (!this.stopped) this.publish(); // one publisher: two would interleave and break the order
    }, RETRY_POLICIES.outboxPublish.baseDelayMs);
  }

  /** The held file's periodic check: mirror and snapshot when due, queued between commits. */
  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopped) return;
      if (!this.due(Date.now())) return this.schedule();
      void this.wh.withConnection((c) => this.housekeep(c)).finally(() => this.schedule());
    }, Math.min(500, this.ctx.cfg.snapshotIntervalMs));
    this.timer.unref();
  }

  private due(now: number): boolean {
    return this.snapshotDue(now) || this.mirrorDue(now);
  }

  /** The batch file's dim_products is checked every STREAM_SNAPSHOT_INTERVAL_MS. */
  private mirrorDue(now: number): boolean {
    return now - this.mirrorCheckedAt >= this.ctx.cfg.snapshotIntervalMs;
  }

  /**
   * A snapshot is due when dbt asked for one, or every STREAM_SNAPSHOT_INTERVAL_MS when something
   * changed and no commit came for SNAPSHOT_QUIET_MS.
   */
  private snapshotDue(now: number): boolean {
    const cfg = this.ctx.cfg;
    return (
      snapshotRequestedAt(cfg.snapshotPath) > this.snapshotAt ||
      (this.dirty && now - Math.max(this.snapshotAt, this.periodicFrom) >= cfg.snapshotIntervalMs && now - this.committedAt >= SNAPSHOT_QUIET_MS)
    );
  }

  /** Mirror check and snapshot when due; never fails (tried again at the next tick). */
  private async housekeep(c: DuckDBConnection): Promise<void> {
    const now = Date.now();
    try {
      if (this.stopped) return;
      if (this.mirrorDue(now)) {
        this.mirrorCheckedAt = now;
        if (await refreshProductMirror(c, this.ctx.cfg.batchDuckdbPath, this.ctx.dataset, this.mirror)) {
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
    await publishSnapshot(c, this.ctx.cfg.snapshotPath);
    // Stamped with the start: a request dropped while copying asks for the next one.
    this.snapshotAt = t0;
    logger.debug('stream: snapshot published', { file: this.ctx.cfg.snapshotPath, ms: Date.now() - t0 });
    this.ctx.onCommit?.({ kind: 'snapshot', ms: Date.now() - t0, events: 0 });
  }
}
