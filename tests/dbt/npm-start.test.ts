/**
 * The main command end to end: `npm start` (dist/scripts/start.js) runs the batch jobs, replays
 * the stream files through the local Kafka broker, then `dbt build` on DuckDB (its output in a
 * log file), and ends with the summary and the top rows of user_revenue - the last thing printed.
 * Expected counts come from tests/helpers/store-export.ts reading the source files themselves.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { portOpen, stopBroker } from '../../jobs/lib/stream/broker';
import { query, ROOT, runNode } from '../helpers/env';
import { destinationRows, readAll, reasons, STORE_EXPORT, topUsers, type SourceFacts } from '../helpers/store-export';
import { brokerUnavailableReason } from '../stream/helpers';
import { describeWith } from '../airflow/airflow-env';
import { dbtEnv, missingDbt, problems, runResults } from './dbt-env';

// The broker this run uses (BOOTSTRAP_SERVER, default localhost:9092): passed on to npm start.
const BOOTSTRAP = process.env.BOOTSTRAP_SERVER ?? 'localhost:9092';
const [BROKER_HOST, BROKER_PORT] = BOOTSTRAP.split(',')[0].split(':');
const kafkaEnv = Object.fromEntries(
  ['BOOTSTRAP_SERVER', 'KAFKA_PORT', 'KAFKA_CONTROLLER_PORT'].filter((k) => process.env[k]).map((k) => [k, process.env[k]!]),
);

/** The summary's rows: [destination, mode, rows, quarantined]. */
function summaryRows(stdout: string): Map<string, [string, number, string]> {
  const summary = stdout.slice(stdout.lastIndexOf('\nSummary\n'));
  const rows = new Map<string, [string, number, string]>();
  const names = new Set(catalog.destinations.map((d) => d.name));
  for (const m of summary.matchAll(/^(store\.\w+)\s+(batch|stream)\s+(\d+)\s+(\S+)$/gm)) {
    if (names.has(m[1])) rows.set(m[1], [m[2], Number(m[3]), m[4]]);
  }
  return rows;
}

/** What the summary must say, computed from the source files. */
function expectedSummary(facts: Record<string, SourceFacts>): Map<string, [string, number, string]> {
  const rows = destinationRows(facts);
  const out = new Map<string, [string, number, string]>();
  for (const d of catalog.destinations) {
    if (d.mode === 'batch') {
      out.set(d.name, ['batch', rows[d.name], String(d.sources.reduce((n, s) => n + facts[s].quarantined.length, 0))]);
    } else {
      // Upserts by key: one row per distinct good key; invalid rows are not sent, so none quarantined.
      out.set(d.name, ['stream', facts[d.sources[0]].loaded.length, '0']);
    }
  }
  return out;
}

/** The top-users table printed last: rows of [user_id, full_name, revenue]. */
function printedTopUsers(stdout: string): string[][] {
  const table = stdout.slice(stdout.lastIndexOf('Top '));
  return table
    .split('\n')
    .slice(2)
    .filter((l) => l.trim())
    .map((l) => l.trim().split(/\s{2,}/));
}

