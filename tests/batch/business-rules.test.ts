/**
 * Issue 11: business rules of the catalog (ranges, derived values that must fit their
 * destination type) quarantine the row that breaks them, with a reason; the job never aborts.
 * Expected costs are computed here with BigInt, independently of DuckDB.
 */
import { catalog } from '../../jobs/catalog';
import { assertCatalogConsistent } from '../../jobs/lib/catalog-check';
import { rowValidator } from '../../jobs/lib/schema';
import { query } from '../helpers/env';
import { accounting, quarantine, row, runJob, writeSources } from './faulty-files';

/** price x quantity as DECIMAL(18,4) text, exactly (price given with up to 4 decimals). */
function cost(price: string, quantity: string): string {
  const [i, f = ''] = price.split('.');
  const scaled = BigInt(i + f.padEnd(4, '0')) * BigInt(quantity);
  const s = scaled.toString().padStart(5, '0');
  return `${s.slice(0, -4)}.${s.slice(-4)}`;
}

// A price near the catalog's maximum (under a billion), on option 1205 (products_has_options
// line 6 below): 10^14 / 999999999 = 100000.0001, so 100000 is the largest quantity whose cost
// still fits, and both quantities are within the catalog's maximum of 999,999 per line.
const BIG_PRICE = '999999999';
const FITS = '100000';
const OVERFLOWS = '100001';
const bigPriceOption = row('products_has_options', 1200, 1205, 3, BIG_PRICE, 0, 'z');

describe('fact_order_details: quantities and the price x quantity that must fit DECIMAL(18,4)', () => {
  let run: ReturnType<typeof runJob>;
  beforeAll(() => {
    run = runJob('fact_order_details', writeSources({
      orders_has_products: [
        row('orders_has_products', 1000, 1200, 1202, 0), //                    5 below the minimum 1
        row('orders_has_products', 1001, 1200, 1202, -3), //                   6 negative
        row('orders_has_products', 1002, 1200, 1202, '999999999999999999'), // 7 above the maximum 999999
        row('orders_has_products', 1003, 1200, 1205, FITS), //                 8 fits
        row('orders_has_products', 1004, 1200, 1205, OVERFLOWS), //            9 overflows by a hair
        row('orders_has_products', 1005, 1200, 1202, 5), //                   10 fine
      ],
      products_has_options: [
        row('products_has_options', 1200, 1203, 2, '-0.01', 1, 'x'), //      4 negative price
        row('products_has_options', 1200, 1204, -1, '5', 0, 'y'), //          5 negative stock
        bigPriceOption, //                                                    6
      ],
    }));
  });

  test('the job succeeds and balances per source', () => {
    expect(run.stderr).not.toMatch(/"level":"error"/);
    expect(run.status).toBe(0);
    expect(accounting(run, 'fact_order_details')).toEqual({
      orders_has_products: [9, 5, 4],
      products_has_options: [5, 3, 2],
    });
  });

  test('each broken row is quarantined with its rule', async () => {
    const q = await quarantine(run.db);
    expect(q.map((r) => [r.source, r.line, r.column, r.code])).toEqual([
      ['orders_has_products', 5, 'quantity', 'out_of_range'],
      ['orders_has_products', 6, 'quantity', 'out_of_range'],
      ['orders_has_products', 7, 'quantity', 'out_of_range'],
      ['orders_has_products', 9, 'quantity', 'derived_out_of_range'],
      ['products_has_options', 4, 'price', 'out_of_range'],
      ['products_has_options', 5, 'quantity', 'out_of_range'],
    ]);
    expect(q[0].reason).toBe('quantity "0" is below the minimum 1');
    // (Long digit runs in a reason follow the masking rule of pii.ts.)
    expect(q[2].reason).toMatch(/^quantity "[0-9*]{18}" is above the maximum 999999$/);
    expect(q[3].reason).toMatch(/^raw_cost = quantity 100001 x price 999999999(\.0+)? \(products_has_options line 6\) does not fit DECIMAL\(18,4\)$/);
  });

  test('the rows that pass are priced exactly, the largest cost that fits included', async () => {
    const rows = await query(run.db, `SELECT order_id, quantity::VARCHAR, raw_cost::VARCHAR FROM store.fact_order_details ORDER BY order_id`);
    expect(rows).toEqual([
      ['1000', '2', cost('1299', '2')],
      ['1001', '2', cost('1299', '2')],
      ['1002', '2', cost('1299', '2')],
      ['1003', FITS, cost(BIG_PRICE, FITS)],
      ['1005', '5', cost('10.5', '5')],
    ]);
    expect(cost(BIG_PRICE, FITS)).toBe('99999999900000.0000');
  });
});

