/**
 * The bulk path (DuckDB reads and checks, SQL predicates compiled from the catalog) and the
 * exact path (csv-parse + ajv for every row) must stage the same rows and quarantine the same
 * rows for the same reasons, on the same lines. Expected values are the exact path's own run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { BatchDestination } from '../../jobs/lib/catalog-types';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob, type JobResult } from '../../jobs/lib/pipeline';
import { generate } from '../../scripts/generate-data';
import { query, tempDir } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { cleanRows, header, writeSources } from './faulty-files';

jest.setTimeout(900_000);

interface Outcome {
  readonly result: JobResult;
  readonly rows: unknown[][];
  readonly quarantine: unknown[][];
}

async function runWith(batchPath: 'bulk' | 'exact', table: string, sourceDir: string): Promise<Outcome> {
  const stateDir = tempDir(`agree-${batchPath}`);
  const result = await runBatchJob(catalog, table, loadConfig({}, { sourceDir, stateDir, batchPath }));
  const db = path.join(stateDir, 'warehouse.duckdb');
  const dest = catalog.destinations.find((d) => d.table === table) as BatchDestination;
  const rows = await query(db, `SELECT * FROM store.${table} ORDER BY ${dest.key.join(', ')}`);
  const quarantine = await query(db,
    `SELECT source, file, line::BIGINT, column_name, reason_code, reason, raw FROM store._quarantine ORDER BY source, line`);
  return { result, rows, quarantine };
}

/** The report of a run without what differs by nature between two runs (ids, times). */
const comparable = (r: JobResult) => ({ ...r.report, runId: null, startedAt: null, endedAt: null, sources: r.report.sources });

async function expectAgreement(table: string, sourceDir: string): Promise<{ bulk: Outcome; exact: Outcome }> {
  const exact = await runWith('exact', table, sourceDir);
  const bulk = await runWith('bulk', table, sourceDir);
  expect(Object.values(exact.result.stagingPaths).every((p) => p === 'exact')).toBe(true);
  expect(bulk.quarantine).toEqual(exact.quarantine);
  expect(bulk.rows).toEqual(exact.rows);
  expect(comparable(bulk.result)).toEqual(comparable(exact.result));
  expect(bulk.result.report.accountingBalanced).toBe(true);
  return { bulk, exact };
}

test('every batch job agrees on a generated faulty data set of 100k orders', async () => {
  const dir = tempDir('agree-data');
  await generate({ orders: 100_000, out: dir, seed: 13, faults: true, faultRate: 0.02 });
  let rowsRead = 0;
  let bulkSources = 0;
  const reasons = new Set<string>();
  for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) {
    const { bulk } = await expectAgreement(d.table, dir);
    rowsRead += bulk.result.run.rowsIn;
    bulkSources += Object.values(bulk.result.stagingPaths).filter((p) => p === 'bulk').length;
    for (const q of bulk.quarantine) reasons.add(String(q[4]));
  }
  expect(rowsRead).toBeGreaterThanOrEqual(100_000);
  // The comparison means something only if the bulk path really ran, on faulty files: every
  // fault the generator injects (blank lines, wrong separators, invalid UTF-8) is mapped to its line.
  const batch = catalog.destinations.filter((x) => x.mode === 'batch');
  expect(bulkSources).toBe(batch.reduce((n, d) => n + d.sources.length, 0));
  for (const r of ['scientific_notation_id', 'bad_date', 'not_a_number', 'field_count', 'duplicate_key']) {
    expect(reasons).toContain(r);
  }
});

test("every batch job agrees on the fixture with every quirk of the store's real export", async () => {
  for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) await expectAgreement(d.table, STORE_EXPORT);
});

