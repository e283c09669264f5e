/**
 * The texts generated from the spec: .env.example, docs/configuration.md and the environment
 * part of the --help texts. `npm run config:docs` writes the two files; tests/deploy/env.test.ts
 * fails when the committed ones differ from what this renders.
 */
import { SECTION_TITLES, type Section, type Setting, SPEC } from './spec';

/** The files rendered from the spec, by path relative to the project folder. */
export const GENERATED_FILES = {
  '.env.example': () => renderEnvExample(),
  'docs/configuration.md': () => renderConfigurationDoc(),
} as const;

const SECTIONS = Object.keys(SECTION_TITLES) as Section[];

/** How the default reads for people: described when derived or absent, else the value. */
export function defaultText(s: Setting): string {
  if (s.defaultDoc) return s.defaultDoc;
  return s.default === undefined ? '(none)' : `\`${s.default}\``;
}

/** `text` as `# ` comment lines of at most `width` characters. */
function commentLines(text: string, width = 100): string[] {
  const out: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line.length + 1 + word.length > width && line !== '#') {
      out.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  out.push(line);
  return out;
}

const plain = (md: string): string => md.replace(/`/g, '');

const ENV_EXAMPLE_HEAD = `# GENERATED from jobs/lib/config/spec.ts by \`npm run config:docs\`: edit the spec, not this file.
# Settings of the store ETL: every environment variable that any part of the project reads
# (jobs, scripts, DAGs, docker-compose.yml, Dockerfiles). tests/deploy/env.test.ts checks that.
#
#   cp .env.example .env            # .env is git-ignored; never commit it
#   npm run secrets -- --write .env # fills the empty secrets below with fresh random values, and
#                                   # the host settings (ETL_HOST_PROJECT_DIR, DOCKER_GID,
#                                   # ETL_CONTAINER_USER) with this machine's values
#
# docker compose reads .env for \${...} interpolation. To use it for host commands too:
#   set -a; . ./.env; set +a
# Lines that start with \`# NAME=\` are optional: leave them commented unless you change them. The
# default is in the comment above each; an empty value is the same as an unset one (the default).
# Nothing here is a real secret: every secret is empty until \`npm run secrets\` fills it.
# The values a command resolves: node dist/scripts/config.js get NAME (or --shell).`;

export function renderEnvExample(): string {
  const out = [ENV_EXAMPLE_HEAD];
  for (const section of SECTIONS) {
    const settings = SPEC.filter((s) => s.section === section);
    if (settings.length === 0) continue;
    out.push('', `# ${'-'.repeat(75)} ${SECTION_TITLES[section]}`);
    for (const s of settings) {
      out.push(...commentLines(`${plain(s.doc)} Default: ${plain(defaultText(s))}.`));
      const value = s.secret ? '' : (s.example ?? s.default ?? '');
      out.push(`${s.active ? '' : '# '}${s.name}=${value}`);
    }
  }
  return out.join('\n') + '\n';
}

const DOC_HEAD = `<!-- GENERATED from jobs/lib/config/spec.ts by \`npm run config:docs\`: edit the spec, not this file. -->
# Configuration

Every setting is an environment variable, declared once in
[\`jobs/lib/config/spec.ts\`](../jobs/lib/config/spec.ts) (type, default, meaning, users, secret or
not) and parsed once (\`jobs/lib/config/settings.ts\`); the code asks \`jobs/lib/config.ts\` for typed
sections and nothing else reads \`process.env\`. This table, [\`.env.example\`](../.env.example) (a
commented template: \`cp .env.example .env\`) and the environment part of every \`--help\` are
generated from the spec (\`npm run config:docs\`); \`tests/deploy/env.test.ts\` fails when they drift,
or when the code, scripts, DAGs, dbt, compose file or Dockerfiles read a variable the spec lacks.

**One rule for empty values**: an empty value is the same as an unset one; the default applies.
Relative paths are taken against the working directory (the project folder for npm scripts).

**Shell and Python** ask the spec instead of repeating defaults:
\`node dist/scripts/config.js get NAME...\` prints resolved values (paths absolute), \`--shell
NAME...\` prints \`export\` lines (secrets are never printed). The shell scripts source
\`scripts/config-env.sh\`, which runs that command (and, before \`npm run build\`, compiles the
config command alone first: it needs only Node and TypeScript). Scripts that run before
\`npm ci\` has installed TypeScript (\`npm run setup\` and its parts) keep their own defaults, which
\`tests/deploy/env.test.ts\` holds equal to the spec's. The DAGs (which run where Node may not be)
read their settings through \`dags/etl_settings.py\`, which \`npm run make-dags\` generates from the
spec: its defaults are the spec's, with the same empty-is-unset rule.

Logs are structured (winston) and go to stderr, results to stdout. Every command prints its own
variables with \`--help\` (e.g. \`node dist/jobs/fact_orders.js --help\`).`;

const cell = (text: string): string => text.replace(/\|/g, '\\|');

export function renderConfigurationDoc(): string {
  const out = [DOC_HEAD, '', '| variable | default | used by | meaning |', '| --- | --- | --- | --- |'];
  for (const section of SECTIONS) {
    for (const s of SPEC.filter((x) => x.section === section)) {
      const meaning = s.kind === 'choice' && s.values ? `${s.doc} (${s.values.map((v) => `\`${v}\``).join(', ')})` : s.doc;
      out.push(`| \`${s.name}\`${s.secret ? ' (secret)' : ''} | ${cell(defaultText(s))} | ${cell(s.usedBy)} | ${cell(meaning)} |`);
    }
  }
  return out.join('\n') + '\n';
}

/** The first sentence of a doc, for one --help line. */
const firstSentence = (doc: string): string => /^(.*?[.:])(\s|$)/.exec(doc)?.[1].replace(/[.:]$/, '') ?? doc;

/** The environment part of a --help text: the settings of `sections`, one line each. */
export function envHelp(sections: readonly Section[], title = 'Environment'): string {
  const lines = [`${title} (all settings: docs/configuration.md; an empty value is unset):`];
  for (const s of SPEC.filter((x) => sections.includes(x.section))) {
    lines.push(`  ${s.name.padEnd(30)}${plain(firstSentence(s.doc))} (default: ${plain(defaultText(s))})`);
  }
  return lines.join('\n');
}
