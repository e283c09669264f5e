/**
 * Issue 11: stream validation as strict as batch. Decoding is checked directly (no broker);
 * then poison events go through the real broker and consumer: each quarantine row names the
 * topic, partition and offset of its event, and the dead-letter copy is byte-identical (a
 * binary value stays binary, a tombstone stays null).
 */
import type { Message } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import type { SourceTable, StreamDestination } from '../../jobs/lib/catalog-types';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { deadLetterTopic, topicFor } from '../../jobs/lib/stream/config';
import { endOffsets, ensureTopics } from '../../jobs/lib/stream/kafka';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { decodeEvent, deadLetterValue, encodeEvent, quarantineRaw } from '../../jobs/lib/stream/events';
import { count, describeWithBroker, produce, query, testEnv } from './helpers';

jest.setTimeout(240000);

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const CARTS_SRC = findSource(catalog, 'carts_has_products');
const SHOPPINGCARTS = findDestination(catalog, 'fact_shoppingcarts') as StreamDestination;
const SHOPPINGCART_SRC = findSource(catalog, 'shoppingcart');

const decode = (dest: StreamDestination, source: SourceTable, text: string) =>
  decodeEvent(dest, source, Buffer.from(text, 'utf8'), new Date(0));
const codeOf = (d: ReturnType<typeof decodeEvent>) => (d.ok ? 'ok' : d.code);

