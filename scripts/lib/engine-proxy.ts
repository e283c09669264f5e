/**
 * What socket-proxy (docker/socket-proxy/haproxy.cfg) must let through and refuse on the engine
 * API: the calls DockerOperator makes, allowed, and those a compromised task could try, refused;
 * run against the proxy by `compose-smoke.js engine-proxy` and by the deploy tests.
 */
import http from 'node:http';

/** One call to the engine API and what socket-proxy must answer (docker/socket-proxy/haproxy.cfg). */
export interface EngineCall {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  readonly expect: 'refused' | 'allowed';
}

/** An HTTP request on the engine API's unix socket: status and body. */
export function engineRequest(socket: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A string is sent as it is (a body no JSON encoder would write), anything else as JSON.
    const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(
      { socketPath: socket, method, path: p, headers: { Host: 'engine', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}) }, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

const V = '/v1.41';
/** A container create as docker-py sends it, with `host` merged into HostConfig. */
const create = (image: string, host: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ Image: image, Cmd: ['--help'], ...extra, HostConfig: { CapDrop: ['ALL'], ...host } });
const bind = (source: string, target = '/data/state') => ({ Mounts: [{ Target: target, Source: source, Type: 'bind', ReadOnly: false }] });

/**
 * The calls a compromised task could make through the proxy, each refused, and around them the
 * ones DockerOperator makes, each allowed. `container` is a container created through the proxy
 * (so a refusal of exec on it is the proxy's, not a 404); `stateDir` a folder jobs may mount.
 */
export function engineCalls(image: string, stateDir: string, container: string): EngineCall[] {
  const refused = (name: string, method: string, p: string, body?: unknown): EngineCall => ({ name, method, path: p, body, expect: 'refused' });
  const allowed = (name: string, method: string, p: string): EngineCall => ({ name, method, path: p, expect: 'allowed' });
  const c = `${V}/containers/create`;
  return [
    allowed('ping', 'GET', '/_ping'),
    allowed('version', 'GET', `${V}/version`),
    allowed('image inspect', 'GET', `${V}/images/${image}/json`),
    allowed('container inspect', 'GET', `${V}/containers/${container}/json`),
    allowed('containers by label', 'GET', `${V}/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: ['store-etl.task=x'] }))}`),
    refused('exec', 'POST', `${V}/containers/${container}/exec`, { Cmd: ['sh'], AttachStdout: true }),
    refused('copy files into a container', 'PUT', `${V}/containers/${container}/archive?path=/tmp`),
    refused('build', 'POST', `${V}/build?t=evil`),
    refused('image pull', 'POST', `${V}/images/create?fromImage=docker.io/library/alpine&tag=latest`),
    refused('image delete', 'DELETE', `${V}/images/${image}`),
    refused('volume create', 'POST', `${V}/volumes/create`, { Name: 'evil' }),
    refused('volume list', 'GET', `${V}/volumes`),
    refused('network create', 'POST', `${V}/networks/create`, { Name: 'evil' }),
    refused('the libpod API', 'GET', '/v4.0.0/libpod/containers/json'),
    refused('create Privileged', 'POST', c, create(image, { Privileged: true })),
    refused('create privileged (any case, spaces)', 'POST', c, JSON.stringify(create(image, {})).replace('"CapDrop"', '"privileged" :\ttrue, "CapDrop"')),
    refused('create with a \\u escape', 'POST', c, JSON.stringify(create(image, {})).replace('"CapDrop"', '"Priv\\u0069leged":true,"CapDrop"')),
    refused('create mounting /', 'POST', c, create(image, bind('/'))),
    refused('create mounting /etc', 'POST', c, create(image, bind('/etc', '/data/source'))),
    refused('create mounting a sibling of the state folder', 'POST', c, create(image, bind(`${stateDir}-other`))),
    refused('create mounting .. out of the state folder', 'POST', c, create(image, bind(`${stateDir}/../..`))),
    refused('create with Binds', 'POST', c, create(image, { Binds: ['/:/host'] })),
    refused('create with a named volume', 'POST', c, create(image, { Mounts: [{ Target: '/v', Source: 'evil', Type: 'volume' }] })),
    refused('create with CapAdd', 'POST', c, create(image, { CapAdd: ['SYS_ADMIN'] })),
    refused('create in the host PID namespace', 'POST', c, create(image, { PidMode: 'host' })),
    refused('create as uid 0', 'POST', c, create(image, {}, { User: '0:0' })),
    refused('create as root', 'POST', c, create(image, {}, { User: 'root' })),
  ];
}

/**
 * Runs engineCalls through the proxy at `socket`: a container create with the state folder
 * mounted (allowed), the calls, then its removal (allowed). Returns the failures (empty: all held).
 */
export async function checkEngineProxy(socket: string, image: string, stateDir: string): Promise<string[]> {
  const failures: string[] = [];
  const made = await engineRequest(socket, 'POST', `${V}/containers/create`, create(image, bind(stateDir)));
  if (made.status !== 201) return [`create with the state folder mounted: HTTP ${made.status} ${made.body.slice(0, 300)} (expected 201)`];
  const id = (JSON.parse(made.body) as { Id: string }).Id;
  try {
    for (const call of engineCalls(image, stateDir, id)) {
      const r = await engineRequest(socket, call.method, call.path, call.body);
      const ok = call.expect === 'refused' ? r.status === 403 : r.status >= 200 && r.status < 300;
      if (!ok) failures.push(`${call.name} (${call.method} ${call.path}): HTTP ${r.status}, expected ${call.expect === 'refused' ? 403 : '2xx'}`);
    }
  } finally {
    const rm = await engineRequest(socket, 'DELETE', `${V}/containers/${id}?force=1`);
    if (rm.status !== 204) failures.push(`remove the created container: HTTP ${rm.status} (expected 204)`);
  }
  return failures;
}
