/**
 * Consumers scale out on BigQuery: three consumer processes in ONE group (each owning some
 * partitions) write into the executing double, with members killed at known points, the group
 * rebalancing and new members joining. Every stream table must equal the events sent (computed
 * here, independently), `_stream_offsets` must reach every partition's end, no two applied
 * transactions may overlap (0 duplicated), and the availability table and the transitions on
 * the availability topic must equal a single DuckDB consumer's on the same events.
 *
 * The members run in this process (the double lives here, on nock). Each has its own view of the
 * warehouse (`member()`): a kill at a known point is its n-th call of a method, made to reach
 * BigQuery first or not (after or before the commit); from then on every call of that member
 * fails, as for a process that is gone, and it is stopped (it leaves the group: the others take
 * its partitions, and the availability role moves if it held it).
 *
 * Also: a stale member (its view of the stored offsets old) whose partition moved on is fenced
 * by BigQuery's stored offsets: its transaction changes nothing, whether the stored offset is
 * past its whole batch or only past its first part. A second DuckDB member of a
 * group stops with a clear error.
 */
import type { Kafka, Message } from 'kafkajs';
import { mulberry32 } from '../../scripts/lib/generator-kit';
import { catalog } from '../../jobs/catalog';
import type { ColumnType } from '../../jobs/lib/catalog-types';
import { availabilityTopic, sourceOf, streamDestinations, topicFor } from '../../jobs/lib/stream/config';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { decodeEvent } from '../../jobs/lib/stream/events';
import { decodeSlice } from '../../jobs/lib/stream/group';
import { endOffsets, ensureTopics } from '../../jobs/lib/stream/kafka';
import { bigQuerySink, type BigQuerySink } from '../../jobs/lib/stream/sink-bigquery';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import type { SinkContext } from '../../jobs/lib/stream/sink';
import { BigQueryWarehouse } from '../../jobs/lib/warehouse/bigquery/warehouse';
import type { StreamWrite } from '../../jobs/lib/warehouse/types';
import { describeWithBroker, produce, query, testEnv, type TestEnv } from '../stream/helpers';
import { describeWithDouble, doubleForSuite, PROJECT } from './bigquery-double';
import { canonicalRow, duckCanonical } from './canonical';

jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());

const FAST_RETRY = { retries: 2, baseDelayMs: 1, maxDelayMs: 5 };
const fq = (t: string) => `\`${PROJECT}.store.${t}\``;
const PARTITIONS = 4;
const tables = streamDestinations(catalog);

type Source = 'carts_has_products' | 'shoppingcart' | 'product_sold_vendor';
type Events = Record<Source, Message[]>;
const ev = (o: Record<string, string>): Message => ({ key: Object.values(o)[0], value: JSON.stringify(o) });

const PRODUCTS = Array.from({ length: 12 }, (_, i) => 1200 + i);
function stockRows(): string[] {
  const r = mulberry32(5);
  return PRODUCTS.flatMap((p) => [1, 2].map((o) => `('${p}', '${p * 10 + o}', ${Math.floor(r() * 40)})`));
}

/** Vendors list the products, 120 open carts take 1-4 options each; 3 poison events. Only holds. */
function holdEvents(): Events {
  const r = mulberry32(23);
  const items: Message[] = [];
  const carts: Message[] = [];
  for (let cart = 300; cart < 420; cart++) {
    const seen = new Set<string>();
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) {
      const p = PRODUCTS[Math.floor(r() * PRODUCTS.length)];
      const o = String(p * 10 + 1 + Math.floor(r() * 2));
      if (seen.has(o)) continue;
      seen.add(o);
      items.push(ev({ shopping_cart_id: String(cart), product_id: String(p), option_id: o, quantity: String(1 + Math.floor(r() * 3)) }));
    }
    carts.push(ev({ shopping_cart_id: String(cart), status: '1' }));
  }
  items.push({ key: '990', value: '{"shopping_cart_id":"990",' });
  items.push(ev({ shopping_cart_id: '991', product_id: '1200', option_id: '12001', quantity: '2.5' }));
  carts.push(ev({ shopping_cart_id: '992', status: 'maybe' }));
  const listings = PRODUCTS.map((p, i) => ev({ vendor_id: String(7000 + (i % 5)), product_id: String(p) }));
  return { carts_has_products: items, shoppingcart: carts, product_sold_vendor: listings };
}

