/**
 * ELT killed at each phase (upload, checks, transform, commit: before BigQuery ran the commit and
 * right after it did): the destination is the old table or the new one, never a mix, and the
 * next run drops the staging tables the killed one left and loads the new table. A job that
 * fails (not killed) drops its staging tables itself.
 *
 * The kill happens at a known request (BigQueryDouble.cutOff): from it on, nothing the job sends
 * reaches BigQuery, as when its process is gone, so its own cleanup cannot run either.
 */
import { STORE_EXPORT } from '../helpers/store-export';
import { describeWithDouble, PROJECT, type RecordedRequest } from './bigquery-double';
import { batchOnDouble, readTarget, runJob, stagingTables, type Target } from './elt-helpers';

jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const TABLE = 'fact_orders';
const queryOf = (r: RecordedRequest): string => (r.body as any)?.configuration?.query?.query ?? '';
const isQuery = (text: string) => (r: RecordedRequest) => r.method === 'POST' && /\/jobs$/.test(r.path) && queryOf(r).includes(text);

const PHASES: [string, (r: RecordedRequest) => boolean, number, boolean, 'old' | 'new'][] = [
  ['upload (the second Parquet load job)', (r) => r.upload?.metadata?.configuration?.load?.sourceFormat === 'PARQUET', 2, false, 'old'],
  ['checks (the first duplicate-key job)', isQuery("'duplicate_key'"), 1, false, 'old'],
  ['transform (the INSERT into the result table)', isQuery('__result'), 1, false, 'old'],
  ['commit, before BigQuery ran it', isQuery('BEGIN TRANSACTION'), 1, false, 'old'],
  ['commit, right after BigQuery ran it', isQuery('BEGIN TRANSACTION'), 1, true, 'new'],
];

describeWithDouble('ELT killed at each phase leaves the old table or the new one; the next run cleans up', () => {
  const on = batchOnDouble('bq-elt-kill-');
  const target: Target = { kind: 'bigquery', mode: 'elt', dataset: 'store' };

  const destination = async () => (await readTarget(target, on.bq))[TABLE];

  test.each(PHASES)('killed at %s', async (_phase, match, n, executeLast, expected) => {
    await on.bq.reset();
    expect((await runJob(TABLE, target, STORE_EXPORT, on.dir)).run.status).toBe('success');
    const fresh = await destination();
    // The old table: the same keys, another ship_name, so old and new can be told apart.
    await on.bq.sql(`UPDATE \`${PROJECT}.store.${TABLE}\` SET ship_name = 'old table' WHERE TRUE`);
    const old = await destination();
    expect(old).not.toEqual(fresh);

    const killed = on.bq.cutOff(match, n, executeLast);
    await expect(runJob(TABLE, target, STORE_EXPORT, on.dir)).rejects.toThrow();
    await killed;
    on.bq.revive();
    expect(await destination()).toEqual(expected === 'old' ? old : fresh);
    const left = await stagingTables(on.bq, 'store');
    expect(left.length).toBeGreaterThan(0);

    const next = await runJob(TABLE, target, STORE_EXPORT, on.dir);
    expect(next.run.status).toBe('success');
    expect(await destination()).toEqual(fresh);
    expect(await stagingTables(on.bq, 'store')).toEqual([]);
  }, 180_000);

  test('a job failing after its checks (MAX_QUARANTINE_SHARE) keeps the old table and drops its staging tables', async () => {
    await on.bq.reset();
    expect((await runJob(TABLE, target, STORE_EXPORT, on.dir)).run.status).toBe('success');
    await on.bq.sql(`UPDATE \`${PROJECT}.store.${TABLE}\` SET ship_name = 'old table' WHERE TRUE`);
    const old = await destination();
    const uploadsBefore = on.bq.requests.filter((r) => r.upload).length;
    process.env.MAX_QUARANTINE_SHARE = '0.0001';
    try {
      const err = await runJob(TABLE, target, STORE_EXPORT, on.dir).catch((e) => e);
      expect(err.exitCode).toBe(2);
      expect(err.message).toMatch(/MAX_QUARANTINE_SHARE=0.0001/);
    } finally {
      delete process.env.MAX_QUARANTINE_SHARE;
    }
    // It had uploaded and checked in BigQuery before it failed.
    expect(on.bq.requests.filter((r) => r.upload).length).toBeGreaterThan(uploadsBefore);
    expect(await destination()).toEqual(old);
    expect(await stagingTables(on.bq, 'store')).toEqual([]);
  }, 180_000);
});
