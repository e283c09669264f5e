#!/usr/bin/env node
/**
 * Generates the deployment's secrets and host settings: npm run secrets [-- --write .env [--force]]
 *
 * Secrets are fresh random values; host settings are what docker compose needs to know about this
 * machine (the project folder's absolute path, the group of the Docker socket, the owner of the
 * folder the containers write). Without options it prints `NAME=value` lines to stdout. With
 * --write FILE it fills those variables in FILE (created from .env.example when missing) where
 * they are empty, keeping every other line; --force replaces secrets that are already set (host
 * settings are only ever filled when empty). The file is made private (0600).
 * Nothing is ever written into a committed file.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseCommandLine, reportError } from '../jobs/lib/cli';
import { dockerSocketSetting } from '../jobs/lib/config';

export interface Secret {
  readonly name: string;
  readonly description: string;
  readonly generate: () => string;
}

/**
 * A Fernet key as Airflow (python `cryptography`) expects it: 32 random bytes, URL-safe base64
 * with padding (44 characters).
 */
export function fernetKey(): string {
  return randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** A random URL-safe token of `bytes` random bytes (no padding). */
export const token = (bytes: number): string => randomBytes(bytes).toString('base64url');

export const SECRETS: readonly Secret[] = [
  { name: 'AIRFLOW__CORE__FERNET_KEY', description: 'encrypts connections and variables in the metadata DB', generate: fernetKey },
  { name: 'AIRFLOW__API__SECRET_KEY', description: "signs the API server's session cookies", generate: () => token(32) },
  { name: 'AIRFLOW__API_AUTH__JWT_SECRET', description: 'signs the JWTs shared by api-server, scheduler and workers', generate: () => token(48) },
  { name: 'POSTGRES_PASSWORD', description: "password of Airflow's metadata database", generate: () => token(24) },
  { name: 'AIRFLOW_ADMIN_PASSWORD', description: 'password of the Airflow UI admin', generate: () => token(18) },
];

export function generateAll(secrets: readonly Secret[] = SECRETS): Record<string, string> {
  return Object.fromEntries(secrets.map((s) => [s.name, s.generate()]));
}

/** Where the Docker API socket is: DOCKER_SOCKET from the dotenv text, else the environment. */
export function dockerSocket(dotenv: string, env?: NodeJS.ProcessEnv): string {
  const m = /^\s*DOCKER_SOCKET\s*=\s*['"]?([^'"\s#]+)/m.exec(dotenv);
  return m?.[1] || dockerSocketSetting(env);
}

export interface HostSetting {
  readonly name: string;
  readonly description: string;
  /** The value on this machine, or why it cannot be known (then it is left empty). */
  readonly detect: (projectDir: string, socket: string) => { value: string } | { missing: string };
}

/** Settings docker-compose.yml requires that depend on the machine, not secrets. */
export const HOST_SETTINGS: readonly HostSetting[] = [
  {
    name: 'ETL_HOST_PROJECT_DIR',
    description: 'absolute path of the project folder (the DAGs bind-mount data_source/ and .state/ from it)',
    detect: (dir) => ({ value: path.resolve(dir) }),
  },
  {
    name: 'DOCKER_GID',
    description: 'group of the Docker socket (the scheduler joins it to start the job containers)',
    detect: (_dir, socket) =>
      fs.existsSync(socket)
        ? { value: String(fs.statSync(socket).gid) }
        : { missing: `no Docker socket at ${socket} (start the engine, or set DOCKER_SOCKET), so DOCKER_GID is left empty: set it to \`stat -c %g <socket>\`` },
  },
  {
    name: 'ETL_CONTAINER_USER',
    description: "uid:gid of the project folder's owner (the stream and job containers write .state as it)",
    detect: (dir) => {
      const st = fs.statSync(dir);
      return { value: `${st.uid}:${st.gid}` };
    },
  },
];

/** The host settings of `projectDir`; names that cannot be detected are reported in `missing`. */
export function detectHostSettings(projectDir: string, socket: string): { values: Record<string, string>; missing: string[] } {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const h of HOST_SETTINGS) {
    const r = h.detect(projectDir, socket);
    if ('value' in r) values[h.name] = r.value;
    else missing.push(r.missing);
  }
  return { values, missing };
}

/**
 * Sets `values` in dotenv text: an existing `NAME=` line is replaced when its value is empty (or
 * always with `force`), a missing name is appended. Returns the new text and the names set.
 */
export function fillEnv(text: string, values: Record<string, string>, force = false): { text: string; set: string[] } {
  const lines = text.split('\n');
  const seen = new Set<string>();
  const set: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(lines[i]);
    if (!m || !(m[1] in values)) continue;
    seen.add(m[1]);
    const current = m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
    if (current === '' || force) {
      lines[i] = `${m[1]}=${values[m[1]]}`;
      set.push(m[1]);
    }
  }
  const missing = Object.keys(values).filter((k) => !seen.has(k));
  if (missing.length > 0) {
    if (lines.length > 0 && lines[lines.length - 1] !== '') lines.push('');
    lines.push('# Generated by npm run secrets', ...missing.map((k) => `${k}=${values[k]}`), '');
    set.push(...missing);
  }
  return { text: lines.join('\n'), set };
}

const HELP = `Usage: npm run secrets [-- --write FILE [--force]]

Generates the secrets
${SECRETS.map((s) => `  ${s.name.padEnd(31)} ${s.description}`).join('\n')}
and detects the host settings (of the current folder, the project folder)
${HOST_SETTINGS.map((s) => `  ${s.name.padEnd(31)} ${s.description}`).join('\n')}

Options:
  --write FILE   fill the empty ones in FILE (a dotenv file; created from .env.example if missing)
  --force        with --write: replace secrets that are already set (rotates them; a new
                 Fernet key makes stored Airflow connections unreadable). Host settings are
                 only filled where empty.
  -h, --help     show this help

Without --write the values are printed as NAME=value lines.`;

export function main(argv: string[], cwd = process.cwd(), env?: NodeJS.ProcessEnv): number {
  let values;
  try {
    values = parseCommandLine(argv, { write: { type: 'string' }, force: { type: 'boolean' } }, HELP);
  } catch (e) {
    return reportError(e);
  }
  if (values === 'help') return 0;
  const generated = generateAll();
  const file = values.write ? path.resolve(cwd, values.write) : undefined;
  let text = '';
  if (file && fs.existsSync(file)) text = fs.readFileSync(file, 'utf8');
  else if (fs.existsSync(path.join(cwd, '.env.example'))) text = fs.readFileSync(path.join(cwd, '.env.example'), 'utf8');
  const host = detectHostSettings(cwd, dockerSocket(file ? text : '', env));
  for (const m of host.missing) process.stderr.write(`warning: ${m}\n`);
  if (!file) {
    for (const [k, v] of Object.entries({ ...generated, ...host.values })) process.stdout.write(`${k}=${v}\n`);
    return 0;
  }
  const secrets = fillEnv(text, generated, values.force);
  const out = fillEnv(secrets.text, host.values, false);
  const set = [...secrets.set, ...out.set];
  fs.writeFileSync(file, out.text, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  process.stderr.write(
    set.length > 0
      ? `set ${set.join(', ')} in ${file}\n`
      : `nothing to do: every secret and host setting already has a value in ${file} (--force replaces the secrets)\n`,
  );
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
