/**
 * The settings the DAG tasks read reach them in the compose stack (issue 10, defect 1: DBT_TARGET,
 * ETL_CONTAINER_USER, ... were not passed, so with WAREHOUSE=bigquery dbt_dag built DuckDB).
 *
 * The names come from the code: every variable dags/etl_task.py reads must be in the environment
 * of the Airflow services that parse and run the DAGs, and every variable scripts/dbt-build.sh
 * (and the profiles.yml writer it calls) reads must reach the dbt container: set by its image,
 * set by etl_task.py, or passed through by etl_task.py from a scheduler variable. The compose
 * side is the resolved config: `docker compose config` when the CLI is installed (.state/compose,
 * built by npm run compose:smoke), our own resolution of the YAML otherwise (always checked too).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { composeCli, ComposeConfig, environmentOf, interpolate, parseDotenv, resolveOwn, resolveWithCli } from './compose-config';
import { refsInPython, refsInShell, refsInTypeScript, ROOT } from './env-refs';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');
const ETL_TASK = read('dags/etl_task.py');

/** Names etl_task.py sets itself in the task container's environment. */
const setByTask = new Set([
  ...[...(/\benvironment\s*=\s*\{([^}]*)\}/.exec(ETL_TASK)?.[1] ?? '').matchAll(/["']([A-Z_][A-Z0-9_]*)["']\s*:/g)].map((m) => m[1]),
  ...[...ETL_TASK.matchAll(/\b(?:private_)?environment\[\s*["']([A-Z_][A-Z0-9_]*)["']\s*\]\s*=/g)].map((m) => m[1]),
]);
/** Names etl_task.py passes through from its own environment: PASS_ENV and PASS_ENV_PREFIXES. */
const passList = [...(/PASS_ENV\s*=\s*\[([^\]]*)\]/.exec(ETL_TASK)?.[1] ?? '').matchAll(/["']([A-Z_][A-Z0-9_]*)["']/g)].map((m) => m[1]);
const passPrefixes = [...(/PASS_ENV_PREFIXES\s*=\s*\(([^)]*)\)/.exec(ETL_TASK)?.[1] ?? '').matchAll(/["']([A-Z_]+)["']/g)].map((m) => m[1]);
const passedThrough = (n: string) => passList.includes(n) || passPrefixes.some((p) => n.startsWith(p));

/** ENV names a Dockerfile sets (ENV A=1 B=2, continued lines joined). */
function imageEnv(dockerfile: string): Set<string> {
  const text = read(dockerfile).replace(/\\\r?\n/g, ' ');
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^\s*ENV\s+(.*)$/i.exec(line);
    if (m) for (const n of m[1].matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=/g)) names.add(n[1]);
  }
  return names;
}

/** Read by dbt-build.sh but deliberately not settings of the deployment, with the reason. */
const NOT_PASSED: Record<string, string> = {
  DBT_USE_COLORS: 'the script turns colours off itself when the output is not a terminal (task logs never are)',
  STREAM_SNAPSHOT_PATH:
    "the dbt container derives it from its ETL_STATE_DIR (/data/state), where the stream container publishes it; a host path would not exist there",
  STREAM_DUCKDB_PATH: 'the same: derived from the dbt container\'s ETL_STATE_DIR, where the stream container keeps its file',
  STREAM_SNAPSHOT_WAIT_S: "the spec's default (60 s) is the deployment's; the scan sees it since dbt-build.sh resolves it for the snapshot step",
};

/** Services that parse the DAG files (dag-processor) and run their tasks (scheduler, LocalExecutor). */
const DAG_SERVICES = ['airflow-dag-processor', 'airflow-scheduler'];

function envFile(extra: Record<string, string>): string {
  const base = parseDotenv(read('.env.example'));
  // What npm run secrets fills: any non-empty value satisfies compose's ${NAME:?...}.
  const filled: Record<string, string> = {
    ...base,
    POSTGRES_PASSWORD: 'p', AIRFLOW_ADMIN_PASSWORD: 'a', AIRFLOW__CORE__FERNET_KEY: 'f',
    AIRFLOW__API__SECRET_KEY: 's', AIRFLOW__API_AUTH__JWT_SECRET: 'j', ETL_HOST_PROJECT_DIR: '/srv/store-etl', DOCKER_GID: '991',
    ...extra,
  };
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'task-env-')), '.env');
  fs.writeFileSync(file, Object.entries(filled).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  return file;
}

const cli = composeCli();
// Our resolution always; the CLI's too when present, and both must hold.
const resolvers: [string, (envFile: string) => ComposeConfig][] = [['own YAML resolution', (f) => resolveOwn(f)]];
if (cli) resolvers.push([`${cli.join(' ')} config`, (f) => resolveWithCli(cli, f)]);
else console.log('task-env.test: no docker compose v2 CLI here (npm run compose:smoke builds one): checking with our own resolution only');

describe('names read by the tasks (scan sanity)', () => {
  test('etl_task.py: the scan finds what it reads and passes', () => {
    const reads = refsInPython(ETL_TASK);
    for (const n of ['ETL_RUNNER', 'ETL_HOST_PROJECT_DIR', 'DOCKER_URL', 'ETL_CONTAINER_USER', 'DUCKDB_PATH', 'DBT_TARGET']) expect(reads).toContain(n);
    expect([...setByTask].sort()).toEqual(['DUCKDB_PATH', 'ETL_SOURCE_DIR', 'ETL_STATE_DIR', 'GOOGLE_APPLICATION_CREDENTIALS']);
    // LOG_FORMAT is the task's own (plain lines in the Airflow task log), never the scheduler's.
    expect(/TASK_ENV\s*=\s*\{\s*"LOG_FORMAT":\s*"plain"\s*\}/.test(ETL_TASK)).toBe(true);
    expect(passList).not.toContain('LOG_FORMAT');
    expect(passPrefixes).toEqual(expect.arrayContaining(['BIGQUERY_', 'GCP_']));
  });
  test('dbt-build.sh: the scan finds its settings', () => {
    expect(refsInShell(read('scripts/dbt-build.sh'))).toEqual(expect.arrayContaining(['DBT_TARGET', 'DBT_DOCS', 'DBT_LOCK_RETRIES', 'DUCKDB_PATH']));
  });
  test('interpolation as compose does it', () => {
    const env = { A: 'a', E: '', W: 'bigquery' };
    expect(interpolate('${A} ${A:-x} ${E:-x} ${E-x} ${U:-x} $$A ${D:-${W:-duckdb}} ${A:+y}${E:+n}', env)).toBe('a a x  x $A bigquery y');
    expect(() => interpolate('${E:?set E}', env)).toThrow('set E');
    expect(interpolate('${E?set E}', env)).toBe('');
  });
});

describe.each(resolvers)('compose stack, resolved by %s', (_how, resolve) => {
  test('every variable dags/etl_task.py reads is set in the services that parse and run the DAGs', () => {
    const config = resolve(envFile({}));
    const reads = [...new Set(refsInPython(ETL_TASK))];
    for (const name of DAG_SERVICES) {
      const env = environmentOf(config.services[name]);
      const missing = reads.filter((n) => !(n in env));
      expect({ service: name, missing }).toEqual({ service: name, missing: [] });
      expect(env.ETL_RUNNER).toBe('docker');
      expect(env.AIRFLOW__CORE__EXECUTOR).toBe('LocalExecutor');
    }
  });

  test('every variable scripts/dbt-build.sh and the profiles writer read reaches the dbt container', () => {
    const config = resolve(envFile({}));
    const scheduler = environmentOf(config.services['airflow-scheduler']);
    const image = imageEnv('docker/dbt.Dockerfile');
    const reads = [...new Set([...refsInShell(read('scripts/dbt-build.sh')), ...refsInTypeScript(read('scripts/dbt-profiles.ts'))])];
    const unreached = reads.filter(
      (n) => !(n in NOT_PASSED) && !image.has(n) && !setByTask.has(n) && !(passedThrough(n) && n in scheduler),
    );
    expect(unreached).toEqual([]);
  });

  test('the values in .env reach the task runner (scheduler), which alone reaches the engine (through socket-proxy)', () => {
    const config = resolve(envFile({ ETL_CONTAINER_USER: '1234:1234', DBT_THREADS: '3', DBT_DOCS: '0', DBT_LOCK_RETRIES: '7', DUCKDB_PATH: '/data/wh/w.duckdb', DOCKER_SOCKET: '/run/podman/podman.sock' }));
    const s = config.services['airflow-scheduler'];
    const env = environmentOf(s);
    expect([env.ETL_CONTAINER_USER, env.DBT_THREADS, env.DBT_DOCS, env.DBT_LOCK_RETRIES, env.DUCKDB_PATH]).toEqual(['1234:1234', '3', '0', '7', '/data/wh/w.duckdb']);
    const sockets = (svc: Record<string, any>) =>
      (svc.volumes ?? [])
        .map((v: any) => (typeof v === 'string' ? v : `${v.source}:${v.target}`))
        .filter((v: string) => v.endsWith(':/run/engine.sock') || v.endsWith(':/run/engine-proxy'));
    // The engine's socket goes to the proxy; the scheduler gets the proxy's socket and its group.
    expect(sockets(config.services['socket-proxy'])).toEqual(['/run/podman/podman.sock:/run/engine.sock', expect.stringMatching(/engine-proxy:\/run\/engine-proxy$/)]);
    expect(environmentOf(config.services['socket-proxy']).ENGINE_PROXY_GID).toBe('991');
    expect(sockets(s)).toEqual([expect.stringMatching(/engine-proxy:\/run\/engine-proxy$/)]);
    expect((s.group_add ?? []).map(String)).toEqual(['991']);
    for (const name of ['airflow-apiserver', 'airflow-dag-processor', 'airflow-triggerer', 'airflow-init']) {
      expect({ name, sockets: sockets(config.services[name]) }).toEqual({ name, sockets: [] });
    }
  });

  test('WAREHOUSE=bigquery makes dbt_dag build the bigquery target; DBT_TARGET still wins when set', () => {
    const bq = resolve(envFile({ WAREHOUSE: 'bigquery', GCP_PROJECT_ID: 'my-project' }));
    for (const name of DAG_SERVICES) {
      const env = environmentOf(bq.services[name]);
      expect({ name, WAREHOUSE: env.WAREHOUSE, DBT_TARGET: env.DBT_TARGET }).toEqual({ name, WAREHOUSE: 'bigquery', DBT_TARGET: 'bigquery' });
      expect(env.GCP_PROJECT_ID).toBe('my-project');
    }
    expect(environmentOf(resolve(envFile({})).services['airflow-scheduler']).DBT_TARGET).toBe('duckdb');
    expect(environmentOf(resolve(envFile({ WAREHOUSE: 'bigquery', DBT_TARGET: 'duckdb' })).services['airflow-scheduler']).DBT_TARGET).toBe('duckdb');
  });

  test('the producer is not part of a plain `up` (profile replay), so no up/start replays the stream', () => {
    expect(Object.keys(resolve(envFile({})).services)).not.toContain('producer');
  });

  test('compose refuses to start without the host settings npm run secrets fills', () => {
    for (const name of ['ETL_HOST_PROJECT_DIR', 'DOCKER_GID']) {
      expect(() => resolve(envFile({ [name]: '' }))).toThrow(new RegExp(name));
    }
  });
});
