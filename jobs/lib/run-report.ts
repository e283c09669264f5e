/**
 * What a batch job leaves behind about itself: the report (JSON under the state folder, the
 * latest per table beside it) and the run record of `_etl_runs`, success or failure. Source text
 * in them (samples, file names, errors) is masked by the free-text rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BatchDestination } from './catalog-types';
import type { EtlConfig } from './config';
import { exitCodeOf, WarehouseError } from './errors';
import type { logger } from './log';
import { maskCardRuns, maskStrings } from './pii';
import type { JobReport, SourceQuality } from './quality';
import type { RunRecord, Warehouse } from './warehouse/types';

export function buildReport(
  runId: string,
  dest: BatchDestination,
  startedAt: Date,
  endedAt: Date,
  sources: SourceQuality[],
  destinationRows: number,
  quarantineSamples: JobReport['quarantineSamples'],
): JobReport {
  // Samples (duplicate keys, orphan values) and file names are source text: the free-text rule.
  return maskStrings({
    runId,
    destination: dest.name,
    startedAt: startedAt.toISOString(),
    endedAt: endedAt.toISOString(),
    sources,
    destinationRows,
    accountingBalanced: sources.every((s) => s.rowsRead === s.rowsLoaded + s.rowsQuarantined),
    quarantineSamples,
  });
}

export function runRecord(
  runId: string,
  dest: BatchDestination,
  startedAt: Date,
  endedAt: Date,
  sources: readonly SourceQuality[],
  rowsOut: number,
  status: RunRecord['status'],
  error: string | null,
  report: JobReport | null,
): RunRecord {
  const sum = (f: (s: SourceQuality) => number) => sources.reduce((n, s) => n + f(s), 0);
  return {
    runId,
    destination: dest.name,
    mode: 'batch',
    startedAt,
    endedAt,
    rowsIn: sum((s) => s.rowsRead),
    rowsLoaded: sum((s) => s.rowsLoaded),
    rowsQuarantined: sum((s) => s.rowsQuarantined),
    rowsOut,
    status,
    error: error === null ? null : maskCardRuns(error),
    report: report ? JSON.stringify(report) : null,
  };
}

export function writeReport(config: EtlConfig, report: JobReport): string {
  const dir = path.join(config.stateDir, 'reports');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${report.runId}.json`);
  const body = JSON.stringify(report, null, 2);
  fs.writeFileSync(file, body);
  // A stable name for "the latest report of this table", for people and tools.
  fs.writeFileSync(path.join(dir, `${report.destination}.latest.json`), body);
  return file;
}

/** Best effort: the failure is what matters, a warehouse that is down cannot record it. */
export async function recordFailure(
  warehouse: Warehouse,
  runId: string,
  dest: BatchDestination,
  startedAt: Date,
  sources: readonly SourceQuality[],
  e: unknown,
  log: typeof logger,
): Promise<void> {
  if (e instanceof WarehouseError) return;
  const message = (e as Error)?.message ?? String(e);
  log.error('job failed', { error: message, exitCode: exitCodeOf(e) });
  try {
    await warehouse.recordRun(runRecord(runId, dest, startedAt, new Date(), sources, 0, 'failed', message, null));
  } catch (err) {
    log.warn('could not record the failed run', { error: (err as Error).message });
  }
}
