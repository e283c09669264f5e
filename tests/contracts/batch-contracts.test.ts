/**
 * Schema contracts in the batch layer: each contract x staging path x drift (an added column, a
 * missing nullable column, a missing key column, a retyped value) on dim_vendors, and rescued
 * values of PII sources masked. Expected values are written out from the files below.
 */
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { withContract } from '../../jobs/lib/catalog-check';
import type { Catalog, SchemaContract } from '../../jobs/lib/catalog-types';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob, type JobResult } from '../../jobs/lib/pipeline';
import { query, sourceFolder, tempDir } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';

jest.setTimeout(120_000);

const underContract = (table: string, contract: SchemaContract): Catalog => ({
  ...catalog,
  destinations: catalog.destinations.map((d) => (d.table === table ? withContract(d, contract) : d)),
});

const VENDORS_ADDED = [
  'vendor_id\tvendor_name\tvendor_phone\tvendor_email\tvendor_country',
  '5000\tApple\t6808830015\tapple@example.com\tUS',
  '5100\tMicrosoft\t5586324471\tmicrosoft@example.com\t',
  '5200\tLenovo\t8819726347\tlenovo@example.com\tCN',
  '5300\tAsus\t7357872331\tasus@example.com\tTW',
  'x5400\tAcer\t1\tacer@example.com\tTW',
].join('\n') + '\n';

const VENDORS_MISSING_PHONE = [
  'vendor_email\tvendor_id\tvendor_name',
  'apple@example.com\t5000\tApple',
  'lenovo@example.com\t5200\tLenovo',
].join('\n') + '\n';

const VENDORS_MISSING_KEY = ['vendor_name\tvendor_phone\tvendor_email', 'Apple\t1\ta@example.com'].join('\n') + '\n';

interface Run {
  readonly result: JobResult;
  readonly rows: unknown[][];
  readonly quarantine: unknown[][];
}

async function run(cat: Catalog, table: string, files: Record<string, string>, batchPath: 'bulk' | 'exact'): Promise<Run> {
  const stateDir = tempDir(`contract-${batchPath}`);
  const result = await runBatchJob(cat, table, loadConfig({}, { sourceDir: sourceFolder(STORE_EXPORT, files), stateDir, batchPath }));
  const db = path.join(stateDir, 'warehouse.duckdb');
  const rows = await query(db, `SELECT * FROM store.${table} ORDER BY 1`);
  const quarantine = await query(db, `SELECT source, line::INTEGER, column_name, reason_code, reason, raw FROM store._quarantine ORDER BY source, line`);
  return { result, rows, quarantine };
}

/** Runs both paths and requires the same answer; returns it. */
async function both(cat: Catalog, table: string, files: Record<string, string>): Promise<Run> {
  const exact = await run(cat, table, files, 'exact');
  const bulk = await run(cat, table, files, 'bulk');
  expect(bulk.rows).toEqual(exact.rows);
  expect(bulk.quarantine).toEqual(exact.quarantine);
  expect({ ...bulk.result.report, runId: 0, startedAt: 0, endedAt: 0 }).toEqual({ ...exact.result.report, runId: 0, startedAt: 0, endedAt: 0 });
  return exact;
}

const vendorDrift = (r: Run) => r.result.report.sources[0].schemaDrift;
const BAD_ID = ['vendor', 6, 'vendor_id', 'bad_identifier', '"x5400" in \'vendor_id\' is not an identifier (digits only)', 'x5400\tAcer\t1\tacer@example.com\tTW'];

