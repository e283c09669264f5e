/**
 * transformKeepsSourceKey: which transforms prove their result unique on the destination key
 * (the job then skips looking for repeated keys), read from DuckDB's parse tree. Expected
 * values come from reading each query: a LEFT JOIN chain from one source, every join on the
 * joined source's whole key, the destination key being that source's key.
 */
import { catalog } from '../../jobs/catalog';
import type { BatchDestination } from '../../jobs/lib/catalog-types';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { transformKeepsSourceKey } from '../../jobs/lib/key-proof';
import { transformSql } from '../../jobs/lib/pipeline';
import { openDuckDb, type OpenDb } from '../../jobs/lib/sql/duckdb-file';

let db: OpenDb;
beforeAll(async () => {
  db = await openDuckDb(':memory:');
});
afterAll(() => db.close());

const proves = (dest: BatchDestination, sql: string) =>
  transformKeepsSourceKey(db.connection, dest, dest.sources.map((s) => findSource(catalog, s)), sql);
const batch = (name: string) => findDestination(catalog, name) as BatchDestination;

test.each([
  ['fact_orders', true], // order LEFT JOIN two links keyed by order_id
  ['fact_order_details', true], // order lines LEFT JOIN the price list on its whole key
  ['dim_users', true], // user LEFT JOIN the card link keyed by user_id
  ['dim_vendors', true], // one source, no join
  ['dim_products', false], // product LEFT JOIN options on product_id only: one row per option
])('the shipped transform of %s: proven %s', async (name, expected) => {
  const dest = batch(name);
  expect(await proves(dest, transformSql(dest))).toBe(expected);
});

const FOD = `SELECT d.order_id, d.product_id, d.option_id, d.quantity, po.price, po.price * d.quantity AS raw_cost
FROM src_orders_has_products AS d
LEFT JOIN src_products_has_options AS po ON po.product_id = d.product_id AND po.option_id = d.option_id`;

test('the reference query is proven, and the proof holds with the sides of an equality swapped', async () => {
  const dest = batch('fact_order_details');
  expect(await proves(dest, FOD)).toBe(true);
  expect(await proves(dest, FOD.replace('po.product_id = d.product_id', 'd.product_id = po.product_id'))).toBe(true);
});

test.each([
  ['an inner join (drops rows)', FOD.replace('LEFT JOIN', 'JOIN')],
  ['a join on part of the joined key', FOD.replace(' AND po.option_id = d.option_id', '')],
  ['a join condition within the joined table', FOD.replace('po.option_id = d.option_id', 'po.option_id = po.product_id')],
  ['a WHERE clause', `${FOD} WHERE d.quantity > 1`],
  ['a key column taken from the joined table', FOD.replace('SELECT d.order_id, d.product_id', 'SELECT d.order_id, po.product_id')],
  ['a key column computed', FOD.replace('SELECT d.order_id,', "SELECT d.order_id || '' AS order_id,")],
  ['DISTINCT', FOD.replace('SELECT', 'SELECT DISTINCT')],
  ['UNION ALL', `${FOD} UNION ALL ${FOD}`],
  ['unnest in the select list', FOD.replace('po.price,', 'unnest([po.price, po.price]) AS price,')],
  ['a cross join', FOD.replace('LEFT JOIN src_products_has_options AS po ON po.product_id = d.product_id AND po.option_id = d.option_id', ', src_products_has_options AS po')],
  ['a subquery in FROM', FOD.replace('FROM src_orders_has_products AS d', 'FROM (SELECT * FROM src_orders_has_products) AS d')],
  ['a CTE', `WITH x AS (SELECT 1) ${FOD}`],
  ['a table that is not a staged source of the job', FOD.replace('src_products_has_options', 'src_option')],
  ['not SQL', 'SELECT FROM WHERE'],
])('not proven: %s', async (_what, sql) => {
  expect(await proves(batch('fact_order_details'), sql)).toBe(false);
});
