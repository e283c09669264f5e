/**
 * Helpers of the dbt suites: the dbt venv prerequisite (skip locally with a clear message, fail
 * in CI), a private dbt environment per suite (own state dir, profiles, target/ and logs/), and
 * reading dbt's run_results.json.
 */
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/env';

export const IN_CI = process.env.CI === 'true';
export const DBT_VENV = path.join(ROOT, '.venv-dbt');
export const DBT_BIN = path.join(DBT_VENV, 'bin', 'dbt');

/** Why dbt cannot run here, or null. */
export function missingDbt(): string | null {
  return fs.existsSync(DBT_BIN) ? null : 'dbt venv .venv-dbt/ is missing (run `npm run setup:dbt`)';
}

/**
 * `describe` when dbt is installed; otherwise a suite that fails in CI (CI=true) and is skipped
 * with the reason elsewhere.
 */
export function describeWithDbt(name: string, body: () => void): void {
  const missing = missingDbt();
  if (!missing) {
    describe(name, body);
  } else if (IN_CI) {
    describe(name, () => {
      test('prerequisite: dbt venv', () => {
        throw new Error(`${missing} - CI must run scripts/setup-dbt.sh before npm test`);
      });
    });
  } else {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED dbt suite "${name}": ${missing}`);
    describe.skip(name, body);
  }
}

/** A private environment for scripts/dbt-build.sh: everything under one temp folder. */
export function dbtEnv(prefix: string, extra: Record<string, string> = {}): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir(prefix);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    ETL_STATE_DIR: dir,
    DUCKDB_PATH: path.join(dir, 'warehouse.duckdb'),
    DBT_TARGET_PATH: path.join(dir, 'dbt-target'),
    DBT_LOG_PATH: path.join(dir, 'dbt-logs'),
    DBT_TARGET: 'duckdb',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  return { dir, env };
}

export interface NodeResult {
  readonly unique_id: string;
  readonly status: string;
  readonly failures: number | null;
}

/** Results of the last dbt command that wrote run_results.json (or `name`) in `targetPath`. */
export function runResults(targetPath: string, name = 'run_results.json'): NodeResult[] {
  const file = path.join(targetPath, name);
  const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { results: NodeResult[] };
  return doc.results;
}

/** A short line per failed/errored/warned node, for assertion messages. */
export function problems(results: readonly NodeResult[]): string[] {
  return results.filter((r) => !['success', 'pass'].includes(r.status)).map((r) => `${r.status}: ${r.unique_id}`);
}

/** Runs statements on a DuckDB file (opened for them, closed after): rows a test puts in place. */
export async function execDuckDb(dbPath: string, statements: readonly string[]): Promise<void> {
  const instance = await DuckDBInstance.create(dbPath);
  const c = await instance.connect();
  try {
    for (const s of statements) await c.run(s);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}
