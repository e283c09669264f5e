/**
 * A slice accepted whole (decodeLines: one text of lines, no object per event) must hold exactly
 * the events decodeEventText accepts one by one, and the DuckDB sink must write such slices as it
 * writes events: a slice the fence cuts (redelivered after a rebalance) from its first new line,
 * two slices of one partition in one commit once, with the text staged before the commit's turn
 * dropped afterwards. No broker: slices are made from messages as kafkajs hands them over.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KafkaMessage, Producer } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import type { StreamDestination } from '../../jobs/lib/catalog-types';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { loadStreamConfig } from '../../jobs/lib/stream/config';
import { decodeEventText, encodeEvent } from '../../jobs/lib/stream/events';
import { decodeSlice } from '../../jobs/lib/stream/group';
import { decodeLines } from '../../jobs/lib/stream/lines';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { sortEvents, type DecodedSlice } from '../../jobs/lib/stream/slices';
import { streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import { RecordLines } from '../../jobs/lib/warehouse/types';

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const CART_ITEMS = findSource(catalog, 'carts_has_products');
const now = new Date(0);

/** A valid cart-item event: cart `i`, product `p`, quantity `q`. */
const cartItem = (i: number, p = 7, q = 1): Buffer => {
  const e = encodeEvent(CART_ITEMS, { shopping_cart_id: String(i), product_id: String(p), option_id: '1', quantity: String(q) });
  if (Array.isArray(e)) throw new Error(e.map((x) => x.reason).join('; '));
  return Buffer.from(e.value, 'utf8');
};

const good = Array.from({ length: 5 }, (_, i) => cartItem(i + 1));
const text = (v: Buffer) => v.toString('utf8');
const acceptedAsText = (v: Buffer | null) => {
  const d = decodeEventText(CARTS, CART_ITEMS, v, now);
  return d.ok && typeof d.event === 'string';
};

describe('decodeLines accepts a slice whole exactly when every event would be accepted as its text', () => {
  const odd: [string, Buffer | null][] = [
    ['a tombstone', null],
    ['another field order', Buffer.from(JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(text(good[0]))).reverse())))],
    ['a quantity of 0', Buffer.from(text(good[0]).replace('"quantity":"1"', '"quantity":"0"'))],
    ['two records in one value', Buffer.concat([good[0], Buffer.from('\n'), good[1]])],
    ['a record and more after it', Buffer.from(`${text(good[0])} `)],
    ['a record split over lines (valid JSON)', Buffer.from(text(good[0]).replace(',', ',\n'))],
    ['an empty value', Buffer.from('')],
    ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    ['a non-ASCII value', Buffer.from(text(good[0]).replace('"7"', '"７"'))],
  ];

  test('every event accepted: their texts, one per line, in order', () => {
    expect(good.every(acceptedAsText)).toBe(true);
    expect(decodeLines(CARTS, CART_ITEMS, good)).toBe(good.map(text).join('\n'));
  });

  test.each(odd)('one event is %s: decoded one by one', (_what, value) => {
    const slice = [...good.slice(0, 2), value, ...good.slice(2)];
    // Independently: accepted whole only when each value alone is accepted as its text and is ASCII.
    const whole = slice.every((v) => v !== null && acceptedAsText(v) && /^[\x00-\x7f]*$/.test(text(v)));
    expect(decodeLines(CARTS, CART_ITEMS, slice)).toBe(whole ? slice.map((v) => text(v!)).join('\n') : null);
    expect(whole).toBe(false);
  });
});

test('a value outside ASCII (accepted alone as its text) sends its slice one by one: byte and character ranges differ', () => {
  // A source with a free-text column, as a stream destination (its staged columns, as text).
  const source = catalog.sources.find((s) => s.columns.some((c) => c.type === 'string') && s.columns.every((c) => !c.pii && c.type !== 'card'))!;
  const dest = {
    name: `test.${source.name}`, dataset: 'test', table: source.name, mode: 'stream', description: '', sources: [source.name], key: source.key,
    columns: [...source.columns.map((c) => ({ name: c.name, type: 'STRING', nullable: true, description: '' })), { name: 'updated_at', type: 'TIMESTAMP', nullable: true, description: '' }],
  } as unknown as StreamDestination;
  const GOOD: Record<string, string> = { id: '12', string: 'Blue shirt', int: '5', decimal: '12.5', bool01: '1', date: '2024-02-29' };
  const record = (name: string) => {
    const e = encodeEvent(source, Object.fromEntries(source.columns.map((c) => [c.name, c.type === 'string' ? name : GOOD[c.type]])));
    if (Array.isArray(e)) throw new Error(e.map((x) => x.reason).join('; '));
    return Buffer.from(e.value, 'utf8');
  };
  const ascii = [record('Blue shirt'), record('Red hat')];
  const accents = record('Café crème');
  const asText = (v: Buffer) => { const d = decodeEventText(dest, source, v, now); return d.ok && typeof d.event === 'string'; };
  expect([...ascii, accents].every(asText)).toBe(true);
  expect(decodeLines(dest, source, ascii)).toBe(ascii.map(text).join('\n'));
  expect(decodeLines(dest, source, [...ascii, accents])).toBeNull();
});

