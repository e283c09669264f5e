/**
 * The benchmark's latency summary on a million values and more: no call-stack overflow (a spread
 * over 200,000 values overflowed it), percentiles by nearest rank as computed from the values'
 * construction. No timing is asserted.
 */
import { LatencySamples, summarize } from '../../scripts/lib/latency';
import { mulberry32 } from '../../scripts/lib/generator-kit';

/** 1..n in a seeded random order (Fisher-Yates). */
function shuffledRange(n: number, seed: number): number[] {
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  const rnd = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

describe('latency summary', () => {
  test('1,000,000 shuffled values 1..N: p50, p90, p99, max and mean by nearest rank', () => {
    const N = 1_000_000;
    const xs = shuffledRange(N, 24);
    const samples = new LatencySamples();
    for (const x of xs) samples.add(x);
    const s = samples.summary();
    // In 1..N the k-th smallest value is k; nearest rank p is the ceil(p/100 * N)-th smallest.
    expect(s).toEqual({ count: N, p50: 500_000, p90: 900_000, p99: 990_000, max: N, mean: (N + 1) / 2 });
    // The plain function agrees and leaves its input unsorted.
    const first = xs.slice(0, 5);
    expect(summarize(xs)).toEqual(s);
    expect(xs.slice(0, 5)).toEqual(first);
  });

  test('1,200,000 values with repeats and fractions: percentiles from counting', () => {
    // Value v = (i % 1000) / 4 for i < 1,200,000: each of the 1000 values 1200 times, so the
    // k-th smallest (1-based) is floor((k - 1) / 1200) / 4.
    const N = 1_200_000;
    const samples = new LatencySamples();
    for (let i = 0; i < N; i++) samples.add((i % 1000) / 4);
    const kth = (k: number) => Math.floor((k - 1) / 1200) / 4;
    const s = samples.summary();
    expect(s.count).toBe(N);
    expect(s.p50).toBe(kth(600_000)); // 124.75
    expect(s.p90).toBe(kth(1_080_000)); // 224.75
    expect(s.p99).toBe(kth(1_188_000)); // 247.25
    expect(s.max).toBe(999 / 4);
    expect(s.mean).toBeCloseTo((999 / 4) / 2, 9);
    expect([s.p50, s.p90, s.p99]).toEqual([124.75, 224.75, 247.25]);
  });

  test('empty and single values', () => {
    expect(new LatencySamples().summary()).toEqual({ count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN });
    expect(summarize([7])).toEqual({ count: 1, p50: 7, p90: 7, p99: 7, max: 7, mean: 7 });
  });
});
