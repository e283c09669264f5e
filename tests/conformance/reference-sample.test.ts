/**
 * Conformance: every batch job on the store's real, messy export (not part of the repository;
 * REFERENCE_DATA_DIR, default ../shared/reference-data/alibaba-sample beside the repo): exact
 * rows per table, exact accounting per source, and the sample's known flaws reported. The
 * numbers were read off the real files (docs/batch.md). No other suite depends on this folder:
 * they use tests/fixtures/store-export/. Without the folder the suite is skipped with one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SourceQuality } from '../../jobs/lib/quality';
import { count, latestReport, query, ROOT, runNode, sourceReport, tempDir } from '../helpers/env';

const REFERENCE_SAMPLE = path.resolve(
  process.env.REFERENCE_DATA_DIR || path.join(ROOT, '..', 'shared', 'reference-data', 'alibaba-sample'),
);
const present = fs.existsSync(path.join(REFERENCE_SAMPLE, 'order.txt'));
// One plain line (not console.log, which jest decorates with a stack location).
if (!present) process.stderr.write(`[skipped] conformance suite: no real export at ${REFERENCE_SAMPLE} (set REFERENCE_DATA_DIR)\n`);

(present ? describe : describe.skip)(`the real export (${REFERENCE_SAMPLE})`, () => {
  const state = tempDir('ref');
  const db = path.join(state, 'warehouse.duckdb');
  const env = { ETL_SOURCE_DIR: REFERENCE_SAMPLE, ETL_STATE_DIR: state };

  const report = (table: string) => latestReport(state, table);
  const source = (table: string, name: string) => sourceReport(state, table, name);
  /** [read, loaded, quarantined] */
  const accounting = (s: SourceQuality) => [s.rowsRead, s.rowsLoaded, s.rowsQuarantined];

  beforeAll(() => {
    for (const t of ['fact_orders', 'fact_order_details', 'dim_products', 'dim_users', 'dim_vendors']) {
      const r = runNode(`jobs/${t}.js`, [], env);
      if (r.status !== 0) throw new Error(`${t} failed (${r.status}): ${r.stderr}`);
    }
  });

  test('each destination has exactly the expected rows', async () => {
    expect(await count(db, 'store.fact_orders')).toBe(27);
    expect(await count(db, 'store.fact_order_details')).toBe(77);
    expect(await count(db, 'store.dim_products')).toBe(124);
    expect(await count(db, 'store.dim_users')).toBe(27);
    expect(await count(db, 'store.dim_vendors')).toBe(26);
  });

  test('every source balances: read = loaded + quarantined', () => {
    expect(accounting(source('fact_orders', 'order'))).toEqual([27, 27, 0]);
    expect(accounting(source('fact_orders', 'orders_placed_user'))).toEqual([27, 27, 0]);
    expect(accounting(source('fact_orders', 'orders_paid_creditcard'))).toEqual([27, 15, 12]);
    expect(accounting(source('fact_order_details', 'orders_has_products'))).toEqual([77, 77, 0]);
    expect(accounting(source('fact_order_details', 'products_has_options'))).toEqual([128, 128, 0]);
    expect(accounting(source('dim_products', 'products'))).toEqual([64, 62, 2]);
    expect(accounting(source('dim_products', 'products_belong_category'))).toEqual([70, 64, 6]);
    expect(accounting(source('dim_products', 'category'))).toEqual([50, 50, 0]);
    expect(accounting(source('dim_products', 'option'))).toEqual([128, 128, 0]);
    expect(accounting(source('dim_users', 'user'))).toEqual([27, 27, 0]);
    expect(accounting(source('dim_users', 'user_has_creditcard'))).toEqual([27, 20, 7]);
    expect(accounting(source('dim_vendors', 'vendor'))).toEqual([26, 26, 0]);
    for (const t of ['fact_orders', 'fact_order_details', 'dim_products', 'dim_users', 'dim_vendors']) {
      expect(report(t).accountingBalanced).toBe(true);
    }
  });

  test('the warehouse records each run and its quarantine', async () => {
    const runs = await query(
      db,
      `SELECT destination, rows_in::INTEGER, rows_loaded::INTEGER, rows_quarantined::INTEGER, rows_out::INTEGER, status
       FROM store._etl_runs ORDER BY destination`,
    );
    expect(runs).toEqual([
      ['store.dim_products', 440, 432, 8, 124, 'success'],
      ['store.dim_users', 54, 47, 7, 27, 'success'],
      ['store.dim_vendors', 26, 26, 0, 26, 'success'],
      ['store.fact_order_details', 205, 205, 0, 77, 'success'],
      ['store.fact_orders', 81, 69, 12, 27, 'success'],
    ]);
    const q = await query(
      db,
      `SELECT destination, reason_code, count(*)::INTEGER FROM store._quarantine GROUP BY ALL ORDER BY ALL`,
    );
    expect(q).toEqual([
      ['store.dim_products', 'duplicate_key', 6],
      ['store.dim_products', 'field_count', 2],
      ['store.dim_users', 'scientific_notation_id', 7],
      ['store.fact_orders', 'scientific_notation_id', 12],
    ]);
  });

  test('identifiers damaged into scientific notation are named with file, line and column', async () => {
    const s = source('fact_orders', 'orders_paid_creditcard');
    expect(s.scientificNotationIds.count).toBe(12);
    // The column is PII (a card): damaged values are counted, never shown.
    expect(s.scientificNotationIds.samples).toEqual([]);
    expect(s.typeMismatches).toEqual({ credit_card_number: 12 });
    const [[file, line, column, reason]] = await query(
      db,
      `SELECT file, line::INTEGER, column_name, reason FROM store._quarantine
       WHERE destination = 'store.fact_orders' ORDER BY line LIMIT 1`,
    );
    expect(path.basename(String(file))).toBe('orders_paid_creditcard.txt');
    expect(line).toBe(2);
    expect(column).toBe('credit_card_number');
    expect(reason).toMatch(/card number .*scientific notation/);
    expect(reason).not.toContain('2.56324');
  });

  test('rows whose fields are not tab-separated are quarantined, not guessed at', async () => {
    const rows = await query(
      db,
      `SELECT line::INTEGER, reason, raw FROM store._quarantine
       WHERE destination = 'store.dim_products' AND reason_code = 'field_count' ORDER BY line`,
    );
    expect(rows.map((r) => r[0])).toEqual([18, 19]);
    expect(rows[0][1]).toBe('expected 3 fields separated by tab, found 2');
    expect(String(rows[0][2])).toMatch(/^2800\tHP Spectre x360/);
  });

  test('repeated link rows are quarantined as duplicate keys, keeping the first', () => {
    const s = source('dim_products', 'products_belong_category');
    expect(s.duplicateKeys.count).toBe(6);
    expect(s.duplicateKeys.samples[0]).toBe('duplicate key (product_id=2100): first seen on line 11');
  });

  test('the sample flaws are reported: padded headers, blank lines, odd bytes, orphans', () => {
    expect(source('fact_orders', 'order').header.paddedNames).toEqual(['tax', 'ship_name', 'ship_address']);
    expect(source('dim_vendors', 'vendor').blankLines).toBe(1);
    expect(source('dim_vendors', 'vendor').valuesTrimmed).toBe(7);
    expect(source('dim_products', 'products_has_options').invalidUtf8).toEqual({ values: 4, columns: ['specs'] });
    expect(source('dim_products', 'products').invalidUtf8).toEqual({ values: 2, columns: ['descriptions'] });
    // Options of the two quarantined products now point at nothing.
    const orphans = source('dim_products', 'products_has_options').orphanForeignKeys;
    expect(orphans.find((o) => o.references === 'products(product_id)')).toMatchObject({ count: 4, samples: ['2800', '2900'] });
    expect(source('fact_orders', 'order').nullsPerColumn.order_id).toBe(0);
    expect(source('fact_orders', 'order').shape).toEqual({ rows: 27, columns: 11 });
  });

  test('values are typed, trimmed and joined as the ERD says', async () => {
    const [order] = await query(
      db,
      `SELECT order_id, user_id, credit_card_masked, total_item::INTEGER, CAST(total_cost AS VARCHAR),
              CAST(order_date AS VARCHAR), is_delivered, ship_name
       FROM store.fact_orders WHERE order_id = '1002'`,
    );
    // 1002's card was damaged (quarantined): the order still loads, with no card.
    expect(order).toEqual(['1002', '102', null, 7, '40.3300', '2018-10-14', true, 'Julia Jones']);
    const [detail] = await query(
      db,
      `SELECT quantity::INTEGER, CAST(price AS VARCHAR), CAST(raw_cost AS VARCHAR) FROM store.fact_order_details
       WHERE order_id = '1000' AND product_id = '1200' AND option_id = '1201'`,
    );
    expect(detail).toEqual([2, '1299.0000', '2598.0000']);
    const [vendor] = await query(db, `SELECT vendor_name FROM store.dim_vendors WHERE vendor_id = '5100'`);
    expect(vendor).toEqual(['Microsoft']);
    const [product] = await query(
      db,
      `SELECT category_name, option_name, stock_quantity::INTEGER, on_sale FROM store.dim_products
       WHERE product_id = '1200' AND option_id = '1201'`,
    );
    expect(product).toEqual(['Laptops', 'Macbook Pro 13.3-inch', 3, true]);
  });

  test('no plaintext password and no full card number reaches the warehouse', async () => {
    const cols = await query(db, `SELECT column_name FROM information_schema.columns WHERE table_schema = 'store'`);
    expect(cols.flat()).not.toContain('password');
    const cards = await query(
      db,
      `SELECT credit_card_masked FROM store.dim_users WHERE credit_card_masked IS NOT NULL
       UNION ALL SELECT credit_card_masked FROM store.fact_orders WHERE credit_card_masked IS NOT NULL`,
    );
    expect(cards.length).toBe(35);
    for (const [c] of cards) expect(c).toMatch(/^\*{8,15}\d{4}$/);
    const [[user107]] = await query(db, `SELECT credit_card_masked FROM store.dim_users WHERE user_id = '107'`);
    expect(user107).toBe('************7777');
    // Nor in the quarantine: raw rows of the user source are never quarantined with a password here,
    // and no stored text anywhere contains one of the sample's passwords.
    const [[leaks]] = await query(
      db,
      `SELECT count(*)::INTEGER FROM store._quarantine WHERE raw LIKE '%white00%' OR raw LIKE '%orange01%'`,
    );
    expect(leaks).toBe(0);
  });
});