/** Two carts in three close. Only releases. */
const releaseEvents = (): Events => ({
  carts_has_products: [],
  shoppingcart: Array.from({ length: 120 }, (_, i) => 300 + i).filter((c) => c % 3 !== 0).map((c) => ev({ shopping_cart_id: String(c), status: '0' })),
  product_sold_vendor: [],
});

/**
 * The stream tables the events make, computed here: the last valid event per key, as canonical
 * rows of the table's columns (`cols`; a column the events do not carry is NULL).
 */
function expectedTables(sent: Events[], colsOf: (table: string) => { name: string; type: ColumnType }[]): Record<string, string[]> {
  const out: Record<string, Map<string, Record<string, unknown>>> = {
    fact_carts_has_products: new Map(),
    fact_shoppingcarts: new Map(),
    fact_products_sold_vendor: new Map(),
  };
  const valid = (m: Message) => {
    try {
      const o = JSON.parse(String(m.value));
      const ints = [o.shopping_cart_id ?? o.vendor_id, o.quantity ?? '0'].every((v) => /^\d+$/.test(v));
      return ints && (o.status === undefined || /^[01]$/.test(o.status)) ? o : null;
    } catch {
      return null;
    }
  };
  for (const e of sent) {
    for (const m of e.carts_has_products.map(valid).filter(Boolean)) out.fact_carts_has_products.set(`${m.shopping_cart_id}|${m.product_id}|${m.option_id}`, m);
    for (const m of e.shoppingcart.map(valid).filter(Boolean)) out.fact_shoppingcarts.set(m.shopping_cart_id, { ...m, status: m.status === '1' });
    for (const m of e.product_sold_vendor.map(valid).filter(Boolean)) out.fact_products_sold_vendor.set(`${m.vendor_id}|${m.product_id}`, m);
  }
  return Object.fromEntries(
    Object.entries(out).map(([table, rows]) => {
      const cols = colsOf(table);
      return [table, [...rows.values()].map((r) => canonicalRow(cols.map((c) => r[c.name]), cols.map((c) => c.type))).sort()];
    }),
  );
}

/** An applied (or fenced) stream transaction: its partition, first event offset and next offset. */
interface Applied {
  readonly member: string;
  readonly tp: string;
  readonly first: bigint;
  readonly next: bigint;
  readonly applied: boolean;
}

/**
 * One member's view of the warehouse. `kill(method, n, reach)`: its n-th call of `method` from
 * now reaches BigQuery (reach) or not, then this call and every later one fails.
 */
