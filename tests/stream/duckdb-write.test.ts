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
import { findDestination } from '../../jobs/lib/catalog-check';
import { applyStreamWritesDuckDb, readOffsetsDuckDb } from '../../jobs/lib/warehouse/duckdb-stream';
import { streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb';
import type { QuarantineRow, StreamWrite } from '../../jobs/lib/warehouse/types';

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const STATUS = findDestination(catalog, 'fact_shoppingcarts') as StreamDestination;

test('one group commit: quarantine, offsets and last row per key', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-write-'));
  const wh = streamDuckDbWarehouse(path.join(dir, 'stream.duckdb'), catalog);
  try {
    await wh.ensureSchema();
    const q = (i: number, topic: string): QuarantineRow => ({
      runId: 'r', destination: CARTS.name, source: 'carts_has_products', file: `${topic}:0`, line: i, column: null,
      reasonCode: 'bad_event', reason: `bad ${i}`, raw: i % 50 === 0 ? `it's \u0000 "raw" ${i}` : `raw ${i}`,
    });
    const old = new Date('2000-01-01T00:00:00Z');
    const cart = (id: string, quantity: string) => ({ shopping_cart_id: id, product_id: '1', option_id: '2', quantity, updated_at: old });
    const writes: StreamWrite[] = [
      { destination: CARTS, consumerGroup: "g'1", upserts: [cart('1', '1'), cart('2', '5')], eventIds: ['a', 'b'],
        quarantine: Array.from({ length: 450 }, (_, i) => q(i, 't_carts')), offsets: [{ topic: 't_carts', partition: 0, offset: '452' }, { topic: 't_carts', partition: 1, offset: '7' }] },
      { destination: CARTS, consumerGroup: "g'1", upserts: [cart('1', '3')], eventIds: ['c'],
        quarantine: [q(999, 't_carts')], offsets: [{ topic: 't_carts', partition: 0, offset: '1000' }] },
      { destination: STATUS, consumerGroup: "g'1", upserts: [{ shopping_cart_id: '1', status: 'true', updated_at: old }], eventIds: ['d'],
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
  } finally {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
