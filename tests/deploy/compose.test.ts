/**
 * docker-compose.yml without a Docker engine: it validates against the Compose Specification
 * JSON schema (vendored, tests/fixtures/README.md), has the services the deployment needs, and
 * its start order holds together (every depends_on target exists, conditions match what the
 * target can signal, no cycles).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { parse } from 'yaml';
import { catalog } from '../../jobs/catalog';
import { ROOT } from './env-refs';

type Service = Record<string, any>;
const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, any>;
};
const services = compose.services;

const dependsOn = (s: Service): Record<string, { condition: string }> =>
  Array.isArray(s.depends_on)
    ? Object.fromEntries(s.depends_on.map((n: string) => [n, { condition: 'service_started' }]))
    : (s.depends_on ?? {});

const envOf = (s: Service): Record<string, string> =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((kv: string) => kv.split(/=(.*)/s).slice(0, 2)))
    : Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));

describe('docker-compose.yml', () => {
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  const composeValidator = () => {
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/compose-spec.json'), 'utf8'));
    // The file declares draft 2019-09 as "http://json-schema.org/draft/2019-09/schema#", which
    // Ajv2019 knows under its https id: compile it as 2019-09 without that pointer (and the legacy
    // draft-04 `id` annotations, which only name their own JSON pointer); the rules are used as vendored.
    delete schema.$schema;
    const dropIds = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(dropIds);
    };
    dropIds(schema);
    // The spec's own formats: Go durations (10s, 1m30s), port, expose and subnet strings.
    if (!ajv.formats.duration) {
      ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
      ajv.addFormat('ports', /^[\w.:\-/${}[\]]+$/);
      ajv.addFormat('expose', /^[\w\-/${}:]+$/);
      ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:/]+$/);
    }
    return ajv.getSchema('compose') ?? (ajv.addSchema(schema, 'compose'), ajv.getSchema('compose')!);
  };

  test('validates against the Compose Specification schema', () => {
    const validate = composeValidator();
    const ok = validate(compose);
    expect(ajv.errorsText(validate.errors, { separator: '\n' })).toBe('No errors');
    expect(ok).toBe(true);
  });

  test('a broken file is rejected by the same check (the schema is really applied)', () => {
    const validate = composeValidator();
    expect(validate({ services: { a: { image: 'x', depends_on: { b: { condition: 'service_ready' } } } } })).toBe(false);
    expect(validate({ services: { a: { image: 'x', healthcheck: { interval: 'ten seconds' } } } })).toBe(false);
    expect(validate({ services: { a: { imag: 'x' } } })).toBe(false);
  });

  test('has the whole stack: Postgres, Airflow 3, KRaft Kafka, stream, dbt and one image per batch table', () => {
    const names = Object.keys(services);
    expect(names).toEqual(
      expect.arrayContaining([
        'postgres', 'airflow-init', 'airflow-apiserver', 'airflow-scheduler', 'airflow-dag-processor',
        'airflow-triggerer', 'kafka', 'stream-consumer', 'producer', 'dbt', 'socket-proxy',
      ]),
    );
    // Airflow 3 components and their commands; the API server on 8080.
    expect(services['airflow-apiserver'].command).toBe('api-server');
    expect(services['airflow-apiserver'].ports).toEqual(['${AIRFLOW_BIND:-127.0.0.1}:${AIRFLOW_PORT:-8080}:8080']);
    expect(services['airflow-scheduler'].command).toBe('scheduler');
    expect(services['airflow-dag-processor'].command).toBe('dag-processor');
    expect(services['airflow-triggerer'].command).toBe('triggerer');
    expect(services['airflow-init'].image).toMatch(/apache\/airflow:3\./);
    // Postgres is Airflow's metadata DB.
    const airflowEnv = envOf(services['airflow-scheduler']);
    expect(airflowEnv.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN).toMatch(/^postgresql\+psycopg2:\/\/.*@postgres:5432\//);
    expect(airflowEnv.AIRFLOW__CORE__EXECUTION_API_SERVER_URL).toBe('http://airflow-apiserver:8080/execution/');
    // Kafka in KRaft mode: a controller role, a quorum, and no ZooKeeper anywhere.
    const kafka = envOf(services.kafka);
    expect(kafka.KAFKA_PROCESS_ROLES).toContain('controller');
    expect(kafka.KAFKA_CONTROLLER_QUORUM_VOTERS).toBeTruthy();
    expect(JSON.stringify(compose).toLowerCase()).not.toContain('zookeeper');
    // Consumers talk to the compose broker.
    expect(envOf(services['stream-consumer']).BOOTSTRAP_SERVER).toBe('kafka:9092');
    expect(envOf(services.producer).BOOTSTRAP_SERVER).toBe('kafka:9092');
    // One image per batch destination, built from docker/job.Dockerfile with its TABLE.
    for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) {
      const s = Object.values(services).find((x) => x.image === `store-etl/${d.table}:latest`);
      expect(s).toBeDefined();
      expect(s!.build).toEqual({ context: '.', dockerfile: 'docker/job.Dockerfile', args: { TABLE: d.table } });
    }
  });

  test('only socket-proxy mounts the engine socket, only the scheduler (it runs the tasks) reaches the proxy; every Airflow component runs the DAGs with the docker runner', () => {
    const volumesOf = (s: Service) => (s.volumes ?? []) as string[];
    const engineSocket = '${DOCKER_SOCKET:-/var/run/docker.sock}';
    for (const [name, s] of Object.entries(services)) {
      const raw = volumesOf(s).filter((v) => v.startsWith(`${engineSocket}:`) || /docker\.sock|podman\.sock/.test(v.split(':')[0]));
      expect({ name, raw }).toEqual({ name, raw: name === 'socket-proxy' ? [`${engineSocket}:/run/engine.sock`] : [] });
      const proxied = volumesOf(s).filter((v) => v.startsWith('engine-proxy:'));
      expect({ name, proxied }).toEqual({ name, proxied: ['socket-proxy', 'airflow-scheduler'].includes(name) ? ['engine-proxy:/run/engine-proxy'] : [] });
    }
    // The proxy has no network; the scheduler joins the socket's group to use it.
    expect(services['socket-proxy'].network_mode).toBe('none');
    expect(services['socket-proxy'].build).toEqual({ context: '.', dockerfile: 'docker/socket-proxy.Dockerfile' });
    expect(dependsOn(services['airflow-scheduler'])['socket-proxy'].condition).toBe('service_healthy');
    expect(services['airflow-scheduler'].group_add).toEqual([expect.stringMatching(/^\$\{DOCKER_GID:\?/)]);
    for (const name of ['airflow-init', 'airflow-apiserver', 'airflow-dag-processor', 'airflow-triggerer']) {
      expect({ name, group_add: services[name].group_add }).toEqual({ name, group_add: undefined });
    }
    for (const name of ['airflow-apiserver', 'airflow-scheduler', 'airflow-dag-processor', 'airflow-triggerer']) {
      const s = services[name];
      expect(s.volumes).toContain('./dags:/opt/airflow/dags:ro');
      const env = envOf(s);
      expect(env.ETL_RUNNER).toBe('docker');
      expect(env.DOCKER_URL).toBe('unix:///run/engine-proxy/docker.sock');
      // Secrets come from .env only, and compose refuses to start without them.
      for (const k of ['AIRFLOW__CORE__FERNET_KEY', 'AIRFLOW__API__SECRET_KEY', 'AIRFLOW__API_AUTH__JWT_SECRET']) {
        expect(env[k]).toMatch(new RegExp(`^\\$\\{${k}:\\?`));
      }
    }
  });

  test('starts in order: depends_on targets exist, conditions match their health checks, no cycles', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [target, { condition }] of Object.entries(dependsOn(s))) {
        expect({ name, target, exists: target in services }).toEqual({ name, target, exists: true });
        const t = services[target];
        if (condition === 'service_healthy') expect({ target, healthcheck: Boolean(t.healthcheck?.test) }).toEqual({ target, healthcheck: true });
        if (condition === 'service_completed_successfully') expect({ target, restart: t.restart }).toEqual({ target, restart: 'no' });
      }
    }
    // Long-running services report health; the one-shot ones do not restart.
    for (const name of ['postgres', 'airflow-apiserver', 'airflow-scheduler', 'airflow-dag-processor', 'airflow-triggerer', 'kafka']) {
      expect({ name, healthcheck: Boolean(services[name].healthcheck?.test) }).toEqual({ name, healthcheck: true });
    }
    // The chain the issue asks for.
    expect(dependsOn(services['airflow-init']).postgres.condition).toBe('service_healthy');
    expect(dependsOn(services['airflow-apiserver'])['airflow-init'].condition).toBe('service_completed_successfully');
    expect(dependsOn(services['airflow-scheduler'])['airflow-apiserver'].condition).toBe('service_healthy');
    expect(dependsOn(services['stream-consumer']).kafka.condition).toBe('service_healthy');
    // The producer replays every stream event: only on request, never on up/start.
    expect(services.producer.profiles).toEqual(['replay']);
    for (const [name, s] of Object.entries(services)) {
      if (name !== 'producer') expect({ name, profiles: s.profiles }).toEqual({ name, profiles: undefined });
    }
    // Cheap probes only (no JVM, no Airflow CLI: they time out on a busy host), and time to stop cleanly.
    for (const name of ['postgres', 'airflow-apiserver', 'airflow-scheduler', 'airflow-dag-processor', 'airflow-triggerer', 'kafka']) {
      const test = JSON.stringify(services[name].healthcheck.test);
      expect({ name, test }).toEqual({ name, test: expect.not.stringMatching(/kafka-[\w-]+\.sh|airflow jobs|\bjava\b/) });
      expect({ name, stop_grace_period: services[name].stop_grace_period }).toEqual({ name, stop_grace_period: expect.stringMatching(/^[1-9]\d*s$/) });
    }
    // Cycle check (depth-first).
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (n: string, trail: string[]): void => {
      if (state.get(n) === 'done') return;
      if (state.get(n) === 'visiting') throw new Error(`depends_on cycle: ${[...trail, n].join(' -> ')}`);
      state.set(n, 'visiting');
      for (const t of Object.keys(dependsOn(services[n] ?? {}))) visit(t, [...trail, n]);
      state.set(n, 'done');
    };
    for (const n of Object.keys(services)) visit(n, []);
  });

  test(".env.example's BOOTSTRAP_SERVER is the broker port compose publishes", () => {
    const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    const hostPort = /^KAFKA_HOST_PORT=(\d+)$/m.exec(example)?.[1];
    expect(/^BOOTSTRAP_SERVER=localhost:(\d+)$/m.exec(example)?.[1]).toBe(hostPort);
    expect(services.kafka.ports).toEqual([`127.0.0.1:\${KAFKA_HOST_PORT:-${hostPort}}:29092`]);
    expect(envOf(services.kafka).KAFKA_ADVERTISED_LISTENERS).toContain(`HOST://localhost:\${KAFKA_HOST_PORT:-${hostPort}}`);
  });

  test('named volumes used by services are declared; the network has a stable name for job containers', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    for (const [name, s] of Object.entries(services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const src = String(v).split(':')[0];
        if (!/^[./$]/.test(src)) expect({ name, volume: src, declared: declared.has(src) }).toEqual({ name, volume: src, declared: true });
      }
    }
    expect(compose.networks?.default?.name).toBe('${ETL_COMPOSE_NETWORK:-store-etl}');
  });

  test('every build refers to a Dockerfile that exists in docker/', () => {
    for (const [name, s] of Object.entries(services)) {
      if (!s.build) continue;
      const file = typeof s.build === 'string' ? path.join(s.build, 'Dockerfile') : path.join(s.build.context ?? '.', s.build.dockerfile ?? 'Dockerfile');
      expect({ name, file, exists: fs.existsSync(path.join(ROOT, file)) }).toEqual({ name, file, exists: true });
      expect({ name, file }).toEqual({ name, file: expect.stringMatching(/^docker\/[\w.-]+\.Dockerfile$/) });
      expect({ name, image: s.image }).toEqual({ name, image: expect.stringMatching(/^store-etl\/[\w-]+:latest$/) });
    }
  });

  test('the stream services call the compiled CLIs with options those CLIs accept', () => {
    for (const name of ['stream-consumer', 'producer']) {
      const [script, ...args] = services[name].command as string[];
      expect(services[name].build.dockerfile).toBe('docker/stream.Dockerfile');
      const file = path.join(ROOT, script);
      if (!fs.existsSync(file)) throw new Error(`${file} missing: run npm run build first (npm test does)`);
      const help = spawnSync(process.execPath, [file, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
      expect({ name, exit: help.status }).toEqual({ name, exit: 0 });
      for (const flag of args.filter((a) => a.startsWith('--'))) expect({ name, flag, known: help.stdout.includes(flag) }).toEqual({ name, flag, known: true });
    }
  });
});
