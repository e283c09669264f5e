/**
 * Schema contracts in the stream layer: each contract x drift (an added field, a missing
 * nullable field, a missing key field, a retyped value) at decoding; then the case
 * through the broker and consumer: 10 cart updates carrying an added field `channel` load as
 * 10 updates under the default contract and keep `channel` in `_rescued_data`.
 */
import { catalog } from '../../jobs/catalog';
import { findDestination, findSource, withContract } from '../../jobs/lib/catalog-check';
import type { SchemaContract, StreamDestination } from '../../jobs/lib/catalog-types';
import { endOffsets, ensureTopics } from '../../jobs/lib/stream/kafka';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { topicFor } from '../../jobs/lib/stream/config';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { decodeEvent, decodeEventText, streamDrift } from '../../jobs/lib/stream/events';
import { describeWithBroker, produce, query, testEnv } from '../stream/helpers';

jest.setTimeout(240_000);

const CARTS = findDestination(catalog, 'fact_shoppingcarts') as StreamDestination;
const SRC = findSource(catalog, 'shoppingcart');
const USERS_LIKE = findSource(catalog, 'user');

const decodeUnder = (contract: SchemaContract, text: string) =>
  decodeEvent(withContract(CARTS, contract), SRC, Buffer.from(text, 'utf8'), new Date(0));

const ADDED = '{"shopping_cart_id":"3700","status":"1","channel":"mobile"}';
const MISSING = '{"shopping_cart_id":"3700"}';
const MISSING_KEY = '{"status":"1","channel":"mobile"}';
const RETYPED = '{"shopping_cart_id":"3700","status":"yes","channel":"mobile"}';

describe('decoding by contract', () => {
  test('rescue (default): the added field is kept, a missing nullable field is NULL', () => {
    expect(decodeEvent(CARTS, SRC, Buffer.from(ADDED), new Date(0))).toEqual({
      ok: true, event: { shopping_cart_id: '3700', status: 'true', updated_at: new Date(0), _rescued_data: '{"channel":"mobile"}' },
    });
    expect(decodeUnder('rescue', MISSING)).toEqual({ ok: true, event: { shopping_cart_id: '3700', status: null, updated_at: new Date(0), _rescued_data: null } });
    // A JSON number keeps its literal; a null carries nothing to rescue.
    expect(decodeUnder('rescue', '{"shopping_cart_id":"1","status":"0","n":2.56324E+15,"z":null}'))
      .toMatchObject({ ok: true, event: { _rescued_data: '{"n":"2.56324E+15"}' } });
  });

  test('freeze: an added or a missing field is quarantined, as before contracts', () => {
    expect(decodeUnder('freeze', ADDED)).toEqual({ ok: false, column: 'channel', code: 'bad_event', reason: 'event has unknown field(s): "channel"' });
    expect(decodeUnder('freeze', MISSING)).toMatchObject({ ok: false, column: 'status', code: 'missing_field' });
  });

  test('discard_value: the row loads without the value; no rescued column', () => {
    expect(decodeUnder('discard_value', ADDED)).toEqual({ ok: true, event: { shopping_cart_id: '3700', status: 'true', updated_at: new Date(0) } });
    expect(decodeUnder('discard_value', MISSING)).toEqual({ ok: true, event: { shopping_cart_id: '3700', status: null, updated_at: new Date(0) } });
  });

  test('discard_row: the event is quarantined with the field named', () => {
    expect(decodeUnder('discard_row', ADDED)).toEqual({ ok: false, column: null, code: 'schema_drift', reason: 'field "channel" is not in the catalog (schema contract discard_row)' });
    expect(decodeUnder('discard_row', MISSING)).toEqual({ ok: false, column: 'status', code: 'schema_drift', reason: 'field "status" is missing (schema contract discard_row)' });
  });

  test.each<[SchemaContract]>([['rescue'], ['freeze'], ['discard_value'], ['discard_row']])('%s: a missing key and a retyped value are quarantined', (contract) => {
    const key = decodeUnder(contract, MISSING_KEY);
    expect(key).toMatchObject({ ok: false, code: contract === 'freeze' ? 'bad_event' : 'missing_field' });
    if (contract !== 'freeze') expect(key).toMatchObject({ column: 'shopping_cart_id' });
    expect(decodeUnder(contract, RETYPED)).toMatchObject({ ok: false, code: contract === 'freeze' ? 'bad_event' : 'bad_boolean' });
  });

  test('the fast path leaves drift to the exact path: both give the same row', () => {
    const text = decodeEventText(CARTS, SRC, Buffer.from(ADDED), new Date(0));
    expect(text).toEqual(decodeEvent(CARTS, SRC, Buffer.from(ADDED), new Date(0)));
  });

  test('drift is counted per field, with a masked example', () => {
    const dest = withContract(CARTS, 'rescue');
    for (let i = 0; i < 3; i++) decodeEvent(dest, SRC, Buffer.from(`{"shopping_cart_id":"${i}","status":"1","card":"4111 1111 1111 1111"}`), new Date(1000 * i));
    expect(streamDrift(dest, SRC)).toEqual([{
      source: 'shoppingcart', field: 'card', kind: 'added', action: 'rescued', rows: 3, example: '"**** **** **** 1111"',
      firstSeen: new Date(0).toISOString(), lastSeen: new Date(2000).toISOString(),
    }]);
  });
});

test('a rescued value of a password source is not kept in clear', () => {
  const dest = { ...CARTS, sources: ['user'] as [string] } as StreamDestination;
  const ev = '{"user_id":"1","username":"a","password":"p","full_name":null,"address":null,"email":null,"phone":null,"pwd":"hunter2"}';
  const d = decodeEvent(dest, USERS_LIKE, Buffer.from(ev), new Date(0));
  expect(d).toMatchObject({ ok: true, event: { _rescued_data: '{"pwd":"[redacted]"}' } });
});

describeWithBroker('the issue\'s 10 cart updates with an added field', () => {
  it('load as 10 updates and keep channel in _rescued_data', async () => {
    const e = testEnv();
    const topic = topicFor(e.cfg, 'shoppingcart');
    await ensureTopics(e.kafka, e.cfg, [topic]);
    const ids = Array.from({ length: 10 }, (_, i) => String(3700 + i));
    await produce(e.kafka, topic, ids.map((id) => ({ key: id, value: JSON.stringify({ shopping_cart_id: id, status: '0' }) })));
    await produce(e.kafka, topic, ids.map((id) => ({ key: id, value: JSON.stringify({ shopping_cart_id: id, status: '1', channel: 'mobile' }) })));
    // The count is per process: decoding tests above may have seen `channel` already.
    const before = streamDrift(CARTS, SRC).find((f) => f.field === 'channel')?.rows ?? 0;
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables: [CARTS], sink: duckDbSink(e.warehouse) });
    await consumer.start();
    try {
      await consumer.waitCaughtUp(await endOffsets(e.kafka, [topic]), 120_000);
    } finally {
      await consumer.stop();
    }
    expect(consumer.stats[CARTS.name]).toMatchObject({ rows: 20, quarantined: 0 });
    const rows = await query(e.warehouse, 'SELECT shopping_cart_id, status, _rescued_data FROM store.fact_shoppingcarts ORDER BY 1');
    expect(rows).toEqual(ids.map((id) => ({ shopping_cart_id: id, status: true, _rescued_data: '{"channel":"mobile"}' })));
    expect(consumer.drift()[CARTS.name].map((f) => [f.field, f.rows - before, f.action])).toEqual([['channel', 10, 'rescued']]);
  });
});
