#!/usr/bin/env node
/**
 * `npm run bench:batch`: generates a large data set (default 1M orders), then in one run on the
 * same files measures
 *   1. our batch jobs (stream parse + ajv validation + staging + SQL transform + atomic load),
 *   2. the same work done natively by DuckDB (read_csv + the same transform SQL) - the ceiling,
 * each job in its own process so that its peak RSS is its own, and prints rows/s, peak RSS,
 * the ratio, the load average and which staging path (bulk or exact) each source took.
 * Figures only; nothing here asserts a time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import type { BatchDestination } from '../jobs/lib/catalog-types';
import { findSource, stagedColumns } from '../jobs/lib/catalog-check';
import { loadConfig } from '../jobs/lib/config';
import { DUCKDB_TYPES, duckdbCreateTable, quoteIdent, SOURCE_TO_COLUMN_TYPE, stagingTableName } from '../jobs/lib/ddl';
import { runBatchJob, transformSql } from '../jobs/lib/pipeline';
import { openDuckDb } from '../jobs/lib/sql/duckdb-file';
import { sqlString } from '../jobs/lib/sql/quote';
import { generate } from './generate-data';
import { runBenchCli, runChild, wholeNumber } from './lib/bench-cli';

const HELP = `Usage: npm run bench:batch -- [--orders N] [--dir DIR] [--runs R]

Generates N orders (default 1000000) into DIR (default .state/bench/data-N; reused when present),
then runs every batch job and the native DuckDB equivalent on the same files, one process per
job, R times each, ours and native alternating (default 3), and prints the median run's rows/s
and the peak RSS of each with their ratio, the load average before and after, and the staging
path each source took. BATCH_PATH=exact measures the exact path instead.`;

interface Measure {
  readonly table: string;
  readonly rowsIn: number;
  readonly rowsOut: number;
  readonly seconds: number;
  readonly peakRssMb: number;
  /** Staging path per source (our jobs only). */
  readonly paths?: Readonly<Record<string, string>>;
}

const batchTables = () => catalog.destinations.filter((d): d is BatchDestination => d.mode === 'batch');

