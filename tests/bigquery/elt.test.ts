/**
 * ELT (BATCH_MODE=elt) on the executing BigQuery double: the five batch jobs on the committed
 * fixture, and on a generated set with faults, give the same destination tables, `_quarantine`
 * rows and run counts, row for row, as ETL into BigQuery and as the DuckDB warehouse
 * (canonical.ts's form); what the ELT uploads is Parquet with no card number in clear; its
 * staging tables are gone after the run; BATCH_MODE=elt with WAREHOUSE=duckdb is refused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { maskCardRuns } from '../../jobs/lib/pii';
import { generate } from '../../scripts/generate-data';
import { row, writeSources } from '../batch/faulty-files';
import { sourceFolder } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { describeWithDouble } from './bigquery-double';
import { BATCH, batchOnDouble, readTarget, runJob, stagingTables, type Target } from './elt-helpers';

jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

/** Every row of a Parquet file as the text of its values (for the PII check). */
async function parquetText(bytes: Buffer, dir: string): Promise<string> {
  const file = path.join(dir, `upload-${Math.random().toString(36).slice(2)}.parquet`);
  fs.writeFileSync(file, bytes);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const rows = (await c.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowsJS();
    return rows.map((r) => r.map((v) => (v === null ? '' : String(v))).join('\t')).join('\n');
  } finally {
    c.closeSync();
    db.closeSync();
    fs.rmSync(file);
  }
}

