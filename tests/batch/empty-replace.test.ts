/**
 * Issue 21 item 3: a file where every row is bad must not empty the table and exit 0. A load
 * that would replace the table with no rows fails the job (exit 2, a clear message) and leaves
 * the previous table, as a header-only file does; an opt-in ceiling on the quarantined share of
 * any source (MAX_QUARANTINE_SHARE) refuses a load past it, and the fixture's normal rates pass.
 */
import { count } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { cleanRows, header, runJob, writeSources } from './faulty-files';

const vendors = (prefix: string) => [header('vendor'), ...cleanRows().vendor.map((l) => prefix + l), ''].join('\n');

describe.each(['bulk', 'exact'])('BATCH_PATH=%s', (batchPath) => {
  test('every vendor_id damaged: the job fails and dim_vendors keeps its rows', async () => {
    const first = runJob('dim_vendors', writeSources(), { BATCH_PATH: batchPath });
    expect(first.status).toBe(0);
    const before = await count(first.db, 'store.dim_vendors');
    expect(before).toBe(cleanRows().vendor.length);

    const bad = runJob('dim_vendors', writeSources({}, { 'vendor.txt': vendors('X') }), { BATCH_PATH: batchPath }, first.state);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/vendor\.txt: every data row \(2\) was quarantined: refusing to replace store\.dim_vendors with nothing \(the previous table is kept/);
    expect(await count(bad.db, 'store.dim_vendors')).toBe(before);
  });

  test('MAX_QUARANTINE_SHARE: a source past the ceiling fails the job; at or under it loads', async () => {
    // One of three vendor rows bad: a third quarantined.
    const dir = writeSources({ vendor: ['X3\tBad\t555\tb@x.io'] });
    const strict = runJob('dim_vendors', dir, { BATCH_PATH: batchPath, MAX_QUARANTINE_SHARE: '0.3' });
    expect(strict.status).toBe(2);
    expect(strict.stderr).toMatch(/vendor\.txt: 1 of 3 data rows quarantined \(33\.3%\), more than MAX_QUARANTINE_SHARE=0\.3/);
    expect(runJob('dim_vendors', dir, { BATCH_PATH: batchPath, MAX_QUARANTINE_SHARE: '0.34' }).status).toBe(0);
    expect(runJob('dim_vendors', dir, { BATCH_PATH: batchPath }).status).toBe(0); // off by default
  });
});

test("the fixture's normal quarantine rates pass a ceiling of one half (its highest: 12 of 27 damaged cards)", () => {
  for (const table of ['fact_orders', 'dim_users', 'dim_products', 'dim_vendors', 'fact_order_details']) {
    const run = runJob(table, STORE_EXPORT, { MAX_QUARANTINE_SHARE: '0.5' });
    expect([table, run.status]).toEqual([table, 0]);
  }
});

test('MAX_QUARANTINE_SHARE must be a share between 0 and 1', () => {
  const run = runJob('dim_vendors', writeSources(), { MAX_QUARANTINE_SHARE: '20%' });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(/MAX_QUARANTINE_SHARE must be a share between 0 and 1/);
});
