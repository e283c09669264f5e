/**
 * Error classification and retry for BigQuery calls. The client's own retry is switched off
 * (autoRetry: false) so that every attempt goes through here: one policy, one log line per retry,
 * and a permanent error that says what failed and why.
 */
import { WarehouseError } from '../../errors';
import { logger } from '../../log';
import { retry, RETRY_POLICIES, type RetryPolicy } from '../../retry';

export const DEFAULT_RETRY: RetryPolicy = RETRY_POLICIES.bigquery;

/** Reasons BigQuery documents as worth retrying (https://cloud.google.com/bigquery/docs/error-messages). */
const TRANSIENT_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'jobRateLimitExceeded',
  'jobBackendError',
  'jobInternalError',
  'timeout',
  'stopped',
]);
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const TRANSIENT_NETWORK = /ECONNRESET|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED|EPIPE|socket hang up|network timeout/i;
/** A multi-statement transaction aborted by a concurrent writer: safe to run again. */
const TRANSIENT_MESSAGE = /concurrent update|could not serialize access|retry the transaction/i;

interface ErrorItem {
  readonly reason?: string;
  readonly message?: string;
  readonly location?: string;
}
interface BigQueryishError {
  readonly code?: number | string;
  readonly errors?: readonly (ErrorItem & { row?: unknown; errors?: ErrorItem[] })[];
  readonly message?: string;
  readonly name?: string;
}

/** Flattens API errors, job errors and insertAll's per-row errors into one list. */
export function errorItems(e: unknown): ErrorItem[] {
  const err = (e ?? {}) as BigQueryishError;
  const out: ErrorItem[] = [];
  for (const item of err.errors ?? []) {
    if (Array.isArray(item.errors)) out.push(...item.errors); // PartialFailureError: per-row errors
    else out.push(item);
  }
  return out;
}

export function isTransient(e: unknown): boolean {
  const err = (e ?? {}) as BigQueryishError;
  const items = errorItems(e);
  if (items.length > 0) {
    // Every reason must be transient: one 'invalid' row makes the whole request permanent.
    return items.every((i) => TRANSIENT_REASONS.has(i.reason ?? '') || TRANSIENT_MESSAGE.test(i.message ?? ''));
  }
  if (typeof err.code === 'number' && TRANSIENT_STATUS.has(err.code)) return true;
  const msg = `${String(err.code ?? '')} ${err.message ?? String(e)}`;
  return TRANSIENT_NETWORK.test(msg) || TRANSIENT_MESSAGE.test(msg);
}

/**
 * A BigQuery error that retrying will not fix (bad schema, invalid row, no permission, not found),
 * or a transient one that outlasted the retries. A WarehouseError: job CLIs exit with code 3.
 */
export class BigQueryPermanentError extends WarehouseError {
  readonly reasons: string[];
  readonly status: number | undefined;
  constructor(what: string, cause: unknown, attempts: number) {
    const err = (cause ?? {}) as BigQueryishError;
    const items = errorItems(cause);
    const reasons = [...new Set(items.map((i) => i.reason ?? 'unknown'))];
    const details = items
      .slice(0, 5)
      .map((i) => `${i.reason ?? 'error'}${i.location ? ` at ${i.location}` : ''}: ${i.message ?? ''}`.trim());
    const status = typeof err.code === 'number' ? err.code : undefined;
    const head = `BigQuery ${what} failed${status ? ` (HTTP ${status})` : ''} after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
    const body = details.length ? details.join('; ') : (err.message ?? String(cause));
    const more = items.length > 5 ? ` (+${items.length - 5} more)` : '';
    super(`${head}: ${body}${more}`);
    this.name = 'BigQueryPermanentError';
    this.reasons = reasons;
    this.status = status;
    (this as { cause?: unknown }).cause = cause;
  }
}

/**
 * Runs `attempt`, retrying transient failures by `policy` (exponential backoff with jitter); a
 * permanent failure (or the last transient one) is thrown as BigQueryPermanentError naming `what`.
 */
export function withRetry<T>(what: string, policy: RetryPolicy, attempt: (n: number) => Promise<T>): Promise<T> {
  return retry(policy, attempt, {
    retryable: (e) => !(e instanceof BigQueryPermanentError) && isTransient(e),
    giveUp: (e, n) => (e instanceof BigQueryPermanentError ? e : new BigQueryPermanentError(what, e, n)),
    onRetry: (r) =>
      logger.warn('BigQuery transient error, retrying', {
        what,
        attempt: r.attempt,
        of: policy.retries + 1,
        delayMs: Math.round(r.delayMs),
        error: (r.error as Error)?.message ?? String(r.error),
      }),
  });
}
