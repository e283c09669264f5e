#!/usr/bin/env node
/**
 * Stream benchmark on the local broker, one run, the real workload: all three stream topics
 * (cart items, cart status, vendor listings) and vendor availability on, over a dim_products of
 * `--products` products with 1-4 options each and stock 0-50.
 *  1. throughput: N events produced, then consumed by StreamConsumer into a fresh DuckDB file;
 *     events/s from the group join to the last commit plus a CHECKPOINT of the WAL the commits
 *     left (work owed; never over a near-zero interval). Kafka's
 *     own kafka-consumer-perf-test then reads the same three topics: the ceiling, and the ratio.
 *     The DuckDB sink's floor (stream-sink-floor.ts: the same events as JSON lines into keyless
 *     tables, no checks, the same commit size) bounds what any consumer into a DuckDB file can reach.
 *     The kafkajs client's floor (stream-client-floor.ts: the same topics read with the consumer's
 *     fetch settings, values decoded, nothing else) bounds what any consumer on kafkajs can reach.
 *  2. latency, at each rate of `--rate`: events produced at a fixed rate over the three topics
 *     while the consumer runs; produce-to-queryable = when the event's commit (rows,
 *     availability, outbox) finished minus the event's producer timestamp; p50/p99/max, and
 *     where the time goes (scripts/lib/latency-breakdown.ts).
 * The machine's load average is printed at the start and the end (and around each latency run).
 *     The first `--warmup` seconds of each run are summarized apart (a fresh consumer's first
 *     commits pay DuckDB's and V8's first-time costs), then `--seconds` measured.
 * Usage: npm run bench:stream -- [--events N] [--rate R[,R...]] [--seconds S] [--warmup S] [--listed-share P] [--products P] [--cpu-profile FILE]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import { catalog } from '../jobs/catalog';
import { main, parseCommandLine } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { ensureBroker } from '../jobs/lib/stream/broker';
import { availabilityTopic, CONSUMER_NODE_FLAGS, deadLetterTopic, loadStreamConfig, streamDestinations, topicFor, type StreamConfig } from '../jobs/lib/stream/config';
import { createKafka, deleteTopics, endOffsets, ensureTopics, idempotentProducer } from '../jobs/lib/stream/kafka';
import { StreamConsumer, type CommitInfo } from '../jobs/lib/stream/consumer';
import { duckDbSink } from '../jobs/lib/stream/sink-duckdb';
import { DuckDbWarehouse, streamDuckDbWarehouse } from '../jobs/lib/warehouse/duckdb/warehouse';
import { sinkFloor } from './stream-sink-floor';
import { formatBreakdown, LatencyBreakdown } from './lib/latency-breakdown';
import { summarize } from './lib/latency';
import { startProfile } from './lib/cpu-profile';
import { perfTest } from './lib/kafka-perf-test';
import { clientFloor } from './stream-client-floor';
import { produceWorkload, seedProducts, workload } from './lib/stream-workload';

const HELP = `Usage: npm run bench:stream -- [--events N] [--rate R[,R...]] [--seconds S] [--warmup S] [--listed-share P]
                              [--products P] [--cpu-profile FILE] [--help]

  --events N     events for the throughput run, over the three topics (default: 200000; 0: no
                 throughput run, latency only)
  --rate R[,R...]
                 events/s of the latency runs, one run per rate (default: 1000,10000)
  --seconds S    measured duration of each latency run (default: 20)
  --warmup S     seconds produced at the same rate before the measured ones, summarized apart
                 (default: 2; 0: none)
  --listed-share P
                 percent of the cart items that hold a product a vendor lists, so each of their
                 commits recomputes availability (default: 0, the workload of the earlier figures)
  --products P   products in dim_products (1-4 options each, stock 0-50; default: 5000)
  --cpu-profile FILE
                 also write a cpu profile (.cpuprofile, for Chrome DevTools) of this process
                 from the consumer's start to its catch-up in the throughput run

Writes the figures to stdout and to $ETL_STATE_DIR/bench/stream-<time>.json. Uses topics and
scratch DuckDB files of its own, deleted at the end; BOOTSTRAP_SERVER as usual.`;

/**
 * Below this, an events/s figure would be noise (or a division by almost nothing). The perf tool
 * and the client floor read 1M events in 0.9-1.1 s on this machine, and their times come in
 * whole milliseconds: half a second still measures them to 0.2%.
 */
const MIN_INTERVAL_MS = 500;
/** Runs of Kafka's own perf tool; the median one is the ceiling. */
const PERF_RUNS = 3;

