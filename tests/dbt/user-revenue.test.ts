/**
 * The dbt marts on the store's export, end to end: the batch pipeline (`npm start`'s
 * dist/scripts/start.js --skip-stream --skip-dbt) loads tests/fixtures/store-export/ (the
 * real export's quirks, generated) into a fresh DuckDB file,
 * scripts/dbt-build.sh runs `dbt build` + `dbt docs generate` on it, and
 *  - user_revenue equals, user by user and to the last digit, revenue computed here straight
 *    from the raw fixture files (sum of order.total_cost over delivered orders per user);
 *  - every model and test passed (one known, documented warning) and the docs site exists;
 *  - the lambda serving models combine batch and stream rows as documented, and still build
 *    when the stream tables are absent (batch-only warehouse).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import { runDbtBuild, topUserRevenue } from '../../scripts/dbt-run';
import { query, ROOT, runNode } from '../helpers/env';
import { expectedUserRevenue as revenueOf, readAll, STORE_EXPORT, toUnits, unitsToText } from '../helpers/store-export';
import { dbtEnv, describeWithDbt, execDuckDb, problems, runResults } from './dbt-env';

jest.setTimeout(600_000);

const facts = readAll(STORE_EXPORT);
const expectedUserRevenue = () => revenueOf(facts);

// ---- the warehouse -----------------------------------------------------------------------

describeWithDbt('dbt marts on the store export fixture', () => {
  const { env } = dbtEnv('dbt-ref', { ETL_SOURCE_DIR: STORE_EXPORT });
  const db = env.DUCKDB_PATH!;
  const target = env.DBT_TARGET_PATH!;
  const output: string[] = [];
  let buildResults: ReturnType<typeof runResults> = [];

  beforeAll(async () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'scripts', 'start.js'))).toBe(true);
    // Batch layer only (no Kafka): the stream tables exist but are empty, as in a batch-only
    // run; the stream case is built below with rows written into them directly.
    const r = runNode('scripts/start.js', ['--skip-stream', '--skip-dbt'], env as Record<string, string>);
    if (r.status !== 0) throw new Error(`npm start failed (${r.status}): ${r.stderr}\n${r.stdout}`);
    await runDbtBuild({ env, log: (l) => output.push(l) });
    // run_results.json is rewritten by `dbt docs generate`: dbt-build.sh keeps the build's copy.
    buildResults = runResults(target, 'build_results.json');
  });

  test('dbt build passed: every model built and every test passed (one documented warning)', () => {
    expect(output.join('\n')).toMatch(/Completed successfully|Completed with 1 warning/);
    const notOk = problems(buildResults);
    // Order lines of products whose products.txt lines the batch quarantined: one warning.
    const goodProducts = new Set(facts.products.loaded.map((p) => p.product_id));
    const orphanLines = facts.orders_has_products.loaded.filter((l) => !goodProducts.has(l.product_id));
    expect(orphanLines.length).toBeGreaterThan(0);
    expect(notOk).toEqual([
      expect.stringMatching(/^warn: test\.store_marts\.relationships_multi_order_lines_stg_product_id__option_id/),
    ]);
    const ids = buildResults.map((r) => r.unique_id);
    for (const m of ['clean_orders_stg', 'user_stg', 'user_revenue', 'product_cart_activity', 'vendor_availability']) {
      expect(ids).toContain(`model.store_marts.${m}`);
    }
    for (const t of ['reconcile_etl_runs', 'etl_runs_accounting', 'user_revenue_reconciles']) {
      expect(buildResults.find((r) => r.unique_id === `test.store_marts.${t}`)?.status).toBe('pass');
    }
    expect(buildResults.filter((r) => r.unique_id.startsWith('test.')).length).toBeGreaterThanOrEqual(70);
  });

  test('user_revenue equals the revenue computed independently from the raw fixture files', async () => {
    const expected = expectedUserRevenue();
    const rows = (await query(
      db,
      'SELECT user_id, full_name, CAST(total_revenue AS VARCHAR) FROM store_marts.user_revenue ORDER BY user_id',
    )) as [string, string | null, string][];
    const actual = new Map(rows.map(([id, name, rev]) => [id, { full_name: name, units: toUnits(rev) }]));
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [id, e] of expected) {
      expect({ id, full_name: actual.get(id)!.full_name, revenue: unitsToText(actual.get(id)!.units) }).toEqual({
        id,
        full_name: e.full_name,
        revenue: unitsToText(e.units),
      });
    }
    expect(actual.size).toBeGreaterThan(5);
  });

  test('topUserRevenue (what npm start prints) returns the top users in order', async () => {
    const expected = [...expectedUserRevenue()].sort((a, b) =>
      a[1].units === b[1].units ? a[0].localeCompare(b[0]) : a[1].units > b[1].units ? -1 : 1,
    );
    const top = await topUserRevenue(5, { duckdbPath: db });
    expect(top).toEqual(
      expected.slice(0, 5).map(([id, e]) => ({ user_id: id, full_name: e.full_name, total_revenue: Number(unitsToText(e.units)) })),
    );
  });

  test('dbt docs generate produced the static docs site', () => {
    const index = path.join(target, 'static_index.html');
    expect(fs.statSync(index).size).toBeGreaterThan(100_000);
    const catalog = JSON.parse(fs.readFileSync(path.join(target, 'catalog.json'), 'utf8'));
    expect(Object.keys(catalog.nodes)).toContain('model.store_marts.user_revenue');
    expect(fs.readFileSync(index, 'utf8')).toContain('user_revenue');
  });

  test('batch-only: product_cart_activity has every dim_products option, no cart activity', async () => {
    const [[options]] = await query(db, 'SELECT count(*)::INTEGER FROM store.dim_products');
    const [[rows, carts, sources]] = await query(
      db,
      `SELECT count(*)::INTEGER, sum(open_carts)::INTEGER, string_agg(DISTINCT availability_source, ',')
         FROM store_marts.product_cart_activity`,
    );
    expect(rows).toBe(options);
    expect(carts).toBe(0);
    expect(sources).toBe('batch');
  });

  describe('with stream rows (lambda: batch dimensions + stream facts, the stream file read through its snapshot)', () => {
    // dbt runs on a copy of the batch file; the stream rows are in a stream file of their own,
    // which dbt-build.sh snapshots and attaches as `stream`.
    const streamDb = path.join(path.dirname(db), 'lambda.duckdb');
    const streamFile = path.join(path.dirname(db), 'lambda-stream.duckdb');
    const snapshot = path.join(path.dirname(db), 'lambda-stream-snapshot.duckdb');
    let product = '';
    let optA = '';
    let optB = '';
    let stockA = 0;

    beforeAll(async () => {
      fs.copyFileSync(db, streamDb);
      const [[p, a, b, s]] = (await query(
        streamDb,
        `SELECT product_id, min(option_id), max(option_id), arg_min(stock_quantity, option_id)::INTEGER
           FROM store.dim_products WHERE option_id IS NOT NULL AND stock_quantity > 10
          GROUP BY product_id HAVING count(*) >= 2 ORDER BY product_id LIMIT 1`,
      )) as [string, string, string, number][];
      [product, optA, optB, stockA] = [p, a, b, s];
      const ts = "TIMESTAMP '2026-01-01 10:00:00'";
      const stream = streamDuckDbWarehouse(streamFile, catalog);
      await stream.ensureSchema();
      await stream.close();
      await execDuckDb(streamFile, [
        // cart c1 open, c2 closed, c3 has no status yet (counts as open); nothing rescued (NULL)
        `INSERT INTO store.fact_shoppingcarts VALUES ('9001', true, ${ts}, NULL), ('9002', false, ${ts}, NULL)`,
        `INSERT INTO store.fact_carts_has_products VALUES
           ('9001', '${p}', '${a}', 3, ${ts}, NULL), ('9002', '${p}', '${a}', 5, ${ts}, NULL), ('9003', '${p}', '${a}', 2, ${ts}, NULL)`,
        `INSERT INTO store.fact_products_sold_vendor VALUES ('5000', '${p}', ${ts}, NULL)`,
        // the stream layer's availability for option B of another vendor
        `INSERT INTO store.vendor_product_availability VALUES
           ('5100', '${p}', '${b}', 7, 7, 0, true, TIMESTAMP '2026-01-02 00:00:00')`,
      ]);
      const lines: string[] = [];
      await runDbtBuild({
        env: { ...env, DUCKDB_PATH: streamDb, STREAM_DUCKDB_PATH: streamFile, STREAM_SNAPSHOT_PATH: snapshot, DBT_DOCS: '0' },
        log: (l) => lines.push(l),
      });
      expect(lines.join('\n')).toContain(`dbt-stream-snapshot: copied ${streamFile} to ${snapshot}`);
      expect(problems(runResults(target)).filter((x) => !x.startsWith('warn:'))).toEqual([]);
    });

    test('the batch file holds no stream table: the stream rows come from the snapshot', async () => {
      expect(await query(streamDb, "SELECT count(*)::INTEGER FROM duckdb_tables() WHERE table_name = 'fact_carts_has_products'")).toEqual([[0]]);
      expect(await query(snapshot, 'SELECT count(*)::INTEGER FROM store.fact_carts_has_products')).toEqual([[3]]);
    });

    test('the lambda consistency test flags the stream row that disagrees with the batch rule', () => {
      // (5100, optB) claims stock 7 / held 7; dim_products and the carts say otherwise: warn.
      const r = runResults(target).find((x) => x.unique_id === 'test.store_marts.availability_matches_batch_rule');
      expect(r).toMatchObject({ status: 'warn', failures: 1 });
    });

    test('product_cart_activity: open carts from the stream, availability batch or stream', async () => {
      const rows = (await query(
        streamDb,
        `SELECT option_id, open_carts::INTEGER, units_in_open_carts::INTEGER, available::INTEGER, sold_out, availability_source
           FROM store_marts.product_cart_activity WHERE product_id = '${product}' AND option_id IN ('${optA}', '${optB}')
          ORDER BY option_id`,
      )) as unknown[][];
      expect(rows).toEqual([
        [optA, 2, 5, stockA - 5, false, 'batch'], // c1 (3) + c3 (2); closed c2 not counted
        [optB, 0, 0, 0, true, 'stream'],
      ]);
    });

    test('vendor_availability: batch-computed rows for vendor links, stream rows as written', async () => {
      const rows = (await query(
        streamDb,
        `SELECT vendor_id, option_id, stock::INTEGER, held_in_open_carts::INTEGER, available::INTEGER, sold_out, availability_source
           FROM store_marts.vendor_availability WHERE product_id = '${product}' AND option_id IN ('${optA}', '${optB}')
          ORDER BY vendor_id, option_id`,
      )) as unknown[][];
      expect(rows[0]).toEqual(['5000', optA, stockA, 5, stockA - 5, false, 'batch']);
      expect(rows).toContainEqual(['5100', optB, 7, 7, 0, true, 'stream']);
      const [[vendorName]] = await query(streamDb, "SELECT DISTINCT vendor_name FROM store_marts.vendor_availability WHERE vendor_id = '5000'");
      const [[dimName]] = await query(streamDb, "SELECT vendor_name FROM store.dim_vendors WHERE vendor_id = '5000'");
      expect(vendorName).toBe(dimName);
    });
  });

  test('stream tables absent (batch-only: no stream file): dbt build still passes, serving models empty of stream data', async () => {
    const bareDb = path.join(path.dirname(db), 'bare.duckdb');
    fs.copyFileSync(db, bareDb);
    const lines: string[] = [];
    await runDbtBuild({
      env: { ...env, DUCKDB_PATH: bareDb, STREAM_DUCKDB_PATH: path.join(path.dirname(db), 'no-such-stream.duckdb'), DBT_DOCS: '0' },
      log: (l) => lines.push(l),
    });
    expect(lines.join('\n')).toMatch(/no stream file .*: empty snapshot/);
    expect(lines.join('\n')).toMatch(/fact_shoppingcarts" is absent: reading it as empty/);
    expect(problems(runResults(target)).filter((x) => !x.startsWith('warn:'))).toEqual([]);
    const [[n, carts]] = await query(bareDb, 'SELECT count(*)::INTEGER, sum(open_carts)::INTEGER FROM store_marts.product_cart_activity');
    expect(n).toBeGreaterThan(0);
    expect(carts).toBe(0);
    expect(await query(bareDb, 'SELECT count(*)::INTEGER FROM store_marts.vendor_availability')).toEqual([[0]]);
  });
  test('a warehouse locked by another writer is waited for: dbt build retries and then passes', async () => {
    const lockedDb = path.join(path.dirname(db), 'locked.duckdb');
    fs.copyFileSync(db, lockedDb);
    // This process holds the file (DuckDB: one writing process), like a job would, until dbt has
    // met the lock and said it retries: released on that line, not after a fixed time, so a slow
    // dbt start on a busy machine cannot miss the lock (the 5-minute timer only guards a hang).
    const holder = await DuckDBInstance.create(lockedDb);
    const conn = await holder.connect();
    let held = true;
    const releaseLock = () => {
      if (!held) return;
      held = false;
      conn.closeSync();
      holder.closeSync();
    };
    const release = setTimeout(releaseLock, 300_000);
    const lines: string[] = [];
    try {
      await runDbtBuild({
        env: { ...env, DUCKDB_PATH: lockedDb, DBT_DOCS: '0' },
        log: (l) => {
          lines.push(l);
          if (/locked by another writer; retry/.test(l)) releaseLock();
        },
      });
    } finally {
      clearTimeout(release);
      releaseLock();
    }
    const log = lines.join('\n');
    expect(log).toMatch(/Could not set lock on file/);
    expect(log).toMatch(/the warehouse is locked by another writer; retry 1 of 5/);
    expect(log).toMatch(/Done\. PASS=\d+ WARN=1 ERROR=0/);
    expect(await query(lockedDb, 'SELECT count(*)::INTEGER FROM store_marts.user_revenue')).toEqual([[expectedUserRevenue().size]]);
  });
});
