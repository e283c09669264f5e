/**
 * BigQuery's side of ELT (BATCH_MODE=elt, jobs/lib/elt/): Parquet load jobs into the run's
 * staging tables, SQL jobs, table listing and dropping, and the one transaction that replaces a
 * destination from its result table.
 */
import fs from 'node:fs';
import type { BigQuery, Table } from '@google-cloud/bigquery';
import type { BatchDestination } from '../../catalog-types';
import type { RetryPolicy } from '../../retry';
import type { EltColumn, EltTarget, RunRecord } from '../types';
import { withRetry } from './retry';
import { QUARANTINE_NDJSON_COLUMNS } from './schema';

export interface BigQueryEltOptions {
  readonly client: BigQuery;
  readonly projectId: string;
  readonly location: string;
  readonly retry: RetryPolicy;
  readonly pollIntervalMs?: number;
  datasetOf(dest: BatchDestination): string;
  ensureSchema(): Promise<void>;
  query(what: string, sql: string, params: Record<string, unknown>, types: Record<string, string>): Promise<Record<string, unknown>[]>;
  /** The run-record INSERT and its parameters (warehouse.ts). */
  insertRun(target: string): string;
  runParams(run: RunRecord): Record<string, unknown>;
  runParamTypes: Record<string, string>;
}

const schemaOf = (columns: readonly EltColumn[]) => ({
  fields: columns.map((c) => ({ name: c.name, type: c.type, mode: c.nullable ? 'NULLABLE' : 'REQUIRED' })),
});

export function bigQueryElt(o: BigQueryEltOptions): EltTarget {
  const table = (dest: BatchDestination, name: string): Table =>
    o.client.dataset(o.datasetOf(dest), { location: o.location }).table(name, { location: o.location });
  const ref = (dest: BatchDestination, name: string) => `\`${o.projectId}.${o.datasetOf(dest)}.${name}\``;
  const stringParams = (params: Readonly<Record<string, string | null>>) =>
    Object.fromEntries(Object.keys(params).map((k) => [k, 'STRING']));
  return {
    tableRef: ref,

    async listTables(dest) {
      await o.ensureSchema();
      return withRetry(`list tables of ${o.datasetOf(dest)}`, o.retry, async () => {
        const [tables] = await o.client.dataset(o.datasetOf(dest), { location: o.location }).getTables({ autoPaginate: true });
        return tables.map((t) => String(t.id));
      });
    },

    async loadParquet(dest, name, file, columns) {
      await o.ensureSchema();
      const bytes = fs.statSync(file).size;
      await withRetry(`load job into ${o.datasetOf(dest)}.${name}`, o.retry, async () => {
        const out = table(dest, name).createWriteStream({
          sourceFormat: 'PARQUET',
          writeDisposition: 'WRITE_TRUNCATE',
          createDisposition: 'CREATE_IF_NEEDED',
          schema: schemaOf(columns),
          jobPrefix: `store_elt_${name}_`,
        } as Parameters<Table['createWriteStream']>[0]);
        await new Promise<void>((resolve, reject) => {
          out.on('error', reject);
          if (o.pollIntervalMs) {
            out.on('job', (job: { pollIntervalMs?: number } | null) => {
              if (job) job.pollIntervalMs = o.pollIntervalMs;
            });
          }
          out.on('complete', (job: { metadata?: { status?: { errorResult?: unknown; errors?: unknown[] } } }) => {
            const status = job?.metadata?.status;
            if (status?.errorResult) reject(Object.assign(new Error('load job failed'), { errors: status.errors ?? [status.errorResult] }));
            else resolve();
          });
          const input = fs.createReadStream(file);
          input.on('error', (e) => out.destroy(e));
          input.pipe(out);
        });
      });
      return bytes;
    },

    async createTable(dest, name, columns) {
      await o.ensureSchema();
      await withRetry(`create table ${o.datasetOf(dest)}.${name}`, o.retry, async () => {
        try {
          await table(dest, name).delete();
        } catch (e) {
          if ((e as { code?: number }).code !== 404) throw e;
        }
        await o.client.dataset(o.datasetOf(dest)).createTable(name, { schema: schemaOf(columns), location: o.location });
      });
    },

    async query(what, sql, params = {}) {
      await o.ensureSchema();
      return o.query(what, sql, { ...params }, stringParams(params));
    },

    async dropTable(dest, name) {
      await withRetry(`drop table ${o.datasetOf(dest)}.${name}`, o.retry, async () => {
        try {
          await table(dest, name).delete();
        } catch (e) {
          if ((e as { code?: number }).code !== 404) throw e;
        }
      });
    },

    async replaceFromStaging(dest, resultTable, quarantineTable, run) {
      const cols = dest.columns.map((c) => `\`${c.name}\``).join(', ');
      const qCols = QUARANTINE_NDJSON_COLUMNS.map((c) => c.name).join(', ');
      // DML only (BigQuery refuses DDL on permanent tables inside a transaction): all or nothing.
      const script = [
        'BEGIN TRANSACTION;',
        `DELETE FROM ${ref(dest, dest.table)} WHERE TRUE;`,
        `INSERT INTO ${ref(dest, dest.table)} (${cols}) SELECT ${cols} FROM ${ref(dest, resultTable)};`,
        `DELETE FROM ${ref(dest, '_quarantine')} WHERE destination = @destination;`,
        `INSERT INTO ${ref(dest, '_quarantine')} (${qCols}) SELECT ${qCols} FROM ${ref(dest, quarantineTable)};`,
        `${o.insertRun(ref(dest, '_etl_runs'))};`,
        'COMMIT TRANSACTION;',
      ].join('\n');
      await o.query(`replace ${dest.name} (ELT)`, script, { destination: dest.name, ...o.runParams(run) }, { destination: 'STRING', ...o.runParamTypes });
    },
  };
}