/** Our job, as `npm start` runs it. */
async function measureOurs(table: string, dataDir: string, stateDir: string): Promise<Measure> {
  const t0 = process.hrtime.bigint();
  // Only the settings that shape the measurement come from the environment (not DUCKDB_PATH...).
  const { batchPath, duckdbMemoryLimit } = loadConfig();
  const r = await runBatchJob(catalog, table, loadConfig({}, { sourceDir: dataDir, stateDir, batchPath, duckdbMemoryLimit }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { table, rowsIn: r.run.rowsIn, rowsOut: r.run.rowsOut, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, paths: r.stagingPaths };
}

/** The ceiling: DuckDB reads the files itself and runs the same transform into a file. */
async function measureNative(table: string, dataDir: string, stateDir: string): Promise<Measure> {
  const dest = batchTables().find((d) => d.table === table)!;
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, `native-${table}.duckdb`);
  fs.rmSync(file, { force: true });
  const t0 = process.hrtime.bigint();
  const db = await openDuckDb(file);
  const c = db.connection;
  let rowsIn = 0;
  let out = 0;
  try {
    await c.run(`SET memory_limit = '${loadConfig().duckdbMemoryLimit}'`);
    for (const name of dest.sources) {
      const s = findSource(catalog, name);
      const cols = s.columns
        .map((col) => `${sqlString(col.name)}: ${sqlString(col.type === 'bool01' ? 'INTEGER' : DUCKDB_TYPES[SOURCE_TO_COLUMN_TYPE[col.type]])}`)
        .join(', ');
      const select = stagedColumns(s)
        .map((col) => (col.type === 'bool01' ? `${quoteIdent(col.name)} = 1 AS ${quoteIdent(col.name)}` : quoteIdent(col.name)))
        .join(', ');
      // Staged sources carry the schema contract's rescued values (NULL without drift): the same
      // transform SQL reads them, so the native tables have the column too.
      await c.run(
        `CREATE TEMP TABLE ${stagingTableName(s)} AS SELECT ${select}, NULL::VARCHAR AS _rescued_data FROM read_csv(${sqlString(path.join(dataDir, s.file))},
           delim = ${sqlString(s.delimiter)}, header = true, quote = '', columns = {${cols}})`,
      );
      const r = await c.runAndReadAll(`SELECT count(*)::BIGINT FROM ${stagingTableName(s)}`);
      rowsIn += Number(r.getRowsJS()[0][0]);
    }
    await c.run(duckdbCreateTable(dest, 'result'));
    await c.run(`INSERT INTO result BY NAME ${transformSql(dest)}`);
    out = Number((await c.runAndReadAll('SELECT count(*)::BIGINT FROM result')).getRowsJS()[0][0]);
    await c.run('CHECKPOINT');
  } finally {
    db.close();
  }
  // Up to the database closed, as our job's time includes closing its own.
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.rmSync(file, { force: true });
  return { table, rowsIn, rowsOut: out, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

const child = (kind: 'ours' | 'native', table: string, dataDir: string, stateDir: string): Measure =>
  runChild<Measure>(__filename, kind, table, dataDir, stateDir);

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** The run of median seconds (the upper middle one of an even count), with the highest peak RSS of all. */
function summary(ms: readonly Measure[]): Measure {
  const mid = [...ms].sort((a, b) => a.seconds - b.seconds)[Math.floor(ms.length / 2)];
  return { ...mid, peakRssMb: Math.max(...ms.map((m) => m.peakRssMb)) };
}

async function bench(orders: number, dir: string | undefined, runs: number): Promise<void> {
  const config = loadConfig();
  const dataDir = path.resolve(dir ?? path.join(config.stateDir, 'bench', `data-${orders}`));
  const marker = path.join(dataDir, '.complete');
  if (!fs.existsSync(marker)) {
    process.stderr.write(`generating ${fmt(orders)} orders into ${dataDir} ...\n`);
    const t0 = Date.now();
    await generate({ orders, out: dataDir, seed: 42, faults: false, faultRate: 0 });
    fs.writeFileSync(marker, new Date().toISOString());
    process.stderr.write(`generated in ${fmt((Date.now() - t0) / 1000, 1)} s\n`);
  }
  const bytes = fs.readdirSync(dataDir).reduce((n, f) => n + fs.statSync(path.join(dataDir, f)).size, 0);
  const stateDir = path.join(config.stateDir, 'bench', 'state');
  fs.rmSync(stateDir, { recursive: true, force: true });

  const load = () => os.loadavg().map((n) => fmt(n, 2)).join(' ');
  const loadBefore = load();
  const rows: { ours: Measure; native: Measure }[] = [];
  for (const d of batchTables()) {
    // Alternating runs, then the median of each: a small job's seconds swing with the machine.
    const runsOf: { ours: Measure[]; native: Measure[] } = { ours: [], native: [] };
    for (let r = 0; r < runs; r++) {
      for (const kind of ['ours', 'native'] as const) {
        process.stderr.write(`${d.table} run ${r + 1}/${runs}: ${kind} ... `);
        const m = child(kind, d.table, dataDir, stateDir);
        process.stderr.write(`${fmt(m.seconds, 2)} s\n`);
        runsOf[kind].push(m);
      }
    }
    const ours = summary(runsOf.ours);
    const native = summary(runsOf.native);
    if (ours.rowsOut !== native.rowsOut) throw new Error(`${d.table}: ours wrote ${ours.rowsOut} rows, native ${native.rowsOut}`);
    rows.push({ ours, native });
  }

  const out: string[] = [];
  out.push(`Batch benchmark: ${fmt(orders)} orders, ${fmt(bytes / 1e6, 1)} MB of source files, node ${process.version}, ${os.cpus().length} cores, BATCH_PATH=${config.batchPath}, median of ${runs} run(s) each`);
  out.push(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after (figures on a loaded machine are not comparable)`);
  out.push('');
  out.push(`${'table'.padEnd(20)}${'rows in'.padStart(11)}${'ours s'.padStart(9)}${'ours rows/s'.padStart(13)}${'ours RSS MB'.padStart(13)}${'duckdb s'.padStart(10)}${'duckdb rows/s'.padStart(15)}${'duckdb RSS MB'.padStart(15)}${'ratio'.padStart(8)}`);
  let tin = 0, to = 0, tn = 0, rssO = 0, rssN = 0;
  for (const { ours, native } of rows) {
    tin += ours.rowsIn; to += ours.seconds; tn += native.seconds;
    rssO = Math.max(rssO, ours.peakRssMb); rssN = Math.max(rssN, native.peakRssMb);
    out.push(`${ours.table.padEnd(20)}${fmt(ours.rowsIn).padStart(11)}${fmt(ours.seconds, 2).padStart(9)}${fmt(ours.rowsIn / ours.seconds).padStart(13)}${fmt(ours.peakRssMb).padStart(13)}${fmt(native.seconds, 2).padStart(10)}${fmt(native.rowsIn / native.seconds).padStart(15)}${fmt(native.peakRssMb).padStart(15)}${fmt(native.seconds / ours.seconds, 2).padStart(8)}`);
  }
  out.push(`${'all jobs'.padEnd(20)}${fmt(tin).padStart(11)}${fmt(to, 2).padStart(9)}${fmt(tin / to).padStart(13)}${fmt(rssO).padStart(13)}${fmt(tn, 2).padStart(10)}${fmt(tin / tn).padStart(15)}${fmt(rssN).padStart(15)}${fmt(tn / to, 2).padStart(8)}`);
  out.push('');
  out.push('ratio = duckdb seconds / our seconds, of the median runs (1.00 = at the ceiling). RSS = the highest peak resident memory of the job process over the runs.');
  out.push('');
  out.push('staging path per source (bulk = DuckDB read + SQL checks, exact = csv-parse + ajv for the whole file):');
  for (const { ours } of rows) {
    out.push(`  ${ours.table.padEnd(20)}${Object.entries(ours.paths ?? {}).map(([s, p]) => `${s}=${p}`).join(' ')}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

if (require.main === module) {
  runBenchCli(
    { runs: { type: 'string' } },
    HELP,
    (v) => (v.child === 'native' ? measureNative : measureOurs)(v.table!, v.dir!, v.state!),
    (orders, v) => bench(orders, v.dir, wholeNumber(v.runs, 'runs', 3)),
  );
}