function member(wh: BigQueryWarehouse, name: string, log: Applied[]) {
  let dead = false;
  let trap: { method: string; left: number; reach: boolean; reached: () => void } | null = null;
  let gate: { method: string; reached: () => void; released: Promise<void> } | null = null;
  const gone = () => new Error(`${name} was killed`);
  const view = new Proxy(wh, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || !['applyStreamBatch', 'readOffsets', 'readSnapshotJson', 'mergeAvailability', 'recordRun', 'ensureSchema'].includes(String(prop))) {
        return typeof v === 'function' ? v.bind(target) : v;
      }
      return async (...args: unknown[]) => {
        if (dead) throw gone();
        if (gate?.method === prop) {
          const g = gate;
          gate = null;
          g.reached();
          await g.released;
        }
        const hit = trap?.method === prop && --trap.left === 0;
        if (hit && !trap!.reach) {
          dead = true;
          trap!.reached();
          throw gone();
        }
        const r = await v.apply(target, args);
        if (prop === 'applyStreamBatch') {
          const w = args[0] as StreamWrite;
          const o = w.offsets[0];
          log.push({ member: name, tp: `${o.topic}:${o.partition}`, first: BigInt(o.from!), next: BigInt(o.offset), applied: r as boolean });
        }
        if (hit) {
          dead = true;
          trap!.reached();
          throw gone();
        }
        return r;
      };
    },
  });
  return {
    view,
    kill: (method: string, n: number, reach: boolean) => new Promise<void>((reached) => (trap = { method, left: n, reach, reached })),
    /** Gone from now on: every call fails. */
    die: () => void (dead = true),
    /** Its next call of `method` waits before reaching BigQuery until released. */
    hold: (method: string) => {
      let release = () => undefined as void;
      const released = new Promise<void>((r) => (release = r));
      const reached = new Promise<void>((r) => (gate = { method, reached: r, released }));
      return { reached, release };
    },
  };
}

