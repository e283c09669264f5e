/**
 * The embedded warehouse: a DuckDB file (DUCKDB_PATH, default .state/warehouse.duckdb).
 *
 * DuckDB admits one writing process at a time, so the batch file is opened only for the moment of
 * a write and closed again; a job stages in its own scratch database first, and its transform
 * writes into the file inside the load's transaction. A batch
 * replace runs in ONE transaction (DDL included): killed or failing before COMMIT, the previous
 * table stays as it was.
 *
 * `hold: true` is the stream layer's own file (STREAM_DUCKDB_PATH): opened once, by `acquire()`,
 * and kept open (instance and connection) until close(), with its units of work run one at a
 * time. Another process holding it makes acquire() wait as a standby until it is free.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { findSource } from '../../catalog-check';
import { RESCUED_DATA_COLUMN, type BatchDestination, type Catalog, type DestinationTable, type StreamDestination } from '../../catalog-types';
import { duckdbCreateTable, ETL_RUNS_COLUMNS_DDL, QUARANTINE_COLUMNS_DDL, quoteIdent } from '../../ddl';
import { logger } from '../../log';
import { retry, RETRY_POLICIES } from '../../retry';
import { isLockError, openDuckDb, retryOnLock, type OpenDb } from '../../sql/duckdb-file';
import { sqlString } from '../../sql/quote';
import { withTransaction } from '../../sql/statements';
import type { RunRecord, StagedBatch, StreamOffset, StreamWrite, Warehouse } from '../types';
import { STREAM_BOOKKEEPING_DDL } from './stream-ddl';
import { applyStreamBatchDuckDb, dropStreamPrimaryKeys, readOffsetsDuckDb } from './stream-write';
import { testHooks } from '../../config';

const ALIAS = 'wh';

export interface DuckDbWarehouseOptions {
  readonly path: string;
  readonly lockRetries: number;
  readonly catalog: Catalog;
  /** Keep the file open from acquire() to close(): one holder process (the stream layer's file). */
  readonly hold?: boolean;
  /** DuckDB settings of the held file (e.g. threads). */
  readonly settings?: Readonly<Record<string, string>>;
  /** The destinations whose tables this file has (default: every destination of the catalog). */
  readonly destinations?: (d: DestinationTable) => boolean;
}

export class DuckDbWarehouse implements Warehouse {
  readonly kind = 'duckdb' as const;
  readonly location: string;

  /** How many times this object opened its file (a held file: once per holder). */
  opens = 0;
  private held: OpenDb | null = null;
  /** A held file's second connection (sideConnection), made on first use. */
  private side: DuckDBConnection | null = null;
  /** Units of work on a held file run one after another (one connection, one transaction at a time). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: DuckDbWarehouseOptions) {
    this.location = opts.path;
  }

  get holds(): boolean {
    return Boolean(this.opts.hold);
  }

  /** True while this process holds the file open (hold mode). */
  get isOpen(): boolean {
    return this.held !== null;
  }

  /**
   * Hold mode: opens the file once. While another process holds it, waits as a standby (one log
   * line, then retries with backoff up to 5 s) until it is released; throws once `cancelled()`.
   */
  async acquire(cancelled: () => boolean = () => false): Promise<void> {
    if (this.held) return;
    let told = false;
    this.held = await retry(
      RETRY_POLICIES.streamFileStandby,
      async () => {
        this.opens++;
        const held = await openDuckDb(this.opts.path, 0, this.opts.settings);
        if (told) logger.info('stream: took over the stream file', { file: this.opts.path });
        return held;
      },
      {
        retryable: isLockError,
        onRetry: () => {
          if (!told) {
            logger.info('stream: standby - the stream file is held by another consumer process; waiting to take over', {
              file: this.opts.path,
            });
            told = true;
          }
          if (cancelled()) throw new Error('stopped while waiting for the stream file');
        },
      },
    );
  }

