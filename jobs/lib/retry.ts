/**
 * The one retry helper: an attempt run again after failures, waiting by a named policy.
 * Every retry/wait loop of the repository goes through it; the policies are named here so the
 * backoffs can be read (and changed) in one place.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (Infinity: until the deadline or a cancel). */
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Growth of the delay per retry (default 2; 1 = a fixed interval). */
  readonly factor?: number;
  /** Each wait is a random 50-100 % of the delay (spreads clients retrying together). */
  readonly jitter?: boolean;
  /** Give up when the next wait would end past this long after the first attempt (ms). */
  readonly deadlineMs?: number;
}

export const RETRY_POLICIES = {
  /** BigQuery API calls (BIGQUERY_MAX_RETRIES replaces `retries`). */
  bigquery: { retries: 5, baseDelayMs: 1000, maxDelayMs: 30000, jitter: true },
  /** A DuckDB file locked by another writer (DUCKDB_LOCK_RETRIES replaces `retries`). */
  duckdbLock: { retries: 0, baseDelayMs: 500, maxDelayMs: 5000 },
  /** A standby consumer waiting for the stream file (until it is free or the process stops). */
  streamFileStandby: { retries: Infinity, baseDelayMs: 250, maxDelayMs: 5000 },
  /** The consumer waiting for the Kafka broker at start (STREAM_BROKER_WAIT_MS sets a deadline). */
  brokerWait: { retries: Infinity, baseDelayMs: 1000, maxDelayMs: 30000 },
  /** A new topic's metadata (every partition with a leader) on a broker that just created it. */
  topicMetadata: { retries: Infinity, baseDelayMs: 200, maxDelayMs: 200, factor: 1, deadlineMs: 15000 },
  /** Publishing the outbox again after a failed publish, while no commit does it. */
  outboxPublish: { retries: Infinity, baseDelayMs: 2000, maxDelayMs: 2000, factor: 1 },
  /** kafkajs's own retries (client, consumer, producer), in kafkajs's terms in stream/kafka.ts. */
  kafkaClient: { retries: 8, baseDelayMs: 300, maxDelayMs: 5000 },
} as const satisfies Record<string, RetryPolicy>;

/** The wait before retry `n` (1-based) under `policy`, jitter included. */
export function retryDelay(policy: RetryPolicy, n: number): number {
  const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * (policy.factor ?? 2) ** (n - 1));
  return policy.jitter ? delay * (0.5 + Math.random() / 2) : delay;
}

export interface RetryHooks {
  /** Whether a failure is worth another attempt (default: every failure). */
  readonly retryable?: (e: unknown) => boolean;
  /** The error thrown when giving up (default: the last failure as it is). */
  readonly giveUp?: (e: unknown, attempts: number) => unknown;
  /** Before each wait (a log line); may throw to stop (e.g. the process is stopping). */
  readonly onRetry?: (r: { attempt: number; delayMs: number; error: unknown; elapsedMs: number }) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `attempt` until it succeeds, retrying retryable failures as `policy` says. */
export async function retry<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  const t0 = Date.now();
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (e) {
      const delayMs = retryDelay(policy, n);
      const elapsedMs = Date.now() - t0;
      const late = policy.deadlineMs !== undefined && elapsedMs + delayMs > policy.deadlineMs;
      if (!(hooks.retryable?.(e) ?? true) || n > policy.retries || late) throw hooks.giveUp ? hooks.giveUp(e, n) : e;
      hooks.onRetry?.({ attempt: n, delayMs, error: e, elapsedMs });
      await sleep(delayMs);
    }
  }
}
