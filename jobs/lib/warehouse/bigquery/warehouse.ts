/**
 * The production warehouse: Google BigQuery, through @google-cloud/bigquery.
 *
 * Selected with WAREHOUSE=bigquery; GCP_PROJECT_ID names the project, GOOGLE_APPLICATION_CREDENTIALS
 * a service-account key (Application Default Credentials when unset), BIGQUERY_DATASET overrides the
 * catalog's dataset, BIGQUERY_LOCATION the location (default US), BIGQUERY_MAX_RETRIES the retries.
 *
 * Guarantees (see docs/production.md, "What the BigQuery adapter guarantees"):
 * - Batch replace: the staged result is streamed out of the scratch DuckDB as newline-delimited JSON
 *   into ONE load job with WRITE_TRUNCATE and the catalog schema, so readers see the old table or
 *   the new one, never a mix. The destination's quarantine rows and the run record follow in one
 *   multi-statement transaction right after; if that step fails after its retries, the new table is
 *   in place and the error is raised (the job fails, its next run rewrites both).
 * - Stream micro-batch: events are appended to `_changelog_<table>` with insertId = the event id
 *   (<topic>-<partition>-<offset>), so a retried insert is de-duplicated by BigQuery (best effort,
 *   about a minute). The upsert into the destination, the quarantined events and the consumer
 *   offsets are then applied in ONE transaction (MERGE by the catalog key), so the destination and
 *   `_stream_offsets` move together: resuming from readOffsets neither loses nor re-applies a batch.
 *   A transaction whose outcome was lost and that is retried is harmless (MERGE is idempotent).
 * - Schema evolution: ensureSchema adds the catalog columns an existing destination or changelog
 *   lacks (`_rescued_data` on tables made before the schema contracts, an accepted field).
 */
import { BigQuery, type BigQueryOptions, type Query, type Table } from '@google-cloud/bigquery';
import type { BatchDestination, Catalog, DestinationTable } from '../../catalog-types';
import { duckdbCreateTable } from '../../ddl';
import { logger } from '../../log';
import { bigquerySettings } from '../../config';
import {
  AVAILABILITY_SCHEMA,
  changelogSchema,
  changelogTable,
  destinationSchema,
  duckdbNdjsonSelect,
  ETL_RUNS_SCHEMA,
  QUARANTINE_NDJSON_COLUMNS,
  QUARANTINE_SCHEMA,
  quarantineStagingTable,
  STREAM_OFFSETS_SCHEMA,
  type BigQueryTableSchema,
} from './schema';
import type { RetryPolicy } from '../../retry';
import type { EltTarget, RunRecord, StagedBatch, StreamOffset, StreamWrite, Warehouse } from '../types';
import { bqIdent } from '../../sql/quote';
import { bigQueryElt } from './elt';
import { INSERT_RUN, type QueryParamType, RUN_PARAM_TYPES, runParams } from './statements';
import {
  applyStreamBatchBigQuery,
  type BigQueryStreamTarget,
  mergeAvailabilityBigQuery,
  readOffsetsBigQuery,
  readSnapshotJsonBigQuery,
} from './stream-write';
import { DEFAULT_RETRY, withRetry } from './retry';
import { AVAILABILITY_TABLE } from '../duckdb/stream-ddl';
import { acceptFieldBigQuery } from '../../accept-field';

export { BigQueryPermanentError } from './retry';

/** The scratch table a batch result is written to before its load job. */
const RESULT_SCRATCH = '_bigquery_result';

export { streamEventId } from '../types';

export interface BigQueryWarehouseOptions {
  readonly client: BigQuery;
  readonly projectId: string;
  readonly location: string;
  readonly catalog: Catalog;
  /** Replaces every catalog dataset name (BIGQUERY_DATASET). */
  readonly dataset?: string;
  readonly retry?: RetryPolicy;
  /** How often a load job's status is polled (ms). */
  readonly pollIntervalMs?: number;
}


export class BigQueryWarehouse implements Warehouse {
  readonly kind = 'bigquery' as const;
  readonly location: string;
  private readonly retry: RetryPolicy;
  private schemaReady: Promise<void> | null = null;

