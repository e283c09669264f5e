/**
 * The compose configuration as `docker compose config` resolves it: from the CLI when one is
 * installed, otherwise by our own resolution of the YAML (merge keys `<<:` and `${...}`
 * interpolation as the Compose Specification defines it). Used by task-env.test.ts.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './env-refs';

export type Service = Record<string, any>;
export interface ComposeConfig {
  services: Record<string, Service>;
}

/** KEY=value lines of a dotenv file (comments and blank lines skipped, quotes removed). */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Compose interpolation of one string: $$ (a literal $), $NAME, ${NAME}, ${NAME:-default} /
 * ${NAME-default} (default when unset or empty / unset), ${NAME:?err} / ${NAME?err} (error), and
 * ${NAME:+alt} / ${NAME+alt}; defaults may themselves hold ${...}.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next !== '{') {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
      if (!m) {
        out += '$';
        i++;
        continue;
      }
      out += env[m[0]] ?? '';
      i += 1 + m[0].length;
      continue;
    }
    // ${...}: find the matching brace (defaults may nest ${...}).
    let depth = 1;
    let j = i + 2;
    for (; j < text.length && depth > 0; j++) {
      if (text[j] === '{' && text[j - 1] === '$') depth++;
      else if (text[j] === '}') depth--;
    }
    if (depth !== 0) throw new Error(`unterminated \${ in ${JSON.stringify(text)}`);
    const body = text.slice(i + 2, j - 1);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(body);
    if (!m) throw new Error(`invalid interpolation \${${body}}`);
    const [, name, colon, op, arg] = m;
    const value = env[name];
    const missing = value === undefined || (colon === ':' && value === '');
    if (!op) out += value ?? '';
    else if (op === '-') out += missing ? interpolate(arg, env) : value;
    else if (op === '+') out += missing ? '' : interpolate(arg, env);
    else if (missing) throw new Error(`required variable ${name} is missing a value: ${interpolate(arg, env)}`);
    else out += value;
    i = j;
  }
  return out;
}

function interpolateTree(node: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof node === 'string') return interpolate(node, env);
  if (Array.isArray(node)) return node.map((n) => interpolateTree(n, env));
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateTree(v, env)]));
  }
  return node;
}

/** A service's environment as a map (compose allows a list of KEY=value too). */
export function environmentOf(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv: string) => kv.split(/=(.*)/s).slice(0, 2)));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Our own resolution: the YAML with merge keys, interpolated with the env file's values. */
export function resolveOwn(envFile: string, file = path.join(ROOT, 'docker-compose.yml')): ComposeConfig {
  const env = parseDotenv(fs.readFileSync(envFile, 'utf8'));
  const raw = parse(fs.readFileSync(file, 'utf8'), { merge: true }) as ComposeConfig;
  const resolved = interpolateTree(raw, env) as ComposeConfig;
  // Like the CLI, services under a profile are not part of a plain config.
  for (const [name, s] of Object.entries(resolved.services)) if (s.profiles) delete resolved.services[name];
  return resolved;
}

/** The `docker compose` CLI, if this machine has one: argv prefix, or null. */
export function composeCli(): string[] | null {
  const candidates: string[][] = [];
  if (process.env.COMPOSE_CLI) candidates.push(process.env.COMPOSE_CLI.split(' '));
  // Where scripts/compose-smoke.sh caches the CLI it builds from the Go module proxy.
  candidates.push([path.join(ROOT, '.state', 'compose', 'docker-compose')], ['docker-compose'], ['docker', 'compose']);
  for (const c of candidates) {
    const r = spawnSync(c[0], [...c.slice(1), 'version'], { encoding: 'utf8' });
    if (r.status === 0 && /v2\./.test(r.stdout)) return c;
  }
  return null;
}

/** `docker compose config` of the project with `envFile`, in a clean environment (no host overrides). */
export function resolveWithCli(cli: string[], envFile: string): ComposeConfig {
  const r = spawnSync(
    cli[0],
    [...cli.slice(1), '--project-directory', ROOT, '-f', path.join(ROOT, 'docker-compose.yml'), '--env-file', envFile, 'config', '--format', 'json'],
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' } },
  );
  if (r.status !== 0) throw new Error(`docker compose config failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ComposeConfig;
}
