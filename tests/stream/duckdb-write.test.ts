/**
 * The DuckDB stream write without a broker: a group commit of several slices stores every
 * quarantined event (more than one statement's worth), the highest offset of each partition,
 * the last row per key, and updated_at as the commit's time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { StreamDestination } from '../../jobs/lib/catalog-types';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { applyStreamWritesDuckDb, readOffsetsDuckDb, type DuckStreamWrite } from '../../jobs/lib/warehouse/duckdb/stream-write';
import { type DuckDbWarehouse, streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import type { QuarantineRow } from '../../jobs/lib/warehouse/types';
import { StatementBatch } from '../../jobs/lib/sql/statements';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const STATUS = findDestination(catalog, 'fact_shoppingcarts') as StreamDestination;
const CART_ITEMS = findSource(catalog, 'carts_has_products');
const CART_STATUS = findSource(catalog, 'shoppingcart');

/**
 * Runs `body` on a fresh stream warehouse (schema ensured) in a scratch directory; `prepare`
 * may make the file first. Closes and removes it after.
 */
async function withStreamWarehouse(body: (wh: DuckDbWarehouse) => Promise<void>, prepare?: (file: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-write-'));
  const file = path.join(dir, 'stream.duckdb');
  await prepare?.(file);
  const wh = streamDuckDbWarehouse(file, catalog);
  try {
    await wh.ensureSchema();
    await body(wh);
  } finally {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('one group commit: quarantine, offsets and last row per key', async () => {
  await withStreamWarehouse(async (wh) => {
    const q = (i: number, topic: string): QuarantineRow => ({
      runId: 'r', destination: CARTS.name, source: 'carts_has_products', file: `${topic}:0`, line: i, column: null,
      reasonCode: 'bad_event', reason: `bad ${i}`, raw: i % 50 === 0 ? `it's \u0000 "raw" ${i}` : `raw ${i}`,
    });
    const old = new Date('2000-01-01T00:00:00Z');
    const cart = (id: string, quantity: string) => ({ shopping_cart_id: id, product_id: '1', option_id: '2', quantity, updated_at: old });
    const writes: DuckStreamWrite[] = [
      { destination: CARTS, source: CART_ITEMS, consumerGroup: "g'1", events: [cart('1', '1'), cart('2', '5')],
        quarantine: Array.from({ length: 450 }, (_, i) => q(i, 't_carts')), offsets: [{ topic: 't_carts', partition: 0, offset: '452' }, { topic: 't_carts', partition: 1, offset: '7' }] },
      { destination: CARTS, source: CART_ITEMS, consumerGroup: "g'1", events: [cart('1', '3')],
        quarantine: [q(999, 't_carts')], offsets: [{ topic: 't_carts', partition: 0, offset: '1000' }] },
      { destination: STATUS, source: CART_STATUS, consumerGroup: "g'1", events: [{ shopping_cart_id: '1', status: 'true', updated_at: old }],
        quarantine: [], offsets: [{ topic: 't_status', partition: 2, offset: '9007199254740993' }] },
    ];
    const before = Date.now();
    await wh.withConnection((c) => applyStreamWritesDuckDb(c, writes));
    const rows = await wh.withConnection(async (c) => ({
      quarantine: (await c.runAndReadAll(`SELECT line, raw FROM store._quarantine ORDER BY line`)).getRowObjectsJS(),
      carts: (await c.runAndReadAll(`SELECT shopping_cart_id, quantity, epoch_ms(updated_at) AS t FROM store.fact_carts_has_products ORDER BY 1`)).getRowObjectsJS(),
      offsets: await readOffsetsDuckDb(c, "g'1", ['t_carts', 't_status']),
    }));
    expect(rows.quarantine.map((r) => Number(r.line))).toEqual([...Array.from({ length: 450 }, (_, i) => i), 999]);
    expect(rows.quarantine[50].raw).toBe(`it's \u0000 "raw" 50`);
    expect(rows.carts.map((r) => [r.shopping_cart_id, Number(r.quantity)])).toEqual([['1', 3], ['2', 5]]);
    for (const r of rows.carts) expect(Number(r.t)).toBeGreaterThanOrEqual(before - 1000);
    expect(rows.offsets).toEqual([
      { topic: 't_carts', partition: 0, offset: '1000' },
      { topic: 't_carts', partition: 1, offset: '7' },
      { topic: 't_status', partition: 2, offset: '9007199254740993' },
    ]);
  });
});

test('an upsert across commits keeps one row per key, the latest, and any text exactly', async () => {
  // The stream write is generic over the catalog's columns: a text key with every awkward character.
  const odd = ['a\nb', 'tab\there', 'quote\'s "x"', 'back\\slash', 'nul\u0000byte', 'ünï', '', ' '];
  const write = (ids: readonly string[], quantity: (i: number) => string | null, offset: number): DuckStreamWrite => ({
    destination: CARTS, source: CART_ITEMS, consumerGroup: 'g', quarantine: [],
    events: ids.map((id, i) => ({ shopping_cart_id: id, product_id: 'p', option_id: 'o', quantity: quantity(i), updated_at: null })),
    offsets: [{ topic: 't', partition: 0, offset: String(offset) }],
  });
  await withStreamWarehouse(async (wh) => {
    await wh.withConnection((c) => applyStreamWritesDuckDb(c, [write(odd, (i) => String(i), 10)]));
    // Half the keys again (two of them twice in the commit: the later wins, a null too), one new.
    await wh.withConnection((c) =>
      applyStreamWritesDuckDb(c, [write([...odd.slice(0, 4), odd[0], 'new', odd[2]], (i) => (i === 1 || i === 6 ? null : String(100 + i)), 20)]),
    );
    const rows = await wh.withConnection(async (c) =>
      (await c.runAndReadAll(`SELECT shopping_cart_id, quantity FROM store.fact_carts_has_products`)).getRowsJS(),
    );
    const got = new Map(rows.map(([id, q]) => [String(id), q === null ? null : Number(q)]));
    expect(rows.length).toBe(odd.length + 1);
    expect(got).toEqual(
      new Map<string, number | null>([
        [odd[0], 104], [odd[1], null], [odd[2], null], [odd[3], 103],
        [odd[4], 4], [odd[5], 5], [odd[6], 6], [odd[7], 7], ['new', 105],
      ]),
    );
  });
});

test('events as their own text and as rows, mixed in one commit: staged alike, the last event of a key wins', async () => {
  // A record's text as the producer writes it (what the fast pattern passes on), and the same
  // event as the row the exact path stages: status "1"/"0" -> true/false, quantity -> BIGINT.
  const itemText = (cart: string, q: string | null) =>
    JSON.stringify({ shopping_cart_id: cart, product_id: 'p1', option_id: 'o1', quantity: q });
  const itemRow = (cart: string, q: string | null) => ({ shopping_cart_id: cart, product_id: 'p1', option_id: 'o1', quantity: q, updated_at: null });
  const statusText = (cart: string, status: '0' | '1') => JSON.stringify({ shopping_cart_id: cart, status });
  await withStreamWarehouse(async (wh) => {
    const staged = await wh.withConnection(async (c) => {
      let names: string[] = [];
      await applyStreamWritesDuckDb(
        c,
        [
          { destination: CARTS, source: CART_ITEMS, consumerGroup: 'g', quarantine: [], offsets: [{ topic: 't', partition: 0, offset: '6' }],
            // Cart a: text, then row (row wins); b: row, then text (text wins); c: text only, a null last; d: row only.
            events: [itemText('a', '1'), itemRow('b', '2'), itemRow('a', '3'), itemText('b', '4'), itemText('c', '5'), itemText('c', null), itemRow('d', '7')] },
          { destination: STATUS, source: CART_STATUS, consumerGroup: 'g', quarantine: [], offsets: [{ topic: 's', partition: 0, offset: '3' }],
            events: [statusText('a', '1'), statusText('b', '0'), { shopping_cart_id: 'c', status: 'false', updated_at: null }] },
        ],
        async (_tx, tables) => {
          names = [...tables.keys()].sort();
        },
      );
      return names;
    });
    expect(staged).toEqual(['fact_carts_has_products', 'fact_shoppingcarts']);
    const rows = await wh.withConnection(async (c) => ({
      items: (await c.runAndReadAll(`SELECT shopping_cart_id, quantity FROM store.fact_carts_has_products ORDER BY 1`)).getRowsJS(),
      status: (await c.runAndReadAll(`SELECT shopping_cart_id, status FROM store.fact_shoppingcarts ORDER BY 1`)).getRowsJS(),
    }));
    expect(rows.items.map(([id, q]) => [id, q === null ? null : Number(q)])).toEqual([['a', 3], ['b', 4], ['c', null], ['d', 7]]);
    expect(rows.status).toEqual([['a', true], ['b', false], ['c', false]]);
  });
});

test('rescued values: a row carries its own, a later event of the key without drift clears them, in one commit or the next', async () => {
  // Only a row staged in JavaScript can carry rescued values (an event's own text passed the fast
  // pattern: no unknown field). A text-only commit stages no rescued column at all.
  const statusText = (cart: string) => JSON.stringify({ shopping_cart_id: cart, status: '1' });
  const statusRow = (cart: string, rescued: string) => ({ shopping_cart_id: cart, status: 'true', updated_at: null, _rescued_data: rescued });
  const commit = (n: number, events: DuckStreamWrite['events']): DuckStreamWrite => ({
    destination: STATUS, source: CART_STATUS, consumerGroup: 'g', quarantine: [], offsets: [{ topic: 't', partition: 0, offset: String(n) }], events,
  });
  await withStreamWarehouse(async (wh) => {
    const rescued = async () =>
      Object.fromEntries((await wh.withConnection(async (c) => (await c.runAndReadAll(`SELECT shopping_cart_id, _rescued_data FROM store.fact_shoppingcarts ORDER BY 1`)).getRowsJS())).map(([k, v]) => [String(k), v]));
    // a: text then row (row wins, rescued kept); b: row then text (text wins, nothing rescued); c: row only.
    await wh.withConnection((c) => applyStreamWritesDuckDb(c, [commit(1, [statusText('a'), statusRow('a', '{"channel":"a"}'), statusRow('b', '{"channel":"b"}'), statusText('b'), statusRow('c', '{"channel":"c"}')])]));
    expect(await rescued()).toEqual({ a: '{"channel":"a"}', b: null, c: '{"channel":"c"}' });
    // A text-only commit: c's new row has nothing rescued; a keeps its row untouched.
    await wh.withConnection((c) => applyStreamWritesDuckDb(c, [commit(2, [statusText('c'), statusText('d')])]));
    expect(await rescued()).toEqual({ a: '{"channel":"a"}', b: null, c: null, d: null });
  });
});

test('a stream file made with keyed stream tables is rebuilt without the key, rows kept', async () => {
  // The file as an older version made it, before the warehouse opens it.
  const keyedFile = async (file: string) => {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(file);
    const c0 = await db.connect();
    await c0.run(`CREATE SCHEMA store`);
    await c0.run(`CREATE TABLE store.fact_shoppingcarts (shopping_cart_id VARCHAR NOT NULL, status BOOLEAN, updated_at TIMESTAMP NOT NULL, PRIMARY KEY (shopping_cart_id))`);
    await c0.run(`INSERT INTO store.fact_shoppingcarts VALUES ('1', true, TIMESTAMP '2020-01-01'), ('2', false, TIMESTAMP '2020-01-02')`);
    c0.closeSync();
    db.closeSync();
  };
  await withStreamWarehouse(async (wh) => {
    const out = await wh.withConnection(async (c) => ({
      keys: Number((await c.runAndReadAll(`SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'fact_shoppingcarts' AND constraint_type = 'PRIMARY KEY'`)).getRowsJS()[0][0]),
      notNull: Number((await c.runAndReadAll(`SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'fact_shoppingcarts' AND constraint_type = 'NOT NULL'`)).getRowsJS()[0][0]),
      rows: (await c.runAndReadAll(`SELECT shopping_cart_id, status, updated_at::VARCHAR FROM store.fact_shoppingcarts ORDER BY 1`)).getRowsJS(),
    }));
    expect(out.keys).toBe(0);
    expect(out.notNull).toBe(2);
    expect(out.rows).toEqual([['1', true, '2020-01-01 00:00:00'], ['2', false, '2020-01-02 00:00:00']]);
    // The older file's table gains the schema contract's column, NULL for its rows.
    expect(await wh.withConnection(async (c) => (await c.runAndReadAll(`SELECT count(*) FROM store.fact_shoppingcarts WHERE _rescued_data IS NULL`)).getRowsJS()[0][0])).toBe(2n);
    // Upserts work on the rebuilt table.
    await wh.withConnection((c) => applyStreamWritesDuckDb(c, [{
      destination: STATUS, source: CART_STATUS, consumerGroup: 'g', quarantine: [], offsets: [{ topic: 't', partition: 0, offset: '1' }],
      events: [{ shopping_cart_id: '2', status: true, updated_at: null }],
    }]));
    const rows = await wh.withConnection(async (c) => (await c.runAndReadAll(`SELECT shopping_cart_id, status FROM store.fact_shoppingcarts ORDER BY 1`)).getRowsJS());
    expect(rows).toEqual([['1', true], ['2', true]]);
  }, keyedFile);
});

test('a commit failing in its last statements leaves no row, quarantine or offset, and the connection usable', async () => {
  await withStreamWarehouse(async (wh) => {
    const write = (id: string, offset: number): DuckStreamWrite => ({
      destination: CARTS, source: CART_ITEMS, consumerGroup: 'g', offsets: [{ topic: 't', partition: 0, offset: String(offset) }],
      events: [{ shopping_cart_id: id, product_id: 'p', option_id: 'o', quantity: '1', updated_at: null }],
      quarantine: [{ runId: 'r', destination: CARTS.name, source: 'carts_has_products', file: 't:0', line: 1, column: null, reasonCode: 'bad_event', reason: 'x', raw: 'x' }],
    });
    const state = async (c: DuckDBConnection) => ({
      carts: (await c.runAndReadAll('SELECT shopping_cart_id FROM store.fact_carts_has_products ORDER BY 1')).getRowsJS().map(([id]) => id),
      quarantined: Number((await c.runAndReadAll('SELECT COUNT(*) FROM store._quarantine')).getRowsJS()[0][0]),
      offsets: await readOffsetsDuckDb(c, 'g', ['t']),
    });
    await wh.withConnection(async (c) => {
      // The rows, quarantine and offsets are queued first; the failure comes with the derived tables.
      await expect(applyStreamWritesDuckDb(c, [write('1', 5)], async (tx) => {
        await tx.run(`SELECT error('derived tables failed')`);
      })).rejects.toThrow('derived tables failed');
      expect(await state(c)).toEqual({ carts: [], quarantined: 0, offsets: [] });
      // The failed commit's staged text is dropped with it: nothing of it is left to be read.
      const staged = async () => Number((await c.runAndReadAll(`SELECT COUNT(*) FROM duckdb_tables() WHERE database_name = '_stream_stage'`)).getRowsJS()[0][0]);
      expect(await staged()).toBe(0);
      await applyStreamWritesDuckDb(c, [write('2', 6)]);
      expect(await state(c)).toEqual({ carts: ['2'], quarantined: 1, offsets: [{ topic: 't', partition: 0, offset: '6' }] });
      expect(await staged()).toBe(0);
    });
  });
});

test('a statement batch: parameterless statements go in one call, in order, a parameterized one sends them first', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run('CREATE TABLE t (i INTEGER, s VARCHAR)');
    const calls: string[] = [];
    const run = c.run.bind(c);
    const spy = Object.assign(Object.create(c), { run: (sql: string, ...rest: []) => (calls.push(sql), run(sql, ...rest)) }) as DuckDBConnection;
    const tx = new StatementBatch(spy);
    await tx.run(`INSERT INTO t VALUES (1, 'a') -- a comment ending the statement`);
    await tx.run(`INSERT INTO t VALUES (2, 'b')`);
    expect(calls).toHaveLength(0); // queued, not run
    await tx.run('INSERT INTO t VALUES ($1, $2)', [3, 'c']);
    await tx.run(`UPDATE t SET s = s || '!' WHERE i = 3`);
    await tx.run(`SELECT error('stop here')`);
    await tx.run(`INSERT INTO t VALUES (4, 'never')`);
    await expect(tx.flush()).rejects.toThrow('stop here');
    // 1: the two queued inserts together, 2: the parameterized one, 3: the rest (stopping at the error).
    expect(calls).toHaveLength(3);
    expect((await c.runAndReadAll('SELECT i, s FROM t ORDER BY i')).getRowsJS()).toEqual([[1, 'a'], [2, 'b'], [3, 'c!']]);
  } finally {
    c.closeSync();
    db.closeSync();
  }
});
