/**
 * Shared by the ELT suites: a service-account key for WAREHOUSE=bigquery against the double, the
 * five batch jobs run into a warehouse in a given mode, and every table they write read back in
 * the canonical form of canonical.ts (destinations, `_quarantine`, run counts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { ColumnType } from '../../jobs/lib/catalog-types';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { query } from '../helpers/env';
import { type BigQueryDouble, doubleForSuite, PROJECT, writeThrowawayKey } from './bigquery-double';
import { canonicalRow, duckCanonical } from './canonical';

export const BATCH = catalog.destinations.filter((d) => d.mode === 'batch');

/** Environment for WAREHOUSE=bigquery against the double, with a key file written to `dir`. */
export function bigQueryEnv(dir: string): Record<string, string> {
  const key = writeThrowawayKey(path.join(dir, 'key.json'));
  return { GCP_PROJECT_ID: PROJECT, GOOGLE_APPLICATION_CREDENTIALS: key, BIGQUERY_LOCATION: 'EU', BIGQUERY_MAX_RETRIES: '0' };
}

/**
 * For a describe that runs batch jobs on the double: before its tests, starts the double, makes a
 * temporary folder and puts bigQueryEnv's settings and `extra` into process.env (no
 * BIGQUERY_DATASET); after them, stops the double and restores process.env and the folder.
 * `bq` and `dir` are set once the describe's beforeAll has run.
 */
export function batchOnDouble(prefix: string, extra: Record<string, string> = {}): { bq: BigQueryDouble; dir: string } {
  const suite = doubleForSuite();
  const on = {
    get bq(): BigQueryDouble {
      return suite.bq;
    },
    dir: '',
  };
  const saved = { ...process.env };
  beforeAll(() => {
    on.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    Object.assign(process.env, bigQueryEnv(on.dir), extra);
    delete process.env.BIGQUERY_DATASET;
  });
  afterAll(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    if (on.dir) fs.rmSync(on.dir, { recursive: true, force: true });
  });
  return on;
}

export type Target = { kind: 'duckdb'; path: string } | { kind: 'bigquery'; mode: 'etl' | 'elt'; dataset: string };

/** Runs one batch job into a target (its own state folder under `dir`). */
export async function runJob(table: string, target: Target, sourceDir: string, dir: string) {
  if (target.kind === 'duckdb') {
    return runBatchJob(catalog, table, loadConfig({ ...process.env, WAREHOUSE: 'duckdb', BATCH_MODE: 'etl' }, { sourceDir, stateDir: path.join(dir, 'duck'), duckdbPath: target.path }));
  }
  // The BigQuery adapter reads its settings from the process environment (fromEnv).
  const before = process.env.BIGQUERY_DATASET;
  process.env.BIGQUERY_DATASET = target.dataset;
  try {
    return await runBatchJob(catalog, table, loadConfig(
      { ...process.env, WAREHOUSE: 'bigquery', BATCH_MODE: target.mode },
      { sourceDir, stateDir: path.join(dir, target.dataset) },
    ));
  } finally {
    if (before === undefined) delete process.env.BIGQUERY_DATASET;
    else process.env.BIGQUERY_DATASET = before;
  }
}

const QUARANTINE_COMPARED = ['destination', 'source', 'file', 'line', 'column_name', 'reason_code', 'reason', 'raw'];
const Q_TYPES: ColumnType[] = ['STRING', 'STRING', 'STRING', 'INT64', 'STRING', 'STRING', 'STRING', 'STRING'];
const COUNTS = ['destination', 'rows_in', 'rows_loaded', 'rows_quarantined', 'rows_out', 'status'];
const C_TYPES: ColumnType[] = ['STRING', 'INT64', 'INT64', 'INT64', 'INT64', 'STRING'];

/** Every batch table, `_quarantine` and the run counts of a target, canonical and sorted. */
export async function readTarget(target: Target, bq: BigQueryDouble): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  if (target.kind === 'duckdb') {
    for (const d of BATCH) {
      out[d.table] = (await query(target.path, `SELECT ${d.columns.map((c) => duckCanonical(c.name, c.type)).join(', ')} FROM ${d.dataset}.${d.table}`))
        .map((r) => canonicalRow(r, d.columns.map((c) => c.type))).sort();
    }
    out._quarantine = (await query(target.path, `SELECT ${QUARANTINE_COMPARED.map((c) => `CAST(${c} AS VARCHAR)`).join(', ')} FROM store._quarantine`))
      .map((r) => canonicalRow(r, Q_TYPES)).sort();
    out._etl_runs = (await query(target.path, `SELECT ${COUNTS.map((c) => `CAST(${c} AS VARCHAR)`).join(', ')} FROM store._etl_runs`))
      .map((r) => canonicalRow(r, C_TYPES)).sort();
    return out;
  }
  const read = async (table: string, cols: string[], types: ColumnType[]) =>
    (await bq.sql(`SELECT ${cols.map((c) => `\`${c}\``).join(', ')} FROM \`${PROJECT}.${target.dataset}.${table}\``))
      .map((r) => canonicalRow(cols.map((c) => r[c]), types)).sort();
  for (const d of BATCH) out[d.table] = await read(d.table, d.columns.map((c) => c.name), d.columns.map((c) => c.type));
  out._quarantine = await read('_quarantine', QUARANTINE_COMPARED, Q_TYPES);
  out._etl_runs = await read('_etl_runs', COUNTS, C_TYPES);
  return out;
}

/** Tables of a dataset of the double whose name starts with `_stg_` (ELT staging tables). */
export async function stagingTables(bq: BigQueryDouble, dataset: string): Promise<string[]> {
  const [tables] = await bq.client().dataset(dataset).getTables();
  return tables.map((t) => String(t.id)).filter((n) => n.startsWith('_stg_')).sort();
}