  /** Opens the warehouse file for one unit of work and closes it afterwards (held: uses the open file). */
  async withConnection<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.opts.hold) {
      const run = this.queue.then(async () => {
        await this.acquire();
        return fn(this.held!.connection);
      });
      this.queue = run.catch(() => undefined);
      return run;
    }
    this.opens++;
    const db = await openDuckDb(this.opts.path, this.opts.lockRetries);
    try {
      return await fn(db.connection);
    } finally {
      db.close();
    }
  }

  /**
   * A held file: a second connection on it, for work beside the units' (the stream's next commit
   * staged while one runs); closed with the file.
   */
  async sideConnection(): Promise<DuckDBConnection> {
    if (!this.opts.hold) throw new Error('a side connection needs a held file');
    await this.acquire();
    this.side ??= await this.held!.instance.connect();
    return this.side;
  }

  /** The destinations whose tables this file has. */
  private get destinations(): DestinationTable[] {
    return this.opts.catalog.destinations.filter(this.opts.destinations ?? (() => true));
  }

  /** Bookkeeping tables and every destination table, created when missing; `prefix` picks the catalog. */
  private schemaStatements(prefix: string): string[] {
    const destinations = this.destinations;
    const datasets = [...new Set(destinations.map((d) => d.dataset))];
    const stmts = datasets.map((d) => `CREATE SCHEMA IF NOT EXISTS ${prefix}${quoteIdent(d)}`);
    // The stream layer's bookkeeping only in a file with stream tables (not the batch file).
    const stream = destinations.some((d) => d.mode === 'stream');
    for (const d of datasets) {
      stmts.push(`CREATE TABLE IF NOT EXISTS ${prefix}${quoteIdent(d)}._etl_runs (${ETL_RUNS_COLUMNS_DDL})`);
      stmts.push(`CREATE TABLE IF NOT EXISTS ${prefix}${quoteIdent(d)}._quarantine (${QUARANTINE_COLUMNS_DDL})`);
      if (stream) stmts.push(...STREAM_BOOKKEEPING_DDL(`${prefix}${quoteIdent(d)}`));
    }
    for (const dest of destinations) {
      const q = `${prefix}${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`;
      stmts.push(duckdbCreateTable(dest, q).replace('CREATE TABLE', 'CREATE TABLE IF NOT EXISTS'));
    }
    return stmts;
  }

  async ensureSchema(): Promise<void> {
    await this.withConnection(async (c) => {
      for (const s of this.schemaStatements('')) await c.run(s);
      await dropStreamPrimaryKeys(c, this.destinations.filter((d): d is StreamDestination => d.mode === 'stream'));
      // A file made before schema contracts: its tables gain the rescued-data column (NULL).
      for (const d of this.destinations.filter((x) => x.columns.some((col) => col.name === RESCUED_DATA_COLUMN))) {
        await c.run(`ALTER TABLE ${quoteIdent(d.dataset)}.${quoteIdent(d.table)} ADD COLUMN IF NOT EXISTS ${quoteIdent(RESCUED_DATA_COLUMN)} VARCHAR`);
      }
    });
  }

  async replaceTable(dest: BatchDestination, staged: StagedBatch): Promise<RunRecord> {
    const c = staged.connection;
    await retryOnLock(this.opts.path, this.opts.lockRetries, () =>
      c.run(`ATTACH ${sqlString(this.opts.path)} AS ${ALIAS}`),
    );
    try {
      const ds = `${ALIAS}.${quoteIdent(dest.dataset)}`;
      const target = `${ds}.${quoteIdent(dest.table)}`;
      const run = await withTransaction(c, async (tx) => {
        for (const s of this.schemaStatements(`${ALIAS}.`)) await tx.run(s);
        await tx.run(duckdbCreateTable(dest, target, true));
        // The rows go straight into the file: a copy from scratch would write them twice.
        const filled = await staged.fill(target);
        await tx.run(`DELETE FROM ${ds}._quarantine WHERE destination = ${sqlString(dest.name)};
          INSERT INTO ${ds}._quarantine BY NAME SELECT * FROM ${staged.quarantineTable}`);
        await insertRun(c, ds, filled);
        await testFaultBeforeCommit();
        return filled;
      });
      // Write the table into the file now and give back the blocks of the replaced table and of
      // any load killed before (DuckDB truncates free blocks at the end of the file here), so
      // the file returns to a clean run's size instead of growing with every killed load.
      await c.run(`CHECKPOINT ${ALIAS}`).catch(() => undefined);
      return run;
    } finally {
      await c.run(`DETACH ${ALIAS}`).catch(() => undefined);
    }
  }

  async recordRun(run: RunRecord): Promise<void> {
    const dataset = run.destination.split('.')[0];
    await this.withConnection(async (c) => {
      for (const s of this.schemaStatements('')) await c.run(s);
      await insertRun(c, quoteIdent(dataset), run);
    });
  }

  async applyStreamBatch(write: StreamWrite): Promise<boolean> {
    const source = findSource(this.opts.catalog, write.destination.sources[0]);
    await this.withConnection((c) => applyStreamBatchDuckDb(c, write, source));
    return true;
  }

  async readOffsets(consumerGroup: string, topics: readonly string[]): Promise<StreamOffset[]> {
    return this.withConnection((c) => readOffsetsDuckDb(c, consumerGroup, topics));
  }

  async close(): Promise<void> {
    // Only a held file stays open between operations.
    if (this.held) {
      const held = this.held;
      await this.queue;
      this.side?.closeSync();
      this.side = null;
      held.close();
      if (this.held === held) this.held = null;
    }
  }
}