test('a slice of lines sorted from line k: the lines from k on, counted, with their timestamps', () => {
  const values = Array.from({ length: 6 }, (_, i) => cartItem(i + 1));
  const messages = values.map((value, i) => ({ offset: String(100 + i), timestamp: String(1000 + i), key: null, value }) as unknown as KafkaMessage);
  const slice = decodeSlice('t', 0, { dest: CARTS, source: CART_ITEMS }, messages, { decode: decodeEventText, decodeLines });
  expect('lines' in slice).toBe(true);
  const sorted = sortEvents('r', slice, 4);
  expect(sorted.events).toEqual([new RecordLines(values.slice(4).map(text).join('\n'))]);
  expect(sorted.timestamps).toEqual([1004, 1005]);
  expect(sorted.offsets).toEqual([{ topic: 't', partition: 0, offset: '106' }]);
});

test('the DuckDB sink: slices of lines fenced by the stored offsets, staged text dropped after each commit', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slice-lines-'));
  const cfg = loadStreamConfig({}, { topicPrefix: 'lines', group: 'g', duckdbPath: path.join(dir, 'stream.duckdb'), batchDuckdbPath: path.join(dir, 'batch.duckdb'), snapshotPath: path.join(dir, 'snap.duckdb') });
  const wh = streamDuckDbWarehouse(cfg.duckdbPath, catalog);
  const producer = { send: async () => [], sendBatch: async () => [] } as unknown as Producer;
  const sink = duckDbSink(wh)({ cfg, catalog, runId: 'r', topics: ['t'], dataset: 'store', producer });
  // Partition 0, offsets from..to-1: cart i has quantity i % 7 + 1 (so a row shows which event wrote it).
  const slice = (from: number, to: number): DecodedSlice<unknown> => {
    const messages = Array.from({ length: to - from }, (_, j) => ({ offset: String(from + j), timestamp: '0', key: null, value: cartItem(from + j, 7, ((from + j) % 7) + 1) }) as unknown as KafkaMessage);
    return decodeSlice('t', 0, { dest: CARTS, source: CART_ITEMS }, messages, { decode: sink.decode, decodeLines: sink.decodeLines });
  };
  try {
    await sink.claim(() => false);
    await sink.start();
    await sink.open();
    const rows = (r: Awaited<ReturnType<typeof sink.put>>) => r.results.map((x) => (x && 'rows' in x ? x.rows : x));
    const written = () =>
      wh.withConnection(async (c) => new Map((await c.runAndReadAll(`SELECT shopping_cart_id, updated_at::VARCHAR FROM store.fact_carts_has_products`)).getRowsJS().map(([id, at]) => [Number(id), String(at)])));
    expect(rows(await sink.put([slice(0, 10)], false))).toEqual([10]);
    const first = await written();
    await new Promise((r) => setTimeout(r, 5));
    // Redelivered from 5 (a rebalance): only 10..14 are new, and 5..9 are not written again.
    expect(rows(await sink.put([slice(5, 15)], false))).toEqual([5]);
    const second = await written();
    for (let i = 0; i < 10; i++) expect(second.get(i)).toBe(first.get(i));
    for (let i = 10; i < 15; i++) expect(second.get(i)! > first.get(0)!).toBe(true);
    // Two slices of the partition in one commit, the second overlapping the first.
    expect(rows(await sink.put([slice(15, 20), slice(12, 25)], false))).toEqual([5, 5]);
    // Entirely old: nothing; past the stored offset: a gap back to it.
    expect(rows(await sink.put([slice(3, 8)], false))).toEqual([null]);
    expect((await sink.put([slice(30, 32)], false)).results).toEqual([{ gap: 25n }]);
    const state = await wh.withConnection(async (c) => ({
      carts: (await c.runAndReadAll(`SELECT shopping_cart_id, quantity FROM store.fact_carts_has_products ORDER BY shopping_cart_id::INTEGER`)).getRowsJS().map(([id, q]) => [Number(id), Number(q)]),
      offsets: (await c.runAndReadAll(`SELECT topic, partition, next_offset FROM store._stream_offsets`)).getRowsJS().map((r) => r.map(String)),
      staged: Number((await c.runAndReadAll(`SELECT COUNT(*) FROM duckdb_tables() WHERE database_name = '_stream_stage'`)).getRowsJS()[0][0]),
    }));
    expect(state.carts).toEqual(Array.from({ length: 25 }, (_, i) => [i, (i % 7) + 1]));
    expect(state.offsets).toEqual([['t', '0', '25']]);
    expect(state.staged).toBe(0);
  } finally {
    await sink.stop([]).catch(() => undefined);
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
