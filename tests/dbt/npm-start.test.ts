/**
 * The main command end to end: `npm start` (dist/scripts/start.js) on the reference sample runs
 * the batch jobs, replays the stream files through the local Kafka broker, then `dbt build` on
 * DuckDB, and ends by printing the top rows of user_revenue. Asserts dbt passed (with the
 * stream layer filled, the lambda consistency test too) and the printed rows.
 */
import path from 'node:path';
import { portOpen, stopBroker } from '../../jobs/lib/stream/broker';
import { query, REFERENCE_SAMPLE, runNode } from '../helpers/env';
import { brokerUnavailableReason } from '../stream/helpers';
import { describeWith } from '../airflow/airflow-env';
import { dbtEnv, missingDbt, problems, runResults } from './dbt-env';

describeWith([missingDbt(), brokerUnavailableReason()], 'npm start ends with dbt build and the top of user_revenue', () => {
  jest.setTimeout(600_000);
  let brokerWasUp = true;

  beforeAll(async () => {
    brokerWasUp = await portOpen('localhost', 9092);
  });

  afterAll(async () => {
    if (!brokerWasUp && (await portOpen('localhost', 9092))) await stopBroker(); // started by this test's npm start
  });

  test('batch + stream + dbt on the reference sample', async () => {
    const suffix = `${process.pid}${Date.now()}`;
    const { env } = dbtEnv('dbt-start', {
      ETL_SOURCE_DIR: REFERENCE_SAMPLE,
      // Own topics and consumer group: nothing shared with other runs on the same broker.
      TOPIC_NAME: `dbtstart${suffix}`,
      TOPIC_GROUP: `dbtstart${suffix}`,
      LOG_LEVEL: 'info', // dbt's lines are logged at info
    });
    const r = runNode('scripts/start.js', [], env as Record<string, string>);
    const log = `${r.stdout}\n${r.stderr}`;
    expect({ status: r.status, tail: r.status === 0 ? '' : log.slice(-4000) }).toEqual({ status: 0, tail: '' });
    expect(log).toMatch(/Done\. PASS=\d+ WARN=1 ERROR=0/);

    // The closing table: the top users by revenue (exact values: see user-revenue.test.ts).
    const table = r.stdout.slice(r.stdout.indexOf('Top 10 users by revenue'));
    const rows = table.split('\n').slice(2, 12).map((l) => l.trim().split(/\s{2,}/));
    expect(rows.slice(0, 3)).toEqual([
      ['105', 'Sophie Sutton', '77843.42'],
      ['118', 'Donna Gutierrez', '68760.74'],
      ['117', 'Maria Adams', '50413.93'],
    ]);
    expect(rows).toHaveLength(10);

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
    expect(problems(results)).toEqual([
      expect.stringMatching(/^warn: test\.store_marts\.relationships_multi_order_lines_stg/),
    ]);
  });

  test('the quick start: npm start on the committed data_source/ (generated, with faults)', async () => {
    const suffix = `${process.pid}${Date.now()}`;
    const { env } = dbtEnv('dbt-quickstart', {
      // No ETL_SOURCE_DIR: the default, data_source/, exactly as `npm ci && npm start` runs.
      TOPIC_NAME: `quick${suffix}`,
      TOPIC_GROUP: `quick${suffix}`,
    });
    const r = runNode('scripts/start.js', [], env as Record<string, string>);
    const log = `${r.stdout}\n${r.stderr}`;
    expect({ status: r.status, tail: r.status === 0 ? '' : log.slice(-4000) }).toEqual({ status: 0, tail: '' });
    // Rows per destination and quarantined rows, as the summary prints them.
    const summary = r.stdout.slice(r.stdout.indexOf('Summary'));
    for (const [table, mode, rows, quarantined] of [
      ['store.fact_orders', 'batch', 471, 42],
      ['store.fact_order_details', 'batch', 1240, 0],
      ['store.dim_products', 'batch', 63, 0],
      ['store.dim_users', 'batch', 125, 2],
      ['store.dim_vendors', 'batch', 10, 0],
      ['store.fact_carts_has_products', 'stream', 116, 0],
      ['store.fact_shoppingcarts', 'stream', 50, 0],
      ['store.fact_products_sold_vendor', 'stream', 41, 0],
    ] as const) {
      expect(summary).toMatch(new RegExp(`${table.replace('.', '\\.')}\\s+${mode}\\s+${rows}\\s+${quarantined}\\n`));
    }
    expect(summary).toMatch(/bad_date\s+15\n\s+scientific_notation_id\s+15\n\s+not_a_number\s+14/);
    // The orders the batch quarantined leave order lines without an order: a dbt warning, no error.
    const results = runResults(path.resolve(env.DBT_TARGET_PATH!), 'build_results.json');
    expect(problems(results)).toEqual([
      expect.stringMatching(/^warn: test\.store_marts\.relationships_order_lines_stg_order_id/),
    ]);
    expect(r.stdout).toMatch(/Top 10 users by revenue[\s\S]*\n162\s+Diana Smith\s+54959\.74\n/);
  });
});
