/**
 * The stream consumer on the same events, once into DuckDB (its stream file) and once with the
 * BigQuery sink into the executing double: every stream table, `_quarantine`, `_stream_offsets`
 * and `vendor_product_availability` identical row for row, and the same transitions on the
 * availability topic - after the events, after the same events replayed, and with the BigQuery
 * consumer killed mid-way (twice) and restarted.
 *
 * The consumers run in this process (the double lives here, on nock). A kill is made at a known
 * point with the double's cutOff: from the n-th stream transaction on, nothing the consumer sends
 * reaches BigQuery (once right after BigQuery committed that transaction, once right before),
 * its in-memory availability store is dropped with it, and a new consumer starts from what
 * BigQuery holds.
 *
 * Compared in the canonical form of canonical.ts, leaving out what each warehouse stamps itself:
 * `updated_at` (write time), quarantine `run_id`, and the topic prefix in topic names (each side
 * has its own topics). Availability events are compared as their transitions, (event, vendor,
 * product, option) per phase, deduplicated: the outbox publishes at least once, and the counts in
 * an event depend on how commits were grouped. Each phase only adds held units or only releases
 * them, so each option flips at most once per phase whatever the grouping.
 */
import { mulberry32 } from '../../scripts/lib/generator-kit';
import type { Kafka, Message } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import type { ColumnType, StreamDestination } from '../../jobs/lib/catalog-types';
import { availabilityTopic, streamDestinations, topicFor } from '../../jobs/lib/stream/config';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { startBroker, stopBroker } from '../../jobs/lib/stream/broker';
import { endOffsets, ensureTopics } from '../../jobs/lib/stream/kafka';
import { bigQuerySink } from '../../jobs/lib/stream/sink-bigquery';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { BigQueryWarehouse } from '../../jobs/lib/warehouse/bigquery/warehouse';
import { describeWithBroker, cartItem, holdAfterFirstCommit, produce, query, testEnv, type TestEnv } from '../stream/helpers';
import { BigQueryDouble, describeWithDouble, doubleForSuite, PROJECT, type RecordedRequest } from './bigquery-double';
import { canonicalRow, duckCanonical } from './canonical';

// The real client, with its HTTP layer loadable under jest (see teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());

const FAST_RETRY = { retries: 2, baseDelayMs: 1, maxDelayMs: 5 };
const fq = (t: string) => `\`${PROJECT}.store.${t}\``;

const rng = mulberry32;

type Events = Record<'carts_has_products' | 'shoppingcart' | 'product_sold_vendor', Message[]>;
const ev = (o: Record<string, string>): Message => ({ key: Object.values(o)[0], value: JSON.stringify(o) });

/** Stock: products 1200..1209 with two options each, and 1300 without options (no availability rows). */
const PRODUCTS = Array.from({ length: 10 }, (_, i) => 1200 + i);
function stockRows(): string[] {
  const r = rng(7);
  return [...PRODUCTS.flatMap((p) => [1, 2].map((o) => `('${p}', '${p * 10 + o}', ${Math.floor(r() * 30)})`)), "('1300', NULL, 4)"];
}

/**
 * Phase "hold": vendors list products, 60 open carts take 1-4 options each; 7 poison events
 * (not JSON, a scientific-notation id, a non-integer quantity, one beyond INT64 and one above the
 * catalog's bound, a non-flag status, a non-integer vendor id); drift the contract rescues (added fields, a missing status);
 * a huge valid quantity held in an open cart.
 */
