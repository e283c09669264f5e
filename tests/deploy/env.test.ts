/**
 * The one config spec (jobs/lib/config/spec.ts) is complete and its generated files current:
 * every environment variable read by the code, the scripts, the DAGs, dbt, docker-compose.yml and
 * the Dockerfiles is declared there; only the config module reads process.env; .env.example and
 * docs/configuration.md are what the spec renders; the scripts that keep a default of their own
 * keep the spec's; and no secret is committed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GENERATED_FILES } from '../../jobs/lib/config/render';
import { SPEC } from '../../jobs/lib/config/spec';
import { SECRETS } from '../../scripts/generate-secrets';
import {
  directEnvReads, envExampleNames, projectEnvRefs, refsInCompose, refsInDockerfile, refsInPython, refsInShell, refsInTypeScript, ROOT, shellDefaults, walk,
} from './env-refs';

/** Set by the platform or the tools, not settings of this project. */
const NOT_OURS: Record<string, string> = {
  NODE_ENV: 'Node.js convention; the images set production (setting it on the host would make npm skip devDependencies)',
  NPM_CONFIG_UPDATE_NOTIFIER: 'npm client setting used only while building images',
  PGDATA: "PostgreSQL's data folder inside the local Postgres image (docker/local/postgres), as in the official image",
  PYTHONUNBUFFERED: 'Python runtime switch set inside the local Airflow image (logs are not held back)',
  PATH: 'system', HOME: 'system', PWD: 'shell', HOSTNAME: 'system', USER: 'system',
};

const declared = new Map(SPEC.map((s) => [s.name, s]));
const example = envExampleNames(fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8'));

describe('the config spec', () => {
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
    // The code's typed reads through the spec are seen too.
    expect([...byName.get('STREAM_COMMIT_MAX_EVENTS') ?? []]).toContain('jobs/lib/config.ts');
    expect([...byName.get('STREAM_SNAPSHOT_WAIT_S') ?? []]).toContain('scripts/dbt_stream_snapshot.py');
  });

  test('declares every environment variable the project reads', () => {
    const missing = [...byName.entries()]
      .filter(([n]) => !(n in NOT_OURS) && !declared.has(n))
      .map(([n, files]) => `${n} (read in ${[...files].join(', ')})`);
    expect(missing).toEqual([]);
  });

  test('only the config module reads process.env (handing it whole to a child process is fine)', () => {
    const configModule = (f: string) => f === 'jobs/lib/config.ts' || f.startsWith('jobs/lib/config/');
    const reads = ['jobs', 'scripts']
      .flatMap((d) => walk(path.join(ROOT, d), (f) => f.endsWith('.ts')))
      .map((f) => path.relative(ROOT, f))
      .filter((f) => !configModule(f))
      .flatMap((f) => directEnvReads(fs.readFileSync(path.join(ROOT, f), 'utf8')).map((r) => `${f}: ${r}`));
    expect(reads).toEqual([]);
  });

  test('.env.example and docs/configuration.md are what the spec renders (npm run config:docs)', () => {
    for (const [file, render] of Object.entries(GENERATED_FILES)) {
      expect({ file, current: fs.readFileSync(path.join(ROOT, file), 'utf8') === render() }).toEqual({ file, current: true });
    }
    expect([...example.keys()].sort()).toEqual(SPEC.map((s) => s.name).sort());
    const undocumented = [...example.entries()].filter(([, v]) => !v.documented).map(([n]) => n);
    expect(undocumented).toEqual([]);
  });

  test('docs/configuration.md has a row for every setting (one table, no other)', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');
    const firstCells = [...doc.matchAll(/^\|([^|]*)\|/gm)].map((m) => m[1]);
    const rows = new Set(firstCells.flatMap((c) => [...c.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])));
    expect(SPEC.map((s) => s.name).filter((n) => !rows.has(n))).toEqual([]);
  });

  test("a script's own default of a setting is the spec's (scripts that run before the build keep them)", () => {
    const differ = walk(path.join(ROOT, 'scripts'), (f) => f.endsWith('.sh')).flatMap((f) =>
      shellDefaults(fs.readFileSync(f, 'utf8'))
        .filter(({ name }) => declared.get(name)?.default !== undefined)
        .filter(({ name, value }) => declared.get(name)!.default !== value)
        // The compose smoke test runs its stack beside a development one, on ports of its own.
        .filter(({ name }) => !(f.endsWith('compose-smoke.sh') && ['AIRFLOW_PORT', 'KAFKA_HOST_PORT'].includes(name)))
        .map(({ name, value }) => `${path.relative(ROOT, f)}: \${${name}:-${value}} (spec: ${declared.get(name)!.default})`),
    );
    expect(differ).toEqual([]);
  });

  test('commits no secret: generated secrets are secrets of the spec and empty, nothing looks like a key', () => {
    for (const s of SECRETS) {
      expect({ name: s.name, secret: declared.get(s.name)?.secret, value: example.get(s.name)?.value }).toEqual({ name: s.name, secret: true, value: '' });
    }
    expect(example.get('GOOGLE_APPLICATION_CREDENTIALS')?.value).toBe('');
    for (const [name, { value }] of example) {
      expect({ name, looksSecret: /^[A-Za-z0-9_\-+/=]{32,}$/.test(value) }).toEqual({ name, looksSecret: false });
    }
  });
});

