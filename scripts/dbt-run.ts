/**
 * The Node side of the dbt step, for `npm start` and tests:
 *  - runDbtBuild(): runs scripts/dbt-build.sh (profiles from env, `dbt build`, `dbt docs generate`)
 *    and throws with the tail of dbt's output when it fails;
 *  - topUserRevenue(): reads the `user_revenue` mart from the DuckDB warehouse file.
 *
 *   node dist/scripts/dbt-run.js [--skip-build] [--top N]   # build, then print the top N users
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { dbtSettings } from '../jobs/lib/config';

/** The schema dbt builds the marts into on DuckDB: <profile schema `store`>_marts. */
export const MARTS_SCHEMA = 'store_marts';

export interface UserRevenueRow {
  user_id: string;
  full_name: string | null;
  total_revenue: number;
}

export interface DbtRunOptions {
  /** Receives every line dbt prints (default: written to stdout). */
  log?: (line: string) => void;
  /** Environment for dbt (default process.env): DUCKDB_PATH, ETL_STATE_DIR, DBT_TARGET, ... */
  env?: NodeJS.ProcessEnv;
  /** dbt command instead of the default build + docs, e.g. ['parse'] or ['compile']. */
  args?: string[];
}

/** The repo root: the nearest folder above this file holding package.json (works from dist/ too). */
export function repoRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'dbt_project'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the repo root above ${from}`);
    dir = up;
  }
}

const EXIT_HINTS: Record<number, string> = {
  2: 'the dbt toolchain is missing: run `npm run setup:dbt`',
  3: 'the warehouse file does not exist: run the batch pipeline first',
};

/** Runs scripts/dbt-build.sh; resolves when dbt succeeded, rejects with a clear message otherwise. */
export async function runDbtBuild(opts: DbtRunOptions = {}): Promise<void> {
  const root = repoRoot();
  const script = path.join(root, 'scripts', 'dbt-build.sh');
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    log(line);
  };
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [script, ...(opts.args ?? [])], {
      cwd: root,
      env: opts.env ?? process.env, // handed on whole: dbt-build.sh resolves its settings itself
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buf += chunk;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) onLine(l.replace(/\r$/, ''));
      });
      stream.on('end', () => {
        if (buf) onLine(buf);
      });
    }
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  if (code !== 0) {
    const what = opts.args?.length ? `dbt ${opts.args.join(' ')}` : 'dbt build';
    const hint = EXIT_HINTS[code] ? ` (${EXIT_HINTS[code]})` : '';
    const last = tail.filter((l) => /ERROR|FAIL|Error|error|Done\.|not found|does not exist/.test(l)).slice(-15);
    throw new Error(
      `${what} failed with exit code ${code}${hint}; scripts/dbt-build.sh printed:\n${(last.length ? last : tail.slice(-15)).join('\n')}`,
    );
  }
}

/** The warehouse file the jobs write: DUCKDB_PATH, default <ETL_STATE_DIR or .state>/warehouse.duckdb. */
export function warehousePath(env?: NodeJS.ProcessEnv, root = repoRoot()): string {
  return dbtSettings(env, root).duckdbPath;
}

/** The top `limit` users of the user_revenue mart by revenue (ties by user_id), read-only. */
export async function topUserRevenue(
  limit = 10,
  opts: { duckdbPath?: string } = {},
): Promise<UserRevenueRow[]> {
  if (!Number.isInteger(limit) || limit < 0) throw new Error(`limit must be a whole number, got ${limit}`);
  const file = opts.duckdbPath ?? warehousePath();
  if (!fs.existsSync(file)) throw new Error(`warehouse ${file} does not exist`);
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  try {
    const connection = await instance.connect();
    try {
      const reader = await connection.runAndReadAll(
        `SELECT user_id, full_name, CAST(total_revenue AS DOUBLE) AS total_revenue
           FROM ${MARTS_SCHEMA}.user_revenue
          ORDER BY total_revenue DESC, user_id
          LIMIT ${limit}`,
      );
      return reader.getRowObjectsJS().map((r) => ({
        user_id: String(r.user_id),
        full_name: r.full_name === null ? null : String(r.full_name),
        total_revenue: Number(r.total_revenue),
      }));
    } finally {
      connection.closeSync();
    }
  } catch (e) {
    if (/user_revenue.*does not exist|Catalog Error/i.test(String((e as Error).message))) {
      throw new Error(`${MARTS_SCHEMA}.user_revenue is not in ${file}: run dbt build first (${(e as Error).message})`);
    }
    throw e;
  } finally {
    instance.closeSync();
  }
}

/** A small text table of user_revenue rows for the terminal. */
export function formatUserRevenue(rows: readonly UserRevenueRow[]): string {
  const out = ['', `Top ${rows.length} users by revenue (delivered orders, ${MARTS_SCHEMA}.user_revenue)`];
  out.push(`${'user_id'.padEnd(10)}${'full_name'.padEnd(28)}${'total_revenue'.padStart(16)}`);
  for (const r of rows) {
    out.push(`${r.user_id.padEnd(10)}${(r.full_name ?? '(unknown)').padEnd(28)}${r.total_revenue.toFixed(2).padStart(16)}`);
  }
  if (rows.length === 0) out.push('  (no delivered orders)');
  return out.join('\n');
}

if (require.main === module) {
  (async () => {
    const argv = process.argv.slice(2);
    const i = argv.indexOf('--top');
    const top = i >= 0 ? Number(argv[i + 1]) : 10;
    if (!argv.includes('--skip-build')) await runDbtBuild();
    process.stdout.write(formatUserRevenue(await topUserRevenue(top)) + '\n');
  })().catch((e: Error) => {
    process.stderr.write(`dbt-run: ${e.message}\n`);
    process.exit(1);
  });
}