const load = () => os.loadavg().map((x) => x.toFixed(1)).join('/');
const rateOf = (events: number, ms: number): number | null => (ms >= MIN_INTERVAL_MS ? Math.round(events / (ms / 1000)) : null);
const fmt = (x: number | null, why: string) => (x === null ? `n/a (${why})` : `${x.toLocaleString('en-US')} events/s`);

const files = (benchDir: string, name: string, stamp: string) => ({
  duckdbPath: path.join(benchDir, `${name}-${stamp}.duckdb`),
  batchDuckdbPath: path.join(benchDir, `${name}-batch-${stamp}.duckdb`),
  snapshotPath: path.join(benchDir, `${name}-snapshot-${stamp}.duckdb`),
});

const fileSize = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);

const removeFiles = (c: StreamConfig) => {
  for (const f of [c.duckdbPath, c.batchDuckdbPath, c.snapshotPath]) {
    fs.rmSync(f, { force: true });
    fs.rmSync(`${f}.wal`, { force: true });
  }
};

const transactions = (cs: CommitInfo[]) => cs.filter((c) => c.kind === 'batch' || c.kind === 'availability');
/** The longest transaction (a group commit or an availability step), without spreading. */
const longest = (cs: CommitInfo[]) => transactions(cs).reduce((m, c) => Math.max(m, c.ms), 0);

interface Shared {
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly products: number;
  readonly listedShare: number;
  readonly benchDir: string;
  readonly stamp: string;
  /**
   * The runs' topics, deleted once the producer is gone: a kafkajs producer whose topic was
   * deleted under it retries that topic's metadata and hangs the next send.
   */
  readonly scratchTopics: string[];
}

/**
 * Latency at `rate` events/s for `seconds`: a consumer on fresh topics and files; once it has
 * joined, the events are produced at that rate over the three topics. `offset`: where in the
 * deterministic workload the events start.
 */
async function latencyRun(sh: Shared, rate: number, seconds: number, warmup: number, offset: number) {
  const lcfg = loadStreamConfig(undefined, {
    topicPrefix: `benchlat${rate}x${Date.now().toString(36)}`,
    group: `benchlat-${rate}-${sh.stamp}`,
    ...files(sh.benchDir, `stream-latency-${rate}`, sh.stamp),
  });
  const sources = ['carts_has_products', 'shoppingcart', 'product_sold_vendor'];
  const ltopics = sources.map((s) => topicFor(lcfg, s));
  await ensureTopics(sh.kafka, lcfg, [...ltopics, deadLetterTopic(lcfg), availabilityTopic(lcfg)]);
  const lwarehouse = streamDuckDbWarehouse(lcfg.duckdbPath, catalog, lcfg.duckdbThreads);
  await seedProducts(new DuckDbWarehouse({ path: lcfg.batchDuckdbPath, lockRetries: 10, catalog }), sh.products);
  // The measured window's commits (after the warm-up).
  const lcommits: CommitInfo[] = [];
  let measureFrom = Infinity;
  const breakdown = new LatencyBreakdown();
  const lconsumer = new StreamConsumer({ catalog,
    cfg: lcfg,
    tables: streamDestinations(catalog),
    sink: duckDbSink(lwarehouse),
    kafka: sh.kafka,
    onBatch: (b) => breakdown.onBatch(b),
    onCommit: (c) => {
      if (Date.now() - c.ms >= measureFrom) lcommits.push(c);
      breakdown.onCommit(c);
    },
  });
  await lconsumer.start();
  while (lconsumer.joinedAt === null) await new Promise((r) => setTimeout(r, 100)); // the clock starts after the join
  const L = Math.round(rate * seconds);
  const W = Math.round(rate * warmup);
  const loadStart = load();
  // CPU of this process (consumer, DuckDB and the producer) per event: steadier than times on a busy machine.
  const cpu0 = process.cpuUsage();
  process.stderr.write(`latency run: ${W} + ${L} events (warm-up + measured) at ${rate} events/s over the three topics ...\n`);
  measureFrom = Date.now() + warmup * 1000;
  breakdown.startMeasuringAt(measureFrom);
  const sentSeconds = await produceWorkload(sh.producer, lcfg, workload(W + L, sh.products, offset, sh.listedShare), rate);
  await lconsumer.waitCaughtUp(await endOffsets(sh.kafka, ltopics), 600000);
  const cpu = process.cpuUsage(cpu0);
  const loadEnd = load();
  await lconsumer.stop();
  await lwarehouse.close();
  removeFiles(lcfg);
  sh.scratchTopics.push(...ltopics, deadLetterTopic(lcfg), availabilityTopic(lcfg));
  const report = breakdown.report();
  const total = report.perEvent.total;
  return {
    rate,
    events: L,
    loadAverageStart: loadStart,
    loadAverageEnd: loadEnd,
    warmupEvents: W,
    listedShare: sh.listedShare,
    achievedRate: rateOf(W + L, sentSeconds * 1000),
    measured: total.count,
    p50ms: total.p50,
    p99ms: total.p99,
    maxMs: total.max,
    longestCommitMs: longest(lcommits),
    cpuUsPerEvent: Math.round((cpu.user + cpu.system) / (W + L)),
    breakdown: report,
  };
}

