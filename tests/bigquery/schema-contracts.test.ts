/**
 * Schema contracts on BigQuery, executed on the double:
 * - a destination created before the contracts (no `_rescued_data`) gains the column at
 *   ensureSchema (ALTER TABLE ... ADD COLUMN IF NOT EXISTS; the changelog too), idempotently,
 *   and then loads rows under rescue;
 * - accepting a field (BigQueryWarehouse.acceptField, `npm run accept-field` with
 *   WAREHOUSE=bigquery) on rows loaded under rescue: the column is added and filled from
 *   `_rescued_data`, the key removed there, a value that does not convert stays rescued; the
 *   values equal an independent computation from the events and DuckDB's outcome.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { acceptFieldDuckDb, addAcceptedColumnDuckDb } from '../../jobs/lib/accept-field';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { type Catalog, RESCUED_DATA_COLUMN, type StreamDestination } from '../../jobs/lib/catalog-types';
import { duckdbCreateTable } from '../../jobs/lib/ddl';
import { sqlString } from '../../jobs/lib/sql/quote';
import { decodeEvent } from '../../jobs/lib/stream/events';
import { changelogSchema, changelogTable, destinationSchema } from '../../jobs/lib/warehouse/bigquery/schema';
import { BigQueryWarehouse } from '../../jobs/lib/warehouse/bigquery/warehouse';
import type { Row } from '../../jobs/lib/warehouse/types';
import { BigQueryDouble, describeWithDouble, PROJECT } from './bigquery-double';
import { fromRestType } from './canonical';

// The real client, with its HTTP layer loadable under jest (see teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());

const FAST_RETRY = { retries: 2, baseDelayMs: 1, maxDelayMs: 5 };
const CARTS = findDestination(catalog, 'fact_shoppingcarts') as StreamDestination;
const VENDORS = findDestination(catalog, 'dim_vendors');
const SRC = findSource(catalog, 'shoppingcart');
const fq = (t: string) => `\`${PROJECT}.store.${t}\``;

/** The catalog after accepting `items` (INT64) into fact_shoppingcarts: declared before _rescued_data. */
const ACCEPTED: StreamDestination = {
  ...CARTS,
  columns: [...CARTS.columns.slice(0, -1), { name: 'items', type: 'INT64', nullable: true, description: 'Items in the cart.' }, CARTS.columns[CARTS.columns.length - 1]],
};
const ACCEPTED_CATALOG: Catalog = { ...catalog, destinations: catalog.destinations.map((d) => (d === CARTS ? ACCEPTED : d)) };

/** Cart events from a producer that added `items` (and `channel`, `note`) before the catalog knew them. */
const EVENTS = [
  '{"shopping_cart_id":"1","status":"1","items":"3","channel":"mobile"}',
  '{"shopping_cart_id":"2","status":"0","items":"4"}',
  '{"shopping_cart_id":"3","status":"1","items":"many"}',
  '{"shopping_cart_id":"4","status":"1"}',
  '{"shopping_cart_id":"5","status":"1","items":12,"note":"a \\"quoted\\" caf\u00e9 <b>"}',
  '{"shopping_cart_id":"6","status":"0","items":"-2","channel":"web","note":"x"}',
];

/** Independent of the pipeline: per cart, `items` when its text is an integer, and what stays rescued. */
function expectedAfterAccept(): [string, number | null, Record<string, string> | null][] {
  return EVENTS.map((text) => {
    const { shopping_cart_id: id, status: _s, ...added } = JSON.parse(text) as Record<string, unknown>;
    const rescued = Object.fromEntries(Object.entries(added).map(([k, v]) => [k, String(v)]));
    const items = /^-?\d+$/.test(rescued.items ?? '') ? Number(rescued.items) : null;
    if (items !== null) delete rescued.items;
    return [String(id), items, Object.keys(rescued).length ? rescued : null];
  });
}

const decoded = (dest: StreamDestination, text: string): Row => {
  const d = decodeEvent(dest, SRC, Buffer.from(text, 'utf8'), new Date('2026-01-02T03:04:05Z'));
  if (!d.ok) throw new Error(`event rejected: ${d.reason}`);
  return d.event;
};

/** A table's schema as the double's tables.get reports it: [name, type, mode]. */
async function schemaOf(bq: BigQueryDouble, table: string): Promise<string[][]> {
  const [meta] = await bq.client().dataset('store').table(table).getMetadata();
  return (meta.schema.fields as { name: string; type: string; mode: string }[]).map((f) => [f.name, fromRestType(f.type), f.mode]);
}