describe('decoding events (no broker)', () => {
  test('ids must be integer literals: the literal is read from the raw text', () => {
    const sci = decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"5","product_id":2.56324E+15,"option_id":"1","quantity":"1"}');
    expect(sci).toMatchObject({ ok: false, code: 'scientific_notation_id', column: 'product_id' });
    expect(codeOf(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"5","product_id":1.5,"option_id":"1","quantity":"1"}'))).toBe('bad_identifier');
    // A plain integer literal is an id as the file would have it, digits intact past 2^53.
    const big = decode(CARTS, CARTS_SRC, '{"shopping_cart_id":9007199254740993,"product_id":"1","option_id":"1","quantity":"1"}');
    expect(big).toMatchObject({ ok: true, event: { shopping_cart_id: '9007199254740993' } });
  });

  test('every key field is required (a missing optional one is the contract\'s: tests/contracts); null is the empty value', () => {
    expect(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"6","product_id":"1","quantity":"1"}')).toMatchObject({ ok: false, code: 'missing_field', column: 'option_id' });
    expect(decode(SHOPPINGCARTS, SHOPPINGCART_SRC, '{"status":"1"}')).toMatchObject({ ok: false, code: 'missing_field', column: 'shopping_cart_id' });
    expect(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"6","product_id":"1","option_id":"1","quantity":null}')).toMatchObject({ ok: true, event: { quantity: null } });
  });

  test('flags are the strings the producer writes, not JSON numbers or booleans', () => {
    const encoded = encodeEvent(SHOPPINGCART_SRC, { shopping_cart_id: '7', status: '1' });
    expect(encoded).toEqual({ key: '7', value: '{"shopping_cart_id":"7","status":"1"}' });
    expect(decode(SHOPPINGCARTS, SHOPPINGCART_SRC, '{"shopping_cart_id":"7","status":"1"}')).toMatchObject({ ok: true, event: { status: 'true' } });
    expect(decode(SHOPPINGCARTS, SHOPPINGCART_SRC, '{"shopping_cart_id":"7","status":"0"}')).toMatchObject({ ok: true, event: { status: 'false' } });
    for (const bad of ['1', 'true', '"yes"', '"2"']) {
      expect(codeOf(decode(SHOPPINGCARTS, SHOPPINGCART_SRC, `{"shopping_cart_id":"7","status":${bad}}`))).toBe('bad_boolean');
    }
  });

  test('the batch rules hold: quantity >= 1, nested values are not values', () => {
    expect(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"8","product_id":"1","option_id":"1","quantity":"0"}')).toMatchObject({ ok: false, code: 'out_of_range', column: 'quantity' });
    expect(codeOf(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"8","product_id":"1","option_id":"1","quantity":[1]}'))).toBe('bad_event');
  });

  test('out-of-range values are quarantined at decode, before any arithmetic (issue 21 items 7 and 8)', () => {
    // 11 cart events of one product with a huge but well-formed quantity: each one out of range.
    const huge = Array.from({ length: 11 }, (_, i) =>
      decode(CARTS, CARTS_SRC, `{"shopping_cart_id":"${900 + i}","product_id":"77","option_id":"1","quantity":"999999999999999999"}`));
    expect(huge.map(codeOf)).toEqual(Array(11).fill('out_of_range'));
    expect(huge[0]).toMatchObject({ ok: false, column: 'quantity', reason: expect.stringMatching(/^quantity "[0-9*]{18}" is above the maximum 999999$/) });
    // The same as a JSON number, and the largest allowed value, which passes.
    expect(codeOf(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"9","product_id":"77","option_id":"1","quantity":999999999999999999}'))).toBe('out_of_range');
    expect(decode(CARTS, CARTS_SRC, '{"shopping_cart_id":"9","product_id":"77","option_id":"1","quantity":"999999"}')).toMatchObject({ ok: true, event: { quantity: '999999' } });
    // Identifiers of 400 and 900,000 digits: out of range, and the reason does not repeat them.
    for (const n of [400, 900_000]) {
      const d = decode(CARTS, CARTS_SRC, `{"shopping_cart_id":"${'7'.repeat(n)}","product_id":"77","option_id":"1","quantity":"1"}`);
      expect(d).toMatchObject({ ok: false, code: 'out_of_range', column: 'shopping_cart_id', reason: `identifier in 'shopping_cart_id' has ${n} characters, more than the maximum 20` });
    }
    expect(codeOf(decode(CARTS, CARTS_SRC, `{"shopping_cart_id":"${'7'.repeat(20)}","product_id":"77","option_id":"1","quantity":"1"}`))).toBe('ok');
  });

  test('quarantine and dead-letter copies of a source with PII are redacted by column', () => {
    const paid = findSource(catalog, 'orders_paid_creditcard');
    const value = Buffer.from('{"credit_card_number":"4564 1481 4400 6084","order_id":"1"}');
    expect(quarantineRaw(paid, value)).toBe('{"credit_card_number":"**** **** **** 6084","order_id":"1"}');
    expect(deadLetterValue(paid, value)!.toString()).not.toMatch(/4564/);
    expect(quarantineRaw(paid, Buffer.from('4564-1481-4400-6084 not json'))).toBe('****-****-****-6084 not json');
    // Without PII columns the dead letter is the original bytes.
    const binary = Buffer.from([0, 0xff, 0xfe, 0x10, 0x80]);
    expect(deadLetterValue(CARTS_SRC, binary)).toBe(binary);
    expect(deadLetterValue(CARTS_SRC, null)).toBeNull();
  });
});

interface RawMessage {
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** Every message of `topic` with partition, offset and raw bytes, once `expected` arrived. */
async function readRaw(e: ReturnType<typeof testEnv>, topic: string, expected: number): Promise<RawMessage[]> {
  const c = e.kafka.consumer({ groupId: `raw-${topic}-${Date.now()}`, maxWaitTimeInMs: 100 });
  const out: RawMessage[] = [];
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    eachMessage: async ({ partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      out.push({ partition, offset: message.offset, key: message.key, value: message.value, headers });
    },
  });
  const deadline = Date.now() + 30000;
  while (out.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  await c.disconnect();
  return out;
}

describeWithBroker('stream validation on the local broker', () => {
  it('poison events are quarantined with topic, partition and offset; dead letters are byte-identical', async () => {
    const e = testEnv();
    const carts = topicFor(e.cfg, 'carts_has_products');
    const shop = topicFor(e.cfg, 'shoppingcart');
    await ensureTopics(e.kafka, e.cfg, [carts, shop]);
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0x10, 0x80, 0x81, 0x7b, 0x22, 0xc3, 0x28]);
    const good = (cart: number): Message => ({
      key: String(cart),
      value: JSON.stringify({ shopping_cart_id: String(cart), product_id: '1200', option_id: '1201', quantity: '2' }),
    });
    const cartPoison: Message[] = [
      { key: 'p1', value: binary },
      { key: 'p2', value: null },
      { key: 'p3', value: '{"shopping_cart_id":"5","product_id":2.56324E+15,"option_id":"1","quantity":"1"}' },
      { key: 'p4', value: '{"shopping_cart_id":"6","product_id":"1","quantity":"1"}' },
      { key: 'p5', value: '{"shopping_cart_id":"7","product_id":"1","option_id":"1","quantity":"-2"}' },
    ];
    const shopPoison: Message[] = [
      { key: 's1', value: '{"shopping_cart_id":"8","status":1}' },
      { key: 's2', value: '{"status":"1"}' },
    ];
    await produce(e.kafka, carts, [good(1), good(2), ...cartPoison, good(3), { key: 'n', value: '{"shopping_cart_id":4,"product_id":"1200","option_id":"1201","quantity":"1"}' }]);
    await produce(e.kafka, shop, [{ key: '10', value: '{"shopping_cart_id":"10","status":"1"}' }, ...shopPoison]);

    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables: [CARTS, SHOPPINGCARTS], sink: duckDbSink(e.warehouse) });
    await consumer.start();
    try {
      await consumer.waitCaughtUp(await endOffsets(e.kafka, [carts, shop]), 120000);
    } finally {
      await consumer.stop();
    }
    expect(consumer.stats[CARTS.name]).toMatchObject({ rows: 4, quarantined: 5 });
    expect(consumer.stats[SHOPPINGCARTS.name]).toMatchObject({ rows: 1, quarantined: 2 });
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(4);
    expect(await count(e.warehouse, "SELECT COUNT(*) FROM store.fact_shoppingcarts WHERE shopping_cart_id = '10' AND status")).toBe(1);

    // Every quarantine row leads back to its event: topic:partition in `file`, offset in `line`.
    const sent = [...(await readRaw(e, carts, 9)), ...(await readRaw(e, shop, 3)).map((m) => ({ ...m, shop: true }))];
    const at = new Map(sent.map((m) => [`${'shop' in m ? shop : carts}:${m.partition}@${m.offset}`, m]));
    const q = await query(e.warehouse, 'SELECT file, line, reason_code, column_name FROM store._quarantine');
    const found = Object.fromEntries(q.map((r) => [at.get(`${r.file}@${r.line}`)?.key?.toString() ?? `missing ${r.file}@${r.line}`, r.reason_code]));
    expect(found).toEqual({
      p1: 'bad_event', p2: 'bad_event', p3: 'scientific_notation_id', p4: 'missing_field', p5: 'out_of_range',
      s1: 'bad_boolean', s2: 'missing_field',
    });

    const dlq = await readRaw(e, deadLetterTopic(e.cfg), 7);
    expect(dlq).toHaveLength(7);
    const byKey = new Map(dlq.map((m) => [m.key?.toString(), m]));
    expect(byKey.get('p1')!.value).toEqual(binary);
    expect(byKey.get('p2')!.value).toBeNull();
    for (const m of [...cartPoison, ...shopPoison]) {
      const d = byKey.get(String(m.key))!;
      const original = m.value === null ? null : Buffer.from(m.value as Buffer | string);
      expect(d.value === null ? null : Buffer.compare(d.value, original!)).toBe(original === null ? null : 0);
      const src = sent.find((s) => s.key?.toString() === m.key)!;
      expect(d.headers).toMatchObject({ source_partition: String(src.partition), source_offset: src.offset });
      expect(Object.keys(d.headers)).not.toContain('x-outbox-base64');
    }
  });
});