  constructor(private readonly opts: BigQueryWarehouseOptions) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
    const datasets = [...new Set(opts.catalog.destinations.map((d) => this.datasetOf(d)))];
    this.location = `bigquery://${opts.projectId}/${datasets.join(',')} (${opts.location})`;
  }

  /** Builds the adapter from the environment (see .env.example). */
  static fromEnv(env: NodeJS.ProcessEnv | undefined, catalog: Catalog, extra: Partial<BigQueryOptions> = {}): BigQueryWarehouse {
    const { projectId, location, keyFilename, dataset, maxRetries: retries } = bigquerySettings(env);
    if (!projectId) {
      throw new Error('WAREHOUSE=bigquery needs GCP_PROJECT_ID (the Google Cloud project that holds the dataset)');
    }
    const client = new BigQuery({ projectId, location, keyFilename, autoRetry: false, ...extra });
    return new BigQueryWarehouse({
      client,
      projectId,
      location,
      catalog,
      dataset,
      retry: { ...DEFAULT_RETRY, retries },
    });
  }

  datasetOf(dest: DestinationTable | string): string {
    if (this.opts.dataset) return this.opts.dataset;
    return typeof dest === 'string' ? dest : dest.dataset;
  }

  private datasets(): string[] {
    return [...new Set(this.opts.catalog.destinations.map((d) => this.datasetOf(d)))];
  }

  private table(dataset: string, table: string): Table {
    return this.opts.client.dataset(dataset, { location: this.opts.location }).table(table, {
      location: this.opts.location,
    });
  }

  /** `project.dataset.table`, quoted for standard SQL. */
  private fq(dataset: string, table: string): string {
    return `\`${this.opts.projectId}.${dataset}.${table}\``;
  }

  // ---------------------------------------------------------------- schema

  async ensureSchema(): Promise<void> {
    for (const ds of this.datasets()) {
      await withRetry(`create dataset ${ds}`, this.retry, () =>
        ignoreAlreadyExists(this.opts.client.createDataset(ds, { location: this.opts.location })),
      );
      await this.createTable(ds, '_etl_runs', ETL_RUNS_SCHEMA, 'One row per ETL job run.');
      await this.createTable(ds, '_quarantine', QUARANTINE_SCHEMA, 'Rejected source rows and events, with the reason.');
      await this.createTable(ds, '_stream_offsets', STREAM_OFFSETS_SCHEMA, 'Next Kafka offset per consumer group, topic and partition.');
    }
    // The speed layer's derived table, in each dataset with stream tables (stream/availability-store.ts).
    for (const ds of new Set(this.opts.catalog.destinations.filter((d) => d.mode === 'stream').map((d) => this.datasetOf(d)))) {
      await this.createTable(ds, AVAILABILITY_TABLE, AVAILABILITY_SCHEMA, 'Real-time availability per vendor, product and option.');
    }
    for (const dest of this.opts.catalog.destinations) {
      const ds = this.datasetOf(dest);
      await this.createOrWidenTable(ds, dest.table, destinationSchema(dest), dest.description);
      if (dest.mode === 'stream') {
        await this.createOrWidenTable(ds, changelogTable(dest), changelogSchema(dest), `Events applied to ${dest.table}.`);
      }
    }
  }

  /**
   * Creates a catalog table, or, when it exists, adds the catalog columns it lacks: a table made
   * before the schema contracts gains `_rescued_data`, one made before a field was accepted gains
   * that column (ALTER TABLE ... ADD COLUMN IF NOT EXISTS, NULL in the rows already there). One
   * tables.get per existing table; no DDL job when nothing is missing, so it stays idempotent.
   */
  private async createOrWidenTable(ds: string, table: string, schema: BigQueryTableSchema, description: string): Promise<void> {
    if (await this.createTable(ds, table, schema, description)) return;
    const [meta] = await withRetry(`read schema of ${ds}.${table}`, this.retry, () => this.table(ds, table).getMetadata());
    const have = new Set(((meta as { schema?: { fields?: { name: string }[] } }).schema?.fields ?? []).map((f) => f.name.toLowerCase()));
    const missing = schema.fields.filter((f) => !have.has(String(f.name).toLowerCase()));
    if (missing.length === 0) return;
    const required = missing.filter((f) => f.mode === 'REQUIRED').map((f) => f.name);
    if (required.length > 0) {
      // BigQuery adds only NULLABLE columns to a table that has rows.
      throw new Error(`${ds}.${table} lacks the REQUIRED column(s) ${required.join(', ')} of the catalog: BigQuery cannot add them to an existing table`);
    }
    const adds = missing.map((f) => `ADD COLUMN IF NOT EXISTS ${bqIdent(String(f.name))} ${f.type}`).join(', ');
    await this.query(`add columns to ${ds}.${table}`, `ALTER TABLE ${this.fq(ds, table)} ${adds}`, {}, {});
    logger.info('bigquery: table gained catalog columns', { table: `${ds}.${table}`, columns: missing.map((f) => f.name) });
  }

  private ensureSchemaOnce(): Promise<void> {
    if (!this.schemaReady) {
      this.schemaReady = this.ensureSchema().catch((e) => {
        this.schemaReady = null;
        throw e;
      });
    }
    return this.schemaReady;
  }

  /** Creates the table unless it exists; true when it was created. */
  private async createTable(ds: string, table: string, schema: BigQueryTableSchema, description: string): Promise<boolean> {
    return withRetry(`create table ${ds}.${table}`, this.retry, () =>
      ignoreAlreadyExists(
        this.opts.client.dataset(ds).createTable(table, { schema: { fields: schema.fields }, description, location: this.opts.location }),
      ),
    );
  }

  // ---------------------------------------------------------------- batch

  async replaceTable(dest: BatchDestination, staged: StagedBatch): Promise<RunRecord> {
    await this.ensureSchemaOnce();
    const ds = this.datasetOf(dest);
    const started = Date.now();
    // 0. The rows into a scratch table, which the load job uploads.
    await staged.connection.run(duckdbCreateTable(dest, RESULT_SCRATCH, true));
    const run = await staged.fill(RESULT_SCRATCH);
    // 1. Rejected rows to a staging table (nothing visible changes yet).
    const qTable = quarantineStagingTable(dest);
    await this.loadFromDuckDb(ds, qTable, QUARANTINE_SCHEMA, staged, duckdbNdjsonSelect(QUARANTINE_NDJSON_COLUMNS, staged.quarantineTable));
    // 2. The atomic swap: one load job, WRITE_TRUNCATE.
    const rows = await this.loadFromDuckDb(ds, dest.table, destinationSchema(dest), staged, duckdbNdjsonSelect(dest.columns, RESULT_SCRATCH));
    // 3. Quarantine rows of this destination and the run record, together.
    const script = [
      'BEGIN TRANSACTION;',
      `DELETE FROM ${this.fq(ds, '_quarantine')} WHERE destination = @destination;`,
      `INSERT INTO ${this.fq(ds, '_quarantine')} (${QUARANTINE_NDJSON_COLUMNS.map((c) => c.name).join(', ')}) ` +
        `SELECT ${QUARANTINE_NDJSON_COLUMNS.map((c) => c.name).join(', ')} FROM ${this.fq(ds, qTable)};`,
      `${INSERT_RUN(this.fq(ds, '_etl_runs'))};`,
      'COMMIT TRANSACTION;',
    ].join('\n');
    await this.query(`record run of ${dest.name}`, script, { destination: dest.name, ...runParams(run) }, RUN_PARAM_TYPES);
    logger.info('bigquery: table replaced', { destination: dest.name, rows, ms: Date.now() - started });
    return run;
  }

  async recordRun(run: RunRecord): Promise<void> {
    await this.ensureSchemaOnce();
    const ds = this.datasetOf(run.destination.split('.')[0]);
    await this.query(`record run of ${run.destination}`, INSERT_RUN(this.fq(ds, '_etl_runs')), runParams(run), RUN_PARAM_TYPES);
  }

  /**
   * Streams `select` (one NDJSON line per row) out of the scratch DuckDB into one load job that
   * replaces `table`. Retried as a whole (WRITE_TRUNCATE makes a repeat harmless). Returns the rows.
   */
  private async loadFromDuckDb(
    ds: string,
    table: string,
    schema: BigQueryTableSchema,
    staged: StagedBatch,
    select: string,
  ): Promise<number> {
    return withRetry(`load job into ${ds}.${table}`, this.retry, async () => {
      const t = this.table(ds, table);
      const out = t.createWriteStream({
        sourceFormat: 'NEWLINE_DELIMITED_JSON',
        writeDisposition: 'WRITE_TRUNCATE',
        createDisposition: 'CREATE_IF_NEEDED',
        schema: { fields: schema.fields },
        jobPrefix: `store_etl_${table}_`,
      } as Parameters<Table['createWriteStream']>[0]);
      const done = new Promise<void>((resolve, reject) => {
        out.on('error', reject);
        if (this.opts.pollIntervalMs) {
          out.on('job', (job: { pollIntervalMs?: number } | null) => {
            if (job) job.pollIntervalMs = this.opts.pollIntervalMs;
          });
        }
        out.on('complete', (job: { metadata?: { status?: { errorResult?: unknown; errors?: unknown[] } } }) => {
          const status = job?.metadata?.status;
          if (status?.errorResult) reject(Object.assign(new Error('load job failed'), { errors: status.errors ?? [status.errorResult] }));
          else resolve();
        });
      });
      let rows = 0;
      try {
        const result = await staged.connection.stream(select);
        for await (const chunk of result.yieldRows()) {
          let text = '';
          for (const r of chunk) text += `${String(r[0])}\n`;
          rows += chunk.length;
          if (!out.write(text)) await waitDrainOrError(out);
        }
        out.end();
      } catch (e) {
        out.destroy(e as Error);
        throw e;
      }
      await done;
      return rows;
    });
  }

  // ---------------------------------------------------------------- stream (stream-write.ts)

  async applyStreamBatch(write: StreamWrite): Promise<boolean> {
    await this.ensureSchemaOnce();
    return applyStreamBatchBigQuery(this.streamTarget(), write);
  }

  async readOffsets(consumerGroup: string, topics: readonly string[]): Promise<StreamOffset[]> {
    if (topics.length === 0) return [];
    await this.ensureSchemaOnce();
    return readOffsetsBigQuery(this.streamTarget(), this.datasets(), consumerGroup, topics);
  }

  /** One snapshot of `tables` and the group's offsets (stream-write.ts readSnapshotJsonBigQuery). */
  async readSnapshotJson(
    dataset: string,
    tables: readonly string[],
    consumerGroup: string,
    topics: readonly string[],
  ): Promise<{ rows: Map<string, string[]>; offsets: StreamOffset[] }> {
    await this.ensureSchemaOnce();
    return readSnapshotJsonBigQuery(this.streamTarget(), dataset, tables, consumerGroup, topics);
  }

  /** Upserts availability rows in one MERGE (stream-write.ts mergeAvailabilityBigQuery). */
  async mergeAvailability(dataset: string, rowsJson: readonly string[]): Promise<void> {
    if (rowsJson.length === 0) return;
    await this.ensureSchemaOnce();
    await mergeAvailabilityBigQuery(this.streamTarget(), dataset, rowsJson);
  }

  private streamTarget(): BigQueryStreamTarget {
    return {
      retry: this.retry,
      datasetOf: (d) => this.datasetOf(d),
      table: (ds, t) => this.table(ds, t),
      fq: (ds, t) => this.fq(ds, t),
      query: (what, sql, params, types) => this.query(what, sql, params, types),
    };
  }

  /**
   * Accepting a field (jobs/lib/accept-field.ts): fills `column` from `_rescued_data` in the rows
   * already loaded and removes the key there. The table gains the column first (ensureSchema).
   * Returns the rows changed. A retry after a lost reply changes nothing more (the keys are gone).
   */
  async acceptField(dest: DestinationTable, field: string, column = field): Promise<number> {
    await this.ensureSchemaOnce();
    const sql = acceptFieldBigQuery(dest, this.fq(this.datasetOf(dest), dest.table), field, column);
    return withRetry(`accept ${field} into ${dest.name}`, this.retry, async () => {
      const [job] = await this.opts.client.createQueryJob({ query: sql, location: this.opts.location, jobPrefix: 'store_etl_' } as Query);
      const [, , response] = await job.getQueryResults();
      return Number((response as { numDmlAffectedRows?: string } | undefined)?.numDmlAffectedRows ?? 0);
    });
  }

  /** BATCH_MODE=elt: staging tables, SQL jobs and the atomic replace of a run in BigQuery (elt.ts). */
  get elt(): EltTarget {
    return bigQueryElt({
      client: this.opts.client, projectId: this.opts.projectId, location: this.opts.location, retry: this.retry,
      pollIntervalMs: this.opts.pollIntervalMs,
      datasetOf: (d) => this.datasetOf(d), ensureSchema: () => this.ensureSchemaOnce(),
      query: (what, sql, params, types) => this.query(what, sql, params, types as Record<string, QueryParamType>),
      insertRun: INSERT_RUN, runParams, runParamTypes: RUN_PARAM_TYPES as Record<string, string>,
    });
  }

  async close(): Promise<void> {
    // The client holds no connections that need closing.
  }

  // ---------------------------------------------------------------- queries

  /** Runs a query job (a script when it has several statements) and returns its rows. */
  private async query(
    what: string,
    sql: string,
    params: Record<string, unknown>,
    types: Record<string, QueryParamType>,
  ): Promise<Record<string, unknown>[]> {
    return withRetry(what, this.retry, async () => {
      const [job] = await this.opts.client.createQueryJob({
        query: sql,
        params,
        types: Object.fromEntries(Object.entries(types).filter(([k]) => k in params)),
        location: this.opts.location,
        jobPrefix: 'store_etl_',
      } as Query);
      const [rows] = await job.getQueryResults();
      return rows as Record<string, unknown>[];
    });
  }
}

// ------------------------------------------------------------------ helpers

/** True when `p` created something, false when it already existed (HTTP 409). */
async function ignoreAlreadyExists(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (e) {
    if ((e as { code?: number }).code === 409) return false;
    throw e;
  }
}

function waitDrainOrError(s: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      s.removeListener('error', onError);
      resolve();
    };
    const onError = (e: Error) => {
      s.removeListener('drain', onDrain);
      reject(e);
    };
    s.once('drain', onDrain);
    s.once('error', onError);
  });
}
