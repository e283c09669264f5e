#!/usr/bin/env node
/**
 * Generates the deployment's secrets and host settings: npm run secrets [-- --write .env [--force]]
 *
 * Secrets are fresh random values; host settings are what docker compose needs to know about this
 * machine (the project folder's absolute path, the group of the Docker socket, the owner of the
 * folder the containers write). Without options it prints `NAME=value` lines to stdout. With
 * --write FILE it fills those variables in FILE (created from .env.example when missing) where
 * they are empty, keeping every other line; --force replaces secrets that are already set (host
 * settings are only ever filled when empty). FILE is private (0600) from its first byte and
 * replaced atomically (a temporary file beside it, renamed over it); a FILE that is a symbolic
 * link is refused (its target would be rewritten). Nothing is ever written into a committed file.
 *
 * The containers never run as root: ETL_CONTAINER_USER is the owner of the state folder or of the
 * project folder, whichever is not root, else CONTAINER_FALLBACK_USER (50000:50000, the uid of
 * the Airflow containers too); a root-owned state folder is then given to that user (--write, as
 * root) or the command to do so is printed. An ETL_CONTAINER_USER of uid 0 already in FILE is
 * refused.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseCommandLine, reportError } from '../jobs/lib/cli';
import { processEnv, settingsOf, type Env } from '../jobs/lib/config/settings';

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

/** NAME's value in the dotenv text (an active line, not a comment), else in the environment. */
function setting(dotenv: string, env: Env | undefined, name: string): string | undefined {
  const m = new RegExp(`^[ \\t]*${name}[ \\t]*=[ \\t]*['"]?([^'"\\s#]+)`, 'm').exec(dotenv); // one line only
  return m?.[1] || settingsOf(env ?? processEnv()).raw(name);
}

/** Where the Docker API socket is: DOCKER_SOCKET from the dotenv text, else the environment. */
export function dockerSocket(dotenv: string, env?: Env): string {
  return setting(dotenv, env, 'DOCKER_SOCKET')!;
}

/** The state folder the containers write: ETL_STATE_DIR of the dotenv text or environment, else .state. */
export function stateDir(projectDir: string, dotenv: string, env?: Env): string {
  return path.resolve(projectDir, setting(dotenv, env, 'ETL_STATE_DIR')!);
}

/** The user the containers run as when every candidate folder belongs to root. */
export const CONTAINER_FALLBACK_USER = { uid: 50000, gid: 50000 };

/** True for a uid:gid (or uid, or user name) that is root. */
export const isRootUser = (user: string): boolean => /^(0|root)(:|$)/.test(user.trim());

/**
 * The uid:gid the containers run as: the first owner that is not root among the state folder
 * (when it exists) and the project folder, else CONTAINER_FALLBACK_USER.
 */
export function containerUser(projectDir: string, state: string): { uid: number; gid: number } {
  for (const dir of [state, projectDir]) {
    const st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st && st.uid !== 0) return { uid: st.uid, gid: st.gid };
  }
  return CONTAINER_FALLBACK_USER;
}

export interface HostContext {
  readonly projectDir: string;
  readonly socket: string;
  readonly stateDir: string;
}

export interface HostSetting {
  readonly name: string;
  readonly description: string;
  /** The value on this machine, or why it cannot be known (then it is left empty). */
  readonly detect: (host: HostContext) => { value: string } | { missing: string };
}

/** Settings docker-compose.yml requires that depend on the machine, not secrets. */
export const HOST_SETTINGS: readonly HostSetting[] = [
  {
    name: 'ETL_HOST_PROJECT_DIR',
    description: 'absolute path of the project folder (the DAGs bind-mount data_source/ and .state/ from it)',
    detect: ({ projectDir }) => ({ value: path.resolve(projectDir) }),
  },
  {
    name: 'DOCKER_GID',
    description: 'group of the Docker socket (the scheduler joins it to start the job containers)',
    detect: ({ socket }) =>
      fs.existsSync(socket)
        ? { value: String(fs.statSync(socket).gid) }
        : { missing: `no Docker socket at ${socket} (start the engine, or set DOCKER_SOCKET), so DOCKER_GID is left empty: set it to \`stat -c %g <socket>\`` },
  },
  {
    name: 'ETL_CONTAINER_USER',
    description: `uid:gid the stream and job containers run as: the owner of the state folder or project folder, never root (then ${CONTAINER_FALLBACK_USER.uid}:${CONTAINER_FALLBACK_USER.gid})`,
    detect: ({ projectDir, stateDir: state }) => {
      const u = containerUser(projectDir, state);
      return { value: `${u.uid}:${u.gid}` };
    },
  },
];

