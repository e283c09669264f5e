/**
 * The Python side is pinned and reproducible: requirements/airflow.txt is a full freeze
 * (Airflow 3 + docker and standard providers, every package `==`), the venv holds exactly
 * those versions, and the setup scripts are idempotent (a second run changes nothing). The local
 * Airflow gets a random admin password, kept private, and none goes on a command line.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from '../helpers/env';
import { describeWith, missingAirflow, missingPodman, VENV_BIN } from './airflow-env';

const REQS = path.join(ROOT, 'requirements', 'airflow.txt');
const norm = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

function pins(text: string): Map<string, string> {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return new Map(
    lines.map((l) => {
      const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$/.exec(l);
      if (!m) throw new Error(`not an exact pin: '${l}'`);
      return [norm(m[1]), m[2]];
    }),
  );
}

test('requirements/airflow.txt is a full pinned freeze of Airflow 3 with the docker and standard providers', () => {
  const p = pins(fs.readFileSync(REQS, 'utf8'));
  expect(p.get('apache-airflow')).toMatch(/^3\.\d+\.\d+$/);
  expect(p.get('apache-airflow-core')).toBe(p.get('apache-airflow'));
  expect(p.get('apache-airflow-providers-docker')).toMatch(/^\d+\.\d+\.\d+$/);
  expect(p.get('apache-airflow-providers-standard')).toMatch(/^\d+\.\d+\.\d+$/);
  expect(p.get('docker')).toBeDefined(); // docker-py, used by DockerOperator
  expect(p.size).toBeGreaterThan(100); // transitive dependencies included
});

describeWith([missingAirflow()], 'scripts/setup-airflow.sh', () => {
  test('the venv holds exactly the pinned versions (plus the installer, uv)', () => {
    const r = spawnSync(path.join(VENV_BIN, 'python'), ['-m', 'pip', 'freeze', '--all'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const installed = pins(r.stdout.split('\n').filter((l) => l.includes('==')).join('\n'));
    for (const tool of ['uv', 'pip', 'setuptools', 'wheel']) installed.delete(tool);
    expect(Object.fromEntries(installed)).toEqual(Object.fromEntries(pins(fs.readFileSync(REQS, 'utf8'))));
  });

  test('is idempotent: a second run finds the marker (hash of the requirements) and does nothing', () => {
    const r = spawnSync('bash', ['scripts/setup-airflow.sh'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('is up to date');
    const marker = fs.readFileSync(path.join(ROOT, '.venv-airflow', '.requirements.sha256'), 'utf8');
    const hash = crypto.createHash('sha256').update(fs.readFileSync(REQS)).digest('hex');
    expect(marker.split(' ')[0]).toBe(hash);
  });
});

describeWith([missingPodman()], 'scripts/setup-podman.sh', () => {
  test('is idempotent: base image present, API socket answering', () => {
    const r = spawnSync('bash', ['scripts/setup-podman.sh'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('base image docker.io/library/node:20-bookworm-slim present');
    expect(r.stderr).toContain('podman API already answering on unix:///run/podman/podman.sock');
  });
});

describe('scripts/setup.sh', () => {
  // A part that fails fast and harmlessly: podman pointed at a settings file that does not exist.
  const run = (ci: boolean) =>
    spawnSync('bash', ['scripts/setup.sh'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', CONTAINERS_CONF: '/nonexistent/containers.conf', SETUP_ONLY: 'podman kafka', CI: ci ? 'true' : '' },
    });

  test('never says a part is ready after it failed; locally it goes on and lists the failures', () => {
    const r = run(false);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/\[setup\] podman FAILED \(exit 1 after \d+ s\)/);
    expect(r.stderr).not.toMatch(/podman ready/);
    expect(r.stderr).toMatch(/\[setup\] kafka: setting up/); // the next part still ran
    expect(r.stderr).toMatch(/setup finished with failed parts: podman/);
  });

  test('under CI=true the first failed part stops the run with a non-zero exit', () => {
    const r = run(true);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CI=true: stopping at the first failed setup part/);
    expect(r.stderr).not.toMatch(/kafka/);
  });
});

test('podman settings come from the repo by default (docker/podman/containers.conf)', () => {
  const conf = fs.readFileSync(path.join(ROOT, 'docker', 'podman', 'containers.conf'), 'utf8');
  expect(conf).toMatch(/^runtime = "runc"$/m);
  expect(conf).toMatch(/^default_ulimits = \[.*"nproc=\d+:\d+".*\]$/m);
  expect(fs.readFileSync(path.join(ROOT, 'scripts', 'setup-podman.sh'), 'utf8')).toContain(
    'CONTAINERS_CONF="${CONTAINERS_CONF:-$ROOT/docker/podman/containers.conf}"',
  );
});

describe('scripts/airflow.sh: the admin login', () => {
  // Airflow itself is a stub here (`airflow` and `python3` in a fake venv that log their arguments,
  // python3 then running the real one): what is checked is the script's own handling.
  let dir: string;
  let home: string;
  let argvLog: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airflow-login-'));
    home = path.join(dir, 'home'); // created by the script
    argvLog = path.join(dir, 'argv.log');
    const bin = path.join(dir, 'venv', 'bin');
    fs.mkdirSync(bin, { recursive: true });
    const python = spawnSync('bash', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim();
    const logArgs = 'for a in "$0" "$@"; do printf "%s " "$a"; done >>"$ARGV_LOG"; echo >>"$ARGV_LOG"';
    fs.writeFileSync(path.join(bin, 'airflow'), `#!/usr/bin/env bash\n${logArgs}\nexit 0\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'python3'), `#!/usr/bin/env bash\n${logArgs}\nexec ${python} "$@"\n`, { mode: 0o755 });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const start = (extra: NodeJS.ProcessEnv = {}) =>
    spawnSync('bash', ['scripts/airflow.sh'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        AIRFLOW_HOME: home,
        AIRFLOW_SKIP_SETUP: '1',
        AIRFLOW_VENV: path.relative(ROOT, path.join(dir, 'venv')),
        AIRFLOW_ENV_FILE: path.join(dir, 'no.env'),
        AIRFLOW_STOP_TIMEOUT: '2',
        ARGV_LOG: argvLog,
        ...extra,
      },
    });
  const passwords = () => JSON.parse(fs.readFileSync(path.join(home, 'simple_auth_manager_passwords.json'), 'utf8'));
  const mode = (p: string) => fs.statSync(p).mode & 0o777;

  test('no password given: a random one on the first start, kept 0600, the start says where it is, never on a command line', () => {
    const first = start();
    expect(first.status).toBe(0);
    const file = path.join(home, 'admin_password');
    const password = fs.readFileSync(file, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(password).not.toBe('admin');
    expect(mode(file)).toBe(0o600);
    expect(mode(home)).toBe(0o700);
    expect(passwords()).toEqual({ admin: password });
    expect(mode(path.join(home, 'simple_auth_manager_passwords.json'))).toBe(0o600);
    expect(first.stderr).toContain('generated a random admin password (first start)');
    expect(first.stderr).toContain(`login: admin with the password in ${file}`);
    expect(first.stderr).not.toContain(password);
    const calls = fs.readFileSync(argvLog, 'utf8');
    expect(calls).toMatch(/airflow standalone/); // the stubs did log the calls
    expect(calls).not.toContain(password);

    // The next start keeps it (and says nothing about generating one).
    const second = start();
    expect(second.status).toBe(0);
    expect(fs.readFileSync(file, 'utf8').trim()).toBe(password);
    expect(passwords()).toEqual({ admin: password });
    expect(second.stderr).not.toContain('generated a random admin password');
  });

  test('AIRFLOW_ADMIN_PASSWORD is used when set, through no command line, and a wider old passwords file is made 0600', () => {
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'simple_auth_manager_passwords.json'), '{"admin":"old"}', { mode: 0o644 });
    fs.chmodSync(path.join(home, 'simple_auth_manager_passwords.json'), 0o644);
    const r = start({ AIRFLOW_ADMIN_USER: 'ops', AIRFLOW_ADMIN_PASSWORD: 'correct-horse-battery-staple-42' });
    expect(r.status).toBe(0);
    expect(passwords()).toEqual({ ops: 'correct-horse-battery-staple-42' });
    expect(mode(path.join(home, 'simple_auth_manager_passwords.json'))).toBe(0o600);
    expect(fs.existsSync(path.join(home, 'admin_password'))).toBe(false);
    expect(r.stderr).toContain('login: ops with the password in AIRFLOW_ADMIN_PASSWORD');
    expect(r.stderr).not.toContain('correct-horse-battery-staple-42');
    expect(fs.readFileSync(argvLog, 'utf8')).not.toContain('correct-horse-battery-staple-42');
  });
});