async function run(argv = process.argv.slice(2)): Promise<number> {
  const values = parseCommandLine(
    argv,
    {
      events: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' },
      'listed-share': { type: 'string' }, products: { type: 'string' }, 'cpu-profile': { type: 'string' },
    },
    HELP,
  );
  if (values === 'help') return 0;
  const loadStart = load();
  const N = Number(values.events ?? 200000);
  const rates = String(values.rate ?? '1000,10000').split(',').map(Number);
  if (rates.some((r) => !(r > 0))) throw new Error(`--rate: positive events/s, comma-separated (got ${values.rate})`);
  const seconds = Number(values.seconds ?? 20);
  const warmup = Number(values.warmup ?? 2);
  const listedShare = Number(values['listed-share'] ?? 0);
  if (!(warmup >= 0)) throw new Error(`--warmup: seconds, 0 or more (got ${values.warmup})`);
  if (!(listedShare >= 0 && listedShare <= 100)) throw new Error(`--listed-share: a percent, 0-100 (got ${values['listed-share']})`);
  const products = Number(values.products ?? 5000);
  // The consumer runs in this process: its figures are the consumer's only with its Node flags.
  const consumerFlags = { given: process.execArgv, missing: CONSUMER_NODE_FLAGS.filter((f) => !process.execArgv.includes(f)) };
  const etl = loadConfig();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const benchDir = path.join(etl.stateDir, 'bench');
  fs.mkdirSync(benchDir, { recursive: true });
  const base = loadStreamConfig();
  await ensureBroker(base.brokers.join(','));
  const kafka = createKafka(base, 'bench-stream');
  const producer = idempotentProducer(kafka);
  await producer.connect();
  const sh: Shared = { kafka, producer, products, listedShare, benchDir, stamp, scratchTopics: [] };
  const lines: string[] = [];
  const throughput = N > 0 ? await throughputRun(sh, N, values['cpu-profile'] ? String(values['cpu-profile']) : null, lines) : null;
  const latency = [];
  let offset = N; // each run its own part of the deterministic workload
  for (const rate of rates) {
    latency.push(await latencyRun(sh, rate, seconds, warmup, offset));
    offset += Math.round(rate * (warmup + seconds));
  }
  await producer.disconnect();
  await deleteTopics(kafka, sh.scratchTopics);
  const loadEnd = load();
  const result = {
    at: new Date().toISOString(),
    machine: { cores: os.cpus().length, loadAverageStart: loadStart, loadAverageEnd: loadEnd },
    consumerNodeFlags: consumerFlags,
    throughput,
    latency,
  };
  const out = path.join(benchDir, `stream-${stamp}.json`);
  fs.writeFileSync(out, JSON.stringify(result, null, 2));
  const short = `under ${MIN_INTERVAL_MS} ms: use more --events`;
  for (const l of latency) {
    lines.push(
      `  produce-to-queryable at ${l.rate} events/s (achieved ${fmt(l.achievedRate, short)}; load ${l.loadAverageStart} -> ${l.loadAverageEnd}): ` +
        `p50 ${l.p50ms} ms, p99 ${l.p99ms} ms, max ${l.maxMs} ms over ${l.measured} events; longest commit ${l.longestCommitMs} ms; CPU ${l.cpuUsPerEvent} us per event (this process)`,
      `    warm-up before them: ${l.breakdown.warmup ? `p50 ${l.breakdown.warmup.p50} ms, p99 ${l.breakdown.warmup.p99} ms, max ${l.breakdown.warmup.max} ms over ${l.breakdown.warmup.count} events` : 'none'}` +
        `; cart items holding a listed product: ${l.listedShare}%`,
      formatBreakdown(l.breakdown),
    );
  }
  process.stdout.write(
    [
      `stream benchmark (${result.machine.cores} cores, load average ${loadStart} at start, ${loadEnd} at end; local broker, ${base.partitions} partitions)`,
      consumerFlags.missing.length === 0
        ? `  node flags: ${consumerFlags.given.join(' ')} (the consumer's)`
        : `  WARNING: node's command line lacks the consumer's flags ${consumerFlags.missing.join(' ')}, so the figures may not be the consumer's (npm run bench:stream passes them)`,
      ...lines,
      `  written to ${out}`,
    ].join('\n') + '\n',
  );
  return 0;
}