/**
 * The project's files: git's tracked files in a checkout; without git metadata (an exported
 * tarball) every file of the tree but the git-ignored build and dependency folders. Never empty.
 */
function projectFiles(root: string): string[] {
  const files = fs.existsSync(path.join(root, '.git'))
    ? execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean)
    : walk(root, () => true, /(^|\/)(node_modules|dist|\.state|\.venv[^/]*|__pycache__|\.git|test-artifacts)$/).map((f) => path.relative(root, f));
  if (files.length === 0) throw new Error(`no files found under ${root}`);
  return files;
}

/** Files that hold a private key or a service-account key. */
function keyHolders(root: string, files: readonly string[]): string[] {
  return files.filter((f) => {
    if (/^(node_modules|dist)\//.test(f) || /\.(png|jpg|gz|tgz|zip|duckdb)$/.test(f)) return false;
    const p = path.join(root, f);
    if (!fs.existsSync(p) || !fs.statSync(p).isFile() || fs.statSync(p).size > 5_000_000) return false;
    const t = fs.readFileSync(p, 'utf8');
    return /-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----/.test(t) || /"type"\s*:\s*"service_account"/.test(t);
  });
}

describe('no key in the project', () => {
  test('no project file holds a private key or a service-account key; no .env is tracked', () => {
    const files = projectFiles(ROOT);
    expect(files).toContain('.env.example');
    expect(keyHolders(ROOT, files)).toEqual([]);
    if (fs.existsSync(path.join(ROOT, '.git'))) expect(files.filter((f) => /(^|\/)\.env$/.test(f))).toEqual([]);
  });

  test('the check finds a planted key in a tree without git metadata (it cannot pass for want of git)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-keys-'));
    fs.mkdirSync(path.join(dir, 'secrets'));
    fs.writeFileSync(path.join(dir, '.env.example'), 'A=1\n');
    fs.writeFileSync(path.join(dir, 'secrets', 'sa.json'), JSON.stringify({ type: 'service_account' }));
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, 'node_modules', 'k.pem'), `-----BEGIN ${'PRIVATE'} KEY-----`);
    expect(fs.existsSync(path.join(dir, '.git'))).toBe(false);
    expect(keyHolders(dir, projectFiles(dir))).toEqual(['secrets/sa.json']);
  });
});

describe('env reference scanners', () => {
  test('TypeScript', () => {
    expect(refsInTypeScript("process.env.A_B; process.env['C']; env.D_E ?? 1; intEnv(env, 'F_G', 3); readEnv('H'); s.int('I'); s.choice<T>('J')")).toEqual(['A_B', 'C', 'D_E', 'F_G', 'H', 'I', 'J']);
  });
  test('direct reads of process.env', () => {
    expect(directEnvReads("process.env.A; process.env['B']; process.env[name]; f(process.env); { ...process.env }")).toEqual(['process.env.A', "process.env['B']", 'process.env[name]']);
  });
  test('shell defaults', () => {
    expect(shellDefaults('A="${A:-1}"; B="${B:-$ROOT/x}"; C="${C:-}"; ${D:-a b}\nlog "E=${E:-unset}"')).toEqual([{ name: 'A', value: '1' }, { name: 'C', value: '' }, { name: 'D', value: 'a b' }]);
  });
  test('shell overrides', () => {
    expect(refsInShell('X="${A:-1}"; [[ -n "${B:-}" ]]; ${C:?msg}; $LOCAL ${D}\nconfig_env E F \\\n  G # H\n  config_env I')).toEqual(['A', 'B', 'C', 'E', 'F', 'G', 'I']);
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