describe('an added column', () => {
  test('rescue (the default): every good row loads, the value kept in _rescued_data, a retyped value quarantined as before', async () => {
    const r = await both(catalog, 'dim_vendors', { 'vendor.txt': VENDORS_ADDED });
    expect(r.rows).toEqual([
      ['5000', 'Apple', '6808830015', 'apple@example.com', '{"vendor_country":"US"}'],
      ['5100', 'Microsoft', '5586324471', 'microsoft@example.com', null],
      ['5200', 'Lenovo', '8819726347', 'lenovo@example.com', '{"vendor_country":"CN"}'],
      ['5300', 'Asus', '7357872331', 'asus@example.com', '{"vendor_country":"TW"}'],
    ]);
    expect(r.quarantine).toEqual([BAD_ID]);
    const drift = vendorDrift(r);
    expect(drift.added).toEqual(['vendor_country']);
    expect(drift.fields.map((f) => [f.field, f.kind, f.action, f.rows, f.example])).toEqual([['vendor_country', 'added', 'rescued', 3, '"US"']]);
    expect(r.result.run.rowsLoaded).toBe(4);
  });

  test('freeze: the file fails with the clear error, as before contracts', async () => {
    await expect(run(underContract('dim_vendors', 'freeze'), 'dim_vendors', { 'vendor.txt': VENDORS_ADDED }, 'bulk'))
      .rejects.toThrow(/unexpected column 'vendor_country' not in the catalog/);
  });

  test('discard_value: rows load without the value, which is counted', async () => {
    const r = await both(underContract('dim_vendors', 'discard_value'), 'dim_vendors', { 'vendor.txt': VENDORS_ADDED });
    expect(r.rows.map((x) => x.length)).toEqual([4, 4, 4, 4]);
    expect(r.quarantine).toEqual([BAD_ID]);
    expect(vendorDrift(r).fields.map((f) => [f.field, f.action, f.rows])).toEqual([['vendor_country', 'discarded', 3]]);
  });

  test('discard_row: a row with a value in the column is quarantined with the reason; one without loads', async () => {
    const r = await both(underContract('dim_vendors', 'discard_row'), 'dim_vendors', { 'vendor.txt': VENDORS_ADDED });
    expect(r.rows).toEqual([['5100', 'Microsoft', '5586324471', 'microsoft@example.com']]);
    expect(r.quarantine.map((q) => [q[1], q[3], q[4]])).toEqual([
      [2, 'schema_drift', 'column "vendor_country" is not in the catalog (schema contract discard_row)'],
      [4, 'schema_drift', 'column "vendor_country" is not in the catalog (schema contract discard_row)'],
      [5, 'schema_drift', 'column "vendor_country" is not in the catalog (schema contract discard_row)'],
      [6, 'bad_identifier', BAD_ID[4]],
    ]);
  });
});

describe('a missing nullable column', () => {
  test.each<[SchemaContract]>([['rescue'], ['discard_value']])('%s: rows load with NULL in it', async (contract) => {
    const r = await both(underContract('dim_vendors', contract), 'dim_vendors', { 'vendor.txt': VENDORS_MISSING_PHONE });
    expect(r.rows.map((x) => x.slice(0, 4))).toEqual([['5000', 'Apple', null, 'apple@example.com'], ['5200', 'Lenovo', null, 'lenovo@example.com']]);
    expect(vendorDrift(r).missing).toEqual(['vendor_phone']);
    expect(vendorDrift(r).fields.map((f) => [f.field, f.kind, f.action, f.rows])).toEqual([['vendor_phone', 'missing', 'loaded_null', 2]]);
  });

  test('freeze: the file fails', async () => {
    await expect(run(underContract('dim_vendors', 'freeze'), 'dim_vendors', { 'vendor.txt': VENDORS_MISSING_PHONE }, 'exact'))
      .rejects.toThrow(/missing column 'vendor_phone'/);
  });

  test('discard_row: every row is quarantined, so the table is kept (nothing to load)', async () => {
    await expect(run(underContract('dim_vendors', 'discard_row'), 'dim_vendors', { 'vendor.txt': VENDORS_MISSING_PHONE }, 'bulk'))
      .rejects.toThrow(/every data row \(2\) was quarantined/);
  });
});

test.each<[SchemaContract]>([['rescue'], ['freeze'], ['discard_value'], ['discard_row']])('%s: a missing key column fails the file', async (contract) => {
  for (const p of ['bulk', 'exact'] as const) {
    await expect(run(underContract('dim_vendors', contract), 'dim_vendors', { 'vendor.txt': VENDORS_MISSING_KEY }, p))
      .rejects.toThrow(/missing column 'vendor_id'/);
  }
});

test('rescued values of a password source and of a card source are masked like their other values', async () => {
  const user = 'user_id\tusername\tpassword\tfull_name\taddress\temail\tphone\tpasswd\n' +
    '1\tann\tsecret1\tAnn\tStreet 1\tann@example.com\t555\thunter2\n';
  const card = 'user_id\tcredit_card_number\tcard_backup\n1\t4111111111111111\t5555 5555 5555 4444\n';
  const r = await both(catalog, 'dim_users', { 'user.txt': user, 'user_has_creditcard.txt': card });
  expect(r.rows).toEqual([['1', 'ann', 'Ann', 'Street 1', 'ann@example.com', '555', '************1111',
    '{"passwd":"[redacted]","card_backup":"**** **** **** 4444"}']]);
  expect(JSON.stringify(r.result.report)).not.toMatch(/hunter2|5555 5555 5555 4444/);
});

test('a source of several, its rescued values merged into the destination row', async () => {
  const placed = 'user_id\torder_id\tchannel\n';
  const r = await run(catalog, 'fact_orders', { 'orders_placed_user.txt': placed + '126\t1000\tmobile\n' }, 'bulk');
  const rescued = r.rows.map((x) => x[x.length - 1]).filter((x) => x !== null);
  expect(rescued).toEqual(['{"channel":"mobile"}']);
});
