/**
 * Environment-driven settings, read in one place. Every variable is documented in .env.example.
 * Paths are resolved against the working directory (the repo root for npm scripts).
 */
import path from 'node:path';
import type { WarehouseKind } from './warehouse/types';

export interface EtlConfig {
  readonly sourceDir: string;
  readonly stateDir: string;
  readonly duckdbPath: string;
  readonly warehouse: WarehouseKind;
  /** How often a job retries a DuckDB file locked by another writer before giving up. */
  readonly duckdbLockRetries: number;
  /** Memory of a job's scratch DuckDB; past it DuckDB spills to disk, so peak RSS stays bounded. */
  readonly duckdbMemoryLimit: string;
  /**
   * Longest source record (line) in bytes: a longer one is quarantined as `record_too_long`
   * with a short excerpt, and never held in memory whole.
   */
  readonly maxRecordBytes: number;
  /**
   * How batch jobs stage a source file: `bulk` (DuckDB reads and checks it with SQL compiled
   * from the catalog; flagged rows, and files it cannot take, go through the exact path) or
   * `exact` (csv-parse + ajv for every row).
   */
  readonly batchPath: BatchPath;
  /**
   * Opt-in ceiling on the share (0-1) of any source's rows a job may quarantine and still load;
   * null (unset, the default): no ceiling.
   */
  readonly maxQuarantineShare: number | null;
}

export type BatchPath = 'bulk' | 'exact';

function parseBatchPath(value: string | undefined): BatchPath {
  const v = (value ?? '').trim().toLowerCase() || 'bulk';
  if (v === 'bulk' || v === 'exact') return v;
  throw new Error(`BATCH_PATH must be 'bulk' or 'exact', got '${value}'`);
}

function parseWarehouse(value: string | undefined): WarehouseKind {
  const v = (value ?? 'duckdb').trim().toLowerCase();
  if (v === 'duckdb' || v === 'bigquery') return v;
  throw new Error(`WAREHOUSE must be 'duckdb' or 'bigquery', got '${value}'`);
}

function parseCount(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got '${value}'`);
  return n;
}

function parseMemory(value: string | undefined, fallback: string): string {
  const v = (value ?? '').trim() || fallback;
  if (!/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(v)) {
    throw new Error(`DUCKDB_MEMORY_LIMIT must be a size like 512MB or 2GB, got '${value}'`);
  }
  return v;
}

/** The longest source record (line) by default: 1 MiB. */
export const DEFAULT_MAX_RECORD_BYTES = 1024 * 1024;

/** At least 1 KiB (a record limit below a real row would quarantine everything). */
function parseRecordLimit(value: string | undefined): number {
  const n = parseCount('MAX_RECORD_BYTES', value, DEFAULT_MAX_RECORD_BYTES);
  if (n < 1024) throw new Error(`MAX_RECORD_BYTES must be at least 1024, got '${value}'`);
  return n;
}

function parseShare(name: string, value: string | undefined): number | null {
  if (value === undefined || value.trim() === '') return null;
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new Error(`${name} must be a share between 0 and 1 (e.g. 0.2), got '${value}'`);
  return n;
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<EtlConfig> = {},
): EtlConfig {
  const stateDir = path.resolve(overrides.stateDir ?? env.ETL_STATE_DIR ?? '.state');
  return {
    sourceDir: path.resolve(overrides.sourceDir ?? env.ETL_SOURCE_DIR ?? 'data_source'),
    stateDir,
    duckdbPath: path.resolve(overrides.duckdbPath ?? env.DUCKDB_PATH ?? path.join(stateDir, 'warehouse.duckdb')),
    warehouse: overrides.warehouse ?? parseWarehouse(env.WAREHOUSE),
    duckdbLockRetries:
      overrides.duckdbLockRetries ?? parseCount('DUCKDB_LOCK_RETRIES', env.DUCKDB_LOCK_RETRIES, 10),
    duckdbMemoryLimit: overrides.duckdbMemoryLimit ?? parseMemory(env.DUCKDB_MEMORY_LIMIT, '512MB'),
    maxRecordBytes: overrides.maxRecordBytes ?? parseRecordLimit(env.MAX_RECORD_BYTES),
    batchPath: overrides.batchPath ?? parseBatchPath(env.BATCH_PATH),
    maxQuarantineShare: overrides.maxQuarantineShare !== undefined ? overrides.maxQuarantineShare : parseShare('MAX_QUARANTINE_SHARE', env.MAX_QUARANTINE_SHARE),
  };
}
