/**
 * The real container path: the job image of fact_orders is built from the shipped
 * docker/job.Dockerfile with podman, and `airflow dags test fact_orders_dag` runs it through
 * the DAG's DockerOperator via socket-proxy in front of podman's Docker API (as in the compose
 * stack); the table lands in the warehouse (bind-mounted state folder) with the same rows as a
 * direct run of the job CLI, and the container an earlier try left behind is removed first.
 * The task factory's job containers are hardened and a missing image fails without a pull.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EngineWithProxy, startEngineWithProxy } from '../deploy/compose-proxy';
import { count, query, runNode, tempDir } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import {
  airflowEnv,
  describeWith,
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

  test('airflow dags test fact_orders_dag (ETL_RUNNER=docker, through socket-proxy) loads store.fact_orders and removes a dead try\'s container', async () => {
    const ref = tempDir('ref-state');
    const direct = runNode(`jobs/${TABLE}.js`, [], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: ref });
    expect(direct.status).toBe(0);
    const expected = await count(path.join(ref, 'warehouse.duckdb'), `store.${TABLE}`);
    expect(expected).toBeGreaterThan(0);

    const home = timed('airflow db migrate', () => migratedAirflowHome('docker'));
    const state = tempDir('airflow-docker-state');
    fs.chmodSync(state, 0o777); // written by the image's non-root user (uid 1000)
    // Job containers may mount the source and state folders only (the proxy refuses others).
    const engine: EngineWithProxy = await startEngineWithProxy(`${STORE_EXPORT}:${state}`);
    const labels = (st: string) => ['--label', `store-etl.task=${TABLE}_dag.${TABLE}`, '--label', `store-etl.state=${st}`];
    try {
      // What a worker killed mid-task leaves: this task's container, still there; and one of the
      // same task for another deployment (another state folder), which is not this task's to remove.
      const leftover = podman(['create', ...labels(state), IMAGE, '--help']).stdout.trim();
      const foreign = podman(['create', ...labels(`${state}-other`), IMAGE, '--help']).stdout.trim();
      expect([leftover, foreign]).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
      const env = airflowEnv(home, {
        ETL_RUNNER: 'docker',
        DOCKER_URL: `unix://${engine.proxySocket}`,
        ETL_SOURCE_DIR: STORE_EXPORT,
        ETL_STATE_DIR: state,
      });
      const r = timed('airflow dags test (docker, through socket-proxy)', () =>
        runIn(env, path.join(VENV_BIN, 'airflow'), ['dags', 'test', `${TABLE}_dag`]),
      );
      const log = `${r.stdout}${r.stderr}`;
      expect({ status: r.status, log: r.status === 0 ? '' : output(r) }).toEqual({ status: 0, log: '' });
      expect(log).toContain('JobContainerOperator');
      expect(log).toMatch(/DagRun Finished: dag_id=fact_orders_dag.*state=success/);
      expect(log).toContain(`removing job container ${leftover.slice(0, 12)} left by an earlier try`);
      const exists = (id: string) => podman(['container', 'exists', id]).status === 0;
      expect({ leftover: exists(leftover), foreign: exists(foreign) }).toEqual({ leftover: false, foreign: true });
      podman(['rm', '-f', foreign]);
      // The job logs plain lines in the task log (LOG_FORMAT=plain), not JSON.
      expect(log).not.toMatch(/^\{"(level|time|msg)"/m);
    } finally {
      engine.stop();
    }

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

  test('job containers: no capability, no-new-privileges, read-only root, memory and pids limits; a missing image fails without a pull', async () => {
    const engine = await startEngineWithProxy('/tmp');
    try {
      const script = `
import json, sys
sys.path.insert(0, "dags")
from etl_task import docker_task
op = docker_task("t", "store-etl/no-such-image:latest")
hc = op.cli.create_host_config(mounts=[], mem_limit=op.mem_limit)
print("HOSTCONFIG", json.dumps({k: hc.get(k) for k in ["CapDrop", "SecurityOpt", "ReadonlyRootfs", "Tmpfs", "PidsLimit", "Memory"]}))
try:
    op.execute({})
except Exception as e:
    print("FAILURE", type(e).__name__, str(e))
`;
      const home = migratedAirflowHome('docker-hardening');
      const r = runIn(airflowEnv(home, { ETL_RUNNER: 'docker', DOCKER_URL: `unix://${engine.proxySocket}`, ETL_STATE_DIR: '/tmp', ETL_SOURCE_DIR: '/tmp' }), path.join(VENV_BIN, 'python'), ['-c', script]);
      expect({ status: r.status, err: r.status === 0 ? '' : output(r) }).toEqual({ status: 0, err: '' });
      const line = (tag: string) => (r.stdout.split('\n').find((l) => l.startsWith(`${tag} `)) ?? '').slice(tag.length + 1);
      const [hostConfig, failure] = [line('HOSTCONFIG'), line('FAILURE')];
      expect(JSON.parse(hostConfig)).toEqual({
        CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], ReadonlyRootfs: true,
        Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=256m' }, PidsLimit: 256, Memory: 2 * 1024 ** 3,
      });
      expect(failure).toBe('AirflowFailException image store-etl/no-such-image:latest is not on the container engine: build it (docker compose build, or docker/*.Dockerfile); job images are never pulled');
      expect(podman(['image', 'exists', 'store-etl/no-such-image:latest']).status).toBe(1);
    } finally {
      engine.stop();
    }
  });
});
