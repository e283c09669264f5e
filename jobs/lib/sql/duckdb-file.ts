/** Opening DuckDB files (the warehouse file, the stream file, a job's scratch), with a bounded retry on a busy file. */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { logger } from '../log';
import { retry, RETRY_POLICIES } from '../retry';

const LOCK_ERROR = /could not set lock|conflicting lock|database is locked|lock on file/i;

export const isLockError = (e: unknown): boolean => LOCK_ERROR.test(String((e as Error)?.message ?? e));

/**
 * Runs `attempt` and retries while DuckDB reports the file is locked by another process
 * (DuckDB allows one writer), by the duckdbLock policy; `retries` bounds the attempts.
 */
export function retryOnLock<T>(what: string, retries: number, attempt: () => Promise<T>): Promise<T> {
  return retry({ ...RETRY_POLICIES.duckdbLock, retries }, attempt, {
    retryable: isLockError,
    giveUp: (e) =>
      isLockError(e) ? new Error(`warehouse busy: ${what} is locked by another writer after ${retries} retries (${(e as Error).message})`) : e,
    onRetry: (r) => logger.warn('warehouse busy, retrying', { what, attempt: r.attempt, of: retries, delayMs: r.delayMs }),
  });
}

export interface OpenDb {
  readonly instance: DuckDBInstance;
  readonly connection: DuckDBConnection;
  close(): void;
}

/**
 * Opens (creating if needed) a DuckDB file; `:memory:` for an in-memory database. `settings`
 * are DuckDB configuration options applied at creation (a SET statement each costs more).
 */
export async function openDuckDb(file: string, retries = 0, settings?: Readonly<Record<string, string>>): Promise<OpenDb> {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const instance = await retryOnLock(file, retries, () => DuckDBInstance.create(file, settings));
  const connection = await instance.connect();
  return {
    instance,
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}
