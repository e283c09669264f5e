#!/usr/bin/env node
/**
 * Throwaway measurement (not part of the product): the ceiling of kafkajs itself on this machine.
 * Produces N events over the three stream topics (same workload as bench:stream), then reads them
 * with kafkajs eachBatch (a) doing nothing, (b) JSON.parse only, (c) decodeEvent (parse + ajv),
 * each with a fresh group, and kafka-consumer-perf-test on the same topics, in the same run.
 * Usage: node dist/scripts/bench-kafkajs-ceiling.js [--events N]
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../jobs/lib/stream/broker';
import { createKafka, endOffsets, ensureTopics, loadStreamConfig, sourceOf, streamDestinations, topicFor, type StreamConfig } from '../jobs/lib/stream/config';
import { decodeEvent } from '../jobs/lib/stream/events';
import { idempotentProducer } from '../jobs/lib/stream/outbox';

const N = Number(process.argv[process.argv.indexOf('--events') + 1] || 1000000);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join('/');
const optionsOf = (product: number) => 1 + (product % 4);

function perfTest(cfg: StreamConfig, topic: string, messages: number): Promise<{ n: number; ms: number }> {
  const script = path.join(repoRoot(), 'scripts/kafka/consumer-perf-test.sh');
  const args = [script, '--bootstrap-server', cfg.brokers.join(','), '--topic', topic, '--messages', String(messages), '--group', `perf-${topic}-${Date.now()}`, '--timeout', '30000'];
  return new Promise((resolve, reject) => {
    execFile('bash', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(stderr || err.message));
      const lines = stdout.trim().split('\n').filter((l) => l.includes(','));
      const h = lines[0].split(',').map((s) => s.trim());
      const v = lines[lines.length - 1].split(',').map((s) => s.trim());
      const r = Object.fromEntries(h.map((k, i) => [k, v[i]]));
      resolve({ n: Number(r['data.consumed.in.nMsg']), ms: Number(r['fetch.time.ms']) });
    });
  });
}

async function main() {
  const cfg = loadStreamConfig(process.env, { topicPrefix: `ceil${Date.now().toString(36)}` });
  const kafka = createKafka(cfg, 'ceiling');
  const sources = ['carts_has_products', 'shoppingcart', 'product_sold_vendor'] as const;
  const topics = sources.map((s) => topicFor(cfg, s));
  await ensureTopics(kafka, cfg, topics);
  const producer = idempotentProducer(kafka);
  await producer.connect();
  const products = 5000;
  const t0 = Date.now();
  for (let i0 = 0; i0 < N; i0 += 5000) {
    const by: Record<string, { key: string; value: string }[]> = { carts_has_products: [], shoppingcart: [], product_sold_vendor: [] };
    for (let i = i0; i < Math.min(N, i0 + 5000); i++) {
      const k = i % 20;
      const product = 10000 + ((i * 7919) % products);
      const cart = String(1000000 + Math.floor(i / 4));
      if (k < 14) by.carts_has_products.push({ key: cart, value: JSON.stringify({ shopping_cart_id: cart, product_id: String(product), option_id: String(product * 10 + (i % optionsOf(product))), quantity: String(1 + (i % 3)) }) });
      else if (k < 19) by.shoppingcart.push({ key: cart, value: JSON.stringify({ shopping_cart_id: cart, status: i % 3 === 0 ? '0' : '1' }) });
      else { const vendor = String(5000 + (i % 300)); by.product_sold_vendor.push({ key: vendor, value: JSON.stringify({ vendor_id: vendor, product_id: String(product) }) }); }
    }
    for (const s of sources) if (by[s].length) await producer.send({ topic: topicFor(cfg, s), acks: -1, messages: by[s] });
  }
  await producer.disconnect();
  process.stderr.write(`produced ${N} in ${(Date.now() - t0) / 1000} s\n`);
  const ends = await endOffsets(kafka, topics);
  const total = [...ends.values()].reduce((a, b) => a + Number(b), 0);
  const dests = new Map(streamDestinations().map((d) => [topicFor(cfg, d.sources[0]), { d, s: sourceOf(d) }]));

  const modes: Record<string, (topic: string, values: (Buffer | null)[]) => void> = {
    noop: () => undefined,
    parse: (_t, vs) => { for (const v of vs) JSON.parse(v!.toString('utf8')); },
    decode: (t, vs) => { const { d, s } = dests.get(t)!; const now = new Date(); for (const v of vs) decodeEvent(d, s, v, now); },
  };
  const out: Record<string, number> = {};
  for (const [name, fn] of Object.entries(modes)) {
    for (const pcc of [1, 32]) {
      const consumer = kafka.consumer({ groupId: `ceil-${name}-${pcc}-${Date.now()}`, maxBytesPerPartition: cfg.maxBatchBytes, maxBytes: cfg.maxBatchBytes * 4, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      let n = 0;
      let start = 0;
      const done = new Promise<void>((resolve) => {
        void consumer.run({
          partitionsConsumedConcurrently: pcc,
          eachBatch: async ({ batch }) => {
            if (!start) start = Date.now();
            fn(batch.topic, batch.messages.map((m) => m.value));
            n += batch.messages.length;
            if (n >= total) resolve();
          },
        });
      });
      await done;
      const ms = Date.now() - start;
      await consumer.disconnect();
      out[`kafkajs eachBatch ${name} pcc=${pcc}`] = Math.round(n / (ms / 1000));
      process.stderr.write(`${name} pcc=${pcc}: ${n} in ${ms} ms = ${out[`kafkajs eachBatch ${name} pcc=${pcc}`]} ev/s (load ${load()})\n`);
    }
  }
  let pn = 0;
  let pms = 0;
  for (const t of topics) {
    const msgs = [...ends].filter(([k]) => k.startsWith(`${t}:`)).reduce((a, [, v]) => a + Number(v), 0);
    const r = await perfTest(cfg, t, msgs);
    pn += r.n;
    pms += r.ms;
  }
  out['kafka-consumer-perf-test'] = Math.round(pn / (pms / 1000));
  process.stdout.write(JSON.stringify({ events: total, load: load(), cores: os.cpus().length, ...out }, null, 2) + '\n');
  setTimeout(() => process.exit(0), 100);
}
void main();
