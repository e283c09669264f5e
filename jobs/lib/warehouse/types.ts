/**
 * The warehouse seam. Jobs never talk to DuckDB or BigQuery directly: they stage and transform
 * in a local DuckDB scratch database, then hand the result to a Warehouse, which makes it
 * visible atomically. DuckDB (embedded, default) and BigQuery (production) implement it.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BatchDestination, StreamDestination } from '../catalog-types';

export type WarehouseKind = 'duckdb' | 'bigquery';

export type RunStatus = 'success' | 'failed';

/** One row of `<dataset>._etl_runs`: the accounting of one job run. */
export interface RunRecord {
  readonly runId: string;
  readonly destination: string;
  readonly mode: 'batch' | 'stream';
  readonly startedAt: Date;
  readonly endedAt: Date;
  /** Source rows read (blank lines excluded). */
  readonly rowsIn: number;
  /** Source rows that passed validation and were staged. rowsIn = rowsLoaded + rowsQuarantined. */
  readonly rowsLoaded: number;
  readonly rowsQuarantined: number;
  /** Rows written to the destination table. */
  readonly rowsOut: number;
  readonly status: RunStatus;
  readonly error: string | null;
  /** The data-quality report, as JSON text. */
  readonly report: string | null;
}

/** One rejected source row (or event): where it came from and why. */
export interface QuarantineRow {
  readonly runId: string;
  readonly destination: string;
  readonly source: string;
  readonly file: string;
  /** 1-based line in the file (for events: the Kafka offset). */
  readonly line: number | null;
  readonly column: string | null;
  readonly reasonCode: string;
  readonly reason: string;
  /** The raw record as read, for replay after a fix. */
  readonly raw: string;
}

/**
 * A batch result ready to load, in the job's scratch DuckDB: `quarantineTable` has
 * QuarantineRow's columns in snake_case; `fill` writes the destination's rows into a table.
 */
export interface StagedBatch {
  readonly connection: DuckDBConnection;
  readonly quarantineTable: string;
  /**
   * Writes the destination's rows into `table` (empty, with the destination's columns, reachable
   * on `connection`) and returns the run to record with them; a throw aborts the replace. The
   * DuckDB warehouse passes its target table inside the load transaction, so the transform's
   * rows are written once, straight into the file; BigQuery passes a scratch table it uploads.
   */
  fill(table: string): Promise<RunRecord>;
}

/** A StagedBatch of rows already in a scratch table (tests, tools). */
export const tableBatch = (connection: DuckDBConnection, resultTable: string, quarantineTable: string, run: RunRecord): StagedBatch => ({
  connection,
  quarantineTable,
  fill: async (table) => {
    await connection.run(`INSERT INTO ${table} BY NAME SELECT * FROM ${resultTable}`);
    return run;
  },
});

/** Typed values as written to the warehouse (DATE as 'YYYY-MM-DD', NUMERIC as string). */
export type CellValue = string | number | boolean | Date | null;
export type Row = Readonly<Record<string, CellValue>>;

/**
 * Accepted events as one text: source records' JSON texts, one per line, in arrival order (a
 * stream slice accepted whole, stream/lines.ts). One string for them all, not one each; how many
 * they are, their timestamps tell (SortedEvents).
 */
export class RecordLines {
  constructor(readonly text: string) {}
}

/** Next offset to consume for one topic partition (Kafka's committed-offset convention). */
export interface StreamOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /**
   * In a write: the batch's first offset. A stored offset past it means another member applied
   * (part of) the batch: the write is fenced whole (without it: only once the stored offset reaches `offset`).
   */
  readonly from?: string;
}

/** The stable id of one Kafka event, `<topic>-<partition>-<offset>`: BigQuery's insertId. */
export const streamEventId = (topic: string, partition: number, offset: string | number | bigint): string =>
  `${topic}-${partition}-${offset}`;

/** One consumer micro-batch: rows, rejects and offsets become visible together or not at all. */
export interface StreamWrite {
  readonly destination: StreamDestination;
  readonly consumerGroup: string;
  /** Rows upserted by the destination key (a later event for the same key wins). */
  readonly upserts: readonly Row[];
  /** The event each upsert came from, parallel to `upserts` (streamEventId): a stable row id. */
  readonly eventIds: readonly string[];
  readonly quarantine: readonly QuarantineRow[];
  readonly offsets: readonly StreamOffset[];
}

export interface Warehouse {
  readonly kind: WarehouseKind;
  /** Human-readable location for logs (file path, project.dataset). */
  readonly location: string;
  /** Creates the dataset, bookkeeping tables and any missing destination tables (idempotent). */
  ensureSchema(): Promise<void>;
  /**
   * Replaces the destination with the staged result, replaces that destination's quarantine
   * rows and records the run `staged.fill` returns - all at once: a failure or kill leaves the
   * previous table intact. Returns that run.
   */
  replaceTable(dest: BatchDestination, staged: StagedBatch): Promise<RunRecord>;
  /** Records a run that failed before it could replace anything. */
  recordRun(run: RunRecord): Promise<void>;
  /**
   * Applies one stream micro-batch and stores its offsets in the same transaction. False when
   * the batch changed nothing because the group's stored offsets were already past it (fenced).
   */
  applyStreamBatch(write: StreamWrite): Promise<boolean>;
  /** Offsets stored by applyStreamBatch for this group (empty when none). */
  readOffsets(consumerGroup: string, topics: readonly string[]): Promise<StreamOffset[]>;
  /** Present on a warehouse that can check and transform staged sources itself (BATCH_MODE=elt). */
  readonly elt?: EltTarget;
  close(): Promise<void>;
}

/** A column of an ELT staging or result table. */
export interface EltColumn {
  readonly name: string;
  readonly type: import('../catalog-types').ColumnType;
  readonly nullable: boolean;
}

/**
 * ELT (BATCH_MODE=elt): what a warehouse that runs the checks and the transform itself offers a
 * job (BigQuery). Tables named here live in the destination's dataset; the SQL is the
 * warehouse's own dialect (jobs/lib/elt/ writes it).
 */
export interface EltTarget {
  /** A table of the destination's dataset, quoted for the warehouse's SQL. */
  tableRef(dest: BatchDestination, table: string): string;
  /** The names of the tables in the destination's dataset. */
  listTables(dest: BatchDestination): Promise<string[]>;
  /** Uploads a Parquet file into `table` (created or replaced, typed by `columns`); returns the bytes sent. */
  loadParquet(dest: BatchDestination, table: string, file: string, columns: readonly EltColumn[]): Promise<number>;
  /** Creates an empty table (replacing one of that name). */
  createTable(dest: BatchDestination, table: string, columns: readonly EltColumn[]): Promise<void>;
  /** Runs a query or script; parameters are STRING (`@name`, NULL for null). Returns the last statement's rows. */
  query(what: string, sql: string, params?: Readonly<Record<string, string | null>>): Promise<Record<string, unknown>[]>;
  dropTable(dest: BatchDestination, table: string): Promise<void>;
  /**
   * In one transaction: the destination's rows become `resultTable`'s, its quarantine rows
   * `quarantineTable`'s, and `run` is recorded. Readers see the old table or the new one.
   */
  replaceFromStaging(dest: BatchDestination, resultTable: string, quarantineTable: string, run: RunRecord): Promise<void>;
}
