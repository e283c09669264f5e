/** Running statements on a DuckDB connection: one call for many, and the one transaction helper. */
import type { DuckDBConnection, DuckDBType, DuckDBValue, JS } from '@duckdb/node-api';

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
 * parameters sends what is queued first, then runs alone. `batched: false` runs each at once.
 */
export class StatementBatch implements SqlRunner {
  private queued: string[] = [];

  constructor(
    private readonly c: DuckDBConnection,
    private readonly batched = true,
  ) {}

  async run(sql: string, values?: DuckDBValue[], types?: DuckDBType[]): Promise<void> {
    if (values === undefined && this.batched) {
      this.queued.push(sql);
      return;
    }
    await this.flush();
    await this.c.run(sql, values, types);
  }

  /**
   * Sends the queued statements and then `sql`, a query, in the same call (DuckDB returns the
   * last statement's result): what the statements left can steer the rest of the transaction
   * for the price of one call.
   */
  async query(sql: string): Promise<Record<string, JS>[]> {
    const queued = [...this.queued, sql].join('\n;\n');
    this.queued = [];
    return (await this.c.runAndReadAll(queued)).getRowObjectsJS();
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

/**
 * Runs `work` in one transaction on `c`: committed when it returns, rolled back when it throws
 * (the error is rethrown). `batched`: the transaction's parameterless statements, BEGIN and
 * COMMIT included, go to DuckDB in as few calls as possible (StatementBatch).
 */
export async function withTransaction<T>(
  c: DuckDBConnection,
  work: (tx: StatementBatch) => Promise<T>,
  opts: { readonly batched?: boolean } = {},
): Promise<T> {
  const tx = new StatementBatch(c, opts.batched ?? false);
  try {
    await tx.run('BEGIN TRANSACTION');
    const result = await work(tx);
    await tx.run('COMMIT');
    await tx.flush();
    return result;
  } catch (e) {
    await c.run('ROLLBACK').catch(() => undefined);
    throw e;
  }
}
