/**
 * A batch load replaces its table atomically: a job failing or killed inside the load leaves the
 * previous table as it was, and two runs on the same input give identical tables.
 */
import path from 'node:path';
import { count, query, runNode, spawnJobPausedInLoad, tempDir } from '../helpers/env';
import { readAll, STORE_EXPORT } from '../helpers/store-export';
import { generate } from '../../scripts/generate-data';

const facts = readAll(STORE_EXPORT);

const tableDigest = async (db: string, table: string) => {
  const [[digest]] = await query(db, `SELECT md5(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR)) FROM ${table} t`);
  return digest;
};

describe('atomic replace', () => {
  const state = tempDir('atomic');
  const db = path.join(state, 'warehouse.duckdb');
  const other = tempDir('gen');
  let before: unknown;

  beforeAll(async () => {
    await generate({ orders: 50, out: other, seed: 7, faults: false, faultRate: 0 });
    const r = runNode('jobs/dim_vendors.js', ['--source-dir', STORE_EXPORT], { ETL_STATE_DIR: state });
    expect(r.status).toBe(0);
    before = await tableDigest(db, 'store.dim_vendors');
  });

  test('a load failing before COMMIT leaves the previous table', async () => {
    const r = runNode('jobs/dim_vendors.js', ['--source-dir', other], {
      ETL_STATE_DIR: state,
      ETL_TEST_FAIL_BEFORE_COMMIT: '1',
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/error: loading store\.dim_vendors into duckdb .* failed: test hook/);
    expect(await count(db, 'store.dim_vendors')).toBe(facts.vendor.loaded.length);
    expect(await tableDigest(db, 'store.dim_vendors')).toBe(before);
  });

  test('a job killed (SIGKILL) inside the load transaction leaves the previous table', async () => {
    const child = await spawnJobPausedInLoad('dim_vendors', other, state);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(await count(db, 'store.dim_vendors')).toBe(facts.vendor.loaded.length);
    expect(await tableDigest(db, 'store.dim_vendors')).toBe(before);
    // The killed run never committed, so it left no run record either.
    const [[runs]] = await query(db, `SELECT count(*)::INTEGER FROM store._etl_runs WHERE destination = 'store.dim_vendors'`);
    expect(runs).toBe(1);
  });

  test('the next successful run swaps the new table in', async () => {
    const r = runNode('jobs/dim_vendors.js', ['--source-dir', other], { ETL_STATE_DIR: state });
    expect(r.status).toBe(0);
    expect(await count(db, 'store.dim_vendors')).toBe(10);
  });
});

test('two runs on the same input give identical tables and no doubled quarantine', async () => {
  const state = tempDir('idem');
  const db = path.join(state, 'warehouse.duckdb');
  const env = { ETL_STATE_DIR: state, ETL_SOURCE_DIR: STORE_EXPORT };
  const digests: unknown[] = [];
  const quarantined: unknown[] = [];
  for (let i = 0; i < 2; i++) {
    expect(runNode('jobs/fact_orders.js', [], env).status).toBe(0);
    digests.push(await tableDigest(db, 'store.fact_orders'));
    quarantined.push((await query(db, `SELECT count(*)::INTEGER FROM store._quarantine`))[0][0]);
  }
  expect(digests[0]).toBe(digests[1]);
  const q = facts.order.quarantined.length + facts.orders_placed_user.quarantined.length + facts.orders_paid_creditcard.quarantined.length;
  expect(q).toBeGreaterThan(0);
  expect(quarantined).toEqual([q, q]);
  const runs = await query(db, `SELECT rows_out::INTEGER, status FROM store._etl_runs ORDER BY started_at`);
  expect(runs).toEqual([[facts.order.loaded.length, 'success'], [facts.order.loaded.length, 'success']]);
});