function holdEvents(): Events {
  const r = rng(11);
  const items: Message[] = [];
  const carts: Message[] = [];
  for (let cart = 100; cart < 160; cart++) {
    const n = 1 + Math.floor(r() * 4);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const p = PRODUCTS[Math.floor(r() * PRODUCTS.length)];
      const o = String(p * 10 + 1 + Math.floor(r() * 2));
      if (seen.has(o)) continue;
      seen.add(o);
      items.push(ev({ shopping_cart_id: String(cart), product_id: String(p), option_id: o, quantity: String(1 + Math.floor(r() * 3)) }));
    }
    carts.push(ev({ shopping_cart_id: String(cart), status: '1' }));
  }
  items.push({ key: '999', value: '{"shopping_cart_id":"999",' }); // not JSON
  items.push(ev({ shopping_cart_id: '2.5E+3', product_id: '1200', option_id: '12001', quantity: '1' })); // scientific-notation id
  items.push(ev({ shopping_cart_id: '998', product_id: '1200', option_id: '12001', quantity: '1.5' })); // non-integer quantity
  carts.push(ev({ shopping_cart_id: '997', status: 'yes' })); // not a flag
  // Drift under the default contract (rescue) and extreme values.
  items.push(ev({ shopping_cart_id: '101', product_id: '1201', option_id: '12011', quantity: '2', coupon: 'X1' })); // added field: rescued
  items.push(ev({ shopping_cart_id: '996', product_id: '1202', option_id: '12021', quantity: '99999999999999999999' })); // beyond INT64
  items.push(ev({ shopping_cart_id: '992', product_id: '1204', option_id: '12041', quantity: '4000000000' })); // above the catalog's 999,999
  items.push(ev({ shopping_cart_id: '994', product_id: '1203', option_id: '12031', quantity: '999999' })); // huge, valid: held in an open cart
  carts.push(ev({ shopping_cart_id: '994', status: '1', channel: 'mobile' })); // added field: rescued
  carts.push(ev({ shopping_cart_id: '993' })); // missing nullable status: NULL
  const listings = PRODUCTS.map((p, i) => ev({ vendor_id: String(5000 + (i % 4)), product_id: String(p) }));
  listings.push(ev({ vendor_id: '5009', product_id: '1200' }), ev({ vendor_id: '5009', product_id: '1300' }));
  listings.push(ev({ vendor_id: 'abc', product_id: '1200' })); // not an integer id
  return { carts_has_products: items, shoppingcart: carts, product_sold_vendor: listings };
}

/** Phase "release": half of the carts close. */
const releaseEvents = (): Events => ({
  carts_has_products: [],
  shoppingcart: Array.from({ length: 30 }, (_, i) => ev({ shopping_cart_id: String(100 + 2 * i), status: '0' })),
  product_sold_vendor: [],
});

/** Reads a topic's messages at offsets from `from` ("partition" -> offset) to its end. */
async function readNew(kafka: Kafka, topic: string, from: Map<number, bigint>): Promise<{ rows: string[]; ends: Map<number, bigint> }> {
  const ends = new Map([...(await endOffsets(kafka, [topic]))].map(([k, v]) => [Number(k.slice(k.lastIndexOf(':') + 1)), v]));
  const want = [...ends].reduce((a, [p, high]) => a + Number(high - (from.get(p) ?? 0n)), 0);
  const rows: string[] = [];
  if (want === 0) return { rows, ends };
  const c = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, maxWaitTimeInMs: 100 });
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  let got = 0;
  const done = new Promise<void>((resolve) => {
    void c.run({
      eachMessage: async ({ partition, message }) => {
        if (BigInt(message.offset) >= (from.get(partition) ?? 0n) && BigInt(message.offset) < (ends.get(partition) ?? 0n)) {
          const e = JSON.parse(message.value!.toString());
          rows.push(JSON.stringify([e.event, e.vendor_id, e.product_id, e.option_id]));
          if (++got === want) resolve();
        }
      },
    });
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, 30000).unref())]);
  await c.disconnect();
  expect(got).toBe(want);
  return { rows, ends };
}


const isStreamTransaction = (r: RecordedRequest): boolean =>
  r.method === 'POST' && /\/jobs$/.test(r.path) && String((r.body as any)?.configuration?.query?.query ?? '').startsWith('DECLARE stale');

/**
 * Every stream table of `tables`, availability, `_quarantine` and the groups' `_stream_offsets`,
 * in the canonical form, from DuckDB (`duck`'s stream file) and from the double (`big`'s group).
 */
