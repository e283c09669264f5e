/**
 * One batch job, end to end, for one destination table, one way through:
 *   stage each source (staging/stage.ts: extract, validate, quarantine; bulk or exact strategy)
 *   -> check the staged sources (checks.ts: keys, derived rules, foreign keys)
 *   -> guard (no empty replace, the quarantine ceiling)
 *   -> load through the warehouse adapter: transform (jobs/transforms/<t>.sql) and atomic replace
 *   -> report.
 * With BATCH_MODE=elt (BigQuery) the checks, guard and transform run in the warehouse instead,
 * over the staged sources uploaded as Parquet (elt/elt-run.ts): same rules, same results.
 * Staging runs in a scratch DuckDB of the job's own (in memory, spilling to disk), so the
 * warehouse is locked only for the transform and the swap, whichever warehouse it is.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type BatchDestination, type Catalog, RESCUED_DATA_COLUMN } from './catalog-types';
import { contractOf, findDestination, findSource } from './catalog-check';
import { checkStagedSources, hasDuplicateKeys } from './checks';
import type { EtlConfig } from './config';
import { quoteIdent } from './ddl';
import { SourceFileError, UsageError, WarehouseError } from './errors';
import { transformKeepsSourceKey } from './key-proof';
import { logger } from './log';
import type { JobReport, SourceQuality } from './quality';
import { maskCardRuns, printable } from './pii';
import { maskQuarantineRows } from './quarantine-mask';
import { createQuarantineTable, QUARANTINE_TABLE } from './staging/quarantine';
import { stageSource, type StagingPath } from './staging/stage';
import { openDuckDb } from './sql/duckdb-file';
import { EltRun } from './elt/elt-run';
import { buildReport, recordFailure, runRecord, writeReport } from './run-report';
import { OWNER_FILE, sweepStaleScratch, trackScratch } from './scratch-folders';
import { renderTransform } from './transform-render';
import { openWarehouse } from './warehouse';
import type { RunRecord, Warehouse } from './warehouse/types';

export interface JobResult {
  readonly run: RunRecord;
  readonly report: JobReport;
  readonly reportPath: string;
  /** Which staging path each source took (bulk falls back to exact per file). */
  readonly stagingPaths: Readonly<Record<string, StagingPath>>;
}

export const newRunId = (table: string, at = new Date()): string =>
  `${table}-${at.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${crypto.randomBytes(3).toString('hex')}`;

/** The transform's SQL for DuckDB: a SELECT over the scratch database's `src_<source>` tables. */
export function transformSql(dest: BatchDestination): string {
  // Transforms select the sources' rescued values; a table whose contract does not rescue has no column for them.
  return renderTransform(dest.transform, { dialect: 'duckdb', dropRescued: !dest.columns.some((c) => c.name === RESCUED_DATA_COLUMN) });
}

/**
 * Runs one batch job. `warehouse` replaces the one `config` names (scripts/bench-elt.ts measures
 * what a job would upload with a counting stand-in).
 */
