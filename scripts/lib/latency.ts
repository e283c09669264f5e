/**
 * Latency samples of any count, summarized without spreading arrays (`Math.max(...xs)` over
 * 200,000 values overflowed the call stack): samples go into a growing Float64Array, sorted in
 * place once, and percentiles are read by nearest rank.
 */

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export class LatencySamples {
  private xs = new Float64Array(1024);
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(x: number): void {
    if (this.n === this.xs.length) {
      const grown = new Float64Array(this.xs.length * 2);
      grown.set(this.xs);
      this.xs = grown;
    }
    this.xs[this.n++] = x;
  }

  /** The samples in the order added (a view: valid until the next add). */
  values(): Float64Array {
    return this.xs.subarray(0, this.n);
  }

  /** p50/p90/p99 (nearest rank), max and mean; NaN everywhere when empty. */
  summary(): LatencySummary {
    return summarize(this.xs.subarray(0, this.n));
  }
}

/** The summary of `values` (a copy is sorted; `values` is left as it is). */
export function summarize(values: ArrayLike<number>): LatencySummary {
  const s = Float64Array.from(values).sort(); // a typed array sorts numerically
  const n = s.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  return {
    count: n,
    p50: nearestRank(s, 50),
    p90: nearestRank(s, 90),
    p99: nearestRank(s, 99),
    max: n > 0 ? s[n - 1] : NaN,
    mean: n > 0 ? sum / n : NaN,
  };
}

/** The p-th percentile of sorted `s` by nearest rank: the smallest value with at least p% of the values at or below it. */
export function nearestRank(s: Float64Array, p: number): number {
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
