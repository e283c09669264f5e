/**
 * Safe by default (issue 26), on the compose configuration as it resolves with the example .env:
 * nothing published beyond the host's loopback unless AIRFLOW_BIND opens Airflow's port, no
 * capability and no privilege escalation in any service, no service as uid 0, the processes that
 * parse untrusted input confined (read-only root, memory and pids limits), ./secrets only where a
 * key is read, and the engine reached only through socket-proxy. The running stack is checked by
 * npm run compose:smoke; the proxy's rules by compose-socket-proxy.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { composeCli, ComposeConfig, parseDotenv, resolveOwn, resolveWithCli, Service } from './compose-config';
import { ROOT } from './env-refs';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

function envFile(extra: Record<string, string> = {}): string {
  const filled: Record<string, string> = {
    ...parseDotenv(read('.env.example')),
    POSTGRES_PASSWORD: 'p', AIRFLOW_ADMIN_PASSWORD: 'a', AIRFLOW__CORE__FERNET_KEY: 'f', AIRFLOW__API__SECRET_KEY: 's',
    AIRFLOW__API_AUTH__JWT_SECRET: 'j', ETL_HOST_PROJECT_DIR: '/srv/store-etl', DOCKER_GID: '991',
    ...extra,
  };
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'compose-safety-')), '.env');
  fs.writeFileSync(file, Object.entries(filled).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  return file;
}

const servicesOf = (resolve: (f: string) => ComposeConfig, file: string): Record<string, Service> => resolve(file).services;

/** host_ip of each published port, in short ("ip:host:container") or long syntax. */
function hostIps(s: Service): string[] {
  return (s.ports ?? []).map((p: string | { host_ip?: string }) => {
    if (typeof p !== 'string') return p.host_ip ?? '0.0.0.0';
    const parts = p.split(':');
    return parts.length === 3 ? parts[0] : '0.0.0.0';
  });
}

/** Bind sources of a service's volumes, in short or long syntax (relative ones as written). */
function volumeSources(s: Service): string[] {
  return (s.volumes ?? []).map((v: string | { source?: string }) => (typeof v === 'string' ? v.split(':')[0] : String(v.source)));
}

/** The last USER of a Dockerfile (the runtime stage's). */
function dockerfileUser(file: string): string | undefined {
  // Relative to the project (our resolution) or absolute (the CLI resolves the build context).
  const users = [...fs.readFileSync(path.resolve(ROOT, file), 'utf8').matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
  return users[users.length - 1];
}

const isRoot = (user: string) => /^(0|root)(:|$)/.test(user.trim());

// Services under a profile (the producer) are not in a plain `config`: checked from the YAML below.
const cli = composeCli();
const resolvers: [string, (f: string) => ComposeConfig][] = [['own YAML resolution', (f) => resolveOwn(f)]];
if (cli) resolvers.push([`${cli.join(' ')} config`, (f) => resolveWithCli(cli, f)]);

describe.each(resolvers)('safe by default, resolved by %s', (_how, resolve) => {
  const services = servicesOf(resolve, envFile());

  test('every published port binds to 127.0.0.1; AIRFLOW_BIND opens only Airflow', () => {
    const published = Object.entries(services).filter(([, s]) => (s.ports ?? []).length > 0);
    expect(published.map(([n]) => n).sort()).toEqual(['airflow-apiserver', 'kafka']);
    for (const [name, s] of published) expect({ name, ips: hostIps(s) }).toEqual({ name, ips: ['127.0.0.1'] });
    const opened = servicesOf(resolve, envFile({ AIRFLOW_BIND: '0.0.0.0' }));
    expect(hostIps(opened['airflow-apiserver'])).toEqual(['0.0.0.0']);
    expect(hostIps(opened.kafka)).toEqual(['127.0.0.1']);
  });

  test('no service keeps a capability or may gain privileges, none runs as uid 0', () => {
    for (const [name, s] of Object.entries(services)) {
      expect({ name, cap_drop: s.cap_drop }).toEqual({ name, cap_drop: ['ALL'] });
      expect({ name, cap_add: s.cap_add, privileged: s.privileged }).toEqual({ name, cap_add: undefined, privileged: undefined });
      expect({ name, security_opt: s.security_opt }).toEqual({ name, security_opt: ['no-new-privileges:true'] });
      // The user: compose's, else the image's own (built here: its Dockerfile; kafka: the
      // official image's appuser, which docker/local/kafka keeps).
      const dockerfile = s.build ? path.join(s.build.context ?? '.', s.build.dockerfile ?? 'Dockerfile') : name === 'kafka' ? 'docker/local/kafka/Dockerfile' : undefined;
      const user = s.user ?? (dockerfile ? dockerfileUser(dockerfile) : undefined);
      expect({ name, user, root: user === undefined || isRoot(String(user)) }).toEqual({ name, user, root: false });
    }
  });

  test('the stream, job and dbt containers and the proxy: read-only root, memory and pids limits', () => {
    const confined = ['stream-consumer', 'socket-proxy', 'dbt', ...Object.keys(services).filter((n) => n.startsWith('job-'))];
    expect(confined.length).toBeGreaterThanOrEqual(8);
    for (const name of confined) {
      const s = services[name];
      expect({ name, read_only: s.read_only }).toEqual({ name, read_only: true });
      expect({ name, mem: Boolean(s.mem_limit), pids: Number(s.pids_limit) > 0 }).toEqual({ name, mem: true, pids: true });
    }
    expect(JSON.stringify(services['stream-consumer'].tmpfs)).toContain('/tmp');
  });

  test('./secrets is mounted only into the stream consumer (it reads the key); the engine socket only into socket-proxy', () => {
    const secrets = Object.entries(services)
      .filter(([, s]) => volumeSources(s).some((v) => /(^|\/)secrets$/.test(v)))
      .map(([n]) => n);
    expect(secrets).toEqual(['stream-consumer']);
    const engine = Object.entries(services)
      .filter(([, s]) => (s.volumes ?? []).some((v: string | { target?: string }) => (typeof v === 'string' ? v.split(':')[1] : v.target) === '/run/engine.sock'))
      .map(([n]) => n);
    expect(engine).toEqual(['socket-proxy']);
  });
});

describe('the producer (profile replay)', () => {
  test('has no ./secrets and is confined like the consumer', async () => {
    const { parse } = await import('yaml');
    const raw = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
    const p = raw.services.producer;
    expect(volumeSources(p)).toEqual(['./data_source']);
    expect([p.read_only, p.cap_drop, Number(p.pids_limit) > 0]).toEqual([true, ['ALL'], true]);
  });
});