/** The host settings of this machine; names that cannot be detected are reported in `missing`. */
export function detectHostSettings(host: HostContext): { values: Record<string, string>; missing: string[] } {
  const values: Record<string, string> = {};
  const missing: string[] = [];
  for (const h of HOST_SETTINGS) {
    const r = h.detect(host);
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

/**
 * Writes `text` to `file` private (0600) from its first byte and atomically: a new temporary file
 * beside it (O_EXCL: never an existing file or link), synced, then renamed over `file`. A `file`
 * that is a symbolic link is refused: its target, anywhere, would be rewritten.
 */
export function writePrivateFile(file: string, text: string): void {
  if (fs.lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) {
    throw new Error(`${file} is a symbolic link: refusing to write secrets through it (replace it with a regular file)`);
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the umask may only have narrowed it; never wider
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Makes the state folder usable by the container user `user` (uid:gid): a missing one is created
 * (0700), a root-owned one is given to `user` when this process is root. Returns what was done or
 * what the operator must do, for the message.
 */
export function prepareStateDir(state: string, user: string, isRoot: boolean): { done?: string; todo?: string } {
  const [uid, gid] = user.split(':').map(Number);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return {}; // a user name: the operator's choice
  const st = fs.statSync(state, { throwIfNoEntry: false });
  if (st && st.uid === uid) return {};
  if (!isRoot) {
    if (!st) return {}; // created by whoever runs the stack first
    return { todo: `the state folder ${state} belongs to uid ${st.uid}, the containers run as ${user}: run \`sudo chown -R ${user} ${state}\` (or set ETL_CONTAINER_USER to its owner)` };
  }
  if (!st) fs.mkdirSync(state, { recursive: true, mode: 0o700 });
  else if (st.uid !== 0) return { todo: `the state folder ${state} belongs to uid ${st.uid}, the containers run as ${user}: chown -R ${user} ${state}, or set ETL_CONTAINER_USER to its owner` };
  chownTree(state, uid, gid);
  fs.chmodSync(state, 0o700);
  return { done: `gave the state folder ${state} to ${user} (mode 0700): the containers run as ${user}, never as root` };
}

function chownTree(dir: string, uid: number, gid: number): void {
  fs.lchownSync(dir, uid, gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else fs.lchownSync(p, uid, gid);
  }
}

const HELP = `Usage: npm run secrets [-- --write FILE [--force]]

Generates the secrets
${SECRETS.map((s) => `  ${s.name.padEnd(31)} ${s.description}`).join('\n')}
and detects the host settings (of the current folder, the project folder)
${HOST_SETTINGS.map((s) => `  ${s.name.padEnd(31)} ${s.description}`).join('\n')}

The containers never run as root: in a root-owned checkout ETL_CONTAINER_USER is
${CONTAINER_FALLBACK_USER.uid}:${CONTAINER_FALLBACK_USER.gid}, and --write (as root) gives the state folder (ETL_STATE_DIR, default .state)
to that user, mode 0700. An ETL_CONTAINER_USER of uid 0 in FILE is refused.

Options:
  --write FILE   fill the empty ones in FILE (a dotenv file; created from .env.example if missing;
                 written 0600 and atomically; a symbolic link is refused)
  --force        with --write: replace secrets that are already set (rotates them; a new
                 Fernet key makes stored Airflow connections unreadable). Host settings are
                 only filled where empty.
  -h, --help     show this help

Without --write the values are printed as NAME=value lines.`;

export function main(argv: string[], cwd = process.cwd(), env?: Env, isRoot = process.getuid?.() === 0): number {
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
  if (file && fs.lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink()) {
    process.stderr.write(`error: ${file} is a symbolic link: refusing to write secrets through it (replace it with a regular file)\n`);
    return 1;
  }
  if (file && fs.existsSync(file)) text = fs.readFileSync(file, 'utf8');
  else if (fs.existsSync(path.join(cwd, '.env.example'))) text = fs.readFileSync(path.join(cwd, '.env.example'), 'utf8');
  const dotenv = file ? text : '';
  const set = file ? setting(text, {}, 'ETL_CONTAINER_USER') : undefined;
  if (set && isRootUser(set)) {
    process.stderr.write(
      `error: ETL_CONTAINER_USER=${set} in ${file} runs the containers as root: set a non-root uid:gid ` +
        `(e.g. ${CONTAINER_FALLBACK_USER.uid}:${CONTAINER_FALLBACK_USER.gid}) and give it the state folder: chown -R <uid:gid> ${stateDir(cwd, dotenv, env)}\n`,
    );
    return 1;
  }
  const state = stateDir(cwd, dotenv, env);
  const host = detectHostSettings({ projectDir: cwd, socket: dockerSocket(dotenv, env), stateDir: state });
  for (const m of host.missing) process.stderr.write(`warning: ${m}\n`);
  if (!file) {
    for (const [k, v] of Object.entries({ ...generated, ...host.values })) process.stdout.write(`${k}=${v}\n`);
    return 0;
  }
  const secrets = fillEnv(text, generated, values.force);
  const out = fillEnv(secrets.text, host.values, false);
  const names = [...secrets.set, ...out.set];
  writePrivateFile(file, out.text);
  const user = set ?? host.values.ETL_CONTAINER_USER;
  const prepared = prepareStateDir(state, user, isRoot);
  if (prepared.done) process.stderr.write(`${prepared.done}\n`);
  if (prepared.todo) process.stderr.write(`warning: ${prepared.todo}\n`);
  process.stderr.write(
    names.length > 0
      ? `set ${names.join(', ')} in ${file}\n`
      : `nothing to do: every secret and host setting already has a value in ${file} (--force replaces the secrets)\n`,
  );
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