/** Values on which SQL and JavaScript could differ: each line is good or bad for a known reason. */
test('the edge cases of trimming, dates, numbers, cards and line numbers agree', async () => {
  const dir = tempDir('agree-edge');
  const orderLines = [
    'order_id\ttotal_item\tshipping_fee\ttax\ttotal_cost\torder_date\tdelivery_date\tship_name\tship_address\ttracking_number\tdelivery_status ',
    '1\t1\t0\t0\t0\t2024-02-29\t2023-02-29\tA\tB\tT\t1', // not a leap year
    '2\t 2 \t-0\t0.0000\t999999999.9999\t0000-01-01\t2024-12-31\t  padded  \tB\tT\t0',
    '',
    '3\t1\t1\t1\t1\t2024-01-01\t2024-01-02\t\u00a0nbsp\u00a0\tB\tT\t1', // trimmed by JavaScript, not by SQL's trim
    '4\t0\t1\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1', // total_item below 1
    '5\t1\t-0.0001\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1', // money below 0
    '   ',
    '6\t1\t1\t1\t1\t2024-1-01\t2024-01-02\tA\tB\tT\t2',
    '7\t1\t1\t1\t1\t2024-01-01',
    '2.56324E+15\t1\t1\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1',
    '\t1\t1\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1',
    '8\t1\t1.12345\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1\textra',
    '2\t1\t1\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1', // duplicate key
    '9\t999999999999999999\t1\t1\t1\t\t\t\t\t\t', // total_item above its maximum
    '10\t1\t1\t1\t1\t2024-01-01\t2024-01-02\tA\tB\tT\t1',
  ];
  // Line 17: invalid UTF-8 in free text, kept as U+FFFD (the row is good).
  const invalidUtf8 = [Buffer.from('11\t1\t1\t1\t1\t2024-01-01\t2024-01-02\t'), Buffer.from([0xff, 0xfe]), Buffer.from('x\tB\tT\t1\n')];
  fs.writeFileSync(path.join(dir, 'order.txt'), Buffer.concat([Buffer.from(orderLines.join('\n') + '\n'), ...invalidUtf8, Buffer.from('\n')]));
  fs.writeFileSync(path.join(dir, 'orders_placed_user.txt'),
    ['user_id\torder_id', '1\t1', '2\t2', ' 3 \t3', '4\t4\t4', '5\t5', '6\t 6', '7\t7', '8\t2', '9\t9'].join('\n'));
  fs.writeFileSync(path.join(dir, 'orders_paid_creditcard.txt'),
    ['credit_card_number,order_id', '4564 1481 4400 6084,1', '4564-1481-4400-6085,2', '4564--1481-4400-6085,3',
      '45641481440060,4', '4.56414E+15,5', '12345678901234567890,6', ' 4564148144006084 ,7', '4564 1481 4400 6084,9',
      '456414814400608x,10'].join('\n') + '\n');
  const { bulk } = await expectAgreement('fact_orders', dir);
  expect(bulk.result.stagingPaths).toEqual({ order: 'bulk', orders_placed_user: 'bulk', orders_paid_creditcard: 'bulk' });
  const order = bulk.result.report.sources.find((s) => s.source === 'order')!;
  // Counted by hand from the lines above: 14 data rows, 3 blank lines (one of spaces).
  expect(order.rowsRead).toBe(14);
  expect(order.blankLines).toBe(3);
  expect(order.invalidUtf8).toEqual({ values: 1, columns: ['ship_name'] });
  expect(bulk.quarantine.filter((q) => q[0] === 'order').map((q) => [Number(q[2]), q[4]])).toEqual([
    [2, 'bad_date'], [6, 'out_of_range'], [7, 'out_of_range'], [9, 'bad_date'], [10, 'field_count'],
    [11, 'scientific_notation_id'], [12, 'missing_key'], [13, 'field_count'], [14, 'duplicate_key'], [15, 'out_of_range'],
  ]);
  // Card numbers never reach the quarantine in clear, whichever path staged them.
  expect(bulk.quarantine.map((q) => q.map(String).join(' ')).join('\n')).not.toMatch(/4564\D?1481/);
});

