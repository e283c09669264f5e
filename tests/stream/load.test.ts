/**
 * The stream layer under load, against the real local broker: an outbox message the broker
 * refuses, a 7,000-option sold-out burst, the group's lag in Kafka's own tool, a consumer
 * started before the broker, and the idempotent producer on fresh topics.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Message } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import { findDestination } from '../../jobs/lib/catalog-check';
import type { StreamDestination } from '../../jobs/lib/catalog-types';
import { startBroker, stopBroker } from '../../jobs/lib/stream/broker';
import { availabilityTopic, deadLetterTopic, sourceOf, streamDestinations, topicFor } from '../../jobs/lib/stream/config';
import { endOffsets, ensureTopics, waitForTopicMetadata } from '../../jobs/lib/stream/kafka';
import { StreamConsumer, type CommitInfo } from '../../jobs/lib/stream/consumer';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { replaySources } from '../../jobs/lib/stream/producer';
import {
  cartItem,
  count,
  describeWithBroker,
  ensureBuilt,
  produce,
  query,
  queryFile,
  readTopic,
  ROOT,
  testEnv,
  waitFor,
  type TestEnv,
} from './helpers';

jest.setTimeout(300000);

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
const VENDORS = findDestination(catalog, 'fact_products_sold_vendor') as StreamDestination;
const cartsTopic = (e: TestEnv) => topicFor(e.cfg, 'carts_has_products');

async function consume(e: TestEnv, tables: StreamDestination[], onCommit?: (c: CommitInfo) => void): Promise<StreamConsumer> {
  const topics = tables.map((d) => topicFor(e.cfg, d.sources[0]));
  const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse), onCommit });
  await consumer.start();
  try {
    await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 180000);
  } finally {
    await consumer.stop();
  }
  return consumer;
}

/** `kafka-consumer-groups --describe` rows of `group`: topic, partition, current offset, end, lag. */
function describeGroup(group: string): Promise<{ topic: string; partition: number; current: string; end: string; lag: string }[]> {
  const bootstrap = process.env.BOOTSTRAP_SERVER ?? 'localhost:9092';
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [path.join(ROOT, 'scripts/kafka/consumer-groups.sh'), '--bootstrap-server', bootstrap, '--describe', '--group', group],
      { timeout: 120000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`kafka-consumer-groups failed: ${stderr || err.message}`));
        const rows = stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f[0] === group)
          .map((f) => ({ topic: f[1], partition: Number(f[2]), current: f[3], end: f[4], lag: f[5] }));
        resolve(rows);
      },
    );
  });
}


/** Data rows of a source file (not blank, header skipped), cells trimmed: an independent reading. */
function fileRows(file: string): string[][] {
  const lines = fs.readFileSync(path.join(ROOT, 'data_source', file), 'utf8').split(/\r?\n/).slice(1);
  return lines.filter((l) => l.trim() !== '').map((l) => l.split('\t').map((c) => c.trim()));
}

