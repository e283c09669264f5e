/**
 * The stream layer against a secured broker: the local broker started by scripts/kafka/start.sh
 * with its SASL_SSL listener (KAFKA_SASL_SSL=1), SCRAM users, TLS from a CA this test makes
 * (scripts/kafka/make-tls.sh, openssl) in a temp folder. Self-contained: its own broker, state
 * folder and ports (39192 plaintext, 39193 controller, 39194 SASL_SSL), started once and stopped
 * at the end. Every client goes through createKafka with STREAM_SECURITY_PROTOCOL=sasl_ssl.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Message } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import { kafkaSecuritySettings, type KafkaSecurity } from '../../jobs/lib/config';
import { jarsAvailable, kafkaStateDir, portOpen } from '../../jobs/lib/stream/broker';
import { availabilityTopic, streamDestinations, topicFor, type StreamConfig } from '../../jobs/lib/stream/config';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { createKafka, endOffsets, ensureTopics, idempotentProducer, producerKafka, waitForBroker } from '../../jobs/lib/stream/kafka';
import { duckDbSink } from '../../jobs/lib/stream/sink-duckdb';
import { brokerUnavailableReason, cartItem, ensureBuilt, produce, query, readTopic, ROOT, testEnv } from './helpers';

jest.setTimeout(300000);

const PLAIN_PORT = 39192;
const CONTROLLER_PORT = 39193;
const SASL_SSL_PORT = 39194;
const USER = 'store-etl-test';
const PASSWORD = crypto.randomBytes(18).toString('hex');
const WRONG = `${PASSWORD.slice(0, -4)}0000`;
const BOOTSTRAP = `localhost:${SASL_SSL_PORT}`;

/** The settings a deployment would write, for this broker; `extra` overrides some. */
const securityEnv = (dir: string, extra: Record<string, string> = {}): Record<string, string> => ({
  BOOTSTRAP_SERVER: BOOTSTRAP,
  STREAM_SECURITY_PROTOCOL: 'SASL_SSL',
  STREAM_SSL_CA_FILE: path.join(dir, 'kafka', 'tls', 'ca.pem'),
  STREAM_SASL_MECHANISM: 'scram-sha-512',
  STREAM_SASL_USERNAME: USER,
  STREAM_SASL_PASSWORD: PASSWORD,
  ...extra,
});
const securityOf = (env: Record<string, string>): KafkaSecurity => kafkaSecuritySettings(env);

function missing(): string | null {
  const reason = brokerUnavailableReason();
  if (reason) return reason;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return 'openssl is not installed (the test makes its CA with it)';
  }
  return null;
}

