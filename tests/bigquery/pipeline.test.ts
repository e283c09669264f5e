/**
 * The five batch jobs on the committed fixture (tests/fixtures/store-export) and on a generated set
 * with faults and schema drift (scripts/generate-data.ts --faults, plus added columns), once into
 * DuckDB and once with WAREHOUSE=bigquery into the executing double (openWarehouse -> BigQueryWarehouse.fromEnv
 * with a service-account key file generated here, never committed): every destination table,
 * its `_quarantine` rows and the run counts must be identical row for row.
 *
 * Values are compared in the canonical form of canonical.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { ColumnType } from '../../jobs/lib/catalog-types';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { generate } from '../../scripts/generate-data';
import { query } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { describeWithDouble, PROJECT } from './bigquery-double';
import { canonicalRow, duckCanonical } from './canonical';
import { batchOnDouble } from './elt-helpers';

// The real client and auth library, their HTTP layers loadable under jest (teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const batch = catalog.destinations.filter((d) => d.mode === 'batch');
/** Appends a column to a tab-separated source file: `name` to the header, `value(i)` to its i-th non-blank row. */
function addColumn(file: string, name: string, value: (i: number) => string): void {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').split('\n');
  let i = 0;
  const body = rows.map((l) => (l.trim() === '' ? l : `${l}\t${value(i++)}`));
  fs.writeFileSync(file, [`${head.trimEnd()}\t${name}`, ...body].join('\n'));
}

const QUARANTINE_COMPARED = ['destination', 'source', 'file', 'line', 'column_name', 'reason_code', 'reason', 'raw'];

