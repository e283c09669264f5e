/**
 * The memory a job's scratch DuckDB runs with, per batch mode (DUCKDB_MEMORY_LIMIT): 128MB by
 * default with BATCH_MODE=elt (it only stages and writes Parquet, so a small limit keeps its peak
 * RSS flat from 1M to 3M orders, docs/benchmarks.md), 512MB with etl (its checks and joins run
 * there), a value set wins. Read from the scratch instance itself while the job runs, against a
 * stand-in of the BigQuery warehouse (no double needed: the job stops at its first upload).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import * as duckdbFile from '../../jobs/lib/sql/duckdb-file';
import type { Warehouse } from '../../jobs/lib/warehouse/types';
import { STORE_EXPORT } from '../helpers/store-export';

const STOP = 'test: memory limit read';

/** DuckDB's rendering of a size given in MB (10^6 bytes): MiB with one decimal. */
const asDuckDbShows = (mb: number) => `${(Math.floor((mb * 1e6) / 2 ** 20 * 10) / 10).toFixed(1)} MiB`;

/**
 * Runs dim_vendors with `env` against a stand-in that reads `memory_limit` from the job's scratch
 * connection at the first upload (ELT: a Parquet file; ETL: the finished table) and stops the job.
 */
async function scratchMemoryLimit(env: Record<string, string>): Promise<{ configured: string; running: string }> {
  const real = duckdbFile.openDuckDb;
  const opened: DuckDBConnection[] = [];
  const spy = jest.spyOn(duckdbFile, 'openDuckDb').mockImplementation(async (...args) => {
    const db = await real(...args);
    opened.push(db.connection);
    return db;
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'elt-memory-'));
  let running = '';
  const read = async () => {
    const r = await opened[0].runAndReadAll(`SELECT current_setting('memory_limit')`);
    running = String(r.getRowsJS()[0][0]);
    throw new Error(STOP);
  };
  const standIn: Warehouse = {
    kind: 'bigquery', location: 'stand-in',
    ensureSchema: async () => undefined,
    replaceTable: read,
    recordRun: async () => undefined,
    applyStreamBatch: async () => false,
    readOffsets: async () => [],
    close: async () => undefined,
    elt: {
      tableRef: (_d, t) => `\`p.d.${t}\``,
      listTables: async () => [],
      loadParquet: read,
      createTable: async () => undefined,
      query: async () => [],
      dropTable: async () => undefined,
      replaceFromStaging: async () => undefined,
    },
  };
  try {
    const config = loadConfig(env, { sourceDir: STORE_EXPORT, stateDir: dir });
    await expect(runBatchJob(catalog, 'dim_vendors', config, { warehouse: standIn })).rejects.toThrow(STOP);
    expect(opened).toHaveLength(1);
    return { configured: config.duckdbMemoryLimit, running };
  } finally {
    spy.mockRestore();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("a job's scratch DuckDB memory limit (DUCKDB_MEMORY_LIMIT)", () => {
  test('WAREHOUSE=bigquery (ELT by default): 128MB', async () => {
    expect(await scratchMemoryLimit({ WAREHOUSE: 'bigquery' })).toEqual({ configured: '128MB', running: asDuckDbShows(128) });
  });

  test('BATCH_MODE=etl: 512MB (the checks and the transform run in the container)', async () => {
    expect(await scratchMemoryLimit({ WAREHOUSE: 'bigquery', BATCH_MODE: 'etl' })).toEqual({ configured: '512MB', running: asDuckDbShows(512) });
    expect(loadConfig({}).duckdbMemoryLimit).toBe('512MB');
  });

  test('a value set wins in either mode', async () => {
    expect(await scratchMemoryLimit({ WAREHOUSE: 'bigquery', DUCKDB_MEMORY_LIMIT: '300MB' })).toEqual({ configured: '300MB', running: asDuckDbShows(300) });
    expect(loadConfig({ WAREHOUSE: 'bigquery', BATCH_MODE: 'elt', DUCKDB_MEMORY_LIMIT: '' }).duckdbMemoryLimit).toBe('128MB');
  });
});