/** The throughput run (see the module comment); its lines are appended to `lines`. */
async function throughputRun(sh: Shared, N: number, cpuProfile: string | null, lines: string[]) {
  const { kafka, producer, products, benchDir, stamp } = sh;
  const tables = streamDestinations(catalog);
  const sources = ['carts_has_products', 'shoppingcart', 'product_sold_vendor'];
  const log = (s: string) => process.stderr.write(s + '\n');
  // Its own stream file (held by the consumer), batch file (dim_products, mirrored) and snapshot.
  const cfg = loadStreamConfig(undefined, { topicPrefix: `bench${Date.now().toString(36)}`, group: `bench-${stamp}`, ...files(benchDir, 'stream', stamp) });
  const topics = sources.map((s) => topicFor(cfg, s));
  await ensureTopics(kafka, cfg, [...topics, deadLetterTopic(cfg), availabilityTopic(cfg)]);
  const warehouse = streamDuckDbWarehouse(cfg.duckdbPath, catalog, cfg.duckdbThreads);
  const options = await seedProducts(new DuckDbWarehouse({ path: cfg.batchDuckdbPath, lockRetries: 10, catalog }), products);
  log(`producing ${N} events to ${topics.join(', ')} ...`);
  // Not kept: a million messages held in this process while the consumer runs made its garbage
  // collector trace them (the sink floor makes them again, the workload is deterministic).
  const produceSeconds = await produceWorkload(producer, cfg, workload(N, products), null);
  let consumed = 0;
  const commits: CommitInfo[] = [];
  const consumer = new StreamConsumer({ catalog,
    cfg, tables, sink: duckDbSink(warehouse), kafka, onBatch: (b) => void (consumed += b.rows + b.quarantined), onCommit: (c) => commits.push(c),
  });
  log('consuming into DuckDB (availability on) ...');
  const c0 = Date.now();
  // CPU of this process (the consumer's JavaScript and DuckDB's threads) per event: the work,
  // steadier than the rate when the machine is shared.
  const cpu0 = process.cpuUsage();
  const profiler = cpuProfile ? await startProfile() : null;
  await consumer.start();
  await consumer.waitCaughtUp(await endOffsets(kafka, topics), 1800000);
  const caughtUpAt = Date.now();
  if (profiler && cpuProfile) {
    fs.writeFileSync(cpuProfile, JSON.stringify(await profiler.stop()));
    log(`cpu profile of the consumer's window written to ${cpuProfile}`);
  }
  // What the commits left in the WAL is work still owed (DuckDB checkpoints it once it passes its
  // threshold): it is written now and counted, so a larger threshold cannot flatter the rate.
  const walBytes = fileSize(`${cfg.duckdbPath}.wal`);
  const k0 = Date.now();
  await warehouse.withConnection((c) => c.run('CHECKPOINT'));
  const checkpointMs = Date.now() - k0;
  const cpu = process.cpuUsage(cpu0);
  await consumer.stop();
  const joined = consumer.joinedAt ?? c0;
  const consumerRate = rateOf(consumed, caughtUpAt - joined + checkpointMs);
  const counts = await warehouse.withConnection(async (c) => {
    const n = async (t: string) => Number((await c.runAndReadAll(`SELECT COUNT(*) AS n FROM store.${t}`)).getRowObjectsJS()[0].n);
    return { carts: await n('fact_carts_has_products'), status: await n('fact_shoppingcarts'), vendors: await n('fact_products_sold_vendor'), availability: await n('vendor_product_availability') };
  });
  await warehouse.close();
  removeFiles(cfg);
  // The perf tool reads 1M events in about a second, so one run swings with the machine (2x
  // seen here): it runs PERF_RUNS times and the median run (events over summed fetch time) is the ceiling.
  log(`kafka-consumer-perf-test on the same three topics, ${PERF_RUNS} runs ...`);
  const ends = await endOffsets(kafka, topics);
  const perfRuns: { perTopic: Record<string, Record<string, string>>; eventsPerSec: number | null }[] = [];
  for (let run = 0; run < PERF_RUNS; run++) {
    const perTopic: Record<string, Record<string, string>> = {};
    let msgs = 0;
    let fetchMs = 0;
    for (const t of topics) {
      const n = [...ends].filter(([k]) => k.startsWith(`${t}:`)).reduce((a, [, v]) => a + Number(v), 0);
      if (n === 0) continue;
      perTopic[t] = await perfTest(cfg, t, n, run);
      msgs += Number(perTopic[t]['data.consumed.in.nMsg']);
      fetchMs += Number(perTopic[t]['fetch.time.ms']);
    }
    perfRuns.push({ perTopic, eventsPerSec: rateOf(msgs, fetchMs) });
  }
  const rates = perfRuns.map((r) => r.eventsPerSec).filter((x): x is number => x !== null);
  const ceiling = rates.length === PERF_RUNS ? summarize(rates).p50 : null;

  log('kafkajs client floor: the same topics read again, values decoded, nothing else ...');
  const client = await clientFloor(kafka, cfg, topics, consumed);
  const clientRate = rateOf(consumed, client.seconds * 1000);
  log('DuckDB sink floor: the same events as JSON lines into keyless tables ...');
  const floor = await sinkFloor(path.join(benchDir, `sink-floor-${stamp}.duckdb`),
    workload(N, products).map((e) => ({ source: e.topic, value: String(e.m.value) })), cfg.commitMaxEvents);
  const floorRate = rateOf(N, floor.seconds * 1000);
  sh.scratchTopics.push(...topics, deadLetterTopic(cfg), availabilityTopic(cfg));
  const t = {
    events: N,
    consumed,
    rows: counts,
    dimProducts: { products, options },
    produceEventsPerSec: rateOf(N, produceSeconds * 1000),
    consumerEventsPerSec: consumerRate,
    consumerSecondsFromJoin: (caughtUpAt - joined) / 1000,
    walBytesAtCatchUp: walBytes,
    finalCheckpointMs: checkpointMs,
    consumerCpuUsPerEvent: Number(((cpu.user + cpu.system) / Math.max(consumed, 1)).toFixed(2)),
    commits: transactions(commits).length,
    streamFileOpens: warehouse.opens,
    longestCommitMs: longest(commits),
    kafkaConsumerPerfTest: perfRuns,
    ceilingEventsPerSec: ceiling,
    ratio: consumerRate !== null && ceiling !== null ? Number((consumerRate / ceiling).toFixed(3)) : null,
    clientFloor: { ...client, eventsPerSec: clientRate },
    clientFloorRatio: clientRate !== null && ceiling !== null ? Number((clientRate / ceiling).toFixed(3)) : null,
    sinkFloor: { ...floor, commitEvents: cfg.commitMaxEvents, eventsPerSec: floorRate },
    sinkFloorRatio: floorRate !== null && ceiling !== null ? Number((floorRate / ceiling).toFixed(3)) : null,
  };
  const short = `under ${MIN_INTERVAL_MS} ms: use more --events`;
  lines.push(
    `  workload                        3 topics (70% cart items, 25% cart status, 5% vendor listings), availability on,`,
    `                                  dim_products ${products} products / ${options} options`,
    `  events                          ${t.events} produced, ${t.consumed} consumed (rows: ${counts.carts} cart items, ${counts.status} carts, ${counts.vendors} listings, ${counts.availability} availability)`,
    `  producer (idempotent, acks=all) ${fmt(t.produceEventsPerSec, short)}`,
    `  consumer -> DuckDB              ${fmt(t.consumerEventsPerSec, short)} (${t.commits} commits, longest ${t.longestCommitMs} ms, ${t.consumerSecondsFromJoin.toFixed(1)} s from group join + ${t.finalCheckpointMs} ms checkpointing the ${(walBytes / 1e6).toFixed(0)} MB WAL left; CPU ${t.consumerCpuUsPerEvent} us per event; stream file opened ${t.streamFileOpens}x)`,
    `  kafka-consumer-perf-test        ${fmt(t.ceilingEventsPerSec, short)} (median of ${PERF_RUNS} runs: ${rates.map((r) => r.toLocaleString('en-US')).join(', ')}; events over fetch time, three topics)`,
    `  ratio consumer / ceiling        ${t.ratio ?? 'n/a'}`,
    `  kafkajs client floor            ${fmt(clientRate, short)} (the consumer's fetch settings, values decoded to text, nothing else; CPU ${client.cpuUsPerEvent} us per event); client / ceiling ${t.clientFloorRatio ?? 'n/a'}`,
    `  DuckDB sink floor               ${fmt(floorRate, short)} (JSON lines -> keyless tables, no checks, ${floor.commits} commits of ${cfg.commitMaxEvents}); floor / ceiling ${t.sinkFloorRatio ?? 'n/a'}`,
  );
  return t;
}

main(() => run().then((code) => {
  setTimeout(() => process.exit(code), 50).unref();
  return code;
}));
