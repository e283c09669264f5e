#!/usr/bin/env node
/**
 * The config command: the settings of jobs/lib/config/spec.ts for shell scripts, Python and people.
 *
 *   node dist/scripts/config.js get NAME...       each resolved value on a line (paths absolute)
 *   node dist/scripts/config.js --shell [NAME...] `export NAME='value'` lines (default: every
 *                                                 non-secret setting), for `eval "$(...)"`
 *   node dist/scripts/config.js docs [--check]    writes .env.example and docs/configuration.md
 *                                                 from the spec (--check: exit 1 when they differ)
 *
 * Imports only the config folder, so scripts/config-env.sh can compile it alone before a build.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GENERATED_FILES } from '../jobs/lib/config/render';
import { settingsOf, shownValue } from '../jobs/lib/config/settings';
import { settingOf, SPEC } from '../jobs/lib/config/spec';

const HELP = `Usage: node dist/scripts/config.js get NAME...
       node dist/scripts/config.js --shell [NAME...]
       node dist/scripts/config.js docs [--check]

get       prints the value each setting resolves to here (empty value = unset = the default;
          relative paths taken against the working directory and printed absolute)
--shell   prints export lines for eval "$(...)" (every non-secret setting when no NAME is given)
docs      writes .env.example and docs/configuration.md from jobs/lib/config/spec.ts
          (--check: writes nothing, exits 1 naming the files that differ)
Secrets (passwords, keys) are never printed. Settings: docs/configuration.md.`;

/** The project folder: the nearest one above this file with package.json (from scripts/ or dist/scripts/). */
function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

const quote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

function notSecret(name: string): string {
  if (settingOf(name).secret) throw new Error(`${name} is a secret: the config command does not print it`);
  return name;
}

export function run(argv: readonly string[], out: (line: string) => void = (l) => process.stdout.write(l + '\n')): number {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '-h' || cmd === '--help') {
    out(HELP);
    return cmd ? 0 : 64;
  }
  if (cmd === 'get') {
    if (rest.length === 0) throw new Error('get needs at least one NAME');
    const s = settingsOf();
    for (const name of rest) out(shownValue(s, notSecret(name)));
    return 0;
  }
  if (cmd === '--shell') {
    const s = settingsOf();
    const names = rest.length > 0 ? rest.map(notSecret) : SPEC.filter((x) => !x.secret).map((x) => x.name);
    for (const name of names) out(`export ${name}=${quote(shownValue(s, name))}`);
    return 0;
  }
  if (cmd === 'docs') {
    const check = rest.includes('--check');
    const root = projectRoot();
    const stale: string[] = [];
    for (const [file, render] of Object.entries(GENERATED_FILES)) {
      const p = path.join(root, file);
      const text = render();
      if (fs.existsSync(p) && fs.readFileSync(p, 'utf8') === text) continue;
      stale.push(file);
      if (!check) fs.writeFileSync(p, text);
    }
    if (check && stale.length > 0) {
      out(`config docs: ${stale.join(', ')} differ from jobs/lib/config/spec.ts: run npm run config:docs`);
      return 1;
    }
    out(check ? 'config docs: up to date' : `config docs: ${stale.length ? `wrote ${stale.join(', ')}` : 'up to date'}`);
    return 0;
  }
  out(HELP);
  return 64;
}

if (require.main === module) {
  try {
    process.exitCode = run(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`config: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
