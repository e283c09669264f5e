/**
 * The Airflow 3 UI as a user drives it: `scripts/airflow.sh` (what `npm run airflow` runs)
 * starts Airflow at http://localhost:$AIRFLOW_PORT (default 8080) with a private AIRFLOW_HOME;
 * Chromium (playwright-core) logs in with the admin login from env, unpauses fact_orders_dag with
 * its toggle, triggers it, waits for the run to succeed (the table lands in DuckDB, rows
 * asserted), and triggers dbt_dag by hand and waits for it to succeed (the marts land in DuckDB).
 * Screenshots go to test-artifacts/airflow/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { count, query, ROOT, runNode, tempDir } from '../helpers/env';
import { expectedUserRevenue, readAll, STORE_EXPORT } from '../helpers/store-export';
import { missingDbt } from '../dbt/dbt-env';
import { ARTIFACTS, CHROMIUM, describeWith, missingAirflow, missingChromium } from './airflow-env';

const PORT = Number(process.env.AIRFLOW_PORT || 8080);
const BASE = `http://localhost:${PORT}`;
const USER = 'ui-tester';
const PASSWORD = crypto.randomBytes(12).toString('hex');

interface DagRun {
  dag_run_id: string;
  run_type: string;
  state: string;
}

async function isUp(): Promise<boolean> {
  try {
    return (await fetch(`${BASE}/api/v2/monitor/health`, { signal: AbortSignal.timeout(3000) })).ok;
  } catch {
    return false;
  }
}

/** Polls `probe` every second until it returns a value; on timeout says what it saw last. */
async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  lastSeen: () => unknown = () => '',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; last seen: ${JSON.stringify(lastSeen())}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describeWith([missingAirflow(), missingChromium(), missingDbt()], `Airflow UI at localhost:${PORT} (Chromium)`, () => {
  jest.setTimeout(900_000);
  let airflow: ChildProcess | undefined;
  let airflowLog = '';
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let token = '';
  const state = tempDir('airflow-ui-state');

  async function api<T>(p: string, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${BASE}/api/v2${p}`, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) },
    });
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }
  const runs = async (dagId: string) =>
    (await api<{ dag_runs: DagRun[] }>(`/dags/${dagId}/dagRuns?limit=50`)).dag_runs;
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });

  beforeAll(async () => {
    if (await isUp()) throw new Error(`something already answers on ${BASE}: stop it (e.g. a dev's \`npm run airflow\`) first`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const t0 = Date.now();
    airflow = spawn('bash', ['scripts/airflow.sh'], {
      cwd: ROOT,
      detached: true, // own process group: stopped as a whole in afterAll
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        LANG: 'C.UTF-8',
        AIRFLOW_HOME: tempDir('airflow-ui-home'),
        AIRFLOW_PORT: String(PORT),
        AIRFLOW_ADMIN_USER: USER,
        AIRFLOW_ADMIN_PASSWORD: PASSWORD,
        AIRFLOW_ENV_FILE: '/dev/null',
        ETL_RUNNER: 'local',
        ETL_SOURCE_DIR: STORE_EXPORT,
        ETL_STATE_DIR: state,
        DBT_TARGET_PATH: path.join(state, 'dbt-target'),
        DBT_LOG_PATH: path.join(state, 'dbt-logs'),
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'warn',
      },
    });
    const keep = (b: Buffer) => {
      airflowLog = (airflowLog + b.toString()).slice(-20000);
    };
    airflow.stdout!.on('data', keep);
    airflow.stderr!.on('data', keep);
    await until(`Airflow to answer on :${PORT}`, 180_000, async () => {
      if (airflow!.exitCode !== null) throw new Error(`scripts/airflow.sh exited ${airflow!.exitCode}:\n${airflowLog}`);
      return (await isUp()) ? true : undefined;
    });
    console.log(`[timing] airflow up: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const res = await fetch(`${BASE}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: USER, password: PASSWORD }),
    });
    expect(res.status).toBe(201);
    token = ((await res.json()) as { access_token: string }).access_token;
    // The dag-processor has parsed dags/ (every DAG listed, paused at creation).
    await until('the 6 DAGs to be parsed', 120_000, async () => {
      const d = await api<{ total_entries: number }>('/dags?limit=1');
      return d.total_entries >= 6 ? true : undefined;
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    if (airflow?.pid && airflow.exitCode === null) {
      const exited = new Promise((r) => airflow!.once('exit', r));
      // airflow.sh stops every Airflow process on SIGTERM (TERM, then KILL after 15 s).
      process.kill(-airflow.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = await Promise.race([
        exited.then(() => true),
        new Promise((r) => (timer = setTimeout(() => r(false), 45_000))),
      ]);
      clearTimeout(timer);
      if (!killed) process.kill(-airflow.pid, 'SIGKILL');
    }
    // Only now: closing the pipes earlier would cut the script off while it stops Airflow.
    airflow?.stdout?.destroy();
    airflow?.stderr?.destroy();
    fs.writeFileSync(path.join(ARTIFACTS, 'airflow-ui-test.log'), airflowLog);
  }, 90_000);

  test('log in, unpause and trigger fact_orders_dag, wait for success, trigger dbt_dag', async () => {
    const ref = tempDir('ref-state');
    expect(runNode('jobs/fact_orders.js', [], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: ref }).status).toBe(0);
    const expected = await count(path.join(ref, 'warehouse.duckdb'), 'store.fact_orders');

    const page = await context!.newPage();
    // Login: the simple auth manager's form, with the login from env.
    await page.goto(`${BASE}/`);
    await page.waitForURL(/\/auth\/login/);
    await page.fill('input[name=username]', USER);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForURL((u) => !u.pathname.startsWith('/auth'), { timeout: 30_000 });

    // The dag-processor of this Airflow found no import errors in dags/.
    expect(await api<{ total_entries: number }>('/importErrors')).toMatchObject({ total_entries: 0 });
    // DAG list: every generated DAG is there.
    await page.goto(`${BASE}/dags`);
    for (const id of ['fact_orders_dag', 'fact_order_details_dag', 'dim_products_dag', 'dim_users_dag', 'dim_vendors_dag', 'dbt_dag']) {
      await page.locator(`a[href="/dags/${id}"]`).first().waitFor({ timeout: 30_000 });
    }
    await shot(page, '01-dag-list.png');

    // Unpause with the toggle.
    await page.goto(`${BASE}/dags/fact_orders_dag`);
    const toggle = page.getByTestId('toggle-pause');
    await toggle.waitFor();
    expect(await toggle.getAttribute('data-state')).toBe('unchecked');
    await toggle.click();
    await until('fact_orders_dag to be unpaused', 30_000, async () =>
      (await api<{ is_paused: boolean }>('/dags/fact_orders_dag')).is_paused ? undefined : true,
    );
    expect(await toggle.getAttribute('data-state')).toBe('checked');

    // Trigger a manual run through the trigger dialog.
    await page.getByTestId('trigger-dag-button').click();
    await page.getByTestId('trigger-dag-submit').click();
    const manual = await until('the manual run of fact_orders_dag', 30_000, async () =>
      (await runs('fact_orders_dag')).find((r) => r.run_type === 'manual'),
    );
    const done = await until('the manual run to finish', 240_000, async () => {
      const r = (await runs('fact_orders_dag')).find((x) => x.dag_run_id === manual.dag_run_id)!;
      return ['success', 'failed'].includes(r.state) ? r : undefined;
    });
    expect({ state: done.state, log: done.state === 'success' ? '' : airflowLog.slice(-3000) }).toEqual({ state: 'success', log: '' });
    expect(await count(path.join(state, 'warehouse.duckdb'), 'store.fact_orders')).toBe(expected);

    await page.goto(`${BASE}/dags/fact_orders_dag/runs/${encodeURIComponent(manual.dag_run_id)}`);
    await page.getByText(/success/i).first().waitFor({ timeout: 30_000 });
    await shot(page, '02-fact_orders_dag-run-success.png');

    // dbt_dag: manual only (no schedule); trigger it by hand from its page once every batch
    // table is in the warehouse (loaded here directly: dbt needs them all), and it must succeed.
    const load = runNode('scripts/start.js', ['--skip-stream', '--skip-dbt'], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: state });
    expect({ status: load.status, err: load.status === 0 ? '' : load.stderr }).toEqual({ status: 0, err: '' });
    expect((await api<{ timetable_summary: string | null }>('/dags/dbt_dag')).timetable_summary).toBeNull();
    await page.goto(`${BASE}/dags/dbt_dag`);
    await page.getByTestId('trigger-dag-button').click();
    await page.getByTestId('trigger-dag-submit').click();
    const dbtRun = await until('the manual run of dbt_dag', 30_000, async () =>
      (await runs('dbt_dag')).find((r) => r.run_type === 'manual'),
    );
    expect(await runs('dbt_dag')).toHaveLength(1);
    const dbtDone = await until('the manual run of dbt_dag to finish', 420_000, async () => {
      const r = (await runs('dbt_dag')).find((x) => x.dag_run_id === dbtRun.dag_run_id)!;
      return ['success', 'failed'].includes(r.state) ? r : undefined;
    });
    expect({ state: dbtDone.state, log: dbtDone.state === 'success' ? '' : airflowLog.slice(-3000) }).toEqual({ state: 'success', log: '' });
    const users = expectedUserRevenue(readAll(STORE_EXPORT)).size;
    expect(await query(path.join(state, 'warehouse.duckdb'), 'SELECT count(*)::INTEGER FROM store_marts.user_revenue')).toEqual([[users]]);
    await page.goto(`${BASE}/dags/dbt_dag/runs/${encodeURIComponent(dbtRun.dag_run_id)}`);
    await page.waitForLoadState('networkidle');
    await shot(page, '03-dbt_dag-triggered.png');
    console.log(`[ui] dbt_dag run ${dbtRun.dag_run_id}: ${dbtDone.state}`);
  });

  test('warehouse writes never overlap: the 1-slot pool runs tasks of different DAGs one at a time', async () => {
    const pool = await api<{ slots: number }>('/pools/duckdb_warehouse');
    expect(pool.slots).toBe(1);
    const dags = ['dim_vendors_dag', 'dim_users_dag'];
    for (const id of dags) {
      await api(`/dags/${id}`, { method: 'PATCH', body: JSON.stringify({ is_paused: false }) });
      await api(`/dags/${id}/dagRuns`, { method: 'POST', body: JSON.stringify({ logical_date: null }) });
    }
    interface Ti { task_id: string; dag_id: string; state: string; pool: string; start_date: string; end_date: string }
    const all = [...dags, 'fact_orders_dag'];
    let seen: Ti[] = [];
    const tis = await until(
      'the triggered runs to finish',
      240_000,
      async () => {
        const list = (await Promise.all(all.map((id) => api<{ task_instances: Ti[] }>(`/dags/${id}/dagRuns/~/taskInstances`))))
          .flatMap((x) => x.task_instances);
        seen = list;
        const mine = list.filter((t) => dags.includes(t.dag_id));
        return mine.length >= dags.length && list.every((t) => ['success', 'failed'].includes(t.state)) ? list : undefined;
      },
      () => seen.map((t) => `${t.dag_id}.${t.task_id}:${t.state}`),
    );
    const summary = tis
      .map((t) => ({ id: `${t.dag_id}.${t.task_id}`, state: t.state, pool: t.pool, start: t.start_date, end: t.end_date }))
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    const bad = summary.filter((t) => t.state !== 'success' || t.pool !== 'duckdb_warehouse');
    const overlaps = summary.slice(1).filter((t, i) => Date.parse(t.start) < Date.parse(summary[i].end));
    expect({ bad, overlaps, all: bad.length + overlaps.length ? summary : [] }).toEqual({ bad: [], overlaps: [], all: [] });
    expect(await count(path.join(state, 'warehouse.duckdb'), 'store.dim_vendors')).toBeGreaterThan(0);
    expect(await count(path.join(state, 'warehouse.duckdb'), 'store.dim_users')).toBeGreaterThan(0);
    // The session of the first test's login (same browser context).
    const page = await context!.newPage();
    await page.goto(`${BASE}/dags`);
    await page.waitForLoadState('networkidle');
    await shot(page, '04-dag-list-after-runs.png');
    console.log(`[ui] ${tis.length} warehouse tasks ran one at a time`);
  });
});
