/** Opening DuckDB files and attaching the warehouse, with a bounded retry on a busy file. */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';
import { logger } from '../log';

const LOCK_ERROR = /could not set lock|conflicting lock|database is locked|lock on file/i;

export const isLockError = (e: unknown): boolean => LOCK_ERROR.test(String((e as Error)?.message ?? e));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `attempt` and retries while DuckDB reports the file is locked by another process
 * (DuckDB allows one writer). Backoff 0.5 s doubling to 5 s; `retries` bounds the attempts.
 */
export async function retryOnLock<T>(what: string, retries: number, attempt: () => Promise<T>): Promise<T> {
  let delay = 500;
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!isLockError(e) || i >= retries) {
        if (isLockError(e)) {
          throw new Error(`warehouse busy: ${what} is locked by another writer after ${retries} retries (${(e as Error).message})`);
        }
        throw e;
      }
      logger.warn('warehouse busy, retrying', { what, attempt: i + 1, of: retries, delayMs: delay });
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
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

/**
 * Any text as SQL: a quoted literal; text holding NUL, which no literal can hold, as the
 * parenthesised concatenation of its parts with chr(0).
 */
export const sqlString = (s: string): string => {
  const literal = (part: string) => `'${part.replace(/'/g, "''")}'`;
  return s.includes('\u0000') ? `(${s.split('\u0000').map(literal).join(' || chr(0) || ')})` : literal(s);
};

/** What runs statements: a connection, or a StatementBatch in front of one. */
export interface SqlRunner {
  run(sql: string, values?: DuckDBValue[], types?: DuckDBType[]): Promise<unknown>;
}

/**
 * Statements sent to DuckDB together. Every statement's completion is handled on the JavaScript
 * thread before the next one can start, so while that thread is busy (decoding fetched messages,
 * collecting garbage) DuckDB waits between them: a stream commit of a dozen statements took up
 * to ten times its own work. A batch queues parameterless statements and sends them as ONE
 * multi-statement call (DuckDB runs them in order, stopping at the first error); a statement with
 * parameters sends what is queued first, then runs alone.
 */
export class StatementBatch implements SqlRunner {
  private queued: string[] = [];

  constructor(private readonly c: DuckDBConnection) {}

  async run(sql: string, values?: DuckDBValue[], types?: DuckDBType[]): Promise<void> {
    if (values === undefined) {
      this.queued.push(sql);
      return;
    }
    await this.flush();
    await this.c.run(sql, values, types);
  }

  /** Sends the queued statements (one call); throws the first failure. */
  async flush(): Promise<void> {
    if (this.queued.length === 0) return;
    // On a line of its own: a statement ending in a `--` comment must not swallow the separator.
    const sql = this.queued.join('\n;\n');
    this.queued = [];
    await this.c.run(sql);
  }
}