export async function runBatchJob(
  catalog: Catalog,
  tableName: string,
  config: EtlConfig,
  opts: { readonly warehouse?: Warehouse } = {},
): Promise<JobResult> {
  const dest = findDestination(catalog, tableName);
  if (dest.mode !== 'batch') {
    throw new UsageError(`${dest.name} is a stream table: it is loaded by the Kafka consumer, not a batch job`);
  }
  if (config.batchMode === 'elt' && config.warehouse !== 'bigquery') {
    throw new UsageError(`BATCH_MODE=elt needs WAREHOUSE=bigquery (the checks and transform run in the warehouse); with WAREHOUSE=${config.warehouse} use BATCH_MODE=etl`);
  }
  const startedAt = new Date();
  const runId = newRunId(dest.table, startedAt);
  const log = logger.child({ job: dest.name, runId });
  const warehouse = opts.warehouse ?? (await openWarehouse(config, catalog));
  // Scratch is an in-memory database that spills to its own temp folder past the memory limit:
  // nothing to clean up after a crash but that folder, and no disk writes for small inputs.
  const scratchDir = path.join(config.stateDir, 'tmp', runId);
  sweepStaleScratch(path.dirname(scratchDir), log);
  fs.mkdirSync(scratchDir, { recursive: true });
  fs.writeFileSync(path.join(scratchDir, OWNER_FILE), String(process.pid));
  const removeScratch = () => fs.rmSync(scratchDir, { recursive: true, force: true });
  trackScratch(scratchDir, true);
  const scratch = await openDuckDb(':memory:', 0, {
    // Bounded memory: DuckDB spills to disk beyond this instead of growing with the data.
    memory_limit: config.duckdbMemoryLimit,
    temp_directory: scratchDir,
    // Both cores of the target machine, for the bulk path's reads and for the SQL phases.
    threads: '2',
    // No result depends on the order rows are stored in (the bulk path's read, which does, sets
    // it for itself): without it DuckDB inserts in parallel with less memory.
    preserve_insertion_order: 'false',
    // DuckDB's allocator keeps freed memory (up to 128 MiB, 512 MiB after bulk frees) for
    // reuse, outside memory_limit: returned early, the peak RSS stays bounded by the limit
    // (ELT's from 1M to 3M orders, docs/benchmarks.md "Fifth session"), at no measured cost.
    allocator_flush_threshold: '8MB',
    allocator_bulk_deallocation_flush_threshold: '8MB',
    allocator_background_threads: 'true',
  });
  const c = scratch.connection;
  let sources: SourceQuality[] = [];
  try {
    log.info('job started', { sourceDir: config.sourceDir, warehouse: `${warehouse.kind}:${warehouse.location}` });
    await createQuarantineTable(c);

    const phase = phaseTimer(log);
    const ctx = {
      connection: c,
      runId,
      destination: dest.name,
      sourceDir: config.sourceDir,
      maxRecordBytes: config.maxRecordBytes,
      batchPath: config.batchPath,
      contract: contractOf(dest),
    };
    const stagingPaths: Record<string, StagingPath> = {};
    for (const name of dest.sources) {
      const { quality: q, path: how, fallback } = await stageSource(ctx, findSource(catalog, name));
      stagingPaths[name] = how;
      log.info('source staged', { source: name, path: how, ...(fallback ? { fallback } : {}), read: q.rowsRead, loaded: q.rowsLoaded, quarantined: q.rowsQuarantined });
      sources.push(q);
    }
    phase('staged');
    for (const q of sources) {
      if (q.rowsRead === 0) {
        throw new SourceFileError(path.join(config.sourceDir, q.file), null, null, 'no data rows (header only): refusing to replace the table with nothing');
      }
    }
    if (config.batchMode === 'elt') {
      const elt = await loadElt({ warehouse, catalog, dest, runId, config, scratchDir, connection: c, startedAt, phase }, sources);
      const reportPath = writeReport(config, elt.report);
      log.info('job succeeded', { mode: 'elt', rowsOut: elt.run.rowsOut, quarantined: elt.run.rowsQuarantined, bytesUploaded: elt.bytesUploaded, report: reportPath });
      return { ...elt, reportPath, stagingPaths };
    }
    sources = await checkStagedSources(ctx, catalog, dest, sources);
    // Every quarantine row is in: card numbers masked once, before anything reads or copies them.
    await maskQuarantineRows(c, QUARANTINE_TABLE);
    assertQuarantineShare(sources, config);
    phase('checked foreign keys');
    // The transform runs inside the load (fill): on DuckDB straight into the warehouse's table.
    const sql = transformSql(dest);
    // A transform whose SQL proves its key unique (key-proof.ts) needs no look at its rows.
    const keyProven = await transformKeepsSourceKey(c, dest, dest.sources.map((s) => findSource(catalog, s)), sql);
    let transformError: unknown = null;
    let report: JobReport | null = null;
    const fill = async (table: string): Promise<RunRecord> => {
      try {
        let rowsOut: number;
        try {
          rowsOut = (await c.run(`INSERT INTO ${table} BY NAME ${sql}`)).rowsChanged;
        } catch (e) {
          // The catalog's rules should make this unreachable; if not, say where, in one line.
          throw new Error(`job ${dest.name}: transform jobs/transforms/${dest.transform}.sql into table ${dest.name} failed` +
            ` (source row unknown: the error is in the set-based SQL): ${oneLine(e)}`);
        }
        // Thrown inside the load: the replace is rolled back and the previous table stays.
        if (rowsOut === 0) throw emptyResult(dest, sources, config);
        if (!keyProven) await assertKeyUnique(c, dest, table);
        phase('transformed', { rowsOut, keyProven });
        const endedAt = new Date();
        const samples = sources.some((q) => q.rowsQuarantined > 0) ? await quarantineSamples(c) : [];
        report = buildReport(runId, dest, startedAt, endedAt, sources, rowsOut, samples);
        if (!report.accountingBalanced) throw new Error(`accounting does not balance for ${dest.name}: see the report`);
        return runRecord(runId, dest, startedAt, endedAt, sources, rowsOut, 'success', null, report);
      } catch (e) {
        transformError = e;
        throw e;
      }
    };
    let run: RunRecord;
    try {
      run = await warehouse.replaceTable(dest, { connection: c, quarantineTable: QUARANTINE_TABLE, fill });
    } catch (e) {
      if (transformError !== null) throw transformError;
      throw new WarehouseError(`loading ${dest.name} into ${warehouse.kind} (${warehouse.location}) failed: ${oneLine(e)}`);
    }
    if (report === null) throw new Error(`the ${warehouse.kind} warehouse replaced ${dest.name} without its rows`);
    phase('loaded');
    const reportPath = writeReport(config, report);
    log.info('job succeeded', { rowsOut: run.rowsOut, quarantined: run.rowsQuarantined, report: reportPath });
    return { run, report, reportPath, stagingPaths };
  } catch (e) {
    await recordFailure(warehouse, runId, dest, startedAt, sources, e, log);
    throw e;
  } finally {
    scratch.close();
    removeScratch();
    trackScratch(scratchDir, false);
    await warehouse.close();
  }
}