test('fact_order_details: a cost over the limit by a hair is found when it is the largest (the bound that may skip the join is exact)', async () => {
  const alone = runJob('fact_order_details', writeSources({
    orders_has_products: [
      row('orders_has_products', 1003, 1200, 1205, FITS), //       5 fits
      row('orders_has_products', 1004, 1200, 1205, OVERFLOWS), //  6 overflows by a hair, and no row more
    ],
    products_has_options: [bigPriceOption],
  }));
  expect(alone.status).toBe(0);
  const q = await quarantine(alone.db);
  expect(q.filter((r) => r.code === 'derived_out_of_range').map((r) => [r.source, r.line])).toEqual([['orders_has_products', 6]]);
  const fitsOnly = runJob('fact_order_details', writeSources({ orders_has_products: [row('orders_has_products', 1003, 1200, 1205, FITS)], products_has_options: [bigPriceOption] }));
  expect(fitsOnly.status).toBe(0);
  expect((await quarantine(fitsOnly.db)).filter((r) => r.code === 'derived_out_of_range')).toEqual([]);
});

test('fact_order_details: a repeated order line (a key of three columns) is quarantined as a duplicate', async () => {
  const run = runJob('fact_order_details', writeSources({
    orders_has_products: [
      row('orders_has_products', 2003, 1200, 1201, 2), //  5 first
      row('orders_has_products', 2003, 1200, 1202, 2), //  6 another option: a key of its own
      row('orders_has_products', 2003, 1200, 1201, 3), //  7 line 5's key again
    ],
  }));
  expect(run.status).toBe(0);
  const q = (await quarantine(run.db)).filter((r) => r.code === 'duplicate_key');
  expect(q.map((r) => [r.source, r.line, r.reason])).toEqual([
    ['orders_has_products', 7, 'duplicate key (order_id=2003, product_id=1200, option_id=1201): first seen on line 5'],
  ]);
});

test('fact_orders: negative money and an order of no items are quarantined, not loaded', async () => {
  const order = (id: number, items: number | string, fee: string, total: string) =>
    row('order', id, items, fee, '0.0925', total, '2018-10-17', '2018-10-20', 'Anna', 'Addr', 'ZW1', 1);
  const run = runJob('fact_orders', writeSources({
    order: [order(1003, 2, '-7', '10'), order(1004, 0, '7', '10'), order(1005, 2, '7', '-0.0001'), order(1006, 1, '0', '0')],
  }));
  expect(run.status).toBe(0);
  expect(accounting(run, 'fact_orders').order).toEqual([7, 4, 3]);
  const q = await quarantine(run.db, 'order');
  expect(q.map((r) => [r.line, r.column, r.code])).toEqual([
    [5, 'shipping_fee', 'out_of_range'],
    [6, 'total_item', 'out_of_range'],
    [7, 'total_cost', 'out_of_range'],
  ]);
});

test('rules are checked on well-typed values only, and every problem of a row is listed', () => {
  const v = rowValidator(catalog.sources.find((s) => s.name === 'orders_has_products')!);
  expect(v.validate({ order_id: '1', product_id: '2', option_id: '3', quantity: '1' })).toEqual([]);
  expect(v.validate({ order_id: '1', product_id: '2', option_id: '3', quantity: '-999999999999999999' })[0].code).toBe('out_of_range');
  expect(v.validate({ order_id: 'x', product_id: '2', option_id: '3', quantity: '0' }).map((e) => e.code)).toEqual(['bad_identifier', 'out_of_range']);
  expect(v.validate({ order_id: '1', product_id: '2', option_id: '3', quantity: '4.5' }).map((e) => e.code)).toEqual(['not_an_integer']);
});

test('the catalog rejects rules and PII it could not honour', () => {
  const paid = catalog.sources.find((s) => s.name === 'orders_paid_creditcard')!;
  const details = catalog.destinations.find((d) => d.table === 'fact_order_details')!;
  const bad = {
    ...catalog,
    sources: catalog.sources.map((s) =>
      s === paid
        ? { ...s, columns: [{ name: 'credit_card_number', type: 'card' as const }, { name: 'order_id', type: 'id' as const, rules: { min: 1 } }] }
        : s,
    ),
    destinations: catalog.destinations.map((d) =>
      d === details ? { ...details, derived: [{ column: 'order_id', source: { source: 'orders_has_products', column: 'order_id' }, via: { source: 'order', column: 'tax' } }] } : d,
    ),
  };
  expect(() => assertCatalogConsistent(bad)).toThrow(
    /card column credit_card_number has no PII policy[\s\S]*order_id has a range rule but is not a number[\s\S]*derived order_id is not a NUMERIC column[\s\S]*uses a source the job does not read[\s\S]*has no foreign key to order[\s\S]*orders_has_products\.order_id is not a number/,
  );
});
