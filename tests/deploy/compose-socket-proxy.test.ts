/**
 * socket-proxy (docker/socket-proxy.Dockerfile, haproxy.cfg) on a running engine: built and
 * started as compose starts it (no capability, read-only, no network, the engine socket's group)
 * in front of a podman API service of the test's own; the calls DockerOperator makes pass and
 * exec, build, pull, volumes, the libpod API, privileged, root and foreign-mount creates get 403
 * (the same list the compose smoke checks on the stack: engineCalls in scripts/compose-smoke.ts).
 *
 * Without podman or its base image the suite is skipped with a printed reason, except in CI.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkEngineProxy, engineCalls, engineRequest } from '../../scripts/compose-smoke';
import { ROOT } from './env-refs';

const IMAGE = 'store-etl/socket-proxy:latest';
const BASE_IMAGE = process.env.ETL_BASE_IMAGE ?? 'docker.io/library/node:20-bookworm-slim';
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
env.CONTAINERS_CONF ||= path.join(ROOT, 'docker', 'podman', 'containers.conf');
const podman = (args: string[], timeout = 600_000) => spawnSync('podman', args, { cwd: ROOT, env, encoding: 'utf8', timeout });

function unavailable(): string | null {
  if (podman(['--version']).status !== 0) return 'podman is not installed';
  if (podman(['image', 'exists', BASE_IMAGE]).status !== 0) return `podman has no base image ${BASE_IMAGE} (scripts/setup-podman.sh builds it)`;
  return null;
}

const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 30_000) => {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

const reason = unavailable();
const d = reason ? describe.skip : describe;
if (reason && process.env.CI === 'true') {
  test('podman is available in CI', () => {
    throw new Error(`CI=true but ${reason}`);
  });
} else if (reason) {
  console.warn(`SKIPPED: socket-proxy on a running engine - ${reason}`);
}

d('socket-proxy in front of a running engine', () => {
  jest.setTimeout(600_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socket-proxy-'));
  const engineSocket = path.join(dir, 'engine.sock');
  const proxyDir = path.join(dir, 'proxy');
  const proxySocket = path.join(proxyDir, 'docker.sock');
  // The project folder on the "host" as the proxy is told it; the state folder under it.
  const project = path.join(dir, 'project');
  const stateDir = path.join(project, '.state');
  const name = `socket-proxy-test-${process.pid}`;
  let service: ChildProcess | undefined;

  beforeAll(async () => {
    fs.mkdirSync(proxyDir, { mode: 0o777 });
    fs.chmodSync(proxyDir, 0o777); // the proxy's user (haproxy) creates its socket there
    fs.mkdirSync(stateDir, { recursive: true });
    service = spawn('podman', ['system', 'service', '--time=0', `unix://${engineSocket}`], { env, stdio: 'ignore' });
    await until('the podman API socket', () => fs.existsSync(engineSocket));
    fs.chmodSync(engineSocket, 0o660);
    const build = podman(['build', '--layers', '-t', IMAGE, '-f', 'docker/socket-proxy.Dockerfile', '.'], 1_200_000);
    expect({ status: build.status, log: build.status === 0 ? '' : build.stderr.slice(-2000) }).toEqual({ status: 0, log: '' });
    const gid = String(fs.statSync(engineSocket).gid);
    const run = podman([
      'run', '-d', '--rm', '--name', name, '--network', 'none', '--read-only', '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges', '--group-add', gid,
      '-v', `${engineSocket}:/run/engine.sock`, '-v', `${proxyDir}:/run/engine-proxy`,
      '-e', `ENGINE_PROXY_GID=${gid}`, '-e', `ENGINE_PROXY_BASE_DIR=${project}`,
      '-e', 'ENGINE_PROXY_MOUNT_ROOTS=data_source:./.state:secrets:', IMAGE,
    ]);
    expect({ status: run.status, err: run.stderr }).toEqual({ status: 0, err: '' });
    await until('the proxy socket', async () => fs.existsSync(proxySocket) && (await engineRequest(proxySocket, 'GET', '/_ping').catch(() => ({ status: 0 }))).status === 200);
  });

  afterAll(() => {
    podman(['rm', '-f', name]);
    service?.kill();
  });

  test('the listening socket is 0660 with the engine socket\'s group', () => {
    const st = fs.statSync(proxySocket);
    expect([st.mode & 0o777, st.gid]).toEqual([0o660, fs.statSync(engineSocket).gid]);
  });

  test('the calls DockerOperator makes pass; exec, build, pull, volumes, privileged, root and foreign-mount creates get 403', async () => {
    const calls = engineCalls(BASE_IMAGE, stateDir, 'x');
    expect(calls.filter((c) => c.expect === 'refused').length).toBeGreaterThanOrEqual(20);
    expect(await checkEngineProxy(proxySocket, BASE_IMAGE, stateDir)).toEqual([]);
  });

  test('the same creates straight to the engine are accepted (the refusals are the proxy\'s)', async () => {
    const direct = await engineRequest(engineSocket, 'POST', '/v1.41/containers/create', { Image: BASE_IMAGE, HostConfig: { Privileged: true } });
    expect(direct.status).toBe(201);
    await engineRequest(engineSocket, 'DELETE', `/v1.41/containers/${JSON.parse(direct.body).Id}?force=1`);
  });

  test('a create whose body is cut off by the buffer is refused, not half-inspected', async () => {
    const padding = 'x'.repeat(40_000);
    const r = await engineRequest(proxySocket, 'POST', '/v1.41/containers/create', { Image: BASE_IMAGE, Env: [`PAD=${padding}`], HostConfig: { Privileged: true } });
    expect(r.status).toBe(403);
  });

  test('a mount root with .. stops the proxy at start with the reason', () => {
    const r = podman(['run', '--rm', '--network', 'none', '-e', 'ENGINE_PROXY_MOUNT_ROOTS=/srv/a/../etc', IMAGE]);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain("mount root '/srv/a/../etc' has '..'");
  });
});
