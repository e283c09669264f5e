/**
 * The container path of dbt_dag: the image store-etl/dbt:latest builds from docker/dbt.Dockerfile
 * with podman, and `airflow dags test dbt_dag` with ETL_RUNNER=docker runs it through the DAG's
 * DockerOperator (podman's Docker API socket) on a warehouse the batch pipeline loaded from the
 * reference sample: the marts land in the bind-mounted warehouse and the docs in its state dir.
 */
import fs from 'node:fs';
import path from 'node:path';
import { query, runNode, tempDir } from '../helpers/env';
import { expectedUserRevenue, readAll, STORE_EXPORT } from '../helpers/store-export';
import {
  airflowEnv,
  describeWith,
  DOCKER_URL,
  migratedAirflowHome,
  missingAirflow,
  missingPodman,
  output,
  podman,
  runIn,
  timed,
  VENV_BIN,
} from '../airflow/airflow-env';

const IMAGE = 'store-etl/dbt:latest';

describeWith([missingAirflow(), missingPodman()], 'dbt_dag through DockerOperator (image store-etl/dbt)', () => {
  jest.setTimeout(900_000);

  test(`image ${IMAGE} builds from docker/dbt.Dockerfile: non-root, entrypoint scripts/dbt-build.sh`, () => {
    const build = timed(`podman build ${IMAGE}`, () =>
      podman(['build', '--network=host', '-t', IMAGE, '-f', 'docker/dbt.Dockerfile', '.'], 900_000),
    );
    expect({ status: build.status, log: build.status === 0 ? '' : output(build) }).toEqual({ status: 0, log: '' });
    const inspect = podman(['image', 'inspect', '--format', '{{.Config.User}}|{{json .Config.Entrypoint}}|{{.Size}}', IMAGE]);
    const [user, entrypoint, size] = inspect.stdout.trim().split('|');
    console.log(`[image] ${IMAGE}: ${(Number(size) / 1e6).toFixed(0)} MB`);
    expect(user).toBe('node');
    expect(JSON.parse(entrypoint)).toEqual(['bash', '/app/scripts/dbt-build.sh']);
    const version = podman(['run', '--rm', '--entrypoint', '/opt/dbt-venv/bin/dbt', IMAGE, '--version']);
    expect(version.stdout).toMatch(/installed: 1\.11\.16/);
    expect(version.stdout).toMatch(/duckdb: +1\.11\.1/);
    expect(version.stdout).toMatch(/bigquery: +1\.12\.1/);
  });

  test('airflow dags test dbt_dag (ETL_RUNNER=docker) builds the marts and the docs', async () => {
    const state = tempDir('dbt-docker-state');
    const load = runNode('scripts/start.js', ['--skip-stream', '--skip-dbt'], {
      ETL_SOURCE_DIR: STORE_EXPORT,
      ETL_STATE_DIR: state,
    });
    expect(load.status).toBe(0);
    // Written by the image's non-root user (uid 1000).
    for (const f of [state, ...fs.readdirSync(state).map((x) => path.join(state, x))]) fs.chmodSync(f, 0o777);

    const home = timed('airflow db migrate', () => migratedAirflowHome('dbt-docker'));
    const env = airflowEnv(home, {
      ETL_RUNNER: 'docker',
      DOCKER_URL,
      ETL_SOURCE_DIR: STORE_EXPORT,
      ETL_STATE_DIR: state,
    });
    const r = timed('airflow dags test dbt_dag (docker)', () =>
      runIn(env, path.join(VENV_BIN, 'airflow'), ['dags', 'test', 'dbt_dag']),
    );
    const log = `${r.stdout}${r.stderr}`;
    expect({ status: r.status, log: r.status === 0 ? '' : output(r) }).toEqual({ status: 0, log: '' });
    // The job images' DockerOperator subclass (dags/etl_task.py: hardened, never pulls) ran the image.
    expect(log).toContain('JobContainerOperator');
    expect(log).toContain('Starting docker container from image store-etl/dbt:latest');
    expect(log).toMatch(/Done\. PASS=\d+ WARN=1 ERROR=0/);
    expect(log).toMatch(/DagRun Finished: dag_id=dbt_dag.*state=success/);

    expect(await query(path.join(state, 'warehouse.duckdb'), 'SELECT count(*)::INTEGER FROM store_marts.user_revenue')).toEqual([[expectedUserRevenue(readAll(STORE_EXPORT)).size]]);
    expect(fs.existsSync(path.join(state, 'dbt', 'target', 'static_index.html'))).toBe(true);
    const left = podman(['ps', '-a', '--filter', `ancestor=${IMAGE}`, '--format', '{{.ID}}']);
    expect(left.stdout.trim()).toBe('');
  });
});
