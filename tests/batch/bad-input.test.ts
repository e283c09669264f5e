/**
 * Bad input gets one clear line naming file, line and column, and a distinct exit code -
 * never a stack trace. Row-level faults are quarantined with their reason; file-level faults
 * stop the job before it touches the warehouse.
 */
import fs from 'node:fs';
import path from 'node:path';
import { query, REFERENCE_SAMPLE, runNode, sourceFolder, tempDir } from '../helpers/env';

const VENDOR_HEADER = 'vendor_id\tvendor_name\tvendor_phone\tvendor_email';

function runVendors(files: Record<string, string | null>) {
  const src = sourceFolder(REFERENCE_SAMPLE, files);
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

test('missing column', () => {
  const r = runVendors({ 'vendor.txt': 'vendor_id\tvendor_name\tvendor_phone\n5000\tApple\t2569561656\n' });
  expectCleanFailure(r, 2, /vendor\.txt:1 column 'vendor_email': missing column 'vendor_email'/);
});

test('extra column', () => {
  const r = runVendors({ 'vendor.txt': `${VENDOR_HEADER}\tfax\n5000\tApple\t1\ta@b.c\t2\n` });
  expectCleanFailure(r, 2, /vendor\.txt:1 column 'fax': unexpected column 'fax' not in the catalog/);
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
  const orders = fs.readFileSync(path.join(REFERENCE_SAMPLE, 'order.txt'), 'utf8').split('\n');
  orders[2] = orders[2].replace('62.45', 'sixty'); // line 3: order 1001
  orders[4] = orders[4].replace('2018-10-12', '2018-02-30'); // line 5: order 1003
  const src = sourceFolder(REFERENCE_SAMPLE, { 'order.txt': orders.join('\n') });
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
  expect(n).toBe(25);
  expect(r.stdout).toMatch(/order\s+27\s+25\s+2\s+.*not_a_number=1.*bad_date=1/);
});

test('a stream table is not a batch job', () => {
  const r = runNode('jobs/lib/cli.js', []);
  expect(r.status).toBe(0); // the library module itself does nothing when run
});
