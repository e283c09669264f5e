/** Shared test helpers: temp folders, running built CLIs, querying DuckDB. */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { JobReport, SourceQuality } from '../../jobs/lib/quality';

export const ROOT = path.resolve(__dirname, '..', '..');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `etl-${prefix}-`));
}

/** Runs a compiled CLI (`npm test` builds dist/ first) with a clean, explicit environment. */
export function runNode(script: string, args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [path.join(ROOT, 'dist', script), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_FORMAT: 'json', LOG_LEVEL: 'warn', ...env },
  });
}

export async function query(dbPath: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(dbPath, { access_mode: 'READ_ONLY' });
  const c = await instance.connect();
  try {
    return (await c.runAndReadAll(sql)).getRowsJS() as unknown[][];
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

export async function count(dbPath: string, table: string): Promise<number> {
  const [[n]] = await query(dbPath, `SELECT count(*)::INTEGER FROM ${table}`);
  return Number(n);
}

/** Copies selected source files into a fresh folder, optionally rewriting some of them. */
export function sourceFolder(from: string, files: Record<string, string | null> = {}): string {
  const dir = tempDir('src');
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  for (const [f, body] of Object.entries(files)) {
    if (body === null) fs.rmSync(path.join(dir, f));
    else fs.writeFileSync(path.join(dir, f), body);
  }
  return dir;
}

/**
 * Starts a batch job that pauses inside its load transaction (ETL_TEST_PAUSE_BEFORE_COMMIT_MS)
 * and resolves once it is there, so a test can kill it at the worst moment.
 */
export async function spawnJobPausedInLoad(table: string, sourceDir: string, stateDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'jobs', `${table}.js`), '--source-dir', sourceDir], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ETL_STATE_DIR: stateDir, LOG_FORMAT: 'json', ETL_TEST_PAUSE_BEFORE_COMMIT_MS: '60000' },
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('pausing inside the load transaction')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`job exited (${code}) before the pause: ${err}`)));
  });
  return child;
}

/** The data-quality report a job's latest run wrote under `stateDir` (`reports/store.<table>.latest.json`). */
export function latestReport(stateDir: string, table: string): JobReport {
  return JSON.parse(fs.readFileSync(path.join(stateDir, 'reports', `store.${table}.latest.json`), 'utf8')) as JobReport;
}

/** One source's part of that report. */
export function sourceReport(stateDir: string, table: string, source: string): SourceQuality {
  const s = latestReport(stateDir, table).sources.find((x) => x.source === source);
  if (!s) throw new Error(`no source ${source} in ${table}'s report`);
  return s;
}