describeWithBroker('stream layer under load (local Kafka broker)', () => {
  it('a dead letter the broker refuses is parked with the reason; every later message is published, in order per key', async () => {
    const e = testEnv();
    const topic = cartsTopic(e);
    // A dead-letter topic that accepts at most 20 kB per message: the big poison event's copy is refused.
    const admin = e.kafka.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: false, // kafkajs gives up early on a cold broker: waited for as the consumer does
      topics: [{ topic: deadLetterTopic(e.cfg), numPartitions: 3, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '20000' }] }],
    });
    await waitForTopicMetadata(admin, [deadLetterTopic(e.cfg)]);
    await admin.disconnect();
    await ensureTopics(e.kafka, e.cfg, [topic]);
    const big = `{"oversize": "${'x'.repeat(60000)}"`;
    const poison = (n: number) => ({ key: 'k', value: `not json #${n}` });
    const msgs: Message[] = [
      ...Array.from({ length: 20 }, (_, i) => cartItem(400000 + i, 1200, 1201, 1)),
      poison(1),
      { key: 'k', value: big },
      poison(2),
      ...Array.from({ length: 20 }, (_, i) => cartItem(400100 + i, 1200, 1201, 1)),
      poison(3),
      poison(4),
    ];
    // One send: the three first poison events land in one micro-batch and one outbox chunk.
    await produce(e.kafka, topic, msgs, msgs.length);
    const consumer = await consume(e, [CARTS]);
    expect(consumer.stats[CARTS.name]).toMatchObject({ rows: 40, quarantined: 5 });
    // Dead letters keep the original bytes: the outbox stores them base64 (outbox.ts).
    const parked = await query(
      e.warehouse,
      'SELECT topic, from_base64(msg_key)::VARCHAR AS msg_key, octet_length(from_base64(msg_value)) AS len, reason FROM store._stream_outbox_parked',
    );
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ topic: deadLetterTopic(e.cfg), msg_key: 'k', len: Buffer.byteLength(big) });
    expect(String(parked[0].reason)).toMatch(/larger than|too large|exceeds/i);
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._stream_outbox')).toBe(0);
    const dlq = await readTopic(e.kafka, deadLetterTopic(e.cfg), 4);
    expect(dlq.map((m) => m.value)).toEqual(['not json #1', 'not json #2', 'not json #3', 'not json #4']);
    // Normal traffic after it: a second consumer run publishes its dead letters too.
    await produce(e.kafka, topic, [poison(5), cartItem(400200, 1200, 1201, 1)]);
    await consume(e, [CARTS]);
    const after = await readTopic(e.kafka, deadLetterTopic(e.cfg), 5);
    expect(after.map((m) => m.value)).toEqual(['not json #1', 'not json #2', 'not json #3', 'not json #4', 'not json #5']);
  });

  it('a vendor listing 7,000 sold-out options: every sold_out broadcast published once, in bounded transactions', async () => {
    const e = testEnv({ availabilityStepRows: 2000 });
    const PRODUCTS = 7;
    const OPTIONS = 1000;
    await e.batch.ensureSchema();
    await e.batch.withConnection(async (c) => {
      await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity)
                   SELECT (9000 + p)::VARCHAR, (100000 + p * ${OPTIONS} + o)::VARCHAR, 0
                   FROM range(${PRODUCTS}) t(p), range(${OPTIONS}) u(o)`);
    });
    const topic = topicFor(e.cfg, 'product_sold_vendor');
    await ensureTopics(e.kafka, e.cfg, [topic, availabilityTopic(e.cfg)]);
    await produce(
      e.kafka,
      topic,
      Array.from({ length: PRODUCTS }, (_, p) => ({ key: '7700', value: JSON.stringify({ vendor_id: '7700', product_id: String(9000 + p) }) })),
    );
    const commits: CommitInfo[] = [];
    await consume(e, [VENDORS], (c) => commits.push(c));
    const expected = PRODUCTS * OPTIONS;
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store.vendor_product_availability WHERE sold_out')).toBe(expected);
    expect(await count(e.warehouse, 'SELECT COUNT(*) FROM store._stream_outbox')).toBe(0);
    const events = await readTopic(e.kafka, availabilityTopic(e.cfg), expected, 120000);
    expect(events).toHaveLength(expected);
    const parsed = events.map((m) => JSON.parse(m.value) as { event: string; option_id: string; vendor_id: string });
    expect(new Set(parsed.map((p) => p.option_id)).size).toBe(expected);
    expect(parsed.every((p) => p.event === 'sold_out' && p.vendor_id === '7700')).toBe(true);
    // Split over several availability transactions of at most 2,000 rows (1,000 per product).
    const steps = commits.filter((c) => c.kind === 'availability' && c.events > 0);
    expect(steps.length).toBeGreaterThanOrEqual(Math.ceil(expected / 2000));
    expect(steps.reduce((a, c) => a + c.events, 0)).toBe(expected);
    // A figure, not an assertion (timings on a shared machine mean little): the longest commit.
    // eslint-disable-next-line no-console
    console.log(`7,000-option burst: ${commits.length} commits, longest ${Math.max(...commits.map((c) => c.ms))} ms`);
  });

  it("after a catch-up Kafka's own kafka-consumer-groups shows lag 0 on every partition", async () => {
    const e = testEnv();
    const topic = cartsTopic(e);
    await ensureTopics(e.kafka, e.cfg, [topic]);
    await produce(e.kafka, topic, Array.from({ length: 3000 }, (_, i) => cartItem(500000 + i, 1200, 1201, 1)), 100);
    await consume(e, [CARTS]);
    const ends = await endOffsets(e.kafka, [topic]);
    const rows = (await describeGroup(e.cfg.group)).filter((r) => r.topic === topic);
    expect(rows.map((r) => r.partition).sort()).toEqual([...ends.keys()].map((k) => Number(k.split(':')[1])).sort());
    for (const r of rows) {
      const end = ends.get(`${topic}:${r.partition}`)!.toString();
      expect(r).toMatchObject({ current: end, end, lag: '0' });
    }
  });

  it("a SIGTERM mid-catch-up: kafka-consumer-groups agrees with _stream_offsets on every partition, commits finished while stopping included", async () => {
    const cli = ensureBuilt();
    const e = testEnv({ commitMaxEvents: 100, maxBatchBytes: 4000 });
    const topic = cartsTopic(e);
    const N = 3000;
    await ensureTopics(e.kafka, e.cfg, [topic]);
    await produce(e.kafka, topic, Array.from({ length: N }, (_, i) => cartItem(700000 + i, 1200, 1201, 1)), 50);
    // The consumer holds before its first commit with more fetched slices queued behind it; the
    // SIGTERM arrives there, so every commit of the run finishes while it stops.
    const hold = path.join(e.dir, 'hold');
    fs.writeFileSync(hold, '');
    const child = spawn(process.execPath, [cli, '--table', 'fact_carts_has_products', '--no-start-broker'], {
      cwd: ROOT,
      env: { ...e.childEnv, ETL_TEST_STREAM_HOLD_FILE: hold, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    await waitFor(() => fs.existsSync(`${hold}.held`), 120000, 'the consumer to hold before its first commit');
    child.kill('SIGTERM');
    await waitFor(() => err.includes('stream: stopping'), 30000, 'the consumer to log that it stops');
    fs.rmSync(hold);
    expect(await exited).toBe(0);
    const stored = await query(e.warehouse, `SELECT partition, next_offset FROM store._stream_offsets WHERE consumer_group = '${e.cfg.group}'`);
    const storedBy = new Map(stored.map((r) => [Number(r.partition), String(r.next_offset)]));
    const total = stored.reduce((a, r) => a + Number(r.next_offset), 0);
    // Mid-catch-up: something was committed, not everything (the hold and back-pressure make it so).
    expect(total).toBeGreaterThan(100);
    expect(total).toBeLessThan(N);
    const rows = (await describeGroup(e.cfg.group)).filter((r) => r.topic === topic);
    expect(rows).toHaveLength(e.cfg.partitions);
    for (const r of rows) expect({ partition: r.partition, current: r.current }).toEqual({ partition: r.partition, current: storedBy.get(r.partition) ?? '-' });
  });

  it('a consumer started before the broker waits for it (with a log line) and then consumes', async () => {
    const cli = ensureBuilt();
    // The child holds the stream file: its rows are read from the snapshot it publishes.
    const e = testEnv({ snapshotIntervalMs: 300 });
    await stopBroker();
    const child = spawn(process.execPath, [cli, '--table', 'fact_carts_has_products', '--no-start-broker'], {
      cwd: ROOT,
      env: e.childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    let code: number | null = null;
    void exited.then((c) => (code = c));
    try {
      const deadline = Date.now() + 60000;
      while (!err.includes('waiting for the Kafka broker') && Date.now() < deadline && code === null) {
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(err).toContain('waiting for the Kafka broker');
      await startBroker();
      const N = 500;
      await ensureTopics(e.kafka, e.cfg, [cartsTopic(e)]);
      await produce(e.kafka, cartsTopic(e), Array.from({ length: N }, (_, i) => cartItem(600000 + i, 1200, 1201, 1)));
      const until = Date.now() + 180000;
      let rows = 0;
      while (code === null && Date.now() < until) {
        rows = Number((await queryFile(e.cfg.snapshotPath, 'SELECT COUNT(*) AS n FROM store.fact_carts_has_products').catch(() => null))?.[0]?.n ?? 0);
        if (rows === N) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(code).toBeNull(); // still running: it did not give up while the broker was down
      expect(rows).toBe(N);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toContain(`store.fact_carts_has_products: 500 rows`);
  });

  it('the producer on fresh topics sends N events and the topics hold exactly N', async () => {
    const e = testEnv();
    const sources = streamDestinations(catalog).map((d) => sourceOf(catalog, d));
    const r = await replaySources({ cfg: e.cfg, sourceDir: path.join(ROOT, 'data_source'), sources, rate: null, kafka: e.kafka, progress: false });
    // Independent count: every non-blank data row of the three files is a valid event.
    const expected = sources.map((s) => fileRows(s.file).length);
    expect(sources.map((s) => r.perSource[s.name].sent)).toEqual(expected);
    expect(r.rejected).toBe(0);
    const ends = await endOffsets(e.kafka, sources.map((s) => topicFor(e.cfg, s.name)));
    for (const [i, s] of sources.entries()) {
      const held = [...ends].filter(([k]) => k.startsWith(`${topicFor(e.cfg, s.name)}:`)).reduce((a, [, v]) => a + Number(v), 0);
      expect(held).toBe(expected[i]);
    }
  });
});
