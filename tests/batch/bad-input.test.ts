/**
 * Bad input gets one clear line naming file, line and column, and a distinct exit code -
 * never a stack trace. Row-level faults are quarantined with their reason; file-level faults
 * stop the job before it touches the warehouse.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { runJobCli } from '../../jobs/lib/cli';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { latestReport, query, runNode, sourceFolder, tempDir } from '../helpers/env';
import { readSource, STORE_EXPORT } from '../helpers/store-export';

const VENDOR_HEADER = 'vendor_id\tvendor_name\tvendor_phone\tvendor_email';

function runVendors(files: Record<string, string | null>) {
  const src = sourceFolder(STORE_EXPORT, files);
  const state = tempDir('bad');
  const r = runNode('jobs/dim_vendors.js', ['--source-dir', src], { ETL_STATE_DIR: state });
  return { ...r, src, state };
}

function expectCleanFailure(r: ReturnType<typeof runVendors>, code: number, message: RegExp) {
  expect(r.status).toBe(code);
  const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  expect(errorLines).toHaveLength(1);
  expect(errorLines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
  expect(fs.existsSync(path.join(r.state, 'warehouse.duckdb'))).toBe(true); // failure was recorded
}

test('missing file', () => {
  const r = runVendors({ 'vendor.txt': null });
  expectCleanFailure(r, 2, /vendor\.txt: source file not found/);
});

test('empty file', () => {
  const r = runVendors({ 'vendor.txt': '' });
  expectCleanFailure(r, 2, /vendor\.txt: file is empty/);
});

test('header only', () => {
  const r = runVendors({ 'vendor.txt': VENDOR_HEADER + '\n' });
  expectCleanFailure(r, 2, /vendor\.txt: no data rows \(header only\)/);
});

test('wrong delimiter', () => {
  const r = runVendors({ 'vendor.txt': 'vendor_id,vendor_name,vendor_phone,vendor_email\n5000,Apple,2569561656,apple@gmail.com\n' });
  expectCleanFailure(r, 2, /vendor\.txt:1 column 'vendor_id': missing columns .*looks comma-separated, but the catalog says tab/);
});

// A missing nullable or an added column is schema drift, for the table's contract
// (tests/contracts/batch-contracts.test.ts): under the default rescue the rows load.
test('missing key column', () => {
  const r = runVendors({ 'vendor.txt': 'vendor_name\tvendor_phone\tvendor_email\nApple\t2569561656\ta@b.c\n' });
  expectCleanFailure(r, 2, /vendor\.txt:1 column 'vendor_id': missing column 'vendor_id'/);
});

test('extra column and missing nullable column load under the default contract (rescue)', () => {
  expect(runVendors({ 'vendor.txt': `${VENDOR_HEADER}\tfax\n5000\tApple\t1\ta@b.c\t2\n` }).status).toBe(0);
  expect(runVendors({ 'vendor.txt': 'vendor_id\tvendor_name\tvendor_phone\n5000\tApple\t2569561656\n' }).status).toBe(0);
});

test('unknown flag is a usage error with help', () => {
  const r = runNode('jobs/dim_vendors.js', ['--nope']);
  expect(r.status).toBe(64);
  expect(r.stderr).toMatch(/error: Unknown option '--nope'/);
  expect(r.stderr).toMatch(/Usage: node dist\/jobs\/dim_vendors\.js/);
});

test('--help describes the job and its environment', () => {
  const r = runNode('jobs/fact_orders.js', ['--help']);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/Builds store\.fact_orders/);
  expect(r.stdout).toMatch(/Sources: order, orders_placed_user, orders_paid_creditcard/);
  expect(r.stdout).toMatch(/DUCKDB_PATH/);
});

test('non-numeric number and bad date are quarantined with line, column and reason', async () => {
  const orders = fs.readFileSync(path.join(STORE_EXPORT, 'order.txt'), 'utf8').split('\n');
  const header = orders[0].split('\t').map((h) => h.trim());
  const setField = (i: number, column: string, value: string) => {
    const fields = orders[i].split('\t');
    fields[header.indexOf(column)] = value;
    orders[i] = fields.join('\t');
  };
  setField(2, 'total_cost', 'sixty'); // line 3
  setField(4, 'order_date', '2018-02-30'); // line 5
  const read = readSource(STORE_EXPORT, 'order').rowsRead;
  const src = sourceFolder(STORE_EXPORT, { 'order.txt': orders.join('\n') });
  const state = tempDir('rows');
  const r = runNode('jobs/fact_orders.js', ['--source-dir', src], { ETL_STATE_DIR: state });
  expect(r.status).toBe(0);
  const db = path.join(state, 'warehouse.duckdb');
  const rows = await query(
    db,
    `SELECT line::INTEGER, column_name, reason_code, reason FROM store._quarantine WHERE source = 'order' ORDER BY line`,
  );
  expect(rows).toEqual([
    [3, 'total_cost', 'not_a_number', `"sixty" in 'total_cost' is not a number (at most 14 digits before and 4 after the point)`],
    [5, 'order_date', 'bad_date', `"2018-02-30" in 'order_date' is not a valid date (YYYY-MM-DD)`],
  ]);
  const [[n]] = await query(db, 'SELECT count(*)::INTEGER FROM store.fact_orders');
  expect(n).toBe(read - 2);
  expect(r.stdout).toMatch(new RegExp(`order\\s+${read}\\s+${read - 2}\\s+2\\s+.*not_a_number=1.*bad_date=1`));
});

test('a stream table is not a batch job: the job CLI and the pipeline both refuse it', async () => {
  const stream = catalog.destinations.find((d) => d.mode === 'stream')!;
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await runJobCli(catalog, stream.name, [])).toBe(64);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(new RegExp(`error: ${stream.name} is not a batch table`));
  } finally {
    stderr.mockRestore();
  }
  const config = loadConfig({}, { sourceDir: STORE_EXPORT, stateDir: tempDir('stream') });
  await expect(runBatchJob(catalog, stream.name, config)).rejects.toThrow(/is a stream table: it is loaded by the Kafka consumer/);
});

test('a BOM, CRLF line ends and invalid UTF-8 are accepted and reported', async () => {
  const body = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from(`${VENDOR_HEADER}\r\n5000\tApple\t1\ta@b.c\r\n5100\tMicro`),
    Buffer.from([0xff]),
    Buffer.from('soft\t2\tm@b.c\r\n\r\nV9\tBad\t3\tb@b.c\r\n'),
  ]);
  const src = sourceFolder(STORE_EXPORT);
  fs.writeFileSync(path.join(src, 'vendor.txt'), body);
  const state = tempDir('enc');
  const r = runNode('jobs/dim_vendors.js', ['--source-dir', src], { ETL_STATE_DIR: state });
  expect(r.status).toBe(0);
  const vendor = latestReport(state, 'dim_vendors').sources[0];
  expect(vendor).toMatchObject({ bom: true, crlfLines: 4, blankLines: 1, rowsRead: 3, rowsLoaded: 2, rowsQuarantined: 1 });
  const db = path.join(state, 'warehouse.duckdb');
  // Line numbers count CRLF lines and the blank line: the bad id is on line 5.
  expect(await query(db, 'SELECT line::INTEGER, column_name, reason_code FROM store._quarantine')).toEqual([
    [5, 'vendor_id', 'bad_identifier'],
  ]);
  expect(vendor.invalidUtf8).toEqual({ values: 1, columns: ['vendor_name'] });
  const rows = await query(db, 'SELECT vendor_id, vendor_name FROM store.dim_vendors ORDER BY 1');
  expect(rows).toEqual([['5000', 'Apple'], ['5100', 'Micro\uFFFDsoft']]);
});
