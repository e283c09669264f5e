#!/usr/bin/env node
/**
 * Stream benchmark on the local broker, one run:
 *  1. throughput: N cart events (distinct keys) produced, then consumed by StreamConsumer into a
 *     fresh DuckDB file -> sustained events/s; Kafka's own kafka-consumer-perf-test reads the same
 *     topic -> the ceiling; and the ratio.
 *  2. latency: events produced at a fixed rate while the consumer runs; produce-to-queryable =
 *     the commit time of the event's micro-batch minus the event's producer timestamp; p50/p99.
 * Usage: npm run bench:stream -- [--events N] [--rate R] [--seconds S]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Message } from 'kafkajs';
import { catalog } from '../jobs/catalog';
import type { StreamDestination } from '../jobs/lib/catalog-types';
import { findDestination } from '../jobs/lib/catalog-check';
import { main, parseCommandLine } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { ensureBroker, repoRoot } from '../jobs/lib/stream/broker';
import { createKafka, endOffsets, ensureTopics, loadStreamConfig, topicFor, type StreamConfig } from '../jobs/lib/stream/config';
import { StreamConsumer, type BatchInfo } from '../jobs/lib/stream/consumer';
import { idempotentProducer } from '../jobs/lib/stream/outbox';
import { sendPaced } from '../jobs/lib/stream/producer';
import { DuckDbWarehouse } from '../jobs/lib/warehouse/duckdb';

const HELP = `Usage: npm run bench:stream -- [--events N] [--rate R] [--seconds S] [--help]

  --events N    events for the throughput run (default: 200000)
  --rate R      events/s for the latency run (default: 1000)
  --seconds S   duration of the latency run (default: 20)

Writes the figures to stdout and to $ETL_STATE_DIR/bench/stream-<time>.json. Uses its own topic
prefix and a scratch DuckDB file; BOOTSTRAP_SERVER as usual.`;

const cartEvent = (i: number): Message => ({
  key: String(1000000 + i),
  value: JSON.stringify({
    shopping_cart_id: String(1000000 + i),
    product_id: String(1200 + (i % 50)),
    option_id: String(1201 + (i % 4)),
    quantity: String(1 + (i % 3)),
  }),
});

const pct = (xs: number[], p: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

function perfTest(cfg: StreamConfig, topic: string, messages: number): Promise<Record<string, string>> {
  const script = path.join(repoRoot(), 'scripts/kafka/consumer-perf-test.sh');
  const args = [script, '--bootstrap-server', cfg.brokers.join(','), '--topic', topic, '--messages', String(messages),
    '--group', `perf-${topic}`, '--timeout', '30000'];
  return new Promise((resolve, reject) => {
    execFile('bash', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`kafka-consumer-perf-test failed: ${stderr || err.message}`));
      const lines = stdout.trim().split('\n').filter((l) => l.includes(','));
      const header = lines[0].split(',').map((s) => s.trim());
      const values = lines[lines.length - 1].split(',').map((s) => s.trim());
      resolve(Object.fromEntries(header.map((h, i) => [h, values[i]])));
    });
  });
}

async function run(argv = process.argv.slice(2)): Promise<number> {
  const values = parseCommandLine(argv, { events: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' } }, HELP);
  if (values === 'help') return 0;
  const load0 = os.loadavg();
  const N = Number(values.events ?? 200000);
  const rate = Number(values.rate ?? 1000);
  const seconds = Number(values.seconds ?? 20);
  const etl = loadConfig();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const benchDir = path.join(etl.stateDir, 'bench');
  fs.mkdirSync(benchDir, { recursive: true });
  const base = loadStreamConfig();
  await ensureBroker(base.brokers.join(','));
  const carts = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;
  const log = (s: string) => process.stderr.write(s + '\n');

  // 1. Throughput
  const cfg = loadStreamConfig(process.env, { topicPrefix: `bench${Date.now().toString(36)}`, group: `bench-${stamp}` });
  const kafka = createKafka(cfg, 'bench-stream');
  const topic = topicFor(cfg, 'carts_has_products');
  await ensureTopics(kafka, cfg, [topic]);
  const producer = idempotentProducer(kafka);
  await producer.connect();
  log(`producing ${N} events to ${topic} ...`);
  const p0 = Date.now();
  const msgs = Array.from({ length: N }, (_, i) => cartEvent(i));
  await sendPaced(producer, topic, msgs, null, { start: p0, sent: 0 });
  const produceSeconds = (Date.now() - p0) / 1000;
  const dbPath = path.join(benchDir, `stream-${stamp}.duckdb`);
  const warehouse = new DuckDbWarehouse({ path: dbPath, lockRetries: 10, catalog });
  const batches: BatchInfo[] = [];
  const consumer = new StreamConsumer({ cfg, tables: [carts], warehouse, kafka, onBatch: (b) => batches.push(b) });
  log('consuming into DuckDB ...');
  const c0 = Date.now();
  await consumer.start();
  await consumer.waitCaughtUp(await endOffsets(kafka, [topic]), 1800000);
  const consumeSeconds = (Date.now() - c0) / 1000;
  await consumer.stop();
  const first = batches[0];
  const lastB = batches[batches.length - 1];
  const sustainedEvents = N - first.rows;
  const sustainedSeconds = (lastB.committedAt - first.committedAt) / 1000;
  const sustained = sustainedEvents / sustainedSeconds;
  const rows = await warehouse.withConnection(async (c) =>
    Number((await c.runAndReadAll('SELECT COUNT(*) AS n FROM store.fact_carts_has_products')).getRowObjectsJS()[0].n),
  );
  log('kafka-consumer-perf-test on the same topic ...');
  const perf = await perfTest(cfg, topic, N);
  const ceiling = Number(perf['fetch.nMsg.sec']);

  // 2. Latency at a fixed rate
  const lcfg = loadStreamConfig(process.env, { topicPrefix: `benchlat${Date.now().toString(36)}`, group: `benchlat-${stamp}` });
  const ltopic = topicFor(lcfg, 'carts_has_products');
  await ensureTopics(kafka, lcfg, [ltopic]);
  const latencies: number[] = [];
  const lwarehouse = new DuckDbWarehouse({ path: path.join(benchDir, `stream-latency-${stamp}.duckdb`), lockRetries: 10, catalog });
  const lconsumer = new StreamConsumer({
    cfg: lcfg,
    tables: [carts],
    warehouse: lwarehouse,
    kafka,
    onBatch: (b) => {
      for (const t of b.eventTimestamps) latencies.push(b.committedAt - t);
    },
  });
  await lconsumer.start();
  // Let the consumer join the group before the clock starts.
  await new Promise((r) => setTimeout(r, 3000));
  const L = Math.round(rate * seconds);
  log(`latency run: ${L} events at ${rate} events/s ...`);
  const l0 = Date.now();
  await sendPaced(producer, ltopic, Array.from({ length: L }, (_, i) => cartEvent(i)), rate, { start: l0, sent: 0 });
  const achievedRate = L / ((Date.now() - l0) / 1000);
  await lconsumer.waitCaughtUp(await endOffsets(kafka, [ltopic]), 600000);
  await lconsumer.stop();
  await producer.disconnect();

  const result = {
    at: new Date().toISOString(),
    machine: `${os.cpus().length} cores, load average at start ${load0.map((x) => x.toFixed(1)).join('/')}, at end ${os.loadavg().map((x) => x.toFixed(1)).join('/')}`,
    throughput: {
      events: N,
      rowsInDuckDb: rows,
      produceEventsPerSec: Math.round(N / produceSeconds),
      consumerSustainedEventsPerSec: Math.round(sustained),
      consumerWallSecondsInclJoin: consumeSeconds,
      consumerBatches: batches.length,
      kafkaConsumerPerfTest: perf,
      ceilingEventsPerSec: Math.round(ceiling),
      ratio: Number((sustained / ceiling).toFixed(3)),
    },
    latency: {
      rate,
      achievedRate: Math.round(achievedRate),
      events: latencies.length,
      p50ms: pct(latencies, 50),
      p99ms: pct(latencies, 99),
      maxMs: Math.max(...latencies),
    },
  };
  const out = path.join(benchDir, `stream-${stamp}.json`);
  fs.writeFileSync(out, JSON.stringify(result, null, 2));
  const t = result.throughput;
  process.stdout.write(
    [
      `stream benchmark (${result.machine}, local KRaft broker, 3 partitions)`,
      `  events                          ${t.events} (rows in DuckDB: ${t.rowsInDuckDb})`,
      `  producer (kafkajs, acks=all)    ${t.produceEventsPerSec} events/s`,
      `  consumer -> DuckDB, sustained   ${t.consumerSustainedEventsPerSec} events/s (${t.consumerBatches} micro-batches, ${t.consumerWallSecondsInclJoin.toFixed(1)} s incl. group join)`,
      `  kafka-consumer-perf-test        ${t.ceilingEventsPerSec} events/s (fetch.nMsg.sec; nMsg.sec incl. join ${Math.round(Number(perf['nMsg.sec']))})`,
      `  ratio consumer / ceiling        ${t.ratio}`,
      `  produce-to-queryable latency at ${rate} events/s (achieved ${result.latency.achievedRate}): ` +
        `p50 ${result.latency.p50ms} ms, p99 ${result.latency.p99ms} ms, max ${result.latency.maxMs} ms over ${result.latency.events} events`,
      `  written to ${out}`,
    ].join('\n') + '\n',
  );
  fs.rmSync(dbPath, { force: true });
  return 0;
}

main(() => run().then((code) => {
  setTimeout(() => process.exit(code), 50).unref();
  return code;
}));
