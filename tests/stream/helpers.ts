/** Shared set-up of the stream tests: the real local broker, per-test topics, warehouses and readers. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka, Message } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import { ensureBroker, javaAvailable, jarsAvailable, repoRoot, stopBroker } from '../../jobs/lib/stream/broker';
import { loadStreamConfig, type StreamConfig } from '../../jobs/lib/stream/config';
import { createKafka } from '../../jobs/lib/stream/kafka';
import { idempotentProducer } from '../../jobs/lib/stream/kafka';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbWarehouse, streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import type { CommitInfo } from '../../jobs/lib/stream/consumer';

export const ROOT = repoRoot();

function mvnAvailable(): boolean {
  try {
    execFileSync('mvn', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the broker cannot run here, or null when it can. */
export function brokerUnavailableReason(): string | null {
  if (!javaAvailable()) return 'java is not installed (Java 17+ is needed for the local Kafka broker)';
  if (!jarsAvailable() && !mvnAvailable()) return 'the Kafka jars are missing and mvn is not installed to fetch them (npm run setup:kafka)';
  return null;
}

/**
 * describe() with the local broker: started before the suite if nothing answers at
 * BOOTSTRAP_SERVER, and stopped after it only if this suite started it (one that was running is
 * left alone). Skipped with the reason when the broker cannot run, or failing under CI=true.
 */
export function describeWithBroker(name: string, fn: () => void): void {
  const reason = brokerUnavailableReason();
  if (!reason) {
    describe(name, () => {
      let startedHere = false;
      beforeAll(async () => {
        const t0 = Date.now();
        startedHere = await startBrokerForTests();
        // eslint-disable-next-line no-console
        console.log(`broker ${startedHere ? 'started' : 'already running'} in ${Date.now() - t0} ms`);
      }, 300000);
      afterAll(async () => {
        if (startedHere) await stopBroker();
      }, 60000);
      fn();
    });
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs the local Kafka broker', () => {
        throw new Error(`stream tests cannot run in CI: ${reason}`);
      });
    });
  } else {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPING stream tests "${name}": ${reason}`);
    describe.skip(name, fn);
  }
}

/**
 * it() that needs something outside the repository (`missing` says what is missing, or null):
 * skipped visibly with the reason when it is missing, failing instead under CI=true.
 */
export function itWhenAvailable(name: string, missing: () => string | null, fn: () => Promise<void>, timeoutMs?: number): void {
  const reason = missing();
  if (!reason) it(name, fn, timeoutMs);
  else if (process.env.CI === 'true') it(name, () => { throw new Error(`cannot run in CI: ${reason}`); });
  else {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPING "${name}": ${reason}`);
    it.skip(name, fn);
  }
}

/** Fetches the jars when needed and starts the broker (idempotent); true when this call started it. */
export async function startBrokerForTests(): Promise<boolean> {
  if (!jarsAvailable()) execFileSync('bash', [path.join(ROOT, 'scripts/kafka/setup.sh')], { stdio: 'inherit' });
  return ensureBroker(process.env.BOOTSTRAP_SERVER ?? 'localhost:9092');
}

/** Makes sure dist/ has the consumer CLI the kill tests spawn (npm test builds it already). */
export function ensureBuilt(): string {
  const cli = path.join(ROOT, 'dist/jobs/stream-consumer.js');
  const src = path.join(ROOT, 'jobs/lib/stream/consumer.ts');
  if (!fs.existsSync(cli) || fs.statSync(cli).mtimeMs < fs.statSync(src).mtimeMs) {
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      // tsc exits non-zero for errors anywhere in the repo but still emits; the check below decides.
    }
  }
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
  return cli;
}

let seq = 0;
const RUN = `t${Date.now().toString(36)}${process.pid.toString(36)}`;

export interface TestEnv {
  readonly cfg: StreamConfig;
  readonly kafka: Kafka;
  readonly dir: string;
  /** The stream layer's own file (STREAM_DUCKDB_PATH). */
  readonly duckdbPath: string;
  /** The stream file as the consumer holds it (opened once, kept open by this test process). */
  readonly warehouse: DuckDbWarehouse;
  /** The batch warehouse file (DUCKDB_PATH): dim_products is seeded here and mirrored. */
  readonly batch: DuckDbWarehouse;
  /** Environment for a child consumer process. */
  readonly childEnv: NodeJS.ProcessEnv;
}