describeWithDouble('ELT: checks and transforms in BigQuery (the executing double)', () => {
  const on = batchOnDouble('bq-elt-');


  /** Runs the five jobs into DuckDB, ETL and ELT; checks each wrote something and all three agree. */
  async function threeWays(sourceDir: string, tag: string) {
    const duck: Target = { kind: 'duckdb', path: path.join(on.dir, `${tag}.duckdb`) };
    const etl: Target = { kind: 'bigquery', mode: 'etl', dataset: `etl_${tag}` };
    const elt: Target = { kind: 'bigquery', mode: 'elt', dataset: `elt_${tag}` };
    const uploads: Record<string, Record<string, number>> = {};
    for (const target of [duck, etl, elt]) {
      const before = on.bq.requests.length;
      for (const d of BATCH) {
        const r = await runJob(d.table, target, sourceDir, on.dir);
        expect(r.run.status).toBe('success');
      }
      if (target.kind === 'bigquery') {
        const formats: Record<string, number> = {};
        for (const req of on.bq.requests.slice(before)) {
          const f = req.upload?.metadata?.configuration?.load?.sourceFormat;
          if (f) formats[f] = (formats[f] ?? 0) + req.upload!.bytes;
        }
        uploads[target.mode] = formats;
      }
    }
    // ETL uploads the finished tables as NDJSON, ELT the staged sources as Parquet: nothing else.
    expect(Object.keys(uploads.etl)).toEqual(['NEWLINE_DELIMITED_JSON']);
    expect(Object.keys(uploads.elt)).toEqual(['PARQUET']);
    // eslint-disable-next-line no-console
    console.log(`bytes uploaded (${tag}): ETL ${uploads.etl.NEWLINE_DELIMITED_JSON} (NDJSON), ELT ${uploads.elt.PARQUET} (Parquet)`);

    const fromDuck = await readTarget(duck, on.bq);
    const fromEtl = await readTarget(etl, on.bq);
    const fromElt = await readTarget(elt, on.bq);
    for (const d of BATCH) expect({ table: d.table, n: fromDuck[d.table].length > 0 }).toEqual({ table: d.table, n: true });
    expect(fromDuck._quarantine.length).toBeGreaterThan(0);
    expect(fromDuck._etl_runs).toHaveLength(BATCH.length);
    for (const table of Object.keys(fromDuck)) {
      expect({ table, rows: fromElt[table] }).toEqual({ table, rows: fromDuck[table] });
      expect({ table, rows: fromEtl[table] }).toEqual({ table, rows: fromDuck[table] });
    }
    expect(await stagingTables(on.bq, elt.dataset)).toEqual([]);
    return fromDuck;
  }

  test('ELT, ETL and the DuckDB warehouse give identical tables, quarantine and run counts on the fixture', async () => {
    const rows = await threeWays(STORE_EXPORT, 'fixture');
    expect(rows._quarantine.some((r) => r.includes('duplicate_key'))).toBe(true);
  }, 600_000);

  test('the same on a generated set with faults (bad values, duplicate keys, orphans)', async () => {
    const data = path.join(on.dir, 'faulty');
    await generate({ orders: 300, out: data, seed: 23, faults: true, faultRate: 0.2 });
    const rows = await threeWays(data, 'faulty');
    const reasons = new Set(rows._quarantine.map((r) => JSON.parse(r)[5]));
    // The faults reach the quarantine by several reasons, the checks' among them.
    expect(reasons.size).toBeGreaterThan(2);
    expect([...reasons].sort()).toEqual(expect.arrayContaining(['duplicate_key']));
  }, 600_000);

  test('the same with rescued values in two sources of one table (a shared field name, escapes), merged alike', async () => {
    // Undeclared columns appended to two sources of fact_orders (schema contract rescue, the default).
    const withColumns = (file: string, cols: string[], value: (line: number) => string[]) => {
      const lines = fs.readFileSync(path.join(STORE_EXPORT, file), 'utf8').split('\n');
      return lines.map((l, i) => (l.trim() === '' ? l : i === 0 ? `${l}\t${cols.join('\t')}` : `${l}\t${value(i).join('\t')}`)).join('\n');
    };
    const data = sourceFolder(STORE_EXPORT, {
      'order.txt': withColumns('order.txt', ['note', 'channel'], (i) => [i % 3 === 0 ? '' : `order "${i}" <&> \\ é`, i % 2 ? 'web' : '']),
      'orders_placed_user.txt': withColumns('orders_placed_user.txt', ['note'], (i) => [i % 4 === 0 ? '' : `placed ${i}`]),
    });
    const rows = await threeWays(data, 'rescued');
    const rescued = rows.fact_orders.map((r) => JSON.parse(r).at(-1)).filter((v: string | null) => v !== null);
    // Some rows merge both sources' values (the later source's "note" wins), some hold one source's only.
    expect(rescued.some((v: string) => v.includes('"channel"') && v.includes('"note":"placed'))).toBe(true);
    expect(rescued.some((v: string) => v.includes('"note":"order \\"'))).toBe(true);
  }, 600_000);

  test('the same when a derived-value rule quarantines (a cost over DECIMAL(18,4) by a hair) and one just fits', async () => {
    const data = writeSources({
      orders_has_products: [
        row('orders_has_products', 1003, 1200, 1205, '100000'), // 999999999 x 100000 fits
        row('orders_has_products', 1004, 1200, 1205, '100001'), // 99999999999999 + 999999999 does not
      ],
      products_has_options: [row('products_has_options', 1200, 1205, 3, '999999999', 0, 'z')],
    });
    const rows = await threeWays(data, 'derived');
    const derived = rows._quarantine.map((r) => JSON.parse(r)).filter((r) => r[5] === 'derived_out_of_range');
    expect(derived.map((r) => [r[1], r[3], r[6]])).toEqual([
      ['orders_has_products', '6', 'raw_cost = quantity 100001 x price 999999999.0000 (products_has_options line 4) does not fit DECIMAL(18,4)'],
    ]);
  }, 600_000);

  test('a duplicate whose free text holds a card number: its quarantine row masked alike (the free-text rule, applied to rows the checks wrote in BigQuery)', async () => {
    const card = '4111 1111 1111 1111';
    const data = writeSources({ user: [row('user', 2001, 'again', 'pw-x', `Paid with ${card}`, 'Addr', 'a@x.io', '555-0101')] });
    const rows = await threeWays(data, 'freetext');
    const dup = rows._quarantine.map((r) => JSON.parse(r)).filter((r) => r[5] === 'duplicate_key' && r[1] === 'user');
    expect(dup).toHaveLength(1);
    expect(dup[0][7]).toContain('Paid with **** **** **** 1111');
    expect(dup[0][7]).not.toContain(card);
  }, 600_000);

  test('BATCH_MODE=elt with WAREHOUSE=duckdb is a usage error (exit 64) naming both settings', async () => {
    const config = loadConfig({ ...process.env, WAREHOUSE: 'duckdb', BATCH_MODE: 'elt' }, { sourceDir: STORE_EXPORT, stateDir: path.join(on.dir, 'usage') });
    const err = await runBatchJob(catalog, 'dim_vendors', config).catch((e) => e);
    expect(err.exitCode).toBe(64);
    expect(err.message).toMatch(/BATCH_MODE=elt needs WAREHOUSE=bigquery/);
    expect(loadConfig({ WAREHOUSE: 'bigquery' }).batchMode).toBe('elt');
    expect(loadConfig({ WAREHOUSE: 'duckdb' }).batchMode).toBe('etl');
    expect(loadConfig({ WAREHOUSE: 'bigquery', BATCH_MODE: 'etl' }).batchMode).toBe('etl');
  });

  test('what ELT uploads holds no card number in clear (masked at staging), though the fixture has some', async () => {
    const cards = fs.readFileSync(path.join(STORE_EXPORT, 'user_has_creditcard.txt'), 'utf8');
    expect(maskCardRuns(cards)).not.toEqual(cards);
    on.bq.requests.length = 0;
    for (const d of BATCH) await runJob(d.table, { kind: 'bigquery', mode: 'elt', dataset: 'pii' }, STORE_EXPORT, on.dir);
    const uploaded = on.bq.requests.filter((r) => r.upload?.binary);
    expect(uploaded.length).toBeGreaterThan(BATCH.length);
    let text = '';
    for (const r of uploaded) text += `${await parquetText(r.upload!.binary!, on.dir)}\n`;
    expect(text).toMatch(/\*{4}[- ]?\*{4}/);
    expect(maskCardRuns(text)).toEqual(text);
  }, 300_000);
});