const catalogShape = (fields: { name?: string; type?: string; mode?: string }[]) => fields.map((f) => [f.name, f.type, f.mode]);

describeWithDouble('schema contracts on BigQuery (the executing double)', () => {
  let bq: BigQueryDouble;
  beforeAll(async () => {
    bq = await BigQueryDouble.start();
  }, 120_000);
  beforeEach(async () => {
    await bq.reset();
  });
  afterAll(async () => {
    await bq?.stop();
  });

  const warehouse = (c: Catalog = catalog) => new BigQueryWarehouse({ client: bq.client(), projectId: PROJECT, location: 'EU', catalog: c, retry: FAST_RETRY });
  const alters = () => bq.queries().filter((q) => q.startsWith('ALTER TABLE'));

  test('tables created before the contracts gain _rescued_data at ensureSchema, once, and then load rescued rows', async () => {
    // The old shape: the catalog's columns without _rescued_data, with a row already there.
    const client = bq.client();
    await client.createDataset('store', { location: 'EU' });
    const without = (fields: { name?: string }[]) => fields.filter((f) => f.name !== RESCUED_DATA_COLUMN);
    await client.dataset('store').createTable(CARTS.table, { schema: { fields: without(destinationSchema(CARTS).fields) } });
    await client.dataset('store').createTable(changelogTable(CARTS), { schema: { fields: without(changelogSchema(CARTS).fields) } });
    await client.dataset('store').createTable(VENDORS.table, { schema: { fields: without(destinationSchema(VENDORS).fields) } });
    await bq.sql(`INSERT INTO ${fq(CARTS.table)} (shopping_cart_id, status, updated_at) VALUES ('9', TRUE, TIMESTAMP '2025-01-01 00:00:00')`);
    expect((await schemaOf(bq, CARTS.table)).map((f) => f[0])).not.toContain(RESCUED_DATA_COLUMN);

    await warehouse().ensureSchema();
    expect(alters()).toHaveLength(3);
    expect(await schemaOf(bq, CARTS.table)).toEqual(catalogShape(destinationSchema(CARTS).fields));
    expect(await schemaOf(bq, changelogTable(CARTS))).toEqual(catalogShape(changelogSchema(CARTS).fields));
    expect(await schemaOf(bq, VENDORS.table)).toEqual(catalogShape(destinationSchema(VENDORS).fields));
    expect(await bq.sql(`SELECT shopping_cart_id, _rescued_data FROM ${fq(CARTS.table)}`)).toEqual([{ shopping_cart_id: '9', _rescued_data: null }]);

    // Idempotent: a second process's ensureSchema adds nothing and sends no DDL.
    await warehouse().ensureSchema();
    expect(alters()).toHaveLength(3);
    expect(await schemaOf(bq, CARTS.table)).toEqual(catalogShape(destinationSchema(CARTS).fields));

    // And the widened tables take rows under rescue, through the stream path (changelog + MERGE).
    const row = decoded(CARTS, '{"shopping_cart_id":"9","status":"0","channel":"mobile"}');
    expect(row[RESCUED_DATA_COLUMN]).toBe('{"channel":"mobile"}');
    await warehouse().applyStreamBatch({ destination: CARTS, consumerGroup: 'g', upserts: [row], eventIds: ['t-0-0'], quarantine: [], offsets: [] });
    expect(await bq.sql(`SELECT shopping_cart_id, status, _rescued_data FROM ${fq(CARTS.table)}`)).toEqual([{ shopping_cart_id: '9', status: 'false', _rescued_data: '{"channel":"mobile"}' }]);
    expect(await bq.sql(`SELECT _event_id, _rescued_data FROM ${fq(changelogTable(CARTS))}`)).toEqual([{ _event_id: 't-0-0', _rescued_data: '{"channel":"mobile"}' }]);
  });

  test('the double serves ALTER TABLE ... ADD COLUMN as BigQuery does: an existing column, NOT NULL and other actions refused', async () => {
    await warehouse().ensureSchema();
    const t = fq(CARTS.table);
    expect(await bq.sqlError(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS _rescued_data STRING`)).toBeNull();
    expect((await bq.sqlError(`ALTER TABLE ${t} ADD COLUMN _rescued_data STRING`))?.message).toMatch(/Column already exists: _rescued_data/);
    expect((await bq.sqlError(`ALTER TABLE ${t} ADD COLUMN n INT64 NOT NULL`))?.message).toMatch(/Cannot add REQUIRED column n/);
    expect((await bq.sqlError(`ALTER TABLE ${t} DROP COLUMN status`))?.message).toMatch(/not supported by the double/);
    expect((await bq.sqlError(`ALTER TABLE ${t} ADD COLUMN n INTEGR`))?.reason).toBe('invalidQuery');
    expect((await schemaOf(bq, CARTS.table)).map((f) => f[0])).toEqual(CARTS.columns.map((c) => c.name));
  });

  test('a missing REQUIRED catalog column is an error: BigQuery cannot add it to an existing table', async () => {
    const client = bq.client();
    await client.createDataset('store', { location: 'EU' });
    await client.dataset('store').createTable(CARTS.table, { schema: { fields: destinationSchema(CARTS).fields.filter((f) => f.name !== 'updated_at') } });
    await expect(warehouse().ensureSchema()).rejects.toThrow(/store\.fact_shoppingcarts lacks the REQUIRED column\(s\) updated_at/);
    expect(alters()).toHaveLength(0);
  });

  test('accepting a field: rows loaded under rescue get the column, the key leaves _rescued_data; same as DuckDB and as computed', async () => {
    // Loaded under rescue, before the catalog knew `items`.
    const before = warehouse();
    const rows = EVENTS.map((e) => decoded(CARTS, e));
    expect(rows.filter((r) => String(r[RESCUED_DATA_COLUMN]).includes('"items"'))).toHaveLength(5);
    await before.applyStreamBatch({ destination: CARTS, consumerGroup: 'g', upserts: rows, eventIds: rows.map((_, i) => `t-0-${i}`), quarantine: [], offsets: [] });

    // The catalog gains `items`; accepting adds the column (table and changelog) and fills it.
    const changed = await warehouse(ACCEPTED_CATALOG).acceptField(ACCEPTED, 'items');
    const expected = expectedAfterAccept();
    expect(changed).toBe(expected.filter(([, items]) => items !== null).length);
    // BigQuery appends an added column (after _rescued_data here); everything addresses columns by name.
    expect((await schemaOf(bq, CARTS.table)).map((f) => f[0])).toEqual([...CARTS.columns.map((c) => c.name), 'items']);
    expect((await schemaOf(bq, changelogTable(CARTS))).map((f) => f[0])).toContain('items');
    const asTriple = (r: Record<string, unknown>): [string, number | null, Record<string, string> | null] =>
      [String(r.shopping_cart_id), r.items === null ? null : Number(r.items), r._rescued_data === null ? null : JSON.parse(String(r._rescued_data))];
    const onBigQuery = (await bq.sql(`SELECT shopping_cart_id, items, _rescued_data FROM ${fq(CARTS.table)} ORDER BY shopping_cart_id`)).map(asTriple);
    expect(onBigQuery).toEqual(expected);

    // DuckDB, the same rows and the same acceptance: the same outcome.
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      await c.run('CREATE SCHEMA store');
      await c.run(duckdbCreateTable(CARTS, 'store.fact_shoppingcarts'));
      const lit = (v: unknown) => (v === null || v === undefined ? 'NULL' : v instanceof Date ? `TIMESTAMP ${sqlString(v.toISOString().replace('T', ' ').replace('Z', ''))}` : sqlString(String(v)));
      await c.run(`INSERT INTO store.fact_shoppingcarts (shopping_cart_id, status, updated_at, _rescued_data) VALUES ${rows.map((r) => `(${[r.shopping_cart_id, r.status, r.updated_at, r[RESCUED_DATA_COLUMN]].map(lit).join(', ')})`).join(', ')}`);
      await c.run(addAcceptedColumnDuckDb(ACCEPTED, 'items'));
      expect(Number((await c.run(acceptFieldDuckDb(ACCEPTED, 'items'))).rowsChanged)).toBe(changed);
      const onDuck = (await c.runAndReadAll('SELECT shopping_cart_id, items::VARCHAR AS items, _rescued_data FROM store.fact_shoppingcarts ORDER BY 1')).getRowObjectsJS().map(asTriple);
      expect(onDuck).toEqual(expected);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});
