/**
 * Helpers of the Airflow suites: prerequisites (Airflow venv, podman, Chromium) that skip a
 * suite with a clear message locally and fail it in CI (CI=true), and a private Airflow
 * environment per suite (own AIRFLOW_HOME with a SQLite DB, the repo's dags/ folder).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env';

export const IN_CI = process.env.CI === 'true';
export const VENV_BIN = path.join(ROOT, '.venv-airflow', 'bin');
export const PODMAN_SOCKET = process.env.PODMAN_SOCKET ?? '/run/podman/podman.sock';
export const DOCKER_URL = `unix://${PODMAN_SOCKET}`;
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'airflow');
/** Podman settings: the repo's own (as scripts/setup-podman.sh uses them) unless CONTAINERS_CONF says otherwise. */
export const CONTAINERS_CONF = process.env.CONTAINERS_CONF || path.join(ROOT, 'docker', 'podman', 'containers.conf');

/** Returns why the Airflow venv is unusable, or null. */
export function missingAirflow(): string | null {
  return fs.existsSync(path.join(VENV_BIN, 'airflow'))
    ? null
    : 'Airflow venv .venv-airflow/ is missing (run `npm run setup:airflow`)';
}

function podmanEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF };
}

export function podman(args: string[], timeoutMs = 600_000): SpawnSyncReturns<string> {
  return spawnSync('podman', args, {
    cwd: ROOT,
    encoding: 'utf8',
    env: podmanEnv(),
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** Returns why podman (engine, local base image, Docker API socket) is unusable, or null. */
export function missingPodman(): string | null {
  if (spawnSync('podman', ['--version'], { encoding: 'utf8' }).status !== 0) {
    return 'podman is not installed (run `npm run setup:podman`)';
  }
  if (podman(['image', 'exists', 'docker.io/library/node:20-bookworm-slim'], 60_000).status !== 0) {
    return 'base image node:20-bookworm-slim is missing (run `npm run setup:podman`)';
  }
  const ping = spawnSync('curl', ['-fsS', '--max-time', '5', '--unix-socket', PODMAN_SOCKET, 'http://d/_ping'], {
    encoding: 'utf8',
  });
  if (ping.status !== 0) return `podman's Docker API does not answer on ${DOCKER_URL} (run \`npm run setup:podman\`)`;
  return null;
}

export function missingChromium(): string | null {
  return fs.existsSync(CHROMIUM) ? null : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`;
}

/**
 * `describe` when every prerequisite is there. Otherwise, in CI a failing test naming what is
 * missing; elsewhere a skipped suite with the reason printed.
 */
export function describeWith(missing: (string | null)[], name: string, fn: () => void): void {
  const why = missing.filter((m): m is string => m !== null);
  if (why.length === 0) {
    describe(name, fn);
  } else if (IN_CI) {
    describe(name, () => {
      test('prerequisites are installed', () => {
        throw new Error(`CI=true and prerequisites are missing: ${why.join('; ')}`);
      });
    });
  } else {
    console.warn(`[skipped] ${name}: ${why.join('; ')}`);
    describe.skip(`${name} (skipped: ${why.join('; ')})`, fn);
  }
}

/** A private Airflow environment: its own AIRFLOW_HOME and SQLite DB, the repo's dags/. */
export function airflowEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${VENV_BIN}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? '/root',
    LANG: 'C.UTF-8',
    AIRFLOW_HOME: home,
    AIRFLOW__CORE__DAGS_FOLDER: path.join(ROOT, 'dags'),
    AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: `sqlite:///${path.join(home, 'airflow.db')}`,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    CONTAINERS_CONF,
    ...extra,
  };
}

export function runIn(
  env: NodeJS.ProcessEnv,
  cmd: string,
  args: string[],
  timeoutMs = 300_000,
): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: ROOT, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

/** A fresh AIRFLOW_HOME with a migrated SQLite metadata DB. */
export function migratedAirflowHome(prefix: string): string {
  const home = tempDir(`airflow-${prefix}`);
  const r = runIn(airflowEnv(home), path.join(VENV_BIN, 'airflow'), ['db', 'migrate']);
  if (r.status !== 0) throw new Error(`airflow db migrate failed:\n${r.stdout}\n${r.stderr}`);
  return home;
}

/** Output of a command, for assertion messages. */
export function output(r: SpawnSyncReturns<string>, tail = 4000): string {
  return `exit ${r.status} signal ${r.signal}\n--- stdout\n${(r.stdout ?? '').slice(-tail)}\n--- stderr\n${(r.stderr ?? '').slice(-tail)}`;
}

/** Wall time of a step, printed so suite timings show up in CI logs. */
export function timed<T>(label: string, fn: () => T): T {
  const t0 = Date.now();
  try {
    return fn();
  } finally {
    console.log(`[timing] ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}
