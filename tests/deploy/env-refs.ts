/**
 * Finds the environment variables the project reads, file by file: TypeScript (jobs/, scripts/),
 * shell scripts (their `${NAME:-default}` overrides), Airflow DAGs and templates (os.environ),
 * dbt (env_var()), docker-compose.yml (`${NAME}` interpolation) and Dockerfiles (ENV, and `${NAME}`
 * not declared by ARG). Used by env.test.ts to hold .env.example complete.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The repository root (the folder with package.json), from tests/deploy or dist/tests/deploy. */
export const ROOT = ((): string => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export interface EnvRef {
  readonly name: string;
  readonly file: string;
}

const NAME = '([A-Za-z_][A-Za-z0-9_]*)';
const UPPER = '([A-Z_][A-Z0-9_]*)';

function all(text: string, re: RegExp): string[] {
  return [...text.matchAll(re)].map((m) => m[1]);
}

export function refsInTypeScript(text: string): string[] {
  return unique([
    ...all(text, new RegExp(`process\\.env\\.${UPPER}`, 'g')),
    ...all(text, new RegExp(`process\\.env\\[\\s*['"\`]${UPPER}['"\`]\\s*\\]`, 'g')),
    // A NodeJS.ProcessEnv passed around as `env` (config loaders).
    ...all(text, new RegExp(`\\benv\\.${UPPER}\\b`, 'g')),
    ...all(text, new RegExp(`\\benv\\[\\s*['"\`]${UPPER}['"\`]\\s*\\]`, 'g')),
    // Helpers taking the variable's name: intEnv(env, 'NAME', ...), readEnv('NAME').
    ...all(text, new RegExp(`\\b\\w*[Ee]nv\\w*\\(\\s*(?:env\\s*,\\s*)?['"\`]${UPPER}['"\`]`, 'g')),
    // The typed reads of the config spec (jobs/lib/config/settings.ts): s.int('NAME'), s.choice<T>('NAME').
    ...all(text, new RegExp(`\\.(?:${SETTINGS_READS})(?:<[^>()]*>)?\\(\\s*['"\`]${UPPER}['"\`]`, 'g')),
  ]);
}

const unique = (names: string[]): string[] => [...new Set(names)];

/** The methods of `Settings` (jobs/lib/config/settings.ts) that read one setting by name. */
const SETTINGS_READS = 'raw|text|optionalText|path|optionalPath|int|choice|list|flag';

/** `process.env.NAME` / `process.env['NAME']` / `process.env[name]`: a direct read of the environment. */
export function directEnvReads(text: string): string[] {
  return [...text.matchAll(/process\.env(?:\.[A-Za-z_]\w*|\s*\[[^\]]+\])/g)].map((m) => m[0]);
}