test('files the bulk path cannot take (BOM and CRLF; quotes) fall back whole to the exact path and agree', async () => {
  const dir = tempDir('agree-fallback');
  const header = 'order_id\ttotal_item\tshipping_fee\ttax\ttotal_cost\torder_date\tdelivery_date\tship_name\tship_address\ttracking_number\tdelivery_status';
  const rows = ['1\t1\t0\t0\t0\t2024-02-29\t2024-03-01\tA\tB\tT\t1', '2\t0\t0\t0\t0\t2024-02-29\t2024-03-01\tA\tB\tT\t1'];
  fs.writeFileSync(path.join(dir, 'order.txt'), '\uFEFF' + [header, ...rows].join('\r\n') + '\r\n');
  fs.writeFileSync(path.join(dir, 'orders_placed_user.txt'), 'user_id\torder_id\n1\t1\n2\t2\n');
  // Two short lines: csv-parse may hand over the header alone first; the row must still be read.
  fs.writeFileSync(path.join(dir, 'orders_paid_creditcard.txt'), 'credit_card_number,order_id\n"4564148144006084",1\n');
  const { bulk } = await expectAgreement('fact_orders', dir);
  expect(bulk.result.stagingPaths).toEqual({ order: 'exact', orders_placed_user: 'bulk', orders_paid_creditcard: 'exact' });
  expect(bulk.quarantine.map((q) => [q[0], Number(q[2]), q[4]])).toEqual([['order', 3, 'out_of_range']]);
});

/**
 * Every shape of bad input, on both paths, row by row: each fault kind the generator injects
 * (scripts/generate-data.ts: damaged ids, wrong separators, bad dates, non-numbers, blank lines,
 * padded headers and values, repeated links, invalid UTF-8) as one line of its own, plus trailing
 * delimiters, a wide line, quoted tabs and newlines, and whole-file shapes (CRLF, BOM).
 */
describe('every fault shape agrees on both paths', () => {
  const wide = (fields: number) => Array.from({ length: fields }, (_, i) => String(i)).join('\t');
  const shapes: Record<string, string[]> = {
    vendor: [
      '5100\t Microsoft \t6165486561\tmicrosoft@gmail.com\t', // a trailing tab: 5 fields
      '5200\tLenovo\t\t\t\t', // trailing empty fields
      '5300\tDell\t555\td@dell.io\t\t',
      '5400\tAsus  555  a@asus.io', // spaces for tabs
      '\t\t\t',
      '5500\t"Quoted\tTab"\t555\tq@x.io', // quotes are text in a tab source
      '"5600\tAcer\t555\ta@acer.io"',
      wide(10_000),
      '9'.repeat(400) + '\tLongId\t555\tl@x.io', // an identifier past its maximum length
      '5700\tPadded \t 555 \tp@x.io ',
      '   ',
      '',
      '2.56324E+15\tSci\t555\ts@x.io',
      '1\tRepeat\t555\trep@x.io', // repeats vendor 1 of the clean rows
    ],
    orders_paid_creditcard: ['2321833242527473,1023,', '2321833242527474,1000,x', '4.56324E+15,1001', ',1002'],
    order: [
      '1023\t2\t7\t0.0925\t50.02\t2018-02-30\t2018-10-20\tAnna\t1 Candy Rd\tZW1\t1', // bad date
      '1024\t2\t7\t0.0925\tN/A\t2018-10-17\t2018-10-20\tAnna\t1 Candy Rd\tZW1\t1', // not a number
      '1025\t2\t7\t0.0925\t50.02\t2018-10-17\t2018-10-20\tAnna\t1 Candy Rd\tZW1\t1\t',
      '1026\t999999999999999999\t7\t0.0925\t50.02\t2018-10-17\t2018-10-20\tAnna\t1 Candy Rd\tZW1\t1', // out of range
      '1027\t2\t7\t0.0925\t5000000000000.5\t2018-10-17\t2018-10-20\tAnna\t1 Candy Rd\tZW1\t1',
    ],
    orders_has_products: ['1000\t1200\t1202\t999999999999999999', '1001\t1200\t1202\t1000000', '1002\t1200\t1202\t0\t'],
    products: ['1300\tName  Description in one field', '1301\tTV\tA "quoted" text\t'],
    products_belong_category: ['1200\t10'],
    user: ['2003\tu\tpw-2003-plain\tF\tA\te@x.io\t555\t'],
  };

  test('lines of every fault kind, in every batch job', async () => {
    const dir = writeSources(shapes);
    // Invalid UTF-8 in free text (kept as U+FFFD) and in a field that must be a number.
    fs.appendFileSync(path.join(dir, 'vendor.txt'), Buffer.concat([
      Buffer.from('5900\tBad'), Buffer.from([0xff, 0xfe]), Buffer.from('Bytes\t555\tb@x.io\n'),
      Buffer.from('59'), Buffer.from([0xc3, 0x28]), Buffer.from('01\tBad id\t555\tb@x.io\n'),
      Buffer.from('5902\tTrailing'), Buffer.from([0xff]), Buffer.from('\t555\tb@x.io\t\n'),
    ]));
    const reasons = new Map<string, string>();
    for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) {
      const { bulk } = await expectAgreement(d.table, dir);
      // The bulk path took every file: the comparison is of the two paths, not of one with itself.
      expect(Object.values(bulk.result.stagingPaths).every((p) => p === 'bulk')).toBe(true);
      for (const q of bulk.quarantine) reasons.set(`${q[0]}:${Number(q[2])}`, String(q[4]));
    }
    // The exact path's answer, which the bulk path must give too (lines: header + clean rows first).
    const vendorFirst = 1 + cleanRows().vendor.length + 1;
    const vendor = (i: number) => reasons.get(`vendor:${vendorFirst + i}`);
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].map(vendor)).toEqual([
      'field_count', 'field_count', 'field_count', 'field_count', 'missing_key', 'field_count', 'bad_identifier',
      'field_count', 'out_of_range', undefined, undefined, undefined, 'scientific_notation_id', 'duplicate_key',
    ]); // padded values are trimmed (the row loads); blank lines are no rows
    expect(reasons.get(`orders_paid_creditcard:${1 + cleanRows().orders_paid_creditcard.length + 1}`)).toBe('field_count');
  });

  test('whole-file shapes: CRLF, BOM, quoted delimiters and newlines in the comma source', async () => {
    const h = header('vendor');
    const body = [h, ...cleanRows().vendor, '5100\tAcme\t555\ta@x.io\t'];
    const dir = writeSources({}, {
      'vendor.txt': '\uFEFF' + body.join('\r\n') + '\r\n',
      'orders_paid_creditcard.txt': [header('orders_paid_creditcard'), '"4111111111111000",1000', '"4111,111111111001",1001', '"41111\n11111111002",1002', '4111111111111003,1003,'].join('\n') + '\n',
    });
    const { bulk: v } = await expectAgreement('dim_vendors', dir);
    expect(v.quarantine.map((q) => [Number(q[2]), q[4]])).toEqual([[4, 'field_count']]);
    const { bulk: o } = await expectAgreement('fact_orders', dir);
    expect(o.result.stagingPaths.orders_paid_creditcard).toBe('exact');
  });
});