describeWith([missingDbt(), brokerUnavailableReason()], 'npm start ends with its summary and the top of user_revenue', () => {
  jest.setTimeout(600_000);
  let brokerWasUp = true;
  /** npm start's broker keeps its state under the run's ETL_STATE_DIR: stopped from there. */
  let brokerState: string | undefined;

  beforeAll(async () => {
    brokerWasUp = await portOpen(BROKER_HOST, Number(BROKER_PORT));
  });

  afterAll(async () => {
    // Started by this suite's npm start: stop it (npm start itself leaves it running, and says so).
    if (!brokerWasUp && (await portOpen(BROKER_HOST, Number(BROKER_PORT)))) await stopBroker(brokerState);
  });

  test('batch + stream + dbt on the fixture: dbt output in a log file, the summary last', async () => {
    const facts = readAll(STORE_EXPORT);
    const suffix = `${process.pid}${Date.now()}`;
    const { env } = dbtEnv('dbt-start', {
      ...kafkaEnv,
      ETL_SOURCE_DIR: STORE_EXPORT,
      // Own topics and consumer group: nothing shared with other runs on the same broker.
      TOPIC_NAME: `dbtstart${suffix}`,
      TOPIC_GROUP: `dbtstart${suffix}`,
    });
    brokerState = path.join(env.ETL_STATE_DIR!, 'kafka');
    const r = runNode('scripts/start.js', [], env as Record<string, string>);
    const log = `${r.stdout}\n${r.stderr}`;
    expect({ status: r.status, tail: r.status === 0 ? '' : log.slice(-4000) }).toEqual({ status: 0, tail: '' });

    // dbt's own lines are in the log file, not on the console; the summary names its result.
    const dbtLog = fs.readFileSync(path.join(env.ETL_STATE_DIR!, 'logs', 'dbt-build.log'), 'utf8');
    const goodProducts = new Set(facts.products.loaded.map((p) => p.product_id));
    const warnings = facts.orders_has_products.loaded.some((l) => !goodProducts.has(l.product_id)) ? 1 : 0;
    expect(dbtLog).toMatch(new RegExp(`Done\\. PASS=\\d+ WARN=${warnings} ERROR=0`));
    expect(log).not.toMatch(/Running with dbt|Concurrency: \d+ threads/);
    expect(r.stdout).toMatch(new RegExp(`\\ndbt build: PASS=\\d+ WARN=${warnings} ERROR=0 .*\\(dbt's output: .*dbt-build\\.log\\)\\n`));
    expect(r.stdout).toMatch(/\nKafka: the local broker on \S+ (was already running|was started by this run) and is left running; stop it with `npm run kafka:stop`\.\n/);

    // The summary, then the top users, are the last thing printed.
    expect(r.stdout.lastIndexOf('\nSummary\n')).toBeGreaterThan(r.stdout.lastIndexOf('quarantined '));
    expect(r.stdout.trimEnd().split('\n').pop()!.trim().split(/\s{2,}/)).toEqual(topUsers(facts, 10).pop());
    expect(printedTopUsers(r.stdout)).toEqual(topUsers(facts, 10));
    expect(summaryRows(r.stdout)).toEqual(expectedSummary(facts));

    const db = env.DUCKDB_PATH!;
    const [[carts, streamRows]] = await query(
      db,
      `SELECT sum(open_carts)::INTEGER, count(*) FILTER (WHERE availability_source = 'stream')::INTEGER
         FROM store_marts.product_cart_activity`,
    );
    expect(carts).toBeGreaterThan(0);
    expect(streamRows).toBeGreaterThan(0);
    const results = runResults(path.resolve(env.DBT_TARGET_PATH!), 'build_results.json');
    expect(results.find((x) => x.unique_id === 'test.store_marts.availability_matches_batch_rule')?.status).toBe('pass');
    expect(problems(results)).toEqual(
      warnings ? [expect.stringMatching(/^warn: test\.store_marts\.relationships_multi_order_lines_stg/)] : [],
    );
  });

  test('the quick start: npm start on the committed data_source/ (generated, with faults)', async () => {
    const facts = readAll(path.join(ROOT, 'data_source'));
    const suffix = `${process.pid}${Date.now()}`;
    const { env } = dbtEnv('dbt-quickstart', {
      ...kafkaEnv,
      // No ETL_SOURCE_DIR: the default, data_source/, exactly as `npm ci && npm start` runs.
      TOPIC_NAME: `quick${suffix}`,
      TOPIC_GROUP: `quick${suffix}`,
    });
    const r = runNode('scripts/start.js', [], env as Record<string, string>);
    const log = `${r.stdout}\n${r.stderr}`;
    expect({ status: r.status, tail: r.status === 0 ? '' : log.slice(-4000) }).toEqual({ status: 0, tail: '' });
    expect(summaryRows(r.stdout)).toEqual(expectedSummary(facts));
    // Quarantined rows by reason, per job (a source read by two jobs counts twice).
    const byReason = reasons(catalog.destinations.filter((d) => d.mode === 'batch').flatMap((d) => d.sources.map((s) => facts[s])));
    expect(Object.keys(byReason).length).toBeGreaterThan(1);
    for (const [code, n] of Object.entries(byReason)) expect(r.stdout).toMatch(new RegExp(`\\n  ${code}\\s+${n}\\n`));
    // The orders the batch quarantined leave order lines without an order: a dbt warning, no error.
    const results = runResults(path.resolve(env.DBT_TARGET_PATH!), 'build_results.json');
    expect(problems(results)).toEqual([
      expect.stringMatching(/^warn: test\.store_marts\.relationships_order_lines_stg_order_id/),
    ]);
    expect(printedTopUsers(r.stdout)).toEqual(topUsers(facts, 10));
  });
});