/** The `${NAME:-literal}` defaults of a shell script (literal: no expansion inside; not in a message). */
export function shellDefaults(text: string): { name: string; value: string }[] {
  const code = text.split('\n').filter((l) => !/\b(log|echo|printf) "/.test(l)).join('\n');
  return [...code.matchAll(/\$\{([A-Z_][A-Z0-9_]*):-([^}$`"]*)\}/g)].map((m) => ({ name: m[1], value: m[2] }));
}

export function refsInShell(text: string): string[] {
  // Overridable settings: ${NAME:-default}, ${NAME-default}, ${NAME:=x}, ${NAME:?msg}.
  const overrides = all(text, new RegExp(`\\$\\{${UPPER}:?[-=?]`, 'g'));
  // Settings resolved by the spec: `config_env NAME...` (scripts/config-env.sh), continued lines too.
  const joined = text.replace(/\\\r?\n/g, ' ');
  const fromSpec = all(joined, /^\s*config_env\s+([^\n#;|&]*)/gm).flatMap((args) => all(args, new RegExp(`(?:^|\\s)${UPPER}(?=\\s|$)`, 'g')));
  return unique([...overrides, ...fromSpec]);
}

export function refsInPython(text: string): string[] {
  const names = [
    ...all(text, new RegExp(`os\\.environ\\.get\\(\\s*['"]${UPPER}['"]`, 'g')),
    ...all(text, new RegExp(`os\\.environ\\[\\s*['"]${UPPER}['"]\\s*\\]`, 'g')),
    ...all(text, new RegExp(`os\\.getenv\\(\\s*['"]${UPPER}['"]`, 'g')),
    // The DAGs' settings module generated from the spec (dags/etl_settings.py): setting("NAME").
    ...all(text, new RegExp(`\\bsetting\\(\\s*['"]${UPPER}['"]`, 'g')),
    ...all(text, new RegExp(`['"]${UPPER}['"]\\s+(?:not\\s+)?in\\s+os\\.environ`, 'g')),
    // Jinja in templates: {{ env_var('NAME') }} is dbt's; Airflow's is var/conn, not env.
    ...all(text, new RegExp(`env_var\\(\\s*['"]${NAME}['"]`, 'g')),
  ];
  // Pass-through lists of the generated DAGs: PASS_ENV = ["WAREHOUSE", ...].
  for (const list of all(text, /PASS_ENV\s*=\s*\[([^\]]*)\]/g)) names.push(...all(list, new RegExp(`['"]${UPPER}['"]`, 'g')));
  return names;
}

export function refsInDbt(text: string): string[] {
  return all(text, new RegExp(`env_var\\(\\s*['"]${NAME}['"]`, 'g'));
}

export function refsInCompose(text: string): string[] {
  // ${NAME}, ${NAME:-default}, ${NAME:?message}; `$${NAME}` is an escaped, container-side variable.
  const noComments = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n');
  return all(noComments, new RegExp(`(?<!\\$)\\$\\{${NAME}`, 'g'));
}

export function refsInDockerfile(text: string): string[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const lines = joined.split('\n').filter((l) => !/^\s*#/.test(l));
  const args = new Set<string>();
  const envs: string[] = [];
  const used: string[] = [];
  for (const line of lines) {
    const arg = /^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)/i.exec(line);
    if (arg) args.add(arg[1]);
    const env = /^\s*ENV\s+(.*)$/i.exec(line);
    if (env) envs.push(...all(env[1], new RegExp(`(?:^|\\s)${NAME}=`, 'g')));
    else used.push(...all(line, new RegExp(`\\$\\{?${NAME}`, 'g')));
  }
  return [...envs, ...used.filter((n) => !args.has(n) && !envs.includes(n))];
}

export function walk(dir: string, keep: (file: string) => boolean, skip = /(^|\/)(node_modules|dist|target|dbt_packages|logs|\.venv[^/]*|__pycache__|\.git)$/): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!skip.test(p)) out.push(...walk(p, keep, skip));
    } else if (keep(p)) out.push(p);
  }
  return out;
}

/** Every environment variable reference in the project's code, DAGs, dbt, compose and Dockerfiles. */
export function projectEnvRefs(root = ROOT): EnvRef[] {
  const rel = (f: string) => path.relative(root, f);
  const refs: EnvRef[] = [];
  const add = (files: string[], scan: (t: string) => string[]) => {
    for (const f of files) for (const name of scan(fs.readFileSync(f, 'utf8'))) refs.push({ name, file: rel(f) });
  };
  add(walk(path.join(root, 'jobs'), (f) => f.endsWith('.ts')), refsInTypeScript);
  add(walk(path.join(root, 'scripts'), (f) => f.endsWith('.ts')), refsInTypeScript);
  add(walk(path.join(root, 'scripts'), (f) => f.endsWith('.sh')), refsInShell);
  add(walk(path.join(root, 'scripts'), (f) => f.endsWith('.py')), refsInPython);
  add(walk(path.join(root, 'dags'), (f) => f.endsWith('.py')), refsInPython);
  add(walk(path.join(root, 'dag_templates'), () => true), refsInPython);
  add(walk(path.join(root, 'dbt_project'), (f) => /\.(ya?ml|sql)$/.test(f)), refsInDbt);
  add(walk(path.join(root, 'docker'), (f) => /Dockerfile$/.test(f)), refsInDockerfile);
  const compose = path.join(root, 'docker-compose.yml');
  if (fs.existsSync(compose)) add([compose], refsInCompose);
  return refs;
}

/** Names set in a dotenv example, whether active (`NAME=`) or commented out (`# NAME=`). */
export function envExampleNames(text: string): Map<string, { value: string; commented: boolean; documented: boolean }> {
  const out = new Map<string, { value: string; commented: boolean; documented: boolean }>();
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const m = /^(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) return;
    // Documented: a comment line (not itself an assignment) somewhere in the block above.
    let documented = false;
    for (let j = i - 1; j >= 0 && lines[j].trim() !== ''; j--) {
      if (/^#/.test(lines[j]) && !/^#\s*[A-Za-z_][A-Za-z0-9_]*=/.test(lines[j])) {
        documented = true;
        break;
      }
    }
    if (!out.has(m[2]) || !m[1]) out.set(m[2], { value: m[3], commented: Boolean(m[1]), documented });
  });
  return out;
}