/** A fresh topic prefix, consumer group, stream file and batch file for one test. */
export function testEnv(overrides: Partial<StreamConfig> = {}): TestEnv {
  const id = `${RUN}_${++seq}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stream-test-'));
  const duckdbPath = path.join(dir, 'stream.duckdb');
  const batchPath = path.join(dir, 'warehouse.duckdb');
  const snapshotPath = path.join(dir, 'stream-snapshot.duckdb');
  const cfg = loadStreamConfig(process.env, {
    topicPrefix: id,
    group: `g_${id}`,
    duckdbPath,
    batchDuckdbPath: batchPath,
    snapshotPath,
    ...overrides,
  });
  const warehouse = streamDuckDbWarehouse(duckdbPath, catalog, cfg.duckdbThreads);
  const batch = new DuckDbWarehouse({ path: batchPath, lockRetries: 20, catalog });
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    TOPIC_NAME: cfg.topicPrefix,
    TOPIC_GROUP: cfg.group,
    STREAM_DUCKDB_PATH: duckdbPath,
    DUCKDB_PATH: batchPath,
    STREAM_SNAPSHOT_PATH: snapshotPath,
    STREAM_SNAPSHOT_INTERVAL_MS: String(cfg.snapshotIntervalMs),
    STREAM_PARTITIONS: String(cfg.partitions),
    STREAM_SESSION_TIMEOUT_MS: String(cfg.sessionTimeoutMs),
    STREAM_MAX_BATCH_BYTES: String(cfg.maxBatchBytes),
    STREAM_COMMIT_MAX_EVENTS: String(cfg.commitMaxEvents),
    LOG_FORMAT: 'json',
  };
  return { cfg, kafka: createKafka(cfg, `test-${id}`), dir, duckdbPath, warehouse, batch, childEnv };
}

/**
 * Sends `messages` in sends of `chunk` (a fetch returns whole record batches: small sends = small
 * batches) with the stream layer's idempotent producer: a send retried after "not the leader"
 * (fresh topics, a restarted broker) must not put events in the topic twice.
 */
export async function produce(kafka: Kafka, topic: string, messages: Message[], chunk = 1000): Promise<void> {
  const p = idempotentProducer(kafka);
  await p.connect();
  try {
    for (let i = 0; i < messages.length; i += chunk) await p.send({ topic, acks: -1, messages: messages.slice(i, i + chunk) });
  } finally {
    await p.disconnect();
  }
}

/** Reads every message of `topic` from the beginning until `expected` arrived or `timeoutMs`. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  expected: number,
  timeoutMs = 20000,
): Promise<{ key: string | null; value: string; headers: Record<string, string> }[]> {
  const c = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, maxWaitTimeInMs: 100 });
  const out: { key: string | null; value: string; headers: Record<string, string> }[] = [];
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  await c.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      out.push({ key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', headers });
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (out.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 300));
  await c.disconnect();
  return out;
}

/**
 * Reads a DuckDB file another process may not hold (a snapshot, a closed stream file): opened
 * read-only for the call. Returns null while the file does not exist yet.
 */
export async function queryFile(file: string, sql: string): Promise<Record<string, unknown>[] | null> {
  if (!fs.existsSync(file)) return null;
  const inst = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  try {
    const c = await inst.connect();
    const rows = (await c.runAndReadAll(sql)).getRowObjectsJS();
    c.closeSync();
    return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
  } finally {
    inst.closeSync();
  }
}

/** Runs queries against a test warehouse (the held stream file: through its one open connection). */
export async function query(wh: DuckDbWarehouse, sql: string): Promise<Record<string, unknown>[]> {
  const rows = await wh.withConnection(async (c) => (await c.runAndReadAll(sql)).getRowObjectsJS());
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
}

export const count = async (wh: DuckDbWarehouse, sql: string): Promise<number> => Number(Object.values((await query(wh, sql))[0])[0]);

export const cartItem = (cart: number, product: number, option: number, quantity: number): Message => ({
  key: String(cart),
  value: JSON.stringify({
    shopping_cart_id: String(cart),
    product_id: String(product),
    option_id: String(option),
    quantity: String(quantity),
  }),
});

/** Polls `done` every 50 ms; fails with `what` after `timeoutMs`. */
export async function waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An in-process consumer held before its second commit (ETL_TEST_STREAM_HOLD_FILE, armed by its
 * first): pass `onCommit` to the consumer, await `held` (with the test's own condition), act
 * (stop the broker), then `release` it; `dispose` in a finally.
 */
export function holdAfterFirstCommit(dir: string) {
  const file = path.join(dir, 'hold');
  process.env.ETL_TEST_STREAM_HOLD_FILE = file;
  let armed = false;
  return {
    onCommit: (c: CommitInfo): void => {
      if (c.kind === 'batch' && !armed) {
        armed = true;
        fs.writeFileSync(file, '');
      }
    },
    held: (also: () => boolean): Promise<void> =>
      waitFor(() => fs.existsSync(`${file}.held`) && also(), 120_000, 'the consumer held after its first commit'),
    release: async (): Promise<void> => {
      fs.rmSync(file);
      await waitFor(() => !fs.existsSync(`${file}.held`), 30_000, 'the consumer to go on');
    },
    dispose: (): void => {
      delete process.env.ETL_TEST_STREAM_HOLD_FILE;
      fs.rmSync(file, { force: true });
    },
  };
}