/** `p`, or a failure naming `what` after `ms` (a known point that is never reached fails the test, not the run). */
function within<T>(what: string, p: Promise<T>, ms = 120000): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} not reached within ${ms} ms`)), ms).unref())]);
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads a topic's availability transitions from `from` to its end, as (event, vendor, product, option). */
async function transitionsSince(kafka: Kafka, topic: string, from: Map<number, bigint>): Promise<{ rows: string[]; ends: Map<number, bigint> }> {
  const ends = new Map([...(await endOffsets(kafka, [topic]))].map(([k, v]) => [Number(k.slice(k.lastIndexOf(':') + 1)), v]));
  const want = [...ends].reduce((a, [p, high]) => a + Number(high - (from.get(p) ?? 0n)), 0);
  const rows: string[] = [];
  if (want > 0) {
    const c = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, maxWaitTimeInMs: 100 });
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    await c.run({
      eachMessage: async ({ partition, message }) => {
        const o = BigInt(message.offset);
        if (o >= (from.get(partition) ?? 0n) && o < (ends.get(partition) ?? 0n)) {
          const e = JSON.parse(message.value!.toString());
          rows.push(JSON.stringify([e.event, e.vendor_id, e.product_id, e.option_id]));
        }
      },
    });
    await until('the availability topic', () => rows.length >= want, 30000);
    await c.disconnect();
  }
  return { rows: [...new Set(rows)].sort(), ends };
}

describeWithDouble('stream consumers scaled out on BigQuery (the executing double)', () => {
  const suite = doubleForSuite();

  describeWithBroker('on the local broker', () => {
    it('three members, kills and rebalances: 0 lost, 0 duplicated, offsets complete, availability as one DuckDB consumer', async () => {
      const duck = testEnv({ commitMaxEvents: 20, maxBatchBytes: 2000, partitions: PARTITIONS });
      const big = testEnv({ commitMaxEvents: 20, maxBatchBytes: 2000, partitions: PARTITIONS, sessionTimeoutMs: 6000 });
      const wh = new BigQueryWarehouse({ client: suite.bq.client(), projectId: PROJECT, location: 'EU', catalog, retry: FAST_RETRY });
      const topicsOf = (e: TestEnv) => tables.map((d) => topicFor(e.cfg, d.sources[0]));
      await duck.batch.ensureSchema();
      await duck.batch.withConnection((c) => c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES ${stockRows().join(', ')}`));
      await wh.ensureSchema();
      await suite.bq.sql(`INSERT INTO ${fq('dim_products')} (product_id, option_id, stock_quantity) VALUES ${stockRows().join(', ')}`);
      for (const e of [duck, big]) await ensureTopics(e.kafka, e.cfg, [...topicsOf(e), availabilityTopic(e.cfg)]);

      const log: Applied[] = [];
      const members: { name: string; consumer: StreamConsumer; sink: () => BigQuerySink; kill: ReturnType<typeof member>['kill']; hold: ReturnType<typeof member>['hold']; die: () => void }[] = [];
      const startMember = async (name: string) => {
        const m = member(wh, name, log);
        let sink: BigQuerySink | null = null;
        const consumer = new StreamConsumer({
          catalog,
          cfg: big.cfg,
          tables,
          sink: (ctx) => (sink = bigQuerySink(m.view)(ctx) as BigQuerySink),
        });
        await consumer.start();
        const entry = { name, consumer, sink: () => sink!, kill: m.kill, hold: m.hold, die: m.die };
        members.push(entry);
        return entry;
      };
      const running = () => members.filter((m) => !m.consumer.failure && !(m as { stopped?: boolean }).stopped);
      const stopMember = async (m: (typeof members)[number]) => {
        (m as { stopped?: boolean }).stopped = true;
        await m.consumer.stop();
      };
      /** Every partition held by exactly one running member, each running member holding some. */
      const stable = async (n: number) => {
        const all = PARTITIONS * tables.length;
        await until(`${n} members sharing the ${all} partitions`, () => {
          const live = running();
          const held = live.flatMap((m) => [...m.consumer.assigned]);
          return live.length === n && live.every((m) => m.consumer.assigned.size > 0) && held.length === all && new Set(held).size === all;
        });
        await until('one holder of the availability role', () => running().filter((m) => m.sink().availability.holds).length === 1);
      };
      const holder = () => running().find((m) => m.sink().availability.holds)!;
      const caughtUp = async () => {
        const ends = await endOffsets(big.kafka, topicsOf(big));
        await running()[0].consumer.waitCaughtUp(ends, 180_000);
        return ends;
      };
      /** Stops the running members, the availability holder last (its stop drains and merges). */
      const stopAll = async () => {
        const h = holder();
        for (const m of running()) if (m !== h) await stopMember(m);
        if (h) await stopMember(h);
      };

      const sent: Events[] = [];
      const send = async (events: Events) => {
        sent.push(events);
        for (const e of [duck, big]) {
          for (const [source, msgs] of Object.entries(events)) if (msgs.length) await produce(e.kafka, topicFor(e.cfg, source), msgs, 10);
        }
      };
      const consumeDuck = async () => {
        const c = new StreamConsumer({ catalog, cfg: duck.cfg, tables, sink: duckDbSink(duck.warehouse) });
        await c.start();
        await c.waitCaughtUp(await endOffsets(duck.kafka, topicsOf(duck)), 120_000);
        await c.stop();
      };

      const seen = { duck: new Map<number, bigint>(), bq: new Map<number, bigint>() };
      const check = async (label: string, ends: Map<string, bigint>) => {
        // Every stream table = the events sent (computed here) = the DuckDB consumer's.
        const colsOf = (t: string) => tables.find((d) => d.table === t)!.columns.filter((c) => c.name !== 'updated_at');
        const expected = expectedTables(sent, colsOf);
        for (const d of tables) {
          const cols = d.columns.filter((c) => c.name !== 'updated_at');
          const types = cols.map((c) => c.type);
          const rows = (await suite.bq.sql(`SELECT * FROM ${fq(d.table)}`)).map((r) => canonicalRow(cols.map((c) => r[c.name]), types)).sort();
          const duckRows = (await query(duck.warehouse, `SELECT ${cols.map((c) => duckCanonical(c.name, c.type)).join(', ')} FROM store.${d.table}`))
            .map((r) => canonicalRow(Object.values(r), types))
            .sort();
          expect({ label, table: d.table, rows }).toEqual({ label, table: d.table, rows: expected[d.table] });
          expect({ label, table: d.table, rows: duckRows }).toEqual({ label, table: d.table, rows: expected[d.table] });
        }
        // Quarantine: each poison event once.
        const poison = sent.reduce((a, e) => a + Object.values(e).flat().filter((m) => !/^\{.*\}$/.test(String(m.value)) || /2\.5|maybe/.test(String(m.value))).length, 0);
        expect({ label, quarantined: (await suite.bq.sql(`SELECT line FROM ${fq('_quarantine')}`)).length }).toEqual({ label, quarantined: poison });
        // _stream_offsets: every partition at its end.
        const stored = (await suite.bq.sql(`SELECT * FROM ${fq('_stream_offsets')} WHERE consumer_group = '${big.cfg.group}'`)).map((r) => [`${r.topic}:${r.partition}`, String(r.next_offset)] as const);
        expect(new Map(stored)).toEqual(new Map([...ends].filter(([, v]) => v > 0n).map(([k, v]) => [k, String(v)])));
        // 0 duplicated: the applied transactions of a partition never overlap, and chain up to its end.
        for (const [tp, end] of ends) {
          const mine = log.filter((a) => a.tp === tp && a.applied).sort((a, b) => (a.first < b.first ? -1 : 1));
          for (let i = 1; i < mine.length; i++) expect({ tp, first: mine[i].first >= mine[i - 1].next }).toEqual({ tp, first: true });
          if (end > 0n) expect({ tp, next: mine[mine.length - 1]?.next }).toEqual({ tp, next: end });
        }
        // Availability: the table and the transitions equal one DuckDB consumer's.
        const cols = AVAIL_COLUMNS.filter((c) => c.name !== 'updated_at');
        const types = cols.map((c) => c.type);
        const avail = (await suite.bq.sql(`SELECT * FROM ${fq('vendor_product_availability')}`)).map((r) => canonicalRow(cols.map((c) => r[c.name]), types)).sort();
        const duckAvail = (await query(duck.warehouse, `SELECT ${cols.map((c) => duckCanonical(c.name, c.type)).join(', ')} FROM store.vendor_product_availability`))
          .map((r) => canonicalRow(Object.values(r), types))
          .sort();
        expect({ label, avail }).toEqual({ label, avail: duckAvail });
        const t = { duck: await transitionsSince(duck.kafka, availabilityTopic(duck.cfg), seen.duck), bq: await transitionsSince(big.kafka, availabilityTopic(big.cfg), seen.bq) };
        seen.duck = t.duck.ends;
        seen.bq = t.bq.ends;
        expect({ label, transitions: t.bq.rows }).toEqual({ label, transitions: t.duck.rows });
        return { avail: duckAvail, transitions: t.duck.rows };
      };

      // 1. Three members share the partitions; then the events. Member a is killed right after
      //    BigQuery committed its 3rd transaction (it never hears so); d joins.
      for (const name of ['a', 'b', 'c']) await startMember(name);
      await stable(3);
      const a = members[0];
      const killedA = a.kill('applyStreamBatch', 3, true);
      await send(holdEvents());
      await consumeDuck();
      await within('a killed at its 3rd transaction', killedA);
      await stopMember(a);
      await startMember('d');
      await stable(3);
      const ends1 = await caughtUp();
      for (const m of running()) expect({ member: m.name, partitions: m.consumer.assigned.size }).toEqual({ member: m.name, partitions: 4 });
      await stopAll();
      const c1 = await check('events, a member killed after a commit', ends1);
      expect(c1.avail).toHaveLength(24);
      expect(c1.transitions.length).toBeGreaterThan(0);
      expect(c1.transitions.every((t) => t.startsWith('["sold_out"'))).toBe(true);
      // a's partitions went on where BigQuery's offsets stood: other members applied after it.
      const aParts = new Set(log.filter((x) => x.member === 'a').map((x) => x.tp));
      expect(log.some((x) => x.member !== 'a' && x.applied && aParts.has(x.tp))).toBe(true);

      // 2. Three new members; the availability holder is killed right before its first merge
      //    of availability rows reaches BigQuery (its transitions were published): the role moves.
      for (const name of ['e', 'f', 'g']) await startMember(name);
      await stable(3);
      const h = holder();
      const killedH = h.kill('mergeAvailability', 1, false);
      await send(releaseEvents());
      await consumeDuck();
      await within('the holder killed at its first merge', killedH);
      await stopMember(h);
      await until('the availability role to move', () => running().some((m) => m.sink().availability.holds));
      const ends2 = await caughtUp();
      await stopAll();
      const c2 = await check('release, the availability holder killed before its merge', ends2);
      expect(c2.transitions.some((t) => t.startsWith('["back_in_stock"'))).toBe(true);
      expect(c2.transitions.every((t) => t.startsWith('["back_in_stock"'))).toBe(true);

      // 3. The hold events replayed (carts open again). Member n's first transaction waits before
      //    BigQuery; once the others committed theirs and the availability holder took them in,
      //    the holder drains (merging its rows into BigQuery) and dies. The rows it merged must
      //    come from rows BigQuery holds (n's events are in Kafka, not yet in BigQuery), else the
      //    next holder, loading the tables without them, publishes a transition back and forth.
      for (const name of ['k', 'l', 'n']) await startMember(name);
      await stable(3);
      const h3 = holder();
      const n3 = running().find((m) => m !== h3)!;
      const heldN = n3.hold('applyStreamBatch');
      await send(holdEvents());
      await consumeDuck();
      await within('n held at its first transaction', heldN.reached);
      const others = await endOffsets(big.kafka, topicsOf(big));
      for (const k of n3.consumer.assigned) others.delete(k);
      const storedAt = async () => new Map((await suite.bq.sql(`SELECT * FROM ${fq('_stream_offsets')} WHERE consumer_group = '${big.cfg.group}'`)).map((r) => [`${r.topic}:${r.partition}`, BigInt(r.next_offset as string)]));
      await until('the other members to commit their partitions', async () => {
        const at = await storedAt();
        return [...others].every(([k, end]) => (at.get(k) ?? 0n) >= end);
      }, 120000);
      await until('the holder to take them in', () => [...others].every(([k, end]) => (h3.sink().availability.positions.get(k) ?? 0n) >= end));
      await h3.sink().availability.drain();
      h3.die();
      await stopMember(h3);
      await until('the availability role to move', () => running().some((m) => m.sink().availability.holds));
      heldN.release();
      const ends3 = await caughtUp();
      await stopAll();
      const c3 = await check('replayed, a commit held while the holder merges and dies', ends3);
      expect(c3.transitions.length).toBeGreaterThan(0);
      expect(c3.transitions.every((t) => t.startsWith('["sold_out"'))).toBe(true);

      // 4. A stale member: its partition moved on (BigQuery's stored offset is past its batch).
      //    Its transaction, with other values, changes nothing.
      const tp = [...ends1].find(([k, v]) => k.includes('_shoppingcart:') && v >= 3n)!;
      const [topic, p] = [tp[0].slice(0, tp[0].lastIndexOf(':')), Number(tp[0].slice(tp[0].lastIndexOf(':') + 1))];
      const before = {
        carts: await suite.bq.sql(`SELECT * FROM ${fq('fact_shoppingcarts')} ORDER BY shopping_cart_id`),
        offsets: await suite.bq.sql(`SELECT * FROM ${fq('_stream_offsets')} ORDER BY topic, \`partition\``),
      };
      const staleCtx: SinkContext = { catalog, cfg: big.cfg, runId: 'stale', topics: topicsOf(big), dataset: 'store', producer: null as never };
      const stale = bigQuerySink(wh)(staleCtx);
      const target = { dest: tables.find((d) => d.table === 'fact_shoppingcarts')!, source: sourceOf(catalog, tables.find((d) => d.table === 'fact_shoppingcarts')!) };
      const end = tp[1];
      const msgs = [end - 3n, end - 2n, end - 1n].map((o, i) => ({ offset: String(o), key: null, value: Buffer.from(JSON.stringify({ shopping_cart_id: String(900 + i), status: '1' })), timestamp: '0', attributes: 0, headers: {} }));
      const slice = decodeSlice(topic, p, target, msgs as never, { decode: decodeEvent });
      const transactions = () => suite.bq.queries().filter((q) => q.startsWith('DECLARE stale')).length;
      const sentBefore = transactions();
      const { results } = await stale.put([slice], false);
      expect(results).toEqual([null]);
      expect(transactions()).toBe(sentBefore + 1); // it reached BigQuery: the fence is there, not in the member
      expect(await suite.bq.sql(`SELECT * FROM ${fq('fact_shoppingcarts')} ORDER BY shopping_cart_id`)).toEqual(before.carts);
      expect(await suite.bq.sql(`SELECT * FROM ${fq('_stream_offsets')} ORDER BY topic, \`partition\``)).toEqual(before.offsets);

      // 5. A stale member whose batch starts below the stored offset and ends past it (another
      //    member applied its first part): fenced whole (its events of the applied part would
      //    otherwise count twice), and told to read on from the stored offset.
      const storedNow = BigInt(before.offsets.find((r) => r.topic === topic && Number(r.partition) === p)!.next_offset as string);
      const overlapping = [storedNow - 2n, storedNow - 1n, storedNow, storedNow + 1n].map((o, i) => ({ ...msgs[0], offset: String(o), value: Buffer.from(JSON.stringify({ shopping_cart_id: String(950 + i), status: '1' })) }));
      const straddling = await bigQuerySink(wh)(staleCtx).put([decodeSlice(topic, p, target, overlapping as never, { decode: decodeEvent })], false);
      expect(straddling.results).toEqual([{ gap: storedNow }]);
      expect(transactions()).toBe(sentBefore + 2);
      expect(await suite.bq.sql(`SELECT * FROM ${fq('fact_shoppingcarts')} ORDER BY shopping_cart_id`)).toEqual(before.carts);
      expect(await suite.bq.sql(`SELECT * FROM ${fq('_stream_offsets')} ORDER BY topic, \`partition\``)).toEqual(before.offsets);
    }, 900_000);

    it('with WAREHOUSE=duckdb a second member of the group stops with a clear error', async () => {
      const first = testEnv({ partitions: 2 });
      const second = testEnv({ partitions: 2 });
      const cfg2 = { ...second.cfg, topicPrefix: first.cfg.topicPrefix, group: first.cfg.group };
      const one = new StreamConsumer({ catalog, cfg: first.cfg, tables, sink: duckDbSink(first.warehouse) });
      await one.start();
      await until('the first member to hold every partition', () => one.assigned.size === tables.length * 2);
      const two = new StreamConsumer({ catalog, cfg: cfg2, tables, sink: duckDbSink(second.warehouse) });
      await two.start();
      await until('the second member to fail', () => two.failure !== null, 60000);
      expect(two.failure!.message).toMatch(/another consumer process holds every partition of group .* WAREHOUSE=duckdb .* ONE consumer/);
      expect(two.assigned.size).toBe(0);
      expect(one.assigned.size).toBe(tables.length * 2);
      expect(one.failure).toBeNull();
      await two.stop();
      await one.stop();
    }, 120_000);
  });
});

const AVAIL_COLUMNS: { name: string; type: ColumnType }[] = [
  { name: 'vendor_id', type: 'STRING' }, { name: 'product_id', type: 'STRING' }, { name: 'option_id', type: 'STRING' },
  { name: 'stock', type: 'INT64' }, { name: 'held_in_open_carts', type: 'INT64' }, { name: 'available', type: 'INT64' },
  { name: 'sold_out', type: 'BOOL' }, { name: 'updated_at', type: 'TIMESTAMP' },
];