describeWithDouble('batch jobs into BigQuery (the executing double) equal the DuckDB warehouse', () => {
  const on = batchOnDouble('bq-pipeline-', {
    // The ETL path (upload of the finished table); ELT, the default on BigQuery, is elt.test.ts's.
    BATCH_MODE: 'etl',
  });


  /** Runs the five jobs on `sourceDir` into a fresh DuckDB file and the (reset) double; compares everything. */
  async function expectSameWarehouses(sourceDir: string, label: string): Promise<Record<string, string[]>> {
    await on.bq.reset();
    const out = path.join(on.dir, label);
    const duckPath = path.join(out, 'warehouse.duckdb');
    for (const d of batch) {
      const toDuck = await runBatchJob(catalog, d.table, loadConfig({ ...process.env, WAREHOUSE: 'duckdb' }, { sourceDir, stateDir: path.join(out, 'duck'), duckdbPath: duckPath }));
      const toBq = await runBatchJob(catalog, d.table, loadConfig({ ...process.env, WAREHOUSE: 'bigquery' }, { sourceDir, stateDir: path.join(out, 'bq') }));
      expect(toBq.run.status).toBe('success');
      expect(toDuck.run.status).toBe('success');
    }
    // Authenticated with the key file: a JWT-bearer grant, then the token on every call.
    expect(JSON.stringify(on.bq.requests.find((r) => r.path === 'oauth2:/token')?.body)).toContain('jwt-bearer');

    const seen: Record<string, string[]> = {};
    for (const d of batch) {
      const types = d.columns.map((c) => c.type);
      const duckRows = (await query(duckPath, `SELECT ${d.columns.map((c) => duckCanonical(c.name, c.type)).join(', ')} FROM ${d.dataset}.${d.table}`))
        .map((r) => canonicalRow(r, types)).sort();
      const bqRows = (await on.bq.sql(`SELECT * FROM \`${PROJECT}.${d.dataset}.${d.table}\``))
        .map((r) => canonicalRow(d.columns.map((c) => r[c.name]), types)).sort();
      expect(bqRows.length).toBeGreaterThan(0);
      expect({ label, table: d.table, rows: bqRows }).toEqual({ label, table: d.table, rows: duckRows });
      seen[d.table] = duckRows;
    }

    const qTypes: ColumnType[] = ['STRING', 'STRING', 'STRING', 'INT64', 'STRING', 'STRING', 'STRING', 'STRING'];
    const duckQ = (await query(duckPath, `SELECT ${QUARANTINE_COMPARED.map((c) => `CAST(${c} AS VARCHAR)`).join(', ')} FROM store._quarantine`)).map((r) => canonicalRow(r, qTypes)).sort();
    const bqQ = (await on.bq.sql(`SELECT ${QUARANTINE_COMPARED.join(', ')} FROM \`${PROJECT}.store._quarantine\``)).map((r) => canonicalRow(QUARANTINE_COMPARED.map((c) => r[c]), qTypes)).sort();
    expect(duckQ.length).toBeGreaterThan(0);
    expect({ label, rows: bqQ }).toEqual({ label, rows: duckQ });
    seen._quarantine = duckQ;

    const counts = 'destination, rows_in, rows_loaded, rows_quarantined, rows_out, status';
    const cTypes: ColumnType[] = ['STRING', 'INT64', 'INT64', 'INT64', 'INT64', 'STRING'];
    const duckRuns = (await query(duckPath, `SELECT ${counts.split(', ').map((c) => `CAST(${c} AS VARCHAR)`).join(', ')} FROM store._etl_runs`)).map((r) => canonicalRow(r, cTypes)).sort();
    const bqRuns = (await on.bq.sql(`SELECT ${counts} FROM \`${PROJECT}.store._etl_runs\``)).map((r) => canonicalRow(counts.split(', ').map((c) => r[c]), cTypes)).sort();
    expect(bqRuns).toHaveLength(batch.length);
    expect({ label, runs: bqRuns }).toEqual({ label, runs: duckRuns });
    return seen;
  }

  test('the committed fixture: every batch table, its quarantine rows and its run counts, row for row', async () => {
    await expectSameWarehouses(STORE_EXPORT, 'fixture');
  }, 300_000);

  test('a generated set with faults and schema drift: every batch table, its quarantine rows and its run counts, row for row', async () => {
    const src = path.join(on.dir, 'generated');
    await generate({ orders: 300, out: src, seed: 5, faults: true, faultRate: 0.05 });
    // Drift on top of the generator's faults: an added column in a plain source (rescued), in the
    // password source (rescued masked), and a row whose added value is empty (nothing rescued).
    addColumn(path.join(src, 'vendor.txt'), 'vendor_country', (i) => (i === 2 ? '' : `C${i % 3}`));
    addColumn(path.join(src, 'user.txt'), 'pin', (i) => `pw-${i}`);
    const seen = await expectSameWarehouses(src, 'generated');
    // The faults and the drift took effect (on both sides, since they are equal).
    const reasons = new Set(seen._quarantine.map((r) => JSON.parse(r)[5]));
    expect(reasons.size).toBeGreaterThanOrEqual(3);
    expect(seen.dim_vendors.filter((r) => r.includes('vendor_country')).length).toBeGreaterThan(0);
    expect(seen.dim_users.some((r) => r.includes('pw-'))).toBe(false);
    expect(seen.dim_users.filter((r) => r.includes('\\"pin\\"')).length).toBeGreaterThan(0);
  }, 300_000);

  test('a warehouse that refuses the load fails the job with exit code 3 and a clear reason', async () => {
    on.bq.failNext('POST', /\/upload\/.*jobs/, 403, 'accessDenied', 'Access Denied: Table test-project:store._staging_quarantine_dim_vendors: Permission bigquery.tables.updateData denied');
    const config = loadConfig({ ...process.env, WAREHOUSE: 'bigquery' }, { sourceDir: STORE_EXPORT, stateDir: path.join(on.dir, 'bq') });
    const err = await runBatchJob(catalog, 'dim_vendors', config).catch((e) => e);
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(/loading store\.dim_vendors into bigquery .*failed: BigQuery load job into store\._staging_quarantine_dim_vendors failed \(HTTP 403\) after 1 attempt: accessDenied: Access Denied/);
  });
});