/**
 * The stream layer's own DuckDB file (STREAM_DUCKDB_PATH), held open by one consumer process:
 * the stream tables, their bookkeeping, and the mirror of store.dim_products availability reads.
 */
export function streamDuckDbWarehouse(file: string, catalog: Catalog, threads?: number): DuckDbWarehouse {
  return new DuckDbWarehouse({
    path: file,
    lockRetries: 0,
    catalog,
    hold: true,
    settings: threads === undefined ? undefined : { threads: String(threads) },
    destinations: (d) => d.mode === 'stream' || d.name === `${d.dataset}.dim_products`,
  });
}

/**
 * The run's row as SQL literals: a prepared statement with 12 parameters costs a few ms more than
 * the whole insert (measured 3-8 vs 1.5 ms), once per job.
 */
async function insertRun(c: DuckDBConnection, dataset: string, run: RunRecord): Promise<void> {
  const text = (s: string | null) => (s === null ? 'NULL' : sqlString(s));
  const count = (n: number) => String(Math.trunc(Number(n)));
  await c.run(
    `INSERT INTO ${dataset}._etl_runs VALUES (${[
      text(run.runId), text(run.destination), text(run.mode),
      `${text(run.startedAt.toISOString())}::TIMESTAMP`, `${text(run.endedAt.toISOString())}::TIMESTAMP`,
      count(run.rowsIn), count(run.rowsLoaded), count(run.rowsQuarantined), count(run.rowsOut),
      text(run.status), text(run.error), text(run.report),
    ].join(', ')})`,
  );
}

/**
 * Test hooks for the atomicity tests, inert unless set: ETL_TEST_FAIL_BEFORE_COMMIT=1 fails the
 * load inside its transaction; ETL_TEST_PAUSE_BEFORE_COMMIT_MS holds it open so a test can kill it.
 */
async function testFaultBeforeCommit(): Promise<void> {
  const { pauseBeforeCommitMs: pause, failBeforeCommit } = testHooks();
  if (pause > 0) {
    logger.warn('test hook: pausing inside the load transaction', { ms: pause });
    await new Promise((r) => setTimeout(r, pause));
  }
  if (failBeforeCommit) {
    throw new Error('test hook: failing the load before COMMIT (ETL_TEST_FAIL_BEFORE_COMMIT=1)');
  }
}
