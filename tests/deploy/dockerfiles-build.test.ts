/**
 * Every Dockerfile in docker/ builds, with podman (no Docker engine here; see
 * docs/testing.md and scripts/setup-podman.sh, which provides podman and a local
 * node:20-bookworm-slim base image). Build args and tags come from docker-compose.yml, so this
 * builds what `docker compose build` builds; the job and stream images are then run once (--help).
 *
 * Without podman (or its base image) the builds are skipped with a printed reason, except in CI
 * (CI=true), where that is a failure: run `bash scripts/setup-podman.sh` before the tests. What
 * needs no engine is checked always: every Dockerfile is built by compose and runs as non-root.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { catalog } from '../../jobs/catalog';
import { CONSUMER_NODE_FLAGS } from '../../jobs/lib/stream/config';
import { ROOT } from './env-refs';

const BASE_IMAGE = process.env.ETL_BASE_IMAGE ?? 'docker.io/library/node:20-bookworm-slim';
const IN_CI = process.env.CI === 'true';
const BUILD_TIMEOUT_MS = 20 * 60_000;

const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
// The repo's own podman settings, as scripts/setup-podman.sh uses them.
env.CONTAINERS_CONF ||= path.join(ROOT, 'docker', 'podman', 'containers.conf');

function podman(args: string[], timeout = 60_000) {
  return spawnSync('podman', args, { cwd: ROOT, env, encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 });
}

function unavailable(): string | null {
  const v = podman(['--version']);
  if (v.error || v.status !== 0) return `podman is not installed (${v.error?.message ?? v.stderr.trim()})`;
  const base = podman(['image', 'exists', BASE_IMAGE]);
  if (base.status !== 0) return `podman has no base image ${BASE_IMAGE} (scripts/setup-podman.sh builds it)`;
  return null;
}

interface BuildSpec {
  readonly dockerfile: string;
  readonly tag: string;
  readonly args: Record<string, string>;
}

/** One build per Dockerfile: the first compose service that builds it gives the tag and args. */
function buildSpecs(): BuildSpec[] {
  const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { image?: string; build?: { dockerfile?: string; args?: Record<string, string> } }>;
  };
  const files = fs.readdirSync(path.join(ROOT, 'docker')).filter((f) => f.endsWith('Dockerfile')).sort();
  return files.map((f) => {
    const dockerfile = `docker/${f}`;
    const svc = Object.values(compose.services).find((s) => s.build?.dockerfile === dockerfile && s.image);
    return {
      dockerfile,
      tag: svc?.image ?? `store-etl-test/${f.replace(/\.?Dockerfile$/, '') || 'image'}:latest`,
      args: Object.fromEntries(Object.entries(svc?.build?.args ?? {}).map(([k, v]) => [k, String(v)])),
    };
  });
}

/** Quick run of a built image, where we know what it answers. */
function smoke(spec: BuildSpec): { args: string[]; expect: RegExp } | null {
  if (spec.dockerfile === 'docker/job.Dockerfile') {
    return { args: ['--help'], expect: new RegExp(`Usage: node dist/jobs/${spec.args.TABLE}\\.js`) };
  }
  if (spec.dockerfile === 'docker/stream.Dockerfile') {
    return { args: ['dist/jobs/stream-consumer.js', '--help'], expect: new RegExp(`Usage: node ${CONSUMER_NODE_FLAGS.join(' ')} dist/jobs/stream-consumer\\.js`) };
  }
  return null;
}

const reason = unavailable();
const specs = buildSpecs();

/** The last USER of a Dockerfile: the user its runtime stage runs as. */
const finalUser = (dockerfile: string) => {
  const users = [...fs.readFileSync(path.join(ROOT, dockerfile), 'utf8').matchAll(/^USER\s+(\S+)\s*$/gm)].map((m) => m[1]);
  return users[users.length - 1];
};

describe('Dockerfiles (no engine needed)', () => {
  test('every Dockerfile in docker/ is built by a compose service, with its image name', () => {
    expect(specs.length).toBeGreaterThanOrEqual(4);
    const orphans = specs.filter((s) => s.tag.startsWith('store-etl-test/')).map((s) => s.dockerfile);
    expect(orphans).toEqual([]);
  });

  test('every image runs as a non-root user', () => {
    for (const s of specs) {
      const user = finalUser(s.dockerfile);
      expect({ dockerfile: s.dockerfile, user, root: user === undefined || /^(0|root)(:|$)/.test(user) }).toEqual({ dockerfile: s.dockerfile, user, root: false });
    }
  });
});

describe('Dockerfiles build with podman', () => {
  if (reason && IN_CI) {
    test('podman is available in CI', () => {
      throw new Error(`CI=true but ${reason}: run 'bash scripts/setup-podman.sh' before npm test`);
    });
    return;
  }
  if (reason) {
    // No placeholder tests: nothing is built here, and the run says so.
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED: Dockerfile builds - ${reason}. Run 'bash scripts/setup-podman.sh' to enable them.`);
    return;
  }

  test('there is a Dockerfile for every image the deployment builds', () => {
    expect(specs.map((s) => s.dockerfile)).toEqual(expect.arrayContaining(['docker/job.Dockerfile', 'docker/stream.Dockerfile']));
    const batch = catalog.destinations.find((d) => d.mode === 'batch')!;
    expect(specs.find((s) => s.dockerfile === 'docker/job.Dockerfile')!.args.TABLE).toBe(batch.table);
  });

  test.each(specs.map((s) => [s.dockerfile, s]))(
    '%s',
    (_name, spec) => {
      const s = spec as BuildSpec;
      const started = Date.now();
      const buildArgs = Object.entries(s.args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
      const b = podman(['build', '--layers', '-t', s.tag, ...buildArgs, '-f', s.dockerfile, '.'], BUILD_TIMEOUT_MS);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      if (b.status !== 0) {
        const tail = `${b.stdout}\n${b.stderr}`.trim().split('\n').slice(-40).join('\n');
        throw new Error(`podman build -f ${s.dockerfile} failed (exit ${b.status}${b.error ? `, ${b.error.message}` : ''}) after ${seconds}s:\n${tail}`);
      }
      // eslint-disable-next-line no-console
      console.log(`built ${s.tag} from ${s.dockerfile} in ${seconds}s`);
      const run = smoke(s);
      if (run) {
        const r = podman(['run', '--rm', s.tag, ...run.args], 120_000);
        expect({ exit: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ exit: 0, stderr: '' });
        expect(r.stdout).toMatch(run.expect);
      }
    },
    BUILD_TIMEOUT_MS + 180_000,
  );
});
