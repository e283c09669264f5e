/**
 * The stream layer against the real local Kafka broker (scripts/kafka/start.sh) and a DuckDB
 * warehouse per test. Every test uses its own topic prefix and consumer group.
 * Events carry distinct keys where rows are counted: upserts by key collapse repeated keys.
 */
import { mulberry32 } from '../../scripts/lib/generator-kit';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Message } from 'kafkajs';
import { findDestination } from '../../jobs/lib/catalog-check';
import { catalog } from '../../jobs/catalog';
import { startBroker, stopBroker } from '../../jobs/lib/stream/broker';
import { availabilityTopic, deadLetterTopic, streamDestinations, topicFor } from '../../jobs/lib/stream/config';
import { endOffsets, ensureTopics } from '../../jobs/lib/stream/kafka';
import { StreamConsumer, type CommitInfo } from '../../jobs/lib/stream/consumer';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import type { StreamDestination } from '../../jobs/lib/catalog-types';
import { runStreamOnce } from '../../scripts/stream-run';
import {
  cartItem,
  count,
  describeWithBroker,
  ensureBuilt,
  holdAfterFirstCommit,
  itWhenAvailable,
  produce,
  query,
  queryFile,
  readTopic,
  ROOT,
  testEnv,
  type TestEnv,
} from './helpers';

// Generous: the CLI tests start several processes; on a shared 2-core machine under load that takes minutes.
jest.setTimeout(600000);


/** mulberry32: the kill timing is random but reproducible (STREAM_TEST_SEED replays a run). */
const seededRandom = mulberry32;

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const cartsTopic = (e: TestEnv) => topicFor(e.cfg, 'carts_has_products');

async function consumeUntilCaughtUp(
  e: TestEnv,
  tables: StreamDestination[],
  topics: string[],
  onCommit?: (c: CommitInfo) => void,
): Promise<StreamConsumer> {
  const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse), onCommit });
  await consumer.start();
  try {
    await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 120000);
  } finally {
    await consumer.stop();
  }
  return consumer;
}

