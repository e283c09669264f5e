/**
 * Every batch job on the committed fixture tests/fixtures/store-export/ (the generator's
 * `--quirks real-export`: every quirk of the store's real export at a fixed place). Expected
 * values come from tests/helpers/store-export.ts, a small reader independent of the pipeline.
 * First: the fixture is exactly what the generator makes (no drift) and holds every quirk.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { count, latestReport, query, runNode, sourceReport, tempDir } from '../helpers/env';
import { destinationRows, readAll, reasons, STORE_EXPORT, toUnits, unitsToText } from '../helpers/store-export';

const TABLES = ['fact_orders', 'fact_order_details', 'dim_products', 'dim_users', 'dim_vendors'];
const facts = readAll(STORE_EXPORT);
const state = tempDir('fixture');
const db = path.join(state, 'warehouse.duckdb');

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const report = (table: string) => latestReport(state, table);
const source = (table: string, name: string) => sourceReport(state, table, name);
const destination = (table: string) => catalog.destinations.find((d) => d.name === `store.${table}`)!;

describe('the fixture', () => {
  test('regenerating it gives byte-identical files (no drift)', () => {
    const out = tempDir('regen');
    const r = runNode('scripts/generate-data.js', ['--quirks', 'real-export', '--out', out]);
    expect(r.status).toBe(0);
    const files = fs.readdirSync(STORE_EXPORT).sort();
    expect(fs.readdirSync(out).sort()).toEqual(files);
    expect(files).toEqual(catalog.sources.map((s) => s.file).sort());
    for (const f of files) expect([f, sha(path.join(out, f))]).toEqual([f, sha(path.join(STORE_EXPORT, f))]);
  });

  test('holds every quirk of the real export', () => {
    const text = (f: string) => fs.readFileSync(path.join(STORE_EXPORT, f), 'utf8');
    // Padded header names and values.
    expect(facts.order.paddedNames).toEqual(['tax', 'ship_name', 'ship_address']);
    expect(facts.vendor.paddedNames).toHaveLength(4);
    expect(facts.vendor.valuesTrimmed).toBeGreaterThan(0);
    expect(text('vendor.txt')).toMatch(/\t [A-Z][a-z]+ \t/); // " Microsoft "
    // The comma-separated card file, with ids a spreadsheet damaged (2.56324E+15).
    expect(text('orders_paid_creditcard.txt').split('\n')[0]).toBe('credit_card_number,order_id');
    expect(text('orders_paid_creditcard.txt')).toMatch(/^\d\.\d{1,5}E\+15,\d+$/m);
    expect(text('user_has_creditcard.txt')).toMatch(/^\d+\t\d\.\d{1,5}E\+15$/m);
    // Rows with spaces instead of a tab; a row merged into the previous one.
    expect(reasons([facts.products]).field_count).toBe(2);
    expect(text('category.txt')).toMatch(/^4600\tHeadphones4700 Monitors$/m);
    // Blank lines, U+FFFD characters.
    expect(facts.vendor.blankLines + facts.products_has_options.blankLines + facts.product_sold_vendor.blankLines).toBe(3);
    expect(facts.products.replacementChars.descriptions).toBeGreaterThan(0);
    expect(facts.products_has_options.replacementChars.specs).toBeGreaterThan(0);
    // Repeated link rows, and products in several categories.
    const links = text('products_belong_category.txt').split('\n').filter(Boolean).slice(1);
    expect(links.length - new Set(links).size).toBeGreaterThan(0);
    const categoriesOf = new Map<string, Set<string>>();
    for (const l of links) {
      const [p, c] = l.split('\t');
      categoriesOf.set(p, (categoriesOf.get(p) ?? new Set()).add(c));
    }
    expect([...categoriesOf.values()].filter((s) => s.size > 1).length).toBeGreaterThan(0);
    // Small, like the real sample: tens of rows per file.
    for (const f of Object.values(facts)) expect(f.rowsRead).toBeLessThan(100);
  });
});

describe('the batch jobs on the fixture', () => {
  beforeAll(() => {
    for (const t of TABLES) {
      const r = runNode(`jobs/${t}.js`, [], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: state });
      if (r.status !== 0) throw new Error(`${t} failed (${r.status}): ${r.stderr}`);
    }
  });

  test('each destination has exactly the expected rows', async () => {
    const expected = destinationRows(facts);
    for (const t of TABLES) expect([t, await count(db, `store.${t}`)]).toEqual([t, expected[`store.${t}`]]);
  });

  test('every source balances: read = loaded + quarantined, as counted independently', () => {
    for (const t of TABLES) {
      expect(report(t).accountingBalanced).toBe(true);
      for (const name of destination(t).sources) {
        const f = facts[name];
        const s = source(t, name);
        expect([name, s.rowsRead, s.rowsLoaded, s.rowsQuarantined]).toEqual([name, f.rowsRead, f.loaded.length, f.quarantined.length]);
        expect([name, s.quarantinedByReason]).toEqual([name, reasons([f])]);
      }
    }
  });

  test('the warehouse records each run and its quarantine', async () => {
    const rows = destinationRows(facts);
    const expectedRuns = TABLES.map((t) => {
      const fs_ = destination(t).sources.map((n) => facts[n]);
      const read = fs_.reduce((n, f) => n + f.rowsRead, 0);
      const quarantined = fs_.reduce((n, f) => n + f.quarantined.length, 0);
      return [`store.${t}`, read, read - quarantined, quarantined, rows[`store.${t}`], 'success'];
    }).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    const runs = await query(
      db,
      `SELECT destination, rows_in::INTEGER, rows_loaded::INTEGER, rows_quarantined::INTEGER, rows_out::INTEGER, status
       FROM store._etl_runs ORDER BY destination`,
    );
    expect(runs).toEqual(expectedRuns);
    const expectedQuarantine: unknown[][] = [];
    for (const t of [...TABLES].sort()) {
      const byReason = reasons(destination(t).sources.map((n) => facts[n]));
      for (const code of Object.keys(byReason).sort()) expectedQuarantine.push([`store.${t}`, code, byReason[code]]);
    }
    const q = await query(db, `SELECT destination, reason_code, count(*)::INTEGER FROM store._quarantine GROUP BY ALL ORDER BY ALL`);
    expect(q).toEqual(expectedQuarantine);
  });

  test('quarantined rows are named with file, line and reason', async () => {
    const expected = facts.orders_paid_creditcard.quarantined;
    const rows = await query(
      db,
      `SELECT file, line::INTEGER, column_name, reason_code, reason FROM store._quarantine
       WHERE destination = 'store.fact_orders' ORDER BY line`,
    );
    expect(rows.map((r) => [path.basename(String(r[0])), r[1], r[3]])).toEqual(
      expected.map((q) => ['orders_paid_creditcard.txt', q.line, q.code]),
    );
    expect(rows[0][2]).toBe('credit_card_number');
    // A card column is PII: the reason names the problem, never the value.
    expect(String(rows[0][4])).toMatch(/^card number .*scientific notation/);
    expect(String(rows[0][4])).not.toMatch(/\d\.\d+E\+15/);
    const split = await query(
      db,
      `SELECT line::INTEGER, reason FROM store._quarantine
       WHERE destination = 'store.dim_products' AND reason_code = 'field_count' ORDER BY line`,
    );
    expect(split.map((r) => r[0])).toEqual(facts.products.quarantined.filter((q) => q.code === 'field_count').map((q) => q.line));
    expect(split[0][1]).toBe('expected 3 fields separated by tab, found 2');
    const dup = source('dim_products', 'products_belong_category').duplicateKeys;
    const firstDup = facts.products_belong_category.quarantined.find((q) => q.code === 'duplicate_key')!;
    const lines = fs.readFileSync(path.join(STORE_EXPORT, 'products_belong_category.txt'), 'utf8').split('\n');
    const pid = lines[firstDup.line - 1].split('\t')[0];
    const firstSeen = lines.findIndex((l) => l.split('\t')[0] === pid) + 1;
    expect(dup.samples[0]).toBe(`duplicate key (product_id=${pid}): first seen on line ${firstSeen}`);
  });

  test('the flaws are reported: padded headers, blank lines, trimmed values, U+FFFD, orphans', () => {
    for (const t of TABLES) {
      for (const name of destination(t).sources) {
        const f = facts[name];
        const s = source(t, name);
        expect([name, s.header.paddedNames]).toEqual([name, f.paddedNames]);
        expect([name, s.blankLines]).toEqual([name, f.blankLines]);
        expect([name, s.valuesTrimmed]).toEqual([name, f.valuesTrimmed]);
        const cols = Object.keys(f.replacementChars).sort();
        const values = Object.values(f.replacementChars).reduce((a, b) => a + b, 0);
        expect([name, s.invalidUtf8]).toEqual([name, { values, columns: cols }]);
      }
    }
    // Options of the quarantined products point at nothing.
    const good = new Set(facts.products.loaded.map((p) => p.product_id));
    const orphanOptions = facts.products_has_options.loaded.filter((o) => !good.has(o.product_id));
    expect(orphanOptions.length).toBeGreaterThan(0);
    const orphans = source('dim_products', 'products_has_options').orphanForeignKeys;
    expect(orphans.find((o) => o.references === 'products(product_id)')).toMatchObject({
      count: orphanOptions.length,
      samples: [...new Set(orphanOptions.map((o) => o.product_id))],
    });
  });

  test('values are typed, trimmed and joined as the ERD says', async () => {
    const user = new Map(facts.orders_placed_user.loaded.map((p) => [p.order_id, p.user_id]));
    const card = new Map(facts.orders_paid_creditcard.loaded.map((p) => [p.order_id, p.credit_card_number]));
    const rows = await query(
      db,
      `SELECT order_id, user_id, credit_card_masked, total_item::INTEGER, CAST(total_cost AS VARCHAR),
              CAST(order_date AS VARCHAR), is_delivered, ship_name, ship_address, tracking_number
       FROM store.fact_orders ORDER BY order_id`,
    );
    expect(rows).toEqual(
      facts.order.loaded.map((o) => [
        o.order_id,
        user.get(o.order_id) ?? null,
        card.has(o.order_id) ? `************${card.get(o.order_id)!.slice(-4)}` : null,
        Number(o.total_item),
        unitsToText(toUnits(o.total_cost)),
        o.order_date,
        o.delivery_status === '1',
        o.ship_name,
        o.ship_address,
        o.tracking_number,
      ]),
    );
    const vendors = await query(db, `SELECT vendor_id, vendor_name FROM store.dim_vendors ORDER BY vendor_id`);
    expect(vendors).toEqual(facts.vendor.loaded.map((v) => [v.vendor_id, v.vendor_name]));
    expect(vendors.some(([, name]) => /^[A-Z]/.test(String(name)))).toBe(true);
  });

  test('no plaintext password and no full card number reaches the warehouse', async () => {
    const cols = await query(db, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'store'`);
    expect(cols.flat()).not.toContain('password');
    const cards = await query(
      db,
      `SELECT credit_card_masked FROM store.dim_users WHERE credit_card_masked IS NOT NULL
       UNION ALL SELECT credit_card_masked FROM store.fact_orders WHERE credit_card_masked IS NOT NULL`,
    );
    expect(cards.length).toBe(facts.user_has_creditcard.loaded.length + facts.orders_paid_creditcard.loaded.length);
    for (const [c] of cards) expect(c).toMatch(/^\*{8,15}\d{4}$/);
    const passwords = facts.user.loaded.map((u) => u.password);
    const [[leaks]] = await query(
      db,
      `SELECT count(*)::INTEGER FROM store._quarantine WHERE ${passwords.map((p) => `raw LIKE '%${p}%'`).join(' OR ')}`,
    );
    expect(leaks).toBe(0);
  });
});
