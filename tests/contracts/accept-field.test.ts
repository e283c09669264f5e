/**
 * Accepting a field: with the column added to the catalog, the rows already loaded get it from
 * `_rescued_data` and lose the key there; a value that does not convert stays rescued.
 * The BigQuery statement runs on the executing double: tests/bigquery/schema-contracts.test.ts.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { findDestination } from '../../jobs/lib/catalog-check';
import type { DestinationTable } from '../../jobs/lib/catalog-types';
import { acceptFieldBigQuery, acceptFieldDuckDb, addAcceptedColumnDuckDb } from '../../jobs/lib/accept-field';
import { duckdbCreateTable } from '../../jobs/lib/ddl';

const base = findDestination(catalog, 'fact_shoppingcarts');
// The catalog after accepting: `items` (INT64) declared before _rescued_data.
const accepted: DestinationTable = {
  ...base,
  columns: [...base.columns.slice(0, -1), { name: 'items', type: 'INT64', nullable: true, description: 'items' }, base.columns[base.columns.length - 1]],
};

test('DuckDB: the column is filled from _rescued_data and the key removed; a bad value stays rescued', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run('CREATE SCHEMA store');
  // Loaded before the catalog had `items`: the old shape.
  await c.run(duckdbCreateTable(base, 'store.fact_shoppingcarts'));
  await c.run(`INSERT INTO store.fact_shoppingcarts VALUES
    ('1', true, now(), '{"items":"3","channel":"mobile"}'),
    ('2', true, now(), '{"items":"4"}'),
    ('3', true, now(), '{"items":"many"}'),
    ('4', true, now(), NULL)`);
  await c.run(addAcceptedColumnDuckDb(accepted, 'items'));
  await c.run(addAcceptedColumnDuckDb(accepted, 'items')); // a no-op the second time
  const r = await c.run(acceptFieldDuckDb(accepted, 'items'));
  expect(r.rowsChanged).toBe(2);
  const rows = (await c.runAndReadAll('SELECT shopping_cart_id, items::INTEGER, _rescued_data FROM store.fact_shoppingcarts ORDER BY 1')).getRowsJS();
  expect(rows).toEqual([['1', 3, '{"channel":"mobile"}'], ['2', 4, null], ['3', null, '{"items":"many"}'], ['4', null, null]]);
  c.closeSync();
  db.closeSync();
});

test('the column must be in the catalog first, and the table must rescue', () => {
  expect(() => acceptFieldDuckDb(base, 'items')).toThrow(/has no column 'items' in the catalog/);
  const frozen: DestinationTable = { ...accepted, columns: accepted.columns.slice(0, -1) };
  expect(() => acceptFieldBigQuery(frozen, '`p.store.fact_shoppingcarts`', 'items')).toThrow(/does not rescue/);
});
