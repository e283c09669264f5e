#!/usr/bin/env node
/**
 * `npm start`: the whole pipeline on the embedded default. Runs every batch job of the catalog
 * on the source folder into DuckDB, then prints a summary: rows per destination and quarantined
 * rows by reason. Each step's own module does the work; this only sequences and reports.
 */
import { parseArgs } from 'node:util';
import { catalog } from '../jobs/catalog';
import { ENV_HELP, main, reportError } from '../jobs/lib/cli';
import { loadConfig, type EtlConfig } from '../jobs/lib/config';
import { UsageError } from '../jobs/lib/errors';
import { logger } from '../jobs/lib/log';
import { type JobResult, runBatchJob } from '../jobs/lib/pipeline';
import { formatJobSummary, reasonTotals } from '../jobs/lib/quality';

const HELP = `Usage: npm start -- [--source-dir DIR] [--help]

Runs all batch jobs (${catalog.destinations.filter((d) => d.mode === 'batch').map((d) => d.table).join(', ')})
on the source folder into the warehouse and prints a summary.

Options:
  --source-dir DIR   read source files from DIR (overrides ETL_SOURCE_DIR; default data_source)
  -h, --help         show this help

${ENV_HELP}`;

export async function runAllBatch(config: EtlConfig): Promise<JobResult[]> {
  const results: JobResult[] = [];
  for (const dest of catalog.destinations) {
    if (dest.mode !== 'batch') continue;
    results.push(await runBatchJob(catalog, dest.name, config));
  }
  return results;
}

export function formatSummary(results: readonly JobResult[]): string {
  const out: string[] = ['', 'Summary', '-------'];
  out.push(`${'destination'.padEnd(28)}${'rows'.padStart(10)}${'quarantined'.padStart(13)}`);
  for (const r of results) {
    out.push(`${r.run.destination.padEnd(28)}${String(r.run.rowsOut).padStart(10)}${String(r.run.rowsQuarantined).padStart(13)}`);
  }
  const reasons = [...reasonTotals(results.map((r) => r.report))].sort((a, b) => b[1] - a[1]);
  out.push('', 'Quarantined source rows by reason (per job; a source read by two jobs counts twice):');
  if (reasons.length === 0) out.push('  none');
  for (const [code, n] of reasons) out.push(`  ${code.padEnd(26)}${String(n).padStart(8)}`);
  return out.join('\n');
}

if (require.main === module) {
  main(async () => {
    try {
      let values: { 'source-dir'?: string; help?: boolean };
      try {
        ({ values } = parseArgs({
          args: process.argv.slice(2),
          options: { 'source-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
        }));
      } catch (e) {
        throw new UsageError(`${(e as Error).message}\n\n${HELP}`);
      }
      if (values.help) {
        process.stdout.write(HELP + '\n');
        return 0;
      }
      const config = loadConfig(process.env, values['source-dir'] ? { sourceDir: values['source-dir'] } : {});
      logger.info('pipeline started', { sourceDir: config.sourceDir, warehouse: config.warehouse });
      const results = await runAllBatch(config);
      for (const r of results) process.stdout.write(formatJobSummary(r.report) + '\n\n');
      process.stdout.write(formatSummary(results) + '\n');
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}