test('schema drift shapes agree: an added column, a missing nullable column, both with faulty rows', async () => {
  const fixture = (f: string) => fs.readFileSync(path.join(STORE_EXPORT, f), 'utf8').split('\n');
  const dir = tempDir('agree-drift');
  for (const f of fs.readdirSync(STORE_EXPORT)) fs.copyFileSync(path.join(STORE_EXPORT, f), path.join(dir, f));
  // vendor: one more column (some values empty), padded names and values kept from the fixture.
  const vendor = fixture('vendor.txt');
  fs.writeFileSync(path.join(dir, 'vendor.txt'), vendor.map((l, i) => (l === '' ? l : `${l}\t${i === 0 ? 'vendor_country' : i % 3 === 0 ? '' : `C${i}`}`)).join('\n'));
  // order: tracking_number (nullable) dropped.
  const order = fixture('order.txt');
  const at = order[0].split('\t').findIndex((h) => h.trim() === 'tracking_number');
  fs.writeFileSync(path.join(dir, 'order.txt'), order.map((l) => (l === '' ? l : l.split('\t').filter((_, j) => j !== at).join('\t'))).join('\n'));
  const vendors = await expectAgreement('dim_vendors', dir);
  expect(vendors.bulk.result.report.sources[0].schemaDrift.added).toEqual(['vendor_country']);
  expect(vendors.bulk.rows.filter((r) => r[r.length - 1] !== null).length).toBeGreaterThan(10);
  const orders = await expectAgreement('fact_orders', dir);
  expect(orders.bulk.result.report.sources.find((s) => s.source === 'order')!.schemaDrift.missing).toEqual(['tracking_number']);
});
