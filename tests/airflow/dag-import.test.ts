/**
 * Every generated DAG imports in Airflow itself (DagBag of the pinned Airflow 3) with zero
 * import errors, in both runner modes, and carries the catalog's settings: schedule, catchup
 * off, retries, the warehouse pool, the table's image and mounts (docker) or job CLI (local).
 */
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { ROOT, tempDir } from '../helpers/env';
import { airflowEnv, describeWith, missingAirflow, output, runIn, timed, VENV_BIN } from './airflow-env';

interface TaskInfo {
  task_id: string;
  operator: string;
  pool: string;
  retries: number;
  retry_delay_s: number;
  image?: string;
  docker_url?: string;
  network_mode?: string | null;
  mounts?: { target: string; source: string; ro: boolean }[];
  environment?: Record<string, string>;
  private_env_names?: string[];
  auto_remove?: string;
  mount_tmp_dir?: boolean;
  bash_command?: string;
  cwd?: string;
}
interface DagInfo {
  schedule: string | null;
  timetable: string;
  start_date: string;
  catchup: boolean;
  max_active_runs: number;
  tags: string[];
  tasks: TaskInfo[];
}
interface Bag {
  import_errors: Record<string, string>;
  dags: Record<string, DagInfo>;
}

const CRON: Record<string, string> = { '@hourly': '0 * * * *', '@daily': '0 0 * * *' };
const batch = catalog.destinations.filter((d) => d.mode === 'batch');
const dagIds = [...batch.map((d) => `${d.table}_dag`), 'dbt_dag'].sort();

function loadBag(env: Record<string, string>): Bag {
  const home = tempDir('airflow-dagbag');
  const r = runIn(airflowEnv(home, env), path.join(VENV_BIN, 'python'), [
    path.join(__dirname, 'inspect_dags.py'),
    path.join(ROOT, 'dags'),
  ]);
  const line = r.stdout.split('\n').find((l) => l.startsWith('DAGBAG_JSON:'));
  if (r.status !== 0 || !line) throw new Error(`DagBag failed:\n${output(r)}`);
  return JSON.parse(line.slice('DAGBAG_JSON:'.length)) as Bag;
}

describeWith([missingAirflow()], 'generated DAGs in Airflow (DagBag)', () => {
  jest.setTimeout(120_000);

  test('docker runner: zero import errors, catalog settings, DockerOperator with mounts and pool', () => {
    const bag = timed('DagBag docker', () =>
      loadBag({
        ETL_RUNNER: 'docker',
        DOCKER_URL: 'unix:///run/podman/podman.sock',
        DOCKER_NETWORK: 'host',
        ETL_SOURCE_DIR: '/srv/etl/source',
        ETL_STATE_DIR: 'relative-state',
        WAREHOUSE: 'duckdb',
        DUCKDB_LOCK_RETRIES: '7',
      }),
    );
    expect(bag.import_errors).toEqual({});
    expect(Object.keys(bag.dags).sort()).toEqual(dagIds);
    for (const d of batch) {
      const dag = bag.dags[`${d.table}_dag`];
      const schedule = d.dag?.schedule ?? catalog.dagDefaults.schedule!;
      expect(dag.schedule).toBe(CRON[schedule] ?? schedule);
      expect(dag.catchup).toBe(false);
      expect(dag.max_active_runs).toBe(1);
      expect(dag.start_date).toBe(`${d.dag?.startDate ?? catalog.dagDefaults.startDate}T00:00:00+00:00`);
      expect(dag.tasks).toHaveLength(1);
      const [t] = dag.tasks;
      expect(t).toMatchObject({
        task_id: d.table,
        operator: 'DockerOperator',
        pool: 'duckdb_warehouse',
        retries: d.dag?.retries ?? catalog.dagDefaults.retries,
        retry_delay_s: 60 * (d.dag?.retryDelayMinutes ?? catalog.dagDefaults.retryDelayMinutes),
        image: `store-etl/${d.table}:latest`,
        docker_url: 'unix:///run/podman/podman.sock',
        network_mode: 'host',
        auto_remove: 'success',
        mount_tmp_dir: false,
        // LOG_FORMAT is the task's own (plain lines in the task log), whatever the scheduler's.
        environment: { LOG_FORMAT: 'plain', ETL_SOURCE_DIR: '/data/source', ETL_STATE_DIR: '/data/state' },
      });
      expect(t.mounts).toEqual([
        { target: '/data/source', source: '/srv/etl/source', ro: true },
        { target: '/data/state', source: path.join(ROOT, 'relative-state'), ro: false },
      ]);
      expect(t.private_env_names).toEqual(['DUCKDB_LOCK_RETRIES', 'LOG_LEVEL', 'WAREHOUSE']);
    }
    expect(bag.dags.dbt_dag.timetable).toBe('NullTimetable');
    expect(bag.dags.dbt_dag.tasks[0]).toMatchObject({ operator: 'DockerOperator', image: 'store-etl/dbt:latest' });
  });

  test('local runner: zero import errors, BashOperator running the job CLI in the project folder', () => {
    const bag = timed('DagBag local', () => loadBag({ ETL_RUNNER: 'local', ETL_WAREHOUSE_POOL: 'wh' }));
    expect(bag.import_errors).toEqual({});
    expect(Object.keys(bag.dags).sort()).toEqual(dagIds);
    for (const d of batch) {
      expect(bag.dags[`${d.table}_dag`].tasks[0]).toMatchObject({
        operator: 'BashOperator',
        pool: 'wh',
        bash_command: `node dist/jobs/${d.table}.js `,
        cwd: ROOT,
      });
    }
    expect(bag.dags.dbt_dag.tasks[0]).toMatchObject({ operator: 'BashOperator', bash_command: 'bash scripts/dbt-build.sh ' });
  });

  test('an unknown ETL_RUNNER is an import error naming the variable', () => {
    const bag = loadBag({ ETL_RUNNER: 'kubernetes' });
    expect(Object.keys(bag.import_errors)).toHaveLength(dagIds.length);
    for (const err of Object.values(bag.import_errors)) {
      expect(err).toContain("ETL_RUNNER must be 'docker' or 'local', got 'kubernetes'");
    }
  });
});
