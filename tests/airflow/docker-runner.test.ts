/**
 * The real container path: the job image of fact_orders is built from the shipped
 * docker/job.Dockerfile with podman, and `airflow dags test fact_orders_dag` runs it through
 * the DAG's DockerOperator via podman's Docker API socket; the table lands in the warehouse
 * (bind-mounted state folder) with the same rows as a direct run of the job CLI.
 */
import fs from 'node:fs';
import path from 'node:path';
import { count, query, runNode, tempDir } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
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
} from './airflow-env';

const TABLE = 'fact_orders';
const IMAGE = `store-etl/${TABLE}:latest`;

describeWith([missingAirflow(), missingPodman()], 'DockerOperator runs the job image through podman', () => {
  jest.setTimeout(600_000);

  test(`image ${IMAGE} builds from docker/job.Dockerfile: non-root, entrypoint = job CLI`, () => {
    const build = timed(`podman build ${IMAGE}`, () =>
      podman([
        'build', '--network=host', '--build-arg', `TABLE=${TABLE}`,
        '-t', IMAGE, '-f', 'docker/job.Dockerfile', '.',
      ]),
    );
    expect({ status: build.status, log: build.status === 0 ? '' : output(build) }).toEqual({ status: 0, log: '' });

    const inspect = podman(['image', 'inspect', '--format', '{{.Config.User}}|{{json .Config.Entrypoint}}|{{.Size}}', IMAGE]);
    expect(inspect.status).toBe(0);
    const [user, entrypoint, size] = inspect.stdout.trim().split('|');
    console.log(`[image] ${IMAGE}: ${(Number(size) / 1e6).toFixed(0)} MB`);
    expect(user).toBe('node');
    expect(JSON.parse(entrypoint)).toEqual(['node', '/app/job.js']);
    expect(Number(size)).toBeLessThan(600e6);

    const help = podman(['run', '--rm', IMAGE, '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain(`Usage: node dist/jobs/${TABLE}.js`);
    // Runtime stage: compiled JS and production dependencies only.
    const files = podman(['run', '--rm', '--entrypoint', 'sh', IMAGE, '-c',
      'id -u; ls /app; ls /app/dist; test -d /app/node_modules/typescript && echo HAS_TS; test -d /app/jobs && echo HAS_SRC; true']);
    expect(files.stdout.split('\n')[0]).toBe('1000');
    expect(files.stdout).not.toContain('HAS_TS');
    expect(files.stdout).not.toContain('HAS_SRC');
  });

  test('airflow dags test fact_orders_dag (ETL_RUNNER=docker) loads store.fact_orders', async () => {
    const ref = tempDir('ref-state');
    const direct = runNode(`jobs/${TABLE}.js`, [], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: ref });
    expect(direct.status).toBe(0);
    const expected = await count(path.join(ref, 'warehouse.duckdb'), `store.${TABLE}`);
    expect(expected).toBeGreaterThan(0);

    const home = timed('airflow db migrate', () => migratedAirflowHome('docker'));
    const state = tempDir('airflow-docker-state');
    fs.chmodSync(state, 0o777); // written by the image's non-root user (uid 1000)
    const env = airflowEnv(home, {
      ETL_RUNNER: 'docker',
      DOCKER_URL,
      DOCKER_NETWORK: 'host',
      ETL_SOURCE_DIR: STORE_EXPORT,
      ETL_STATE_DIR: state,
    });
    const r = timed('airflow dags test (docker)', () =>
      runIn(env, path.join(VENV_BIN, 'airflow'), ['dags', 'test', `${TABLE}_dag`]),
    );
    const log = `${r.stdout}${r.stderr}`;
    expect({ status: r.status, log: r.status === 0 ? '' : output(r) }).toEqual({ status: 0, log: '' });
    expect(log).toContain('DockerOperator');
    expect(log).toMatch(/DagRun Finished: dag_id=fact_orders_dag.*state=success/);

    const db = path.join(state, 'warehouse.duckdb');
    expect(await count(db, `store.${TABLE}`)).toBe(expected);
    const runs = await query(db, 'SELECT destination, status, rows_out FROM store._etl_runs');
    expect(runs).toHaveLength(1);
    expect(runs[0].slice(0, 2)).toEqual([`store.${TABLE}`, 'success']);
    expect(Number(runs[0][2])).toBe(expected);
    // auto_remove="success": no container left behind.
    const left = podman(['ps', '-a', '--filter', `ancestor=${IMAGE}`, '--format', '{{.ID}}']);
    expect(left.stdout.trim()).toBe('');
  });
});
