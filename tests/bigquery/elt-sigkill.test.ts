/**
 * ELT killed with a real SIGKILL at each phase: the batch job runs as its own process (the CLI,
 * `node dist/jobs/fact_orders.js`, WAREHOUSE=bigquery, BATCH_MODE=elt) against the double
 * (double-bridge.ts), held by ETL_TEST_HOLD_AT_PHASE / ETL_TEST_HOLD_FILE once BigQuery has seen
 * part of the phase, and killed there. The destination must be the old table (the new one once
 * BigQuery ran the commit), the staging tables the dead job left still there, and the next run
 * must drop them, remove the dead job's scratch folder and load the new table.
 *
 * elt-kill.test.ts kills in the middle of a request (in-process, BigQueryDouble.cutOff); this
 * one proves the same of a process that dies with no chance to clean up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ELT_HOLD_PHASES, type EltHoldPhase } from '../../jobs/lib/config/spec';
import { ROOT } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { describeWithDouble, PROJECT } from './bigquery-double';
import { batchOnDouble, readTarget, runJob, stagingTables, type Target } from './elt-helpers';

jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const TABLE = 'fact_orders';
const DATASET = 'store';
/** After BigQuery ran the commit script the new table is there; at every earlier hold, the old one. */
const EXPECTED: Record<EltHoldPhase, 'old' | 'new'> = { upload: 'old', checks: 'old', transform: 'old', commit: 'old', committed: 'new' };
/** The staging tables the killed job had made (after `_stg_<runId>_`): where it was held. */
const UPLOADED = ['_quarantine', 'order', 'orders_paid_creditcard', 'orders_placed_user'];
const TRANSFORMED = [...UPLOADED, '_result'].sort();
const LEFT: Record<EltHoldPhase, string[]> = { upload: ['order'], checks: UPLOADED, transform: TRANSFORMED, commit: TRANSFORMED, committed: TRANSFORMED };
/** `_stg_<runId>_<what>`: the run's prefix and what the table holds. */
const RUN_TABLE = new RegExp(`^(_stg_${TABLE}_\\d{8}T\\d{6}_[0-9a-f]{6})_(.+)$`);

/** Resolves when `file` exists; rejects if the child exits first. */
function held(file: string, child: ChildProcess, stderr: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the job exited (${code}) before it held: ${stderr().slice(-3000)}`));
    child.once('exit', onExit);
    const poll = () => {
      if (fs.existsSync(file)) {
        child.off('exit', onExit);
        resolve();
      } else if (child.exitCode === null) setTimeout(poll, 20);
    };
    poll();
  });
}

describeWithDouble('ELT killed by SIGKILL at each phase leaves the old table or the new one; the next run cleans up', () => {
  const on = batchOnDouble('bq-elt-sigkill-');
  const target: Target = { kind: 'bigquery', mode: 'elt', dataset: DATASET };
  let bridge: { port: number; close: () => Promise<void> };
  let hook: string;

  beforeAll(async () => {
    bridge = await on.bq.serve();
    hook = path.join(on.dir, 'bridge-hook.js');
    fs.writeFileSync(hook, `require(${JSON.stringify(path.join(ROOT, 'dist/tests/bigquery/double-bridge.js'))}).bridgeToDouble(${bridge.port});\n`);
  });
  afterAll(async () => bridge?.close());
  // A test failing before its kill leaves no job behind.
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  const destination = async () => (await readTarget(target, on.bq))[TABLE];
  // runJob's state folder for this target: the child uses the same one.
  const stateDir = () => path.join(on.dir, DATASET);
  const scratchFolders = () => (fs.existsSync(path.join(stateDir(), 'tmp')) ? fs.readdirSync(path.join(stateDir(), 'tmp')) : []);

  /** The job as a process, held at `phase`; resolves once it waits there. */
  async function spawnHeld(phase: EltHoldPhase, holdFile: string): Promise<ChildProcess> {
    fs.writeFileSync(holdFile, '');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_FORMAT: 'json', LOG_LEVEL: 'warn',
      GCP_PROJECT_ID: process.env.GCP_PROJECT_ID!, GOOGLE_APPLICATION_CREDENTIALS: process.env.GOOGLE_APPLICATION_CREDENTIALS!,
      BIGQUERY_LOCATION: process.env.BIGQUERY_LOCATION!, BIGQUERY_MAX_RETRIES: '0', BIGQUERY_DATASET: DATASET,
      WAREHOUSE: 'bigquery', BATCH_MODE: 'elt', ETL_STATE_DIR: stateDir(),
      ETL_TEST_HOLD_FILE: holdFile, ETL_TEST_HOLD_AT_PHASE: phase,
    };
    const job = spawn(process.execPath, ['--require', hook, path.join(ROOT, 'dist/jobs', `${TABLE}.js`), '--source-dir', STORE_EXPORT], { cwd: ROOT, env });
    child = job;
    let stderr = '';
    job.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-10_000)));
    job.stdout!.resume();
    await held(`${holdFile}.held`, job, () => stderr);
    return job;
  }

  test.each(ELT_HOLD_PHASES.map((p) => [p]))('SIGKILL held at %s', async (phase) => {
    await on.bq.reset();
    expect((await runJob(TABLE, target, STORE_EXPORT, on.dir)).run.status).toBe('success');
    const fresh = await destination();
    expect(fresh.length).toBeGreaterThan(0);
    // The old table: the same keys, another ship_name, so old and new can be told apart.
    await on.bq.sql(`UPDATE \`${PROJECT}.store.${TABLE}\` SET ship_name = 'old table' WHERE TRUE`);
    const old = await destination();
    expect(old).not.toEqual(fresh);
    expect(scratchFolders()).toEqual([]);

    const holdFile = path.join(on.dir, `hold-${phase}`);
    const job = await spawnHeld(phase, holdFile);
    expect(Number(fs.readFileSync(`${holdFile}.held`, 'utf8'))).toBe(job.pid);
    const exited = new Promise<NodeJS.Signals | null>((r) => job.once('exit', (_code, signal) => r(signal)));
    job.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    fs.rmSync(holdFile, { force: true });

    expect(await destination()).toEqual(EXPECTED[phase] === 'old' ? old : fresh);
    // The dead job cleaned nothing: its staging tables and its scratch folder are left.
    const left = await stagingTables(on.bq, DATASET);
    expect(left.map((t) => RUN_TABLE.exec(t)?.[2]).sort()).toEqual(LEFT[phase]);
    expect(new Set(left.map((t) => RUN_TABLE.exec(t)?.[1])).size).toBe(1);
    expect(scratchFolders()).toHaveLength(1);

    const next = await runJob(TABLE, target, STORE_EXPORT, on.dir);
    expect(next.run.status).toBe('success');
    expect(await destination()).toEqual(fresh);
    expect(await stagingTables(on.bq, DATASET)).toEqual([]);
    expect(scratchFolders()).toEqual([]);
  }, 180_000);
});