function run(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(ROOT, 'scripts/kafka', script), ...args], { cwd: ROOT, env, timeout: 300000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

const reason = missing();
const suite = reason ? describe.skip : describe;
if (reason && process.env.CI === 'true') {
  describe('a secured Kafka (SASL_SSL)', () => {
    it('needs the local Kafka broker and openssl', () => {
      throw new Error(`the SASL_SSL test cannot run in CI: ${reason}`);
    });
  });
} else if (reason) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPING the SASL_SSL test: ${reason}`);
}

suite('a secured Kafka (SASL_SSL listener, SCRAM users, TLS from a CA of the test)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sasl-ssl-test-'));
  const brokerEnv: NodeJS.ProcessEnv = {
    ...process.env,
    KAFKA_STATE_DIR: path.join(dir, 'kafka'),
    KAFKA_PORT: String(PLAIN_PORT),
    KAFKA_CONTROLLER_PORT: String(CONTROLLER_PORT),
    KAFKA_SASL_SSL: '1',
    KAFKA_SASL_SSL_PORT: String(SASL_SSL_PORT),
    KAFKA_TLS_DIR: path.join(dir, 'kafka', 'tls'),
    STREAM_SASL_USERNAME: USER,
    STREAM_SASL_PASSWORD: PASSWORD,
  };

  beforeAll(async () => {
    for (const port of [PLAIN_PORT, CONTROLLER_PORT, SASL_SSL_PORT]) {
      if (await portOpen('localhost', port)) throw new Error(`port ${port} is taken: the test's broker needs it`);
    }
    // The jars of the usual broker folder, linked into this broker's own state folder.
    if (!jarsAvailable()) execFileSync('bash', [path.join(ROOT, 'scripts/kafka/setup.sh')], { stdio: 'inherit' });
    fs.mkdirSync(path.join(dir, 'kafka'));
    fs.symlinkSync(path.join(kafkaStateDir(), 'libs'), path.join(dir, 'kafka', 'libs'));
    await run('make-tls.sh', [path.join(dir, 'kafka', 'tls')], brokerEnv);
    await run('make-tls.sh', [path.join(dir, 'other-ca')], brokerEnv); // a CA the broker's certificate is not from
    const t0 = Date.now();
    await run('start.sh', [], brokerEnv);
    // eslint-disable-next-line no-console
    console.log(`SASL_SSL broker started in ${Date.now() - t0} ms`);
  }, 300000);

  afterAll(async () => {
    await run('stop.sh', [], brokerEnv).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);

  it('the broker keeps no password in clear in its files, and its TLS files are private', () => {
    const files = fs.readdirSync(path.join(dir, 'kafka')).filter((f) => fs.statSync(path.join(dir, 'kafka', f)).isFile());
    expect(files).toEqual(expect.arrayContaining(['server.properties', 'broker.log']));
    for (const f of files) expect(fs.readFileSync(path.join(dir, 'kafka', f), 'utf8')).not.toContain(PASSWORD);
    expect(fs.statSync(path.join(dir, 'kafka', 'tls')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'kafka', 'tls', 'broker.pem')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.join(dir, 'kafka', 'tls')).sort()).toEqual(['broker.pem', 'ca.pem']); // the CA key is gone
  });

  it('produce -> consume -> availability over SASL_SSL (SCRAM-SHA-512), a sold-out event on the broadcast topic', async () => {
    const e = testEnv({ brokers: [BOOTSTRAP], security: securityOf(securityEnv(dir)) });
    expect(e.cfg.security).toMatchObject({ protocol: 'sasl_ssl', sasl: { mechanism: 'scram-sha-512', username: USER } });
    const tables = streamDestinations(catalog);
    const topics = tables.map((d) => topicFor(e.cfg, d.sources[0]));
    await e.batch.ensureSchema();
    await e.batch.withConnection(async (c) => {
      await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity) VALUES ('1200', '1201', 3), ('1200', '1202', 5)`);
    });
    await ensureTopics(e.kafka, e.cfg, [...topics, availabilityTopic(e.cfg)]);
    const consumer = new StreamConsumer({ catalog, cfg: e.cfg, tables, sink: duckDbSink(e.warehouse) });
    const ev = (o: Record<string, string>): Message => ({ key: Object.values(o)[0], value: JSON.stringify(o) });
    const step = async (source: string, msgs: Message[]) => {
      await produce(e.kafka, topicFor(e.cfg, source), msgs);
      await consumer.waitCaughtUp(await endOffsets(e.kafka, topics), 60000);
    };
    await consumer.start();
    try {
      await step('product_sold_vendor', [ev({ vendor_id: '5000', product_id: '1200' })]);
      await step('shoppingcart', [ev({ shopping_cart_id: '3000', status: '1' }), ev({ shopping_cart_id: '3100', status: '1' })]);
      await step('carts_has_products', [cartItem(3000, 1200, 1201, 2), cartItem(3100, 1200, 1201, 1)]);
    } finally {
      await consumer.stop();
    }
    expect(await query(e.warehouse, 'SELECT shopping_cart_id, option_id, quantity FROM store.fact_carts_has_products ORDER BY 1')).toEqual([
      { shopping_cart_id: '3000', option_id: '1201', quantity: 2 },
      { shopping_cart_id: '3100', option_id: '1201', quantity: 1 },
    ]);
    expect(
      await query(e.warehouse, 'SELECT option_id, stock, held_in_open_carts, available, sold_out FROM store.vendor_product_availability ORDER BY 1'),
    ).toEqual([
      { option_id: '1201', stock: 3, held_in_open_carts: 3, available: 0, sold_out: true },
      { option_id: '1202', stock: 5, held_in_open_carts: 0, available: 5, sold_out: false },
    ]);
    const events = (await readTopic(e.kafka, availabilityTopic(e.cfg), 1)).map((m) => ({ key: m.key, ...(JSON.parse(m.value) as object) }));
    expect(events).toEqual([expect.objectContaining({ key: '5000', event: 'sold_out', option_id: '1201', available: 0, sold_out: true })]);
  });

  it('SCRAM-SHA-256 logs in too, and the admin client sees the topics', async () => {
    const cfg = { ...testEnv().cfg, brokers: [BOOTSTRAP], security: securityOf(securityEnv(dir, { STREAM_SASL_MECHANISM: 'SCRAM-SHA-256' })) };
    const topic = `${cfg.topicPrefix}_sha256`;
    await ensureTopics(createKafka(cfg), cfg, [topic]);
    await produce(createKafka(cfg), topic, [{ key: 'k', value: 'v' }]);
    const admin = createKafka(cfg).admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).toContain(topic);
      expect((await admin.fetchTopicOffsets(topic)).reduce((a, p) => a + Number(p.high), 0)).toBe(1);
    } finally {
      await admin.disconnect();
    }
  });

  it('a wrong password fails at once with one clear line, not retried: broker wait, producer, consumer CLI', async () => {
    const wrongEnv = securityEnv(dir, { STREAM_SASL_PASSWORD: WRONG });
    const cfg: StreamConfig = { ...testEnv().cfg, brokers: [BOOTSTRAP], security: securityOf(wrongEnv), brokerWaitMs: 0 };

    // The broker wait retries for ever (brokerWaitMs 0) for an absent broker, but not for a refused login.
    let t0 = Date.now();
    const waited = await waitForBroker(cfg).then(() => null, (x: Error) => x);
    expect(waited?.message).toMatch(new RegExp(`^Kafka at ${BOOTSTRAP} refused the login of '${USER}' \\(scram-sha-512\\): check STREAM_SASL_USERNAME`));
    expect(waited?.message).not.toContain(WRONG);
    expect(Date.now() - t0).toBeLessThan(10000);

    // The replay producer's client retries without limit, yet a refused login ends it.
    t0 = Date.now();
    const producer = idempotentProducer(producerKafka(cfg));
    const sent = await producer.connect().then(() => null, (x: Error) => x);
    expect(sent?.name).toBe('KafkaJSSASLAuthenticationError');
    expect(Date.now() - t0).toBeLessThan(10000);

    // The consumer CLI (retries the broker for ever by default) exits 1 with one `error:` line.
    const cli = ensureBuilt();
    const e = testEnv();
    t0 = Date.now();
    const child = spawn(process.execPath, [cli, '--table', 'fact_shoppingcarts', '--no-start-broker'], {
      cwd: ROOT,
      env: { ...e.childEnv, ...wrongEnv, STREAM_BROKER_WAIT_MS: '0', LOG_FORMAT: 'json' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    clearTimeout(timer);
    expect({ code, out: out.split('\n').filter((l) => l.startsWith('error: ')) }).toEqual({
      code: 1,
      out: [expect.stringContaining(`error: Kafka at ${BOOTSTRAP} refused the login of '${USER}'`)],
    });
    expect(out).not.toContain(WRONG);
    expect(Date.now() - t0).toBeLessThan(30000);
  });

  it('a broker certificate not from the configured CA is refused at once, not retried', async () => {
    const other = securityEnv(dir, { STREAM_SSL_CA_FILE: path.join(dir, 'other-ca', 'ca.pem') });
    const cfg: StreamConfig = { ...testEnv().cfg, brokers: [BOOTSTRAP], security: securityOf(other), brokerWaitMs: 0 };
    const t0 = Date.now();
    const waited = await waitForBroker(cfg).then(() => null, (x: Error) => x);
    expect(waited?.message).toMatch(new RegExp(`^Kafka at ${BOOTSTRAP}: TLS certificate not trusted, check STREAM_SSL_CA_FILE`));
    expect(Date.now() - t0).toBeLessThan(10000);
  });
});