describeWithBroker('stream layer on the local Kafka broker', () => {
  it('N events produced -> exactly N rows with their values, offsets stored with them; the stream file opened once for all commits', async () => {
    // Small fetches and commits: many commits, each must reuse the one open file.
    const e = testEnv({ maxBatchBytes: 4000, commitMaxEvents: 200 });
    const N = 3000;
    const msgs: Message[] = [];
    for (let i = 0; i < N; i++) msgs.push(cartItem(10000 + i, 1200 + (i % 7), 1201 + (i % 3), 1 + (i % 5)));
    await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
    await produce(e.kafka, cartsTopic(e), msgs, 50);
    const commits: CommitInfo[] = [];
    const consumer = await consumeUntilCaughtUp(e, [CARTS], [cartsTopic(e)], (c) => commits.push(c));
    expect(consumer.stats[CARTS.name]).toMatchObject({ rows: N, quarantined: 0 });
    const batchCommits = commits.filter((c) => c.kind === 'batch');
    expect(batchCommits.reduce((a, c) => a + c.events, 0)).toBe(N);
    expect(batchCommits.length).toBeGreaterThanOrEqual(Math.ceil(N / 200));
    expect(e.warehouse.opens).toBe(1);
    // The snapshot the consumer published at stop holds the same rows (what dbt reads).
    expect((await queryFile(e.cfg.snapshotPath, 'SELECT COUNT(*) AS n FROM store.fact_carts_has_products'))![0].n).toBe(N);
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(N);
    const expectedQty = Array.from({ length: N }, (_, i) => 1 + (i % 5)).reduce((a, b) => a + b, 0);
    expect(await count(e.warehouse, 'SELECT SUM(quantity) FROM store.fact_carts_has_products')).toBe(expectedQty);
    const row = (await query(e.warehouse, "SELECT * FROM store.fact_carts_has_products WHERE shopping_cart_id = '10008'"))[0];
    expect(row).toMatchObject({ product_id: '1201', option_id: '1203', quantity: 4 });
    const stored = await count(e.warehouse, `SELECT SUM(next_offset) FROM store._stream_offsets WHERE consumer_group = '${e.cfg.group}'`);
    expect(stored).toBe(N);
  });

  it('SIGKILLed at random points and restarted several times: still exactly N rows, each poison event quarantined once', async () => {
    const cli = ensureBuilt();
    // Small fetches and commits = many transactions; a pause inside each widens the window for kills.
    const e = testEnv({ maxBatchBytes: 6000, sessionTimeoutMs: 6000, commitMaxEvents: 100 });
    const N = 6000;
    const msgs: Message[] = [];
    let poison = 0;
    for (let i = 0; i < N; i++) {
      if (i % 150 === 75) {
        poison++;
        msgs.push({ key: String(i), value: i % 300 === 75 ? '{"shopping_cart_id": "1", broken' : JSON.stringify({ shopping_cart_id: '2.5E+15', product_id: '1', option_id: '1', quantity: '1' }) });
      } else {
        msgs.push(cartItem(50000 + i, 1300, 1301 + (i % 2), 1 + (i % 3)));
      }
    }
    await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
    await produce(e.kafka, cartsTopic(e), msgs);
    const env = { ...e.childEnv, ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS: '50', LOG_LEVEL: 'debug' };
    const start = (): ChildProcess =>
      spawn(process.execPath, [cli, '--table', 'fact_carts_has_products', '--until-caught-up', '--no-start-broker'], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const seed = Number(process.env.STREAM_TEST_SEED ?? Date.now() % 2 ** 31);
    const random = seededRandom(seed);
    // eslint-disable-next-line no-console
    console.log(`kill timing seed ${seed} (STREAM_TEST_SEED=${seed} replays it)`);
    const kills: number[] = [];
    for (let k = 0; k < 4; k++) {
      const child = start();
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      // Kill 0-400 ms after the child's first applied batch: always in the middle of consuming.
      const firstBatch = new Promise<void>((resolve) => {
        let buf = '';
        child.stderr!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('stream: batch applied')) resolve();
        });
      });
      const outcome = await Promise.race([firstBatch.then(() => 'batch' as const), exited.then(() => 'exit' as const)]);
      if (outcome === 'exit') break; // finished before we could kill it
      await new Promise((r) => setTimeout(r, Math.floor(random() * 400)));
      child.kill('SIGKILL');
      kills.push(k);
      await exited;
    }
    // eslint-disable-next-line no-console
    console.log(`consumer SIGKILLed ${kills.length} times mid-consumption`);
    expect(kills.length).toBeGreaterThanOrEqual(3);
    // Final run to the end, then a clean exit.
    const last = start();
    let out = '';
    last.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => last.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(out).toContain('store.fact_carts_has_products');
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(N - poison);
    expect(await count(e.warehouse, 'SELECT COUNT(DISTINCT shopping_cart_id) FROM store.fact_carts_has_products')).toBe(N - poison);
    // The quarantine is insert-only: a replayed batch would show up here twice.
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._quarantine')).toBe(poison);
    expect(await count(e.warehouse, 'SELECT COUNT(DISTINCT line) FROM store._quarantine')).toBe(poison);
    const ends = await endOffsets(e.kafka, [cartsTopic(e)]);
    const stored = await query(e.warehouse, `SELECT topic, partition, next_offset FROM store._stream_offsets WHERE consumer_group = '${e.cfg.group}'`);
    for (const s of stored) expect(BigInt(String(s.next_offset))).toBe(ends.get(`${s.topic}:${s.partition}`));
    // Dead letters are published at least once from the outbox: every poison offset is there.
    const dlq = await readTopic(e.kafka, deadLetterTopic(e.cfg), poison);
    expect(new Set(dlq.map((m) => `${m.headers.source_partition}:${m.headers.source_offset}`)).size).toBe(poison);
  });

  it('SIGTERM stops the consumer gracefully: the batch in hand is committed, the run recorded, exit 0', async () => {
    const cli = ensureBuilt();
    const e = testEnv({ maxBatchBytes: 3000 });
    const N = 3000;
    await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
    await produce(e.kafka, cartsTopic(e), Array.from({ length: N }, (_, i) => cartItem(300000 + i, 1600, 1601, 1)), 30);
    const child = spawn(process.execPath, [cli, '--table', 'fact_carts_has_products', '--no-start-broker'], {
      cwd: ROOT,
      env: { ...e.childEnv, ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS: '30', LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    await new Promise<void>((resolve) => {
      let buf = '';
      child.stderr!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('stream: batch applied')) resolve();
      });
    });
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15000);
    const reported = Number(/store\.fact_carts_has_products: (\d+) rows/.exec(out)?.[1]);
    const rows = await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products');
    expect(rows).toBe(reported);
    expect(rows).toBeGreaterThan(0);
    const stored = await count(e.warehouse, `SELECT SUM(next_offset) FROM store._stream_offsets WHERE consumer_group = '${e.cfg.group}'`);
    expect(stored).toBe(rows);
    const runs = await query(e.warehouse, "SELECT status, rows_loaded FROM store._etl_runs WHERE mode = 'stream'");
    expect(runs).toEqual([{ status: 'success', rows_loaded: rows }]);
  });

  it('a second consumer process on the same stream file waits as a standby, takes over after the first is SIGKILLed: 0 lost, 0 duplicated', async () => {
    const cli = ensureBuilt();
    // Small commits, each held open a while: the first is still consuming when the second waits.
    const e = testEnv({ maxBatchBytes: 3000, sessionTimeoutMs: 6000, commitMaxEvents: 100 });
    const N = 6000;
    const msgs: Message[] = [];
    for (let i = 0; i < N; i++) {
      msgs.push(i % 100 === 50 ? { key: String(i), value: '{oops' } : cartItem(70000 + i, 1500, 1501, 1));
    }
    const poison = msgs.filter((m) => m.value === '{oops').length;
    await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
    await produce(e.kafka, cartsTopic(e), msgs, 30);
    const spawnOne = () =>
      spawn(process.execPath, [cli, '--table', 'fact_carts_has_products', '--until-caught-up', '--no-start-broker'], {
        cwd: ROOT,
        env: { ...e.childEnv, ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS: '100', LOG_LEVEL: 'debug' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const exit = (c: ChildProcess) => new Promise<number | null>((r) => c.on('exit', r));
    const logs = ['', ''];
    const waitFor = (i: number, text: string, c: ChildProcess, exited: Promise<unknown>) =>
      new Promise<boolean>((resolve) => {
        if (logs[i].includes(text)) return resolve(true);
        const on = () => {
          if (logs[i].includes(text)) {
            c.stderr!.off('data', on);
            resolve(true);
          }
        };
        c.stderr!.on('data', on);
        void exited.then(() => resolve(logs[i].includes(text)));
      });
    const a = spawnOne();
    a.stderr!.on('data', (d: Buffer) => (logs[0] += d.toString()));
    const aExit = exit(a);
    expect(await waitFor(0, 'stream: batch applied', a, aExit)).toBe(true);
    // The second process starts while the first is consuming: it waits for the file, outside the group.
    const b = spawnOne();
    b.stderr!.on('data', (d: Buffer) => (logs[1] += d.toString()));
    let bOut = '';
    b.stdout!.on('data', (d: Buffer) => (bOut += d.toString()));
    const bExit = exit(b);
    expect(await waitFor(1, 'stream: standby', b, bExit)).toBe(true);
    a.kill('SIGKILL');
    await aExit;
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      bExit,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          b.kill('SIGKILL');
          reject(new Error(`the standby did not finish within 400 s.\nsecond:\n${logs[1].slice(-3000)}`));
        }, 400000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (code !== 0) throw new Error(`exit code ${code}.\nsecond:\n${logs[1].slice(-3000)}`);
    // The standby joined the group only once it held the file: nothing applied before the takeover.
    const took = logs[1].indexOf('took over the stream file');
    expect(took).toBeGreaterThan(logs[1].indexOf('stream: standby'));
    expect(logs[1].indexOf('stream: batch applied')).toBeGreaterThan(took);
    expect(logs[1].indexOf('stream: consuming')).toBeGreaterThan(took);
    // The warehouse: every event exactly once, whatever the first had committed when killed.
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(N - poison);
    expect(await count(e.warehouse, 'SELECT COUNT(DISTINCT shopping_cart_id) FROM store.fact_carts_has_products')).toBe(N - poison);
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._quarantine')).toBe(poison);
    expect(await count(e.warehouse, 'SELECT COUNT(DISTINCT line) FROM store._quarantine')).toBe(poison);
    // The second's run accounts for what it applied: the rest of the events, after the first's.
    const runs = await query(e.warehouse, "SELECT rows_in, rows_loaded, rows_quarantined FROM store._etl_runs WHERE mode = 'stream'");
    expect(runs).toHaveLength(1); // the SIGKILLed first recorded none
    const reported = Number(/store\.fact_carts_has_products: (\d+) rows/.exec(bOut)?.[1]);
    expect(Number(runs[0].rows_loaded)).toBe(reported);
    expect(reported).toBeLessThan(N - poison); // the first had applied some before it was killed
    const stored = await query(e.warehouse, `SELECT topic, partition, next_offset FROM store._stream_offsets WHERE consumer_group = '${e.cfg.group}'`);
    const endsNow = await endOffsets(e.kafka, [cartsTopic(e)]);
    for (const st of stored) expect(BigInt(String(st.next_offset))).toBe(endsNow.get(`${st.topic}:${st.partition}`));
    // ... and the topic holds exactly the N events produced (no producer retry duplicated any).
    const ends = await endOffsets(e.kafka, [cartsTopic(e)]);
    expect([...ends.values()].reduce((a, b) => a + Number(b), 0)).toBe(N);
  });

  it('a poison event goes to the dead-letter topic and the quarantine while good events keep flowing', async () => {
    const e = testEnv();
    const topic = cartsTopic(e);
    await ensureTopics(e.kafka, e.cfg, [topic]);
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables: [CARTS], sink: duckDbSink(e.warehouse) });
    await consumer.start();
    try {
      const good = (from: number) => Array.from({ length: 50 }, (_, i) => cartItem(from + i, 1200, 1201, 1));
      await produce(e.kafka, topic, good(1000));
      await produce(e.kafka, topic, [
        { key: '7', value: 'not json at all' },
        { key: '8', value: JSON.stringify({ shopping_cart_id: '8', product_id: '2.56324E+15', option_id: '1', quantity: '1' }) },
        { key: '9', value: JSON.stringify({ shopping_cart_id: '9', product_id: '1', option_id: '1', quantity: 'two' }) },
      ]);
      await produce(e.kafka, topic, good(2000));
      await consumer.waitCaughtUp(await endOffsets(e.kafka, [topic]), 60000);
    } finally {
      await consumer.stop();
    }
    expect(consumer.stats[CARTS.name]).toMatchObject({ rows: 100, quarantined: 3 });
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(100);
    const q = await query(e.warehouse, 'SELECT reason_code, column_name, reason, raw, file FROM store._quarantine ORDER BY reason_code');
    expect(q.map((r) => r.reason_code)).toEqual(['bad_event', 'not_an_integer', 'scientific_notation_id']);
    expect(q[0]).toMatchObject({ raw: 'not json at all', file: expect.stringMatching(new RegExp(`^${topic}:\\d+$`)) });
    expect(String(q[2].reason)).toContain('scientific notation');
    const dlq = await readTopic(e.kafka, deadLetterTopic(e.cfg), 3);
    expect(dlq.map((m) => m.headers.reason_code).sort()).toEqual(['bad_event', 'not_an_integer', 'scientific_notation_id']);
    expect(dlq.find((m) => m.headers.reason_code === 'bad_event')).toMatchObject({ value: 'not json at all', key: '7' });
  });

  it('a broker restart during consumption loses nothing', async () => {
    // Commits of at most 500 events: the first commit leaves most of the 4,000 to do.
    const e = testEnv({ maxBatchBytes: 4000, commitMaxEvents: 500 });
    const topic = cartsTopic(e);
    await ensureTopics(e.kafka, e.cfg, [topic]);
    const first = Array.from({ length: 4000 }, (_, i) => cartItem(100000 + i, 1400, 1401, 2));
    await produce(e.kafka, topic, first);
    // The precondition is made, not hoped for: after its first commit the consumer is held before
    // the next one (ETL_TEST_STREAM_HOLD_FILE), the broker is stopped while it is held, then released.
    const hold = holdAfterFirstCommit(e.dir);
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables: [CARTS], sink: duckDbSink(e.warehouse), onCommit: hold.onCommit });
    try {
      await consumer.start();
      await hold.held(() => consumer.stats[CARTS.name].rows > 0);
      const before = consumer.stats[CARTS.name].rows;
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThanOrEqual(500);
      await stopBroker();
      await hold.release();
      await startBroker();
      const second = Array.from({ length: 1000 }, (_, i) => cartItem(200000 + i, 1400, 1401, 2));
      await produce(e.kafka, topic, second);
      await consumer.waitCaughtUp(await endOffsets(e.kafka, [topic]), 180000);
      // The idempotent producer put each event in the topic once, across the restart.
      const ends = await endOffsets(e.kafka, [topic]);
      expect([...ends.values()].reduce((a, b) => a + Number(b), 0)).toBe(5000);
      // The run's own count is exact: nothing applied twice across the outage.
      expect(consumer.stats[CARTS.name]).toMatchObject({ rows: 5000, quarantined: 0 });
    } finally {
      hold.dispose();
      await consumer.stop();
    }
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_carts_has_products')).toBe(5000);
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._quarantine')).toBe(0);
  });

  it('carts consuming an option\'s stock put a sold-out event on the broadcast topic, and back_in_stock when a cart closes', async () => {
    const e = testEnv();
    const tables = streamDestinations(catalog);
    const topics = tables.map((d) => topicFor(e.cfg, d.sources[0]));
    // Stock is the batch layer's: seeded in the batch file, mirrored into the stream file at start.
    await e.batch.ensureSchema();
    await e.batch.withConnection(async (c) => {
      await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES
        ('1200', '1201', 3), ('1200', '1202', 5), ('1300', '1301', 1)`);
    });
    await ensureTopics(e.kafka, e.cfg, [...topics, availabilityTopic(e.cfg)]);
    // The availability steps run inside group commits, per step of the test.
    let inCommitSteps = 0;
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse), onCommit: (c) => {
      if (c.kind === 'availability' && c.inCommit) inCommitSteps++;
    } });
    const step = async (topic: string, msgs: Message[]) => {
      inCommitSteps = 0;
      await produce(e.kafka, topicFor(e.cfg, topic), msgs);
      await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 60000);
      return inCommitSteps;
    };
    const ev = (o: Record<string, string>) => ({ key: Object.values(o)[0], value: JSON.stringify(o) });
    const avail = async () =>
      query(e.warehouse, `SELECT vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out
                          FROM store.vendor_product_availability ORDER BY 1, 2, 3`);
    await consumer.start();
    try {
      expect(await step('product_sold_vendor', [ev({ vendor_id: '5000', product_id: '1200' }), ev({ vendor_id: '5100', product_id: '1300' })])).toBeGreaterThan(0);
      // Carts with no item yet touch no product: nothing pending, so their commits run no step.
      expect(await step('shoppingcart', [ev({ shopping_cart_id: '3000', status: '1' }), ev({ shopping_cart_id: '3100', status: '1' })])).toBe(0);
      expect(await step('carts_has_products', [cartItem(3000, 1200, 1201, 2)])).toBeGreaterThan(0);
      expect((await avail()).find((r) => r.option_id === '1201')).toMatchObject({ stock: 3, held_in_open_carts: 2, available: 1, sold_out: false });
      await step('carts_has_products', [cartItem(3100, 1200, 1201, 1)]);
      expect((await avail()).find((r) => r.option_id === '1201')).toMatchObject({ held_in_open_carts: 3, available: 0, sold_out: true });
      await step('shoppingcart', [ev({ shopping_cart_id: '3100', status: '0' })]);
      const rows = await avail();
      expect(rows.find((r) => r.option_id === '1201')).toMatchObject({ held_in_open_carts: 2, available: 1, sold_out: false });
      expect(rows.find((r) => r.option_id === '1202')).toMatchObject({ vendor_id: '5000', stock: 5, available: 5, sold_out: false });
      expect(rows.find((r) => r.option_id === '1301')).toMatchObject({ vendor_id: '5100', stock: 1, available: 1, sold_out: false });
    } finally {
      await consumer.stop();
    }
    const events = await readTopic(e.kafka, availabilityTopic(e.cfg), 2);
    const parsed = events.map((m) => ({ key: m.key, ...(JSON.parse(m.value) as Record<string, unknown>) }));
    expect(parsed).toEqual([
      expect.objectContaining({ key: '5000', event: 'sold_out', vendor_id: '5000', product_id: '1200', option_id: '1201', available: 0, sold_out: true }),
      expect.objectContaining({ key: '5000', event: 'back_in_stock', option_id: '1201', available: 1, sold_out: false }),
    ]);
  });

  it("a product whose availability step fails is parked with the reason; the others move and are broadcast; the consumer starts, and starts again", async () => {
    const cli = ensureBuilt();
    const e = testEnv();
    const tables = streamDestinations(catalog);
    const topics = tables.map((d) => topicFor(e.cfg, d.sources[0]));
    await e.batch.ensureSchema();
    await e.batch.withConnection(async (c) => {
      await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES ('1200', '1201', 3), ('1500', '1501', 5)`);
    });
    // Poisoned rows written straight into the stream file (decode would quarantine them now):
    // 11 x 999999999999999999 held of product 1500 overflow INT64 in every availability step of it.
    await e.warehouse.ensureSchema();
    await e.warehouse.withConnection(async (c) => {
      await c.run(`INSERT INTO store.fact_products_sold_vendor (vendor_id, product_id, updated_at) VALUES ('5000', '1200', now()), ('5500', '1500', now())`);
      await c.run(`INSERT INTO store.fact_carts_has_products (shopping_cart_id, product_id, option_id, quantity, updated_at)
                   SELECT (9000 + i)::VARCHAR, '1500', '1501', 999999999999999999, now() FROM range(11) t(i)`);
    });
    await ensureTopics(e.kafka, e.cfg, [...topics, availabilityTopic(e.cfg)]);
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse) });
    const step = async (topic: string, msgs: Message[]) => {
      await produce(e.kafka, topicFor(e.cfg, topic), msgs);
      await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 60000);
    };
    const ev = (o: Record<string, string>) => ({ key: Object.values(o)[0], value: JSON.stringify(o) });
    const parked = async () => query(e.warehouse, 'SELECT product_id, reason FROM store._availability_parked ORDER BY 1');
    const avail = async () =>
      query(e.warehouse, `SELECT vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out
                          FROM store.vendor_product_availability ORDER BY 1, 2, 3`);
    // The start's repair recomputes every product in one step (1200 and 1500): it fails, each is
    // tried alone, 1500 is parked and 1200 moves; the start goes on.
    await consumer.start();
    try {
      expect(await parked()).toEqual([{ product_id: '1500', reason: expect.stringMatching(/out of range/i) }]);
      expect(await avail()).toEqual([{ vendor_id: '5000', product_id: '1200', option_id: '1201', stock: 3, held_in_open_carts: 0, available: 3, sold_out: false }]);
      await step('shoppingcart', [ev({ shopping_cart_id: '3000', status: '1' })]);
      // One commit touching both products: the good one moves, the bad one stays parked.
      await step('carts_has_products', [cartItem(3000, 1200, 1201, 3), cartItem(3001, 1500, 1501, 1)]);
      expect(await avail()).toEqual([{ vendor_id: '5000', product_id: '1200', option_id: '1201', stock: 3, held_in_open_carts: 3, available: 0, sold_out: true }]);
      expect(await parked()).toEqual([{ product_id: '1500', reason: expect.stringMatching(/out of range/i) }]);
      expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._availability_pending')).toBe(0);
      // Broadcast while the consumer runs (not only by the publish at stop).
      const events = await readTopic(e.kafka, availabilityTopic(e.cfg), 1);
      expect(events.map((m) => ({ key: m.key, ...(JSON.parse(m.value) as Record<string, unknown>) }))).toEqual([
        expect.objectContaining({ key: '5000', event: 'sold_out', vendor_id: '5000', product_id: '1200', option_id: '1201', available: 0, sold_out: true }),
      ]);
    } finally {
      await consumer.stop();
    }
    // A restart (the CLI, as a supervisor would run it) starts, catches up and exits 0: no crash loop.
    await e.warehouse.close();
    const child = spawn(process.execPath, [cli, '--until-caught-up', '--no-start-broker'], { cwd: ROOT, env: e.childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect({ code, err: code === 0 ? '' : err }).toEqual({ code: 0, err: '' });
    expect(await queryFile(e.duckdbPath, 'SELECT product_id FROM store._availability_parked')).toEqual([{ product_id: '1500' }]);
  });

  it('availability follows a dim_products reload in the batch file (mirrored while the consumer runs)', async () => {
    const e = testEnv({ snapshotIntervalMs: 200 });
    const tables = streamDestinations(catalog);
    const topics = tables.map((d) => topicFor(e.cfg, d.sources[0]));
    await e.batch.ensureSchema();
    const loadStock = (stock: number) =>
      e.batch.withConnection(async (c) => {
        // What a batch reload does: the table replaced in one transaction.
        await c.run('BEGIN TRANSACTION');
        await c.run('DELETE FROM store.dim_products');
        await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES ('1700', '1701', ${stock}), ('1700', '1702', 9)`);
        await c.run('COMMIT');
      });
    await loadStock(2);
    await ensureTopics(e.kafka, e.cfg, [...topics, availabilityTopic(e.cfg)]);
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse) });
    const ev = (o: Record<string, string>) => ({ key: Object.values(o)[0], value: JSON.stringify(o) });
    const row = async () =>
      (await query(e.warehouse, "SELECT stock, held_in_open_carts, available, sold_out FROM store.vendor_product_availability WHERE option_id = '1701'"))[0];
    await consumer.start();
    try {
      await produce(e.kafka, topicFor(e.cfg, 'product_sold_vendor'), [ev({ vendor_id: '5700', product_id: '1700' })]);
      await produce(e.kafka, topicFor(e.cfg, 'shoppingcart'), [ev({ shopping_cart_id: '3700', status: '1' })]);
      await produce(e.kafka, topicFor(e.cfg, 'carts_has_products'), [cartItem(3700, 1700, 1701, 2)]);
      await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 60000);
      expect(await row()).toEqual({ stock: 2, held_in_open_carts: 2, available: 0, sold_out: true });
      // The batch layer reloads stock while the consumer runs: no stream event arrives meanwhile.
      await loadStock(7);
      const deadline = Date.now() + 60000;
      while ((await row()).stock !== 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await row()).toEqual({ stock: 7, held_in_open_carts: 2, available: 5, sold_out: false });
      expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.dim_products')).toBe(2);
      expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._availability_pending')).toBe(0);
    } finally {
      await consumer.stop();
    }
    const events = (await readTopic(e.kafka, availabilityTopic(e.cfg), 2)).map((m) => JSON.parse(m.value) as Record<string, unknown>);
    expect(events.map((x) => [x.event, x.option_id, x.available])).toEqual([
      ['sold_out', '1701', 0],
      ['back_in_stock', '1701', 5],
    ]);
    // The file was opened once, mirror refreshes included.
    expect(e.warehouse.opens).toBe(1);
  });

  const python = path.join(ROOT, '.venv-dbt', 'bin', 'python');
  itWhenAvailable('dbt\'s snapshot step asks the running consumer (which holds the file) for a snapshot and gets its rows', () => (fs.existsSync(python) ? null : '.venv-dbt is missing (npm run setup:dbt)'), async () => {
    // A long interval: only the request makes the consumer publish while it runs.
    const e = testEnv({ snapshotIntervalMs: 3600000 });
    const N = 700;
    await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
    await produce(e.kafka, cartsTopic(e), Array.from({ length: N }, (_, i) => cartItem(800000 + i, 1800, 1801, 1 + (i % 4))));
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables: [CARTS], sink: duckDbSink(e.warehouse) });
    await consumer.start();
    try {
      await consumer.waitCaughtUp(await endOffsets(e.kafka, [cartsTopic(e)]), 60000);
      // Asynchronous: the consumer answers from this very process.
      const child = spawn(python, [path.join(ROOT, 'scripts', 'dbt_stream_snapshot.py')], {
        env: { ...e.childEnv, STREAM_SNAPSHOT_WAIT_S: '120' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      expect(await new Promise((r) => child.on('exit', r))).toBe(0);
      expect(stderr).toContain('the consumer published');
      const expectedQty = Array.from({ length: N }, (_, i) => 1 + (i % 4)).reduce((a, b) => a + b, 0);
      expect(await queryFile(e.cfg.snapshotPath, 'SELECT COUNT(*) AS n, SUM(quantity) AS q FROM store.fact_carts_has_products')).toEqual([
        { n: N, q: expectedQty },
      ]);
    } finally {
      await consumer.stop();
    }
  });

  it('runStreamOnce replays the repository sample files (data_source/) through Kafka until caught up', async () => {
    const e = testEnv();
    // Independent reading of the three files: data rows (cells trimmed) and distinct keys.
    const rowsOf = (file: string) =>
      fs.readFileSync(path.join(ROOT, 'data_source', file), 'utf8').split(/\r?\n/).slice(1)
        .filter((l) => l.trim() !== '').map((l) => l.split('\t').map((c) => c.trim()));
    const distinct = (rows: string[][], cols: number[]) => new Set(rows.map((r) => cols.map((i) => r[i]).join('|'))).size;
    const carts = rowsOf('carts_has_products.txt');
    const sc = rowsOf('shoppingcart.txt');
    const psv = rowsOf('product_sold_vendor.txt');
    const { topicPrefix, group, duckdbPath, batchDuckdbPath, snapshotPath } = e.cfg;
    const r = await runStreamOnce({
      sourceDir: path.join(ROOT, 'data_source'),
      stream: { topicPrefix, group, duckdbPath, batchDuckdbPath, snapshotPath },
    });
    expect(r.produced).toBe(carts.length + sc.length + psv.length);
    expect(r.rejected).toBe(0);
    const accounted = Object.values(r.perTable).reduce((a, b) => a + b, 0) + Object.values(r.quarantined).reduce((a, b) => a + b, 0);
    expect(accounted).toBe(r.produced);
    expect(r.perTable).toEqual({
      'store.fact_carts_has_products': carts.length,
      'store.fact_shoppingcarts': sc.length,
      'store.fact_products_sold_vendor': psv.length,
    });
    expect(r.tableRows['store.fact_carts_has_products']).toBe(distinct(carts, [0, 1, 2]));
    expect(r.tableRows['store.fact_shoppingcarts']).toBe(distinct(sc, [0]));
    expect(r.tableRows['store.fact_products_sold_vendor']).toBe(distinct(psv, [0, 1]));
    const lastStatus = new Map(sc.map((x) => [x[0], x[1]])); // the last event of a cart wins
    const open = [...lastStatus.values()].filter((v) => v === '1').length;
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.fact_shoppingcarts WHERE status')).toBe(open);
  });
});