async function canonicalTables(bq: BigQueryDouble, duck: TestEnv, big: TestEnv, tables: StreamDestination[]): Promise<Record<string, { duck: string[]; bq: string[] }>> {
  const out: Record<string, { duck: string[]; bq: string[] }> = {};
  const strip = (e: TestEnv) => (t: unknown) => String(t).replace(e.cfg.topicPrefix, 'T');
  for (const d of [...tables, { table: 'vendor_product_availability', columns: AVAIL_COLUMNS } as unknown as StreamDestination]) {
    const cols = d.columns.filter((c) => c.name !== 'updated_at');
    const types = cols.map((c) => c.type);
    out[d.table] = {
      duck: (await query(duck.warehouse, `SELECT ${cols.map((c) => duckCanonical(c.name, c.type)).join(', ')} FROM store.${d.table}`))
        .map((r) => canonicalRow(Object.values(r), types)).sort(),
      bq: (await bq.sql(`SELECT * FROM ${fq(d.table)}`)).map((r) => canonicalRow(cols.map((c) => r[c.name]), types)).sort(),
    };
  }
  const q = ['destination', 'source', 'file', 'line', 'column_name', 'reason_code', 'reason', 'raw'];
  const qTypes: ColumnType[] = ['STRING', 'STRING', 'STRING', 'INT64', 'STRING', 'STRING', 'STRING', 'STRING'];
  const qRow = (e: TestEnv, r: Record<string, unknown>) => canonicalRow(q.map((c) => (c === 'file' ? strip(e)(r[c]) : r[c])), qTypes);
  out._quarantine = {
    duck: (await query(duck.warehouse, `SELECT ${q.map((c) => `CAST(${c} AS VARCHAR) AS ${c}`).join(', ')} FROM store._quarantine`)).map((r) => qRow(duck, r)).sort(),
    bq: (await bq.sql(`SELECT * FROM ${fq('_quarantine')}`)).map((r) => qRow(big, r)).sort(),
  };
  const oRow = (e: TestEnv, r: Record<string, unknown>) => canonicalRow([strip(e)(r.topic), r.partition, r.next_offset], ['STRING', 'INT64', 'INT64']);
  out._stream_offsets = {
    duck: (await query(duck.warehouse, `SELECT topic, CAST(partition AS VARCHAR) AS partition, CAST(next_offset AS VARCHAR) AS next_offset FROM store._stream_offsets WHERE consumer_group = '${duck.cfg.group}'`)).map((r) => oRow(duck, r)).sort(),
    bq: (await bq.sql(`SELECT * FROM ${fq('_stream_offsets')} WHERE consumer_group = '${big.cfg.group}'`)).map((r) => oRow(big, r)).sort(),
  };
  return out;
}