/**
 * ELT: the staged sources and quarantine rows go up as Parquet, the checks, guard and transform
 * run in the warehouse, and the destination is swapped in one transaction; the run's staging
 * tables are dropped after success and failure alike (a killed run's by the next run).
 */
async function loadElt(
  j: {
    warehouse: Warehouse; catalog: Catalog; dest: BatchDestination; runId: string; config: EtlConfig;
    scratchDir: string; connection: DuckDBConnection; startedAt: Date; phase: ReturnType<typeof phaseTimer>;
  },
  staged: SourceQuality[],
): Promise<{ run: RunRecord; report: JobReport; bytesUploaded: number }> {
  const { dest, config, phase } = j;
  const target = j.warehouse.elt;
  if (!target) throw new UsageError(`BATCH_MODE=elt: the ${j.warehouse.kind} warehouse cannot run the transform itself (use BATCH_MODE=etl)`);
  // Local quarantine rows are masked before they leave the container, as in ETL before the load.
  await maskQuarantineRows(j.connection, QUARANTINE_TABLE);
  const elt = new EltRun({
    target, catalog: j.catalog, dest, runId: j.runId, sourceDir: config.sourceDir, scratchDir: j.scratchDir,
    connection: j.connection, quarantineTable: QUARANTINE_TABLE,
  });
  const inWarehouse = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof WarehouseError || e instanceof SourceFileError) throw e;
      throw new WarehouseError(`ELT of ${dest.name} in ${j.warehouse.kind} (${j.warehouse.location}) failed at ${what}: ${oneLine(e)}`);
    }
  };
  try {
    await inWarehouse('sweep', () => elt.sweepLeftovers());
    await inWarehouse('upload', () => elt.upload());
    phase('uploaded', { bytes: elt.bytesUploaded });
    const sources = await inWarehouse('checks', () => elt.check(staged));
    assertQuarantineShare(sources, config);
    phase('checked in warehouse');
    const rowsOut = await inWarehouse('transform', () => elt.transform());
    if (rowsOut === 0) throw emptyResult(dest, sources, config);
    const dupes = await inWarehouse('key check', () => elt.duplicateResultKeys());
    if (dupes > 0) throw new Error(`transform ${dest.transform} produced ${dupes} duplicate keys (${dest.key.join(', ')})`);
    phase('transformed in warehouse', { rowsOut });
    const samples = sources.some((q) => q.rowsQuarantined > 0) ? await inWarehouse('samples', () => elt.quarantineSamples()) : [];
    const report = buildReport(j.runId, dest, j.startedAt, new Date(), sources, rowsOut, samples);
    if (!report.accountingBalanced) throw new Error(`accounting does not balance for ${dest.name}: see the report`);
    const run = runRecord(j.runId, dest, j.startedAt, new Date(report.endedAt), sources, rowsOut, 'success', null, report);
    await inWarehouse('commit', () => elt.commit(run));
    phase('loaded');
    return { run, report, bytesUploaded: elt.bytesUploaded };
  } finally {
    try {
      await elt.dropStaging();
    } catch (e) {
      // A warehouse gone (or this process dying) leaves them to the next run's sweep.
      logger.warn('elt: could not drop the staging tables of the run; the next run drops them', { job: dest.name, error: oneLine(e) });
    }
  }
}

