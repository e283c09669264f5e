/**
 * Parses the settings declared in ./spec.ts, once, with one rule: an empty value is an unset
 * one. The only module that reads process.env (the rest of the code asks ../config.ts).
 */
import path from 'node:path';
import { type Kind, type Setting, settingOf } from './spec';

export type Env = Readonly<Record<string, string | undefined>>;

/** The process's environment: the one place settings are read from it. */
export const processEnv = (): Env => process.env;

/** Typed reads of the declared settings of one environment, each parsed on first use. */
export interface Settings {
  /** The value as text after the empty-is-unset rule and the default; undefined: unset, no default. */
  raw(name: string): string | undefined;
  text(name: string): string;
  optionalText(name: string): string | undefined;
  /** An absolute path (relative ones are taken against the working directory). */
  path(name: string): string;
  optionalPath(name: string): string | undefined;
  int(name: string): number;
  choice<T extends string>(name: string): T;
  list(name: string): string[];
  flag(name: string): boolean;
  /** A share from 0 to 1; undefined when unset: null. */
  optionalShare(name: string): number | null;
}

const SIZE = /^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;

export function settingsOf(env: Env = processEnv(), cwd = process.cwd()): Settings {
  const cache = new Map<string, string | undefined>();
  const raw = (name: string): string | undefined => {
    if (cache.has(name)) return cache.get(name);
    const s = settingOf(name);
    const given = env[name]?.trim();
    let v: string | undefined = given ? given : undefined;
    if (v === undefined) v = s.derive ? s.derive(required) : s.default;
    check(s, v);
    cache.set(name, v);
    return v;
  };
  const required = (name: string): string => {
    const v = raw(name);
    if (v === undefined) throw new Error(`${name} is not set`);
    return v;
  };
  const expect = (name: string, ...kinds: Kind[]): Setting => {
    const s = settingOf(name);
    if (!kinds.includes(s.kind)) throw new Error(`${name} is declared as ${s.kind}, read as ${kinds.join('/')}`);
    return s;
  };
  return {
    raw,
    text: (name) => required(name),
    optionalText: (name) => raw(name),
    path(name) {
      expect(name, 'path');
      return path.resolve(cwd, required(name));
    },
    optionalPath(name) {
      expect(name, 'path');
      const v = raw(name);
      return v === undefined ? undefined : path.resolve(cwd, v);
    },
    int(name) {
      expect(name, 'int');
      return Number(required(name));
    },
    choice<T extends string>(name: string): T {
      expect(name, 'choice');
      return required(name).toLowerCase() as T;
    },
    list(name) {
      expect(name, 'list');
      return required(name).split(',').map((x) => x.trim()).filter(Boolean);
    },
    flag(name) {
      expect(name, 'flag');
      return ['1', 'true'].includes(required(name).toLowerCase());
    },
    optionalShare(name) {
      expect(name, 'share');
      const v = raw(name);
      return v === undefined ? null : Number(v);
    },
  };
}

/** Throws a clear error for a value its kind does not accept. */
function check(s: Setting, v: string | undefined): void {
  if (v === undefined) return;
  const bad = (what: string) => new Error(`${s.name} must be ${what}, got '${v}'`);
  switch (s.kind) {
    case 'int': {
      const n = Number(v);
      const min = s.min ?? 0;
      if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n)) throw bad('a whole number');
      if (n < min) throw bad(`at least ${min}`);
      return;
    }
    case 'choice':
      if (!s.values!.includes(v.toLowerCase())) throw bad(s.values!.map((x) => `'${x}'`).join(' or '));
      return;
    case 'size':
      if (!SIZE.test(v)) throw bad('a size like 512MB or 2GB');
      return;
    case 'flag':
      if (!['0', '1', 'true', 'false'].includes(v.toLowerCase())) throw bad('1 or 0');
      return;
    case 'share': {
      const n = Number(v);
      if (!/^\d*\.?\d+$/.test(v) || !(n >= 0 && n <= 1)) throw bad('a share between 0 and 1 (e.g. 0.2)');
      return;
    }
    default:
      return;
  }
}

/** How a resolved value is handed to shell and Python: paths absolute, the rest as written. */
export function shownValue(settings: Settings, name: string): string {
  const s = settingOf(name);
  const v = settings.raw(name);
  if (v === undefined) return '';
  if (s.kind === 'flag') return settings.flag(name) ? '1' : '0';
  return s.kind === 'path' ? settings.path(name) : v;
}
