/**
 * socket-proxy (docker/socket-proxy.Dockerfile, haproxy.cfg) on a running engine: built and
 * started as compose starts it (no capability, read-only, no network, the engine socket's group)
 * in front of a podman API service of the test's own; the calls DockerOperator makes pass and
 * exec, build, pull, volumes, the libpod API, privileged, root and foreign-mount creates get 403
 * (the same list the compose smoke checks on the stack: engineCalls in scripts/compose-smoke.ts).
 *
 * Without podman or its base image the suite is skipped with a printed reason, except in CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkEngineProxy, engineCalls, engineRequest } from '../../scripts/lib/engine-proxy';
import { BASE_IMAGE, EngineWithProxy, podman, PROXY_IMAGE as IMAGE, proxyUnavailable as unavailable, startEngineWithProxy } from './compose-proxy';

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
  // The project folder on the "host" as the proxy is told it; the state folder under it.
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'socket-proxy-project-'));
  const stateDir = path.join(project, '.state');
  let engine: EngineWithProxy;
  let engineSocket = '';
  let proxySocket = '';

  beforeAll(async () => {
    fs.mkdirSync(stateDir);
    engine = await startEngineWithProxy('data_source:./.state:secrets:', project);
    ({ engineSocket, proxySocket } = engine);
  });

  afterAll(() => engine?.stop());

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