/**
 * A job whose rows were all quarantined would empty its table and still succeed: the same
 * outcome as a header-only file, refused the same way (exit 2). Names the source every row of
 * which was quarantined, when one was.
 */
function emptyResult(dest: BatchDestination, sources: readonly SourceQuality[], config: EtlConfig): SourceFileError {
  const all = sources.find((q) => q.rowsRead > 0 && q.rowsLoaded === 0);
  const why = all
    ? `every data row (${all.rowsRead}) was quarantined`
    : `the transform gives no rows from ${sources.map((q) => `${q.rowsLoaded} ${q.source}`).join(', ')} staged rows`;
  return new SourceFileError(path.join(config.sourceDir, all?.file ?? ''), null, null,
    `${why}: refusing to replace ${dest.name} with nothing (the previous table is kept; see store._quarantine)`);
}

/** The opt-in ceiling on the quarantined share of any source (MAX_QUARANTINE_SHARE). */
function assertQuarantineShare(sources: readonly SourceQuality[], config: EtlConfig): void {
  const ceiling = config.maxQuarantineShare;
  if (ceiling === null) return;
  for (const q of sources) {
    if (q.rowsRead > 0 && q.rowsQuarantined / q.rowsRead > ceiling) {
      throw new SourceFileError(path.join(config.sourceDir, q.file), null, null,
        `${q.rowsQuarantined} of ${q.rowsRead} data rows quarantined (${(100 * q.rowsQuarantined / q.rowsRead).toFixed(1)}%), ` +
        `more than MAX_QUARANTINE_SHARE=${ceiling}: refusing to load (the previous table is kept)`);
    }
  }
}

/** A DuckDB error (often several lines with a caret diagram) as one printable, PII-safe line. */
const oneLine = (e: unknown): string =>
  printable(maskCardRuns(((e as Error)?.message ?? String(e)).split('\n').filter((l) => l.trim() !== '')[0] ?? ''));

/** Logs each phase with its duration, so slow phases show up in the job's own log. */
function phaseTimer(log: typeof logger) {
  let last = process.hrtime.bigint();
  return (name: string, meta: Record<string, unknown> = {}) => {
    const now = process.hrtime.bigint();
    log.info(name, { ...meta, ms: Math.round(Number(now - last) / 1e6) });
    last = now;
  };
}

async function scalar(c: DuckDBConnection, sql: string): Promise<number> {
  const r = await c.runAndReadAll(sql);
  return Number(r.getRowsJS()[0][0]);
}

/** A join that multiplies rows is a transform bug: fail before anything is replaced. */
async function assertKeyUnique(c: DuckDBConnection, dest: BatchDestination, table: string): Promise<void> {
  if (!(await hasDuplicateKeys(c, table, dest.key))) return;
  const keys = dest.key.map(quoteIdent).join(', ');
  const dupes = await scalar(
    c,
    `SELECT count(*)::INTEGER FROM (SELECT ${keys} FROM ${table} GROUP BY ALL HAVING count(*) > 1)`,
  );
  if (dupes > 0) throw new Error(`transform ${dest.transform} produced ${dupes} duplicate keys (${dest.key.join(', ')})`);
}

async function quarantineSamples(c: DuckDBConnection) {
  const r = await c.runAndReadAll(
    `SELECT source, line::INTEGER, column_name, reason FROM ${QUARANTINE_TABLE} ORDER BY source, line LIMIT 20`,
  );
  return r.getRowsJS().map(([source, line, column, reason]) => ({
    source: String(source),
    line: line === null ? null : Number(line),
    column: column === null ? null : String(column),
    reason: String(reason),
  }));
}
