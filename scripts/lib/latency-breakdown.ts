/**
 * Where produce-to-queryable time goes, per event, from the consumer's onBatch/onCommit reports:
 *   fetch   producer timestamp -> the slice fetched (decoded): broker, fetch wait, kafkajs
 *   queue   fetched -> its commit started: waiting behind a commit or the work between commits
 *   commit  the DuckDB transaction (texts, staging, upserts, offsets, outbox, pending availability)
 *   after   the transaction's end -> settled: availability steps done right after it
 * and per commit: events, ms, the availability/outbox work right after it; the work between
 * commits (availability put off under load, outbox retries, snapshots). A breakdown holds its
 * shape on a busy machine where absolute figures do not.
 * Events produced before `measureFrom` (a warm-up: a fresh process's first commits pay DuckDB's
 * and V8's first-time costs) are summarized apart, their commits left out of the per-commit figures.
 */
import type { BatchInfo, CommitInfo } from '../../jobs/lib/stream/consumer';
import { LatencySamples, summarize, type LatencySummary } from './latency';

interface CommitRecord {
  readonly start: number;
  readonly end: number;
  readonly ms: number;
  readonly events: number;
  /** Availability steps after this commit, before its slices settled. */
  availabilityMs: number;
  settled: boolean;
}

type Work = 'availability' | 'outbox' | 'snapshot';

export interface BreakdownReport {
  /** The events produced before measuring started (total only), when there was a warm-up. */
  readonly warmup: LatencySummary | null;
  readonly perEvent: Record<'total' | 'fetch' | 'queue' | 'commit' | 'after', LatencySummary>;
  /** Mean of each part over the events at or above the total's p99 (the tail). */
  readonly tailMeans: Record<'total' | 'fetch' | 'queue' | 'commit' | 'after', number>;
  readonly perCommit: {
    readonly commits: number;
    readonly events: LatencySummary;
    readonly ms: LatencySummary;
    readonly availabilityAfterMs: LatencySummary;
  };
  /** Work between commits (it delays the next commit): count, total and longest ms. */
  readonly between: Record<Work, { n: number; ms: number; max: number }>;
}

export class LatencyBreakdown {
  /** Events produced before this (ms since the epoch) are the warm-up's. */
  private measureFrom = -Infinity;
  private readonly warmup = new LatencySamples();
  private readonly parts = {
    total: new LatencySamples(),
    fetch: new LatencySamples(),
    queue: new LatencySamples(),
    commit: new LatencySamples(),
    after: new LatencySamples(),
  };
  private readonly commits: CommitRecord[] = [];
  private current: CommitRecord | null = null;
  private readonly between: Record<Work, { n: number; ms: number; max: number }> = {
    availability: { n: 0, ms: 0, max: 0 },
    outbox: { n: 0, ms: 0, max: 0 },
    snapshot: { n: 0, ms: 0, max: 0 },
  };

  get events(): number {
    return this.parts.total.count;
  }

  /** From `at` on, events are measured; those produced before it are the warm-up's. */
  startMeasuringAt(at: number): void {
    this.measureFrom = at;
  }

  onCommit(c: CommitInfo, now = Date.now()): void {
    if (c.kind === 'batch') {
      this.current = { start: now - c.ms, end: now, ms: c.ms, events: c.events, availabilityMs: 0, settled: false };
      if (this.current.start >= this.measureFrom) this.commits.push(this.current);
    } else if (c.inCommit) {
      return; // a step inside the group commit: its time is the commit's
    } else if (c.kind === 'availability' && this.current && !this.current.settled) {
      this.current.availabilityMs += c.ms;
    } else if (now >= this.measureFrom) {
      // A snapshot, an availability step put off, an outbox publish (in the background: only its
      // reads and deletes take the connection from commits).
      const b = this.between[c.kind];
      b.n++;
      b.ms += c.ms;
      b.max = Math.max(b.max, c.ms);
    }
  }

  onBatch(b: BatchInfo): void {
    const c = this.current;
    if (!c) return;
    c.settled = true;
    for (const t of b.eventTimestamps) {
      if (t < this.measureFrom) {
        this.warmup.add(b.committedAt - t);
        continue;
      }
      this.parts.total.add(b.committedAt - t);
      this.parts.fetch.add(b.fetchedAt - t);
      this.parts.queue.add(c.start - b.fetchedAt);
      this.parts.commit.add(c.ms);
      this.parts.after.add(b.committedAt - c.end);
    }
  }

  report(): BreakdownReport {
    const names = Object.keys(this.parts) as (keyof typeof this.parts)[];
    const perEvent = Object.fromEntries(names.map((k) => [k, this.parts[k].summary()])) as BreakdownReport['perEvent'];
    const total = this.parts.total.values();
    const tail: number[] = [];
    for (let i = 0; i < total.length; i++) if (total[i] >= perEvent.total.p99) tail.push(i);
    const tailMeans = Object.fromEntries(
      names.map((k) => {
        const v = this.parts[k].values();
        let sum = 0;
        for (const i of tail) sum += v[i];
        return [k, tail.length > 0 ? Math.round((sum / tail.length) * 10) / 10 : NaN];
      }),
    ) as BreakdownReport['tailMeans'];
    const of = (f: (c: CommitRecord) => number) => summarize(this.commits.map(f));
    return {
      warmup: this.warmup.count > 0 ? this.warmup.summary() : null,
      perEvent,
      tailMeans,
      perCommit: {
        commits: this.commits.length,
        events: of((c) => c.events),
        ms: of((c) => c.ms),
        availabilityAfterMs: of((c) => c.availabilityMs),
      },
      between: this.between,
    };
  }
}

/** The report as a few lines of text. */
export function formatBreakdown(r: BreakdownReport, indent = '    '): string {
  const f = (s: LatencySummary) => `p50 ${r1(s.p50)}, p99 ${r1(s.p99)}, max ${r1(s.max)}`;
  const e = r.perEvent;
  const t = r.tailMeans;
  const c = r.perCommit;
  const w = (k: Work) => `${k} ${r.between[k].n}x (${Math.round(r.between[k].ms)} ms, longest ${r.between[k].max})`;
  return [
    `per event (ms): fetch ${f(e.fetch)}; queue ${f(e.queue)}; commit ${f(e.commit)}; after ${f(e.after)}`,
    `tail (events at or over p99 ${r1(e.total.p99)} ms), mean ms: fetch ${t.fetch}, queue ${t.queue}, commit ${t.commit}, after ${t.after} (total ${t.total})`,
    `per commit: ${c.commits} commits, events ${f(c.events)}; ms ${f(c.ms)}; availability steps after it ${f(c.availabilityAfterMs)}`,
    `besides commits: ${w('availability')}, ${w('outbox')}, ${w('snapshot')}`,
  ].map((l) => indent + l).join('\n');
}

const r1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : x);
