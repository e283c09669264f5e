/**
 * The compose smoke's client of Airflow's REST API (v2, token login): health, DAG runs, triggers,
 * pausing, and a failed run's task logs for the report.
 */
import { catalog } from '../../jobs/catalog';
import { airflowApiSettings } from '../../jobs/lib/config';
import { CheckFailed, say, until } from './smoke-check';

const airflow = airflowApiSettings();
export const BASE = `http://localhost:${airflow.port}`;
export const BATCH_DAGS = catalog.destinations.filter((d) => d.mode === 'batch').map((d) => `${d.table}_dag`);

let token = '';
export async function api<T>(p: string, init: RequestInit = {}): Promise<T> {
  if (!token) {
    const res = await fetch(`${BASE}/auth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: airflow.adminUser, password: airflow.adminPassword }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.status !== 201 && res.status !== 200) throw new Error(`POST /auth/token: HTTP ${res.status} ${await res.text()}`);
    token = ((await res.json()) as { access_token: string }).access_token;
  }
  const res = await fetch(`${BASE}/api/v2${p}`, {
    ...init,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} /api/v2${p}: HTTP ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

export interface DagRun {
  dag_id: string;
  dag_run_id: string;
  state: string;
  run_type: string;
}

/** Every Airflow component healthy and the batch DAGs and dbt_dag parsed. */
export async function airflowReady(): Promise<void> {
  await until('/api/v2/monitor/health to report every component healthy', 600_000, async () => {
    const res = await fetch(`${BASE}/api/v2/monitor/health`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) return undefined;
    const h = (await res.json()) as Record<string, { status?: string }>;
    const bad = ['metadatabase', 'scheduler', 'triggerer', 'dag_processor'].filter((k) => h[k]?.status !== 'healthy');
    if (bad.length) throw new Error(`not healthy yet: ${bad.join(', ')}`);
    return true;
  });
  const want = [...BATCH_DAGS, 'dbt_dag'];
  await until(`the DAGs ${want.join(', ')} to be parsed`, 300_000, async () => {
    const d = await api<{ dags: { dag_id: string }[] }>('/dags?limit=100');
    const missing = want.filter((id) => !d.dags.some((x) => x.dag_id === id));
    if (missing.length) throw new Error(`not parsed yet: ${missing.join(', ')}`);
    return true;
  });
  say(`Airflow healthy at ${BASE}; ${want.length} DAGs parsed`);
}

export const runsOf = async (dagId: string) => (await api<{ dag_runs: DagRun[] }>(`/dags/${dagId}/dagRuns?limit=100`)).dag_runs;

/** A run's task states and the tails of their logs, for a failure's message. */
export async function taskReport(run: DagRun): Promise<string> {
  try {
    const tis = (await api<{ task_instances: { task_id: string; state: string; try_number: number }[] }>(
      `/dags/${run.dag_id}/dagRuns/${encodeURIComponent(run.dag_run_id)}/taskInstances`,
    )).task_instances;
    const parts: string[] = [];
    for (const ti of tis) {
      parts.push(`${ti.task_id}: ${ti.state}`);
      const log = await api<unknown>(
        `/dags/${run.dag_id}/dagRuns/${encodeURIComponent(run.dag_run_id)}/taskInstances/${ti.task_id}/logs/${Math.max(ti.try_number, 1)}?full_content=true`,
        { headers: { Accept: 'application/json' } },
      ).catch((e: Error) => e.message);
      parts.push(JSON.stringify(log).slice(-3000));
    }
    return parts.join('\n');
  } catch (e) {
    return `(no task report: ${(e as Error).message})`;
  }
}

/** Waits until no run of dagId is queued or running, then requires every run to be a success. */
export async function settle(dagId: string, timeoutMs: number): Promise<DagRun[]> {
  const runs = await until(`${dagId} to finish its runs`, timeoutMs, async () => {
    const rs = await runsOf(dagId);
    if (rs.length === 0 || rs.some((r) => r.state === 'queued' || r.state === 'running')) return undefined;
    return rs;
  });
  const failed = runs.filter((r) => r.state !== 'success');
  if (failed.length) throw new CheckFailed(`${dagId}: runs not successful: ${failed.map((r) => `${r.dag_run_id}=${r.state}`).join(', ')}\n${await taskReport(failed[0])}`);
  return runs;
}

export async function trigger(dagId: string): Promise<DagRun> {
  const run = await api<DagRun>(`/dags/${dagId}/dagRuns`, { method: 'POST', body: JSON.stringify({ logical_date: null }) });
  say(`triggered ${dagId}: ${run.dag_run_id}`);
  return run;
}

export const setPaused = (dagId: string, paused: boolean) =>
  api(`/dags/${dagId}`, { method: 'PATCH', body: JSON.stringify({ is_paused: paused }) });
