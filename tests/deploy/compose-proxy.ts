/**
 * A podman API service of the test's own and socket-proxy (docker/socket-proxy.Dockerfile) in
 * front of it, started the way docker-compose.yml starts the proxy: no capability, read-only, no
 * network, the engine socket's group. For the tests of the proxy and of DockerOperator through it.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { engineRequest } from '../../scripts/lib/engine-proxy';
import { ROOT } from './env-refs';

export const PROXY_IMAGE = 'store-etl/socket-proxy:latest';
export const BASE_IMAGE = process.env.ETL_BASE_IMAGE ?? 'docker.io/library/node:20-bookworm-slim';
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
env.CONTAINERS_CONF ||= path.join(ROOT, 'docker', 'podman', 'containers.conf');

export const podman = (args: string[], timeout = 600_000) => spawnSync('podman', args, { cwd: ROOT, env, encoding: 'utf8', timeout });

/** Why the proxy cannot be run here, or null. */
export function proxyUnavailable(): string | null {
  if (podman(['--version']).status !== 0) return 'podman is not installed';
  if (podman(['image', 'exists', BASE_IMAGE]).status !== 0) return `podman has no base image ${BASE_IMAGE} (scripts/setup-podman.sh builds it)`;
  return null;
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface EngineWithProxy {
  readonly engineSocket: string;
  readonly proxySocket: string;
  readonly name: string;
  stop(): void;
}

/**
 * Starts the engine service and the proxy; `roots` and `baseDir` are the proxy's
 * ENGINE_PROXY_MOUNT_ROOTS (colon-separated) and ENGINE_PROXY_BASE_DIR.
 */
export async function startEngineWithProxy(roots: string, baseDir = '/'): Promise<EngineWithProxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'socket-proxy-'));
  const engineSocket = path.join(dir, 'engine.sock');
  const proxyDir = path.join(dir, 'proxy');
  const proxySocket = path.join(proxyDir, 'docker.sock');
  const name = `socket-proxy-test-${process.pid}-${path.basename(dir)}`;
  fs.mkdirSync(proxyDir);
  fs.chmodSync(proxyDir, 0o777); // the proxy's user (haproxy) creates its socket there
  const service: ChildProcess = spawn('podman', ['system', 'service', '--time=0', `unix://${engineSocket}`], { env, stdio: 'ignore' });
  const stop = () => {
    podman(['rm', '-f', name]);
    service.kill();
  };
  try {
    await until('the podman API socket', () => fs.existsSync(engineSocket));
    fs.chmodSync(engineSocket, 0o660);
    const build = podman(['build', '--layers', '-t', PROXY_IMAGE, '-f', 'docker/socket-proxy.Dockerfile', '.'], 1_200_000);
    if (build.status !== 0) throw new Error(`podman build ${PROXY_IMAGE} failed: ${build.stderr.slice(-2000)}`);
    const gid = String(fs.statSync(engineSocket).gid);
    const run = podman([
      'run', '-d', '--rm', '--name', name, '--network', 'none', '--read-only', '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges', '--group-add', gid,
      '-v', `${engineSocket}:/run/engine.sock`, '-v', `${proxyDir}:/run/engine-proxy`,
      '-e', `ENGINE_PROXY_GID=${gid}`, '-e', `ENGINE_PROXY_BASE_DIR=${baseDir}`, '-e', `ENGINE_PROXY_MOUNT_ROOTS=${roots}`,
      PROXY_IMAGE,
    ]);
    if (run.status !== 0) throw new Error(`podman run ${PROXY_IMAGE} failed: ${run.stderr}`);
    await until('the proxy socket', async () => fs.existsSync(proxySocket) && (await engineRequest(proxySocket, 'GET', '/_ping').catch(() => ({ status: 0 }))).status === 200);
  } catch (e) {
    stop();
    throw e;
  }
  return { engineSocket, proxySocket, name, stop };
}
