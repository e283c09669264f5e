/**
 * .env.example is complete and safe: every environment variable read by the code, the DAGs, dbt,
 * docker-compose.yml and the Dockerfiles is listed (with a comment), and no secret is committed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SECRETS } from '../../scripts/generate-secrets';
import { envExampleNames, projectEnvRefs, refsInCompose, refsInDockerfile, refsInPython, refsInShell, refsInTypeScript, ROOT } from './env-refs';

/** Set by the platform or the tools, not settings of this project. */
const NOT_OURS: Record<string, string> = {
  NODE_ENV: 'Node.js convention; the images set production (setting it on the host would make npm skip devDependencies)',
  NPM_CONFIG_UPDATE_NOTIFIER: 'npm client setting used only while building images',
  PGDATA: "PostgreSQL's data folder inside the local Postgres image (docker/local/postgres), as in the official image",
  PYTHONUNBUFFERED: 'Python runtime switch set inside the local Airflow image (logs are not held back)',
  PATH: 'system', HOME: 'system', PWD: 'shell', HOSTNAME: 'system', USER: 'system', CI: 'set by CI',
};

const example = envExampleNames(fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8'));

describe('.env.example', () => {
  const refs = projectEnvRefs();
  const byName = new Map<string, Set<string>>();
  for (const r of refs) {
    if (!byName.has(r.name)) byName.set(r.name, new Set());
    byName.get(r.name)!.add(r.file);
  }

  test('the scan sees the variables of every part (sanity)', () => {
    for (const n of ['WAREHOUSE', 'ETL_SOURCE_DIR', 'GCP_PROJECT_ID', 'BOOTSTRAP_SERVER', 'TOPIC_NAME', 'TOPIC_GROUP', 'AIRFLOW__CORE__FERNET_KEY']) {
      expect({ n, found: byName.has(n) }).toEqual({ n, found: true });
    }
    expect([...byName.get('GOOGLE_APPLICATION_CREDENTIALS') ?? []].some((f) => f.startsWith('dags/'))).toBe(true);
    expect([...byName.get('WAREHOUSE') ?? []]).toContain('docker-compose.yml');
  });

  test('lists every environment variable the project reads, each with a comment', () => {
    const missing = [...byName.entries()]
      .filter(([n]) => !(n in NOT_OURS) && !example.has(n))
      .map(([n, files]) => `${n} (read in ${[...files].join(', ')})`);
    expect(missing).toEqual([]);
    const undocumented = [...example.entries()].filter(([, v]) => !v.documented).map(([n]) => n);
    expect(undocumented).toEqual([]);
  });

  test('docs/configuration.md has a row for every variable of .env.example (one table, no other)', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
    // The first cell of a row may name several variables (`KAFKA_PORT` / `KAFKA_CONTROLLER_PORT`).
    const firstCells = [...doc.matchAll(/^\|([^|]*)\|/gm)].map((m) => m[1]);
    const rows = new Set(firstCells.flatMap((c) => [...c.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])));
    expect([...example.keys()].filter((n) => !rows.has(n))).toEqual([]);
  });

  test('commits no secret: generated secrets are empty, nothing looks like a key', () => {
    for (const s of SECRETS) expect({ name: s.name, value: example.get(s.name)?.value }).toEqual({ name: s.name, value: '' });
    expect(example.get('GOOGLE_APPLICATION_CREDENTIALS')?.value).toBe('');
    for (const [name, { value }] of example) {
      expect({ name, looksSecret: /^[A-Za-z0-9_\-+/=]{32,}$/.test(value) }).toEqual({ name, looksSecret: false });
    }
  });

  test('no tracked file holds a private key or a service-account key', () => {
    // A checkout without git metadata (an exported tarball) has nothing tracked to check; in a
    // checkout, git must answer (an error fails the test instead of passing it silently).
    if (!fs.existsSync(path.join(ROOT, '.git'))) {
      console.log('env.test: not a git checkout, no tracked files to check');
      return;
    }
    const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    expect(files).toContain('.env.example');
    const offenders = files.filter((f) => {
      if (/^(node_modules|dist)\//.test(f) || /\.(png|jpg|gz|tgz|zip|duckdb)$/.test(f)) return false;
      const p = path.join(ROOT, f);
      if (!fs.existsSync(p) || fs.statSync(p).size > 5_000_000) return false;
      const t = fs.readFileSync(p, 'utf8');
      return /-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----/.test(t) || /"type"\s*:\s*"service_account"/.test(t);
    });
    expect(offenders).toEqual([]);
    expect(files.filter((f) => /(^|\/)\.env$/.test(f))).toEqual([]);
  });
});

describe('env reference scanners', () => {
  test('TypeScript', () => {
    expect(refsInTypeScript("process.env.A_B; process.env['C']; env.D_E ?? 1; intEnv(env, 'F_G', 3); readEnv('H')")).toEqual(['A_B', 'C', 'D_E', 'F_G', 'H']);
  });
  test('shell overrides', () => {
    expect(refsInShell('X="${A:-1}"; [[ -n "${B:-}" ]]; ${C:?msg}; $LOCAL ${D}')).toEqual(['A', 'B', 'C']);
  });
  test('Python DAGs', () => {
    expect(refsInPython('os.environ.get("A", "x"); os.environ["B"]; os.getenv(\'C\'); if "D" in os.environ: pass\nPASS_ENV = ["E", "F"]')).toEqual(['A', 'B', 'C', 'D', 'E', 'F']);
  });
  test('compose interpolation (escaped $$ and comments skipped)', () => {
    expect(refsInCompose('a: ${A}\nb: ${B:-x}\nc: $${C}\n# ${D}\ne: "${E:?set it} ${F:-${G}}"')).toEqual(['A', 'B', 'E', 'F', 'G']);
  });
  test('Dockerfile ENV and undeclared references', () => {
    expect(refsInDockerfile('ARG T\nFROM x\nENV A=1 \\\n    B=${T}\nRUN echo ${T} $C ${A}')).toEqual(['A', 'B', 'C']);
  });
});
