/**
 * Where a stream commit's event text waits for its transaction: a table of its own in an
 * in-memory database that every connection of the file shares (ATTACH ':memory:'), filled by an
 * appender (synchronous: no round trip that would wait for the JavaScript thread).
 *
 * On a connection of its own (the held stream file's side connection), the next commit's text is
 * staged while the commit before it runs: the file's connection no longer waits between two
 * commits for the JavaScript thread to build and append the text (15-35 ms a commit in a
 * catch-up, docs/benchmarks.md). A table per commit, dropped after it: a failed commit's text is
 * never read again, and its memory is given back at once.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../../ddl';

/** The in-memory database of staged text (its writes never touch the file or its WAL). */
const STAGE_DB = '_stream_stage';

let tables = 0;

export class TextStage {
  /** The stage's statements and appends, one at a time: an append never waits for a running statement. */
  private chain: Promise<unknown>;

  private constructor(private readonly c: DuckDBConnection) {
    this.chain = c.run(`ATTACH IF NOT EXISTS ':memory:' AS ${STAGE_DB}`);
  }

  private static readonly stages = new WeakMap<DuckDBConnection, TextStage>();

  /** The stage on `c` (made on first use). */
  static on(c: DuckDBConnection): TextStage {
    let s = TextStage.stages.get(c);
    if (!s) {
      s = new TextStage(c);
      TextStage.stages.set(c, s);
    }
    return s;
  }

  /**
   * Stages rows of (dest, lines) in a new table; returns its qualified name, which any connection
   * of the file can read (a transaction writing the file included).
   */
  stage(rows: readonly (readonly [string, string])[]): Promise<string> {
    const name = `text_${++tables}`;
    const table = `${STAGE_DB}.main.${quoteIdent(name)}`;
    return this.then(async () => {
      await this.c.run(`CREATE TABLE ${table} (dest VARCHAR, lines VARCHAR)`);
      const appender = await this.c.createAppender(name, 'main', STAGE_DB);
      try {
        for (const [dest, lines] of rows) {
          appender.appendVarchar(dest);
          appender.appendVarchar(lines);
          appender.endRow();
        }
        appender.flushSync();
      } finally {
        appender.closeSync();
      }
      return table;
    });
  }

  /** Drops a staged table (its commit is over, committed or not). */
  release(table: string): Promise<void> {
    return this.then(async () => {
      await this.c.run(`DROP TABLE IF EXISTS ${table}`);
    });
  }

  /** Resolves once everything asked of the stage so far is done (before its connection closes). */
  async idle(): Promise<void> {
    await this.chain;
  }

  private then<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