describeWithDouble('stream consumer into DuckDB and into BigQuery (the executing double): same tables', () => {
  const suite = doubleForSuite();

  describeWithBroker('on the local broker', () => {
    const tables = streamDestinations(catalog);

    it('same events, replayed, with two kills of the BigQuery consumer: every table and the availability transitions equal', async () => {
      const duck = testEnv({ commitMaxEvents: 50, maxBatchBytes: 3000 });
      const big = testEnv({ commitMaxEvents: 50, maxBatchBytes: 3000 });
      const wh = new BigQueryWarehouse({ client: suite.bq.client(), projectId: PROJECT, location: 'EU', catalog, retry: FAST_RETRY });
      const topicsOf = (e: TestEnv) => tables.map((d) => topicFor(e.cfg, d.sources[0]));

      // The batch layer's stock, the same on both sides.
      await duck.batch.ensureSchema();
      await duck.batch.withConnection((c) => c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES ${stockRows().join(', ')}`));
      await wh.ensureSchema();
      await suite.bq.sql(`INSERT INTO ${fq('dim_products')} (product_id, option_id, stock_quantity) VALUES ${stockRows().join(', ')}`);
      for (const e of [duck, big]) await ensureTopics(e.kafka, e.cfg, [...topicsOf(e), availabilityTopic(e.cfg)]);

      const consume = async (e: TestEnv, sinkOf: () => ReturnType<typeof duckDbSink>) => {
        const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: sinkOf() });
        await consumer.start();
        await consumer.waitCaughtUp(await endOffsets(e.kafka, topicsOf(e)), 120_000);
        await consumer.stop();
        return consumer;
      };
      const duckSink = () => duckDbSink(duck.warehouse);
      const bqSink = () => bigQuerySink(wh);

      /** The BigQuery consumer killed at its `n`-th stream transaction, then a new one to the end. */
      const consumeWithKill = async (n: number, afterCommit: boolean) => {
        const cut = suite.bq.cutOff(isStreamTransaction, n, afterCommit);
        const killed = new StreamConsumer({ catalog, cfg: big.cfg, tables, sink: bqSink() });
        await killed.start();
        await cut;
        await killed.stop(); // nothing it sends reaches BigQuery any more
        suite.bq.revive();
        return consume(big, bqSink);
      };

      const expectEqual = async (label: string) => {
        const c = await canonicalTables(suite.bq, duck, big, tables);
        for (const [table, { duck: d, bq: b }] of Object.entries(c)) {
          expect({ label, table, rows: b }).toEqual({ label, table, rows: d });
        }
        return c;
      };

      const seen = { duck: new Map<number, bigint>(), bq: new Map<number, bigint>() };
      const transitions = async () => {
        const d = await readNew(duck.kafka, availabilityTopic(duck.cfg), seen.duck);
        const b = await readNew(big.kafka, availabilityTopic(big.cfg), seen.bq);
        seen.duck = d.ends;
        seen.bq = b.ends;
        return { duck: [...new Set(d.rows)].sort(), bq: [...new Set(b.rows)].sort() };
      };

      const send = async (events: Events) => {
        for (const e of [duck, big]) {
          for (const [source, msgs] of Object.entries(events)) if (msgs.length) await produce(e.kafka, topicFor(e.cfg, source), msgs, 20);
        }
      };

      // 1. The events.
      await send(holdEvents());
      await consume(duck, duckSink);
      await consume(big, bqSink);
      const c1 = await expectEqual('events');
      expect(c1.fact_carts_has_products.duck.length).toBeGreaterThan(60);
      expect(c1.fact_shoppingcarts.duck).toHaveLength(62);
      expect(c1.fact_shoppingcarts.duck.filter((r) => r.includes('channel'))).toHaveLength(1);
      expect(c1.fact_carts_has_products.duck.filter((r) => r.includes('coupon'))).toHaveLength(1);
      expect(c1.vendor_product_availability.duck.filter((r) => Number(JSON.parse(r)[4]) >= 999_999)).toHaveLength(1); // held_in_open_carts
      expect(c1.fact_products_sold_vendor.duck).toHaveLength(12);
      expect(c1._quarantine.duck).toHaveLength(7);
      expect(c1.vendor_product_availability.duck).toHaveLength(22); // 10 products x 2 options, and 1200 by a second vendor
      const t1 = await transitions();
      expect(t1.duck.length).toBeGreaterThan(0);
      expect(t1.duck.every((t) => t.startsWith('["sold_out"'))).toBe(true);
      expect(t1.bq).toEqual(t1.duck);

      // 2. Half of the carts close.
      await send(releaseEvents());
      await consume(duck, duckSink);
      await consume(big, bqSink);
      await expectEqual('release');
      const t2 = await transitions();
      expect(t2.duck.some((t) => t.startsWith('["back_in_stock"'))).toBe(true);
      expect(t2.bq).toEqual(t2.duck);

      // 3. The same events replayed; the BigQuery consumer killed right after its 3rd transaction committed.
      await send(holdEvents());
      await consume(duck, duckSink);
      await consumeWithKill(3, true);
      const c3 = await expectEqual('replayed, killed after a commit');
      expect(c3._quarantine.duck).toHaveLength(14);
      const t3 = await transitions();
      expect(t3.duck.length).toBeGreaterThan(0);
      expect(t3.bq).toEqual(t3.duck);

      // 4. The release replayed; killed right before its 1st transaction reached BigQuery.
      await send(releaseEvents());
      await consume(duck, duckSink);
      await consumeWithKill(1, false);
      await expectEqual('release replayed, killed before a commit');
      const t4 = await transitions();
      expect(t4.bq).toEqual(t4.duck);
    }, 600_000);

    it('a broker restart during consumption loses nothing: 0 lost, 0 duplicated, offsets exact, tables equal to DuckDB\'s', async () => {
      await suite.bq.reset();
      const carts = tables.filter((d) => d.table === 'fact_carts_has_products');
      // Commits of at most 500 events: the first commit leaves most of the 4,000 to do.
      const duck = testEnv({ maxBatchBytes: 4000, commitMaxEvents: 500 });
      const big = testEnv({ maxBatchBytes: 4000, commitMaxEvents: 500 });
      const wh = new BigQueryWarehouse({ client: suite.bq.client(), projectId: PROJECT, location: 'EU', catalog, retry: FAST_RETRY });
      const topicOf = (e: TestEnv) => topicFor(e.cfg, carts[0].sources[0]);
      const batchOf = (from: number, n: number) => Array.from({ length: n }, (_, i) => cartItem(from + i, 1400, 1401, 2));
      for (const e of [duck, big]) {
        await ensureTopics(e.kafka, e.cfg, [topicOf(e)]);
        await produce(e.kafka, topicOf(e), batchOf(100000, 4000));
      }
      // DuckDB, without an outage: the reference (a consumer run to the end, outside the hold).
      const reference = async () => {
        const c = new StreamConsumer({ catalog, cfg: duck.cfg, tables: carts, sink: duckDbSink(duck.warehouse) });
        await c.start();
        await c.waitCaughtUp(await endOffsets(duck.kafka, [topicOf(duck)]), 180_000);
        await c.stop();
      };
      await reference();

      // BigQuery: held after its first commit (ETL_TEST_STREAM_HOLD_FILE), the broker stopped while
      // it is held, the commit released during the outage, the broker started again.
      const hold = holdAfterFirstCommit(big.dir);
      const consumer = new StreamConsumer({ catalog, cfg: big.cfg, tables: carts, sink: bigQuerySink(wh), onCommit: hold.onCommit });
      try {
        await consumer.start();
        await hold.held(() => consumer.stats[carts[0].name].rows > 0);
        const before = consumer.stats[carts[0].name].rows;
        expect(before).toBeGreaterThan(0);
        expect(before).toBeLessThanOrEqual(500);
        await stopBroker();
        await hold.release();
        await startBroker();
        for (const e of [duck, big]) await produce(e.kafka, topicOf(e), batchOf(200000, 1000));
        await consumer.waitCaughtUp(await endOffsets(big.kafka, [topicOf(big)]), 180_000);
        // The idempotent producer put each event in the topic once, across the restart.
        const ends = await endOffsets(big.kafka, [topicOf(big)]);
        expect([...ends.values()].reduce((a, b) => a + Number(b), 0)).toBe(5000);
        expect(consumer.stats[carts[0].name]).toMatchObject({ rows: 5000, quarantined: 0 });
      } finally {
        hold.dispose();
        await consumer.stop();
      }
      await reference();
      // 0 lost, 0 duplicated: 5,000 rows, 5,000 distinct events in the changelog (insertIds).
      expect(await suite.bq.sql(`SELECT COUNT(*) AS n FROM ${fq('fact_carts_has_products')}`)).toEqual([{ n: '5000' }]);
      expect(await suite.bq.sql(`SELECT COUNT(*) AS n, COUNT(DISTINCT _event_id) AS d FROM ${fq('_changelog_fact_carts_has_products')}`)).toEqual([{ n: '5000', d: '5000' }]);
      // Offsets exact: per partition the topic's end; and every table equal to DuckDB's.
      const ends = await endOffsets(big.kafka, [topicOf(big)]);
      const offsets = await suite.bq.sql(`SELECT \`partition\`, next_offset FROM ${fq('_stream_offsets')} WHERE consumer_group = '${big.cfg.group}'`);
      expect(Object.fromEntries(offsets.map((r) => [String(r.partition), String(r.next_offset)])))
        .toEqual(Object.fromEntries([...ends].filter(([, v]) => v > 0n).map(([k, v]) => [k.slice(k.lastIndexOf(':') + 1), String(v)])));
      const c = await canonicalTables(suite.bq, duck, big, carts);
      expect(c.fact_carts_has_products.duck).toHaveLength(5000);
      for (const [table, { duck: d, bq: b }] of Object.entries(c)) expect({ table, rows: b }).toEqual({ table, rows: d });
    }, 600_000);
  });
});

const AVAIL_COLUMNS: { name: string; type: ColumnType }[] = [
  { name: 'vendor_id', type: 'STRING' }, { name: 'product_id', type: 'STRING' }, { name: 'option_id', type: 'STRING' },
  { name: 'stock', type: 'INT64' }, { name: 'held_in_open_carts', type: 'INT64' }, { name: 'available', type: 'INT64' },
  { name: 'sold_out', type: 'BOOL' }, { name: 'updated_at', type: 'TIMESTAMP' },
];
