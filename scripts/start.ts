#!/usr/bin/env node
/**
 * `npm start`: the whole Lambda pipeline on the embedded default, in order:
 *   1. batch: every batch job of the catalog on the source folder into DuckDB;
 *   2. speed: the stream files replayed through the local Kafka broker (started if needed) and
 *      consumed until caught up;
 *   3. serving: `dbt build` on DuckDB, then the top rows of user_revenue.
 * It ends with a summary (rows per destination, quarantined rows by reason, dbt's result, the
 * Kafka broker left running) and the top users: the last thing printed. dbt's own output goes to
 * <ETL_STATE_DIR>/logs/dbt-build.log (on a terminal its latest line is shown on one status line).
 * Each step's own module does the work; this only sequences and reports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import { ENV_HELP, main, parseCommandLine, reportError } from '../jobs/lib/cli';
import { loadConfig, type EtlConfig } from '../jobs/lib/config';
import { logger } from '../jobs/lib/log';
import { type JobResult, runBatchJob } from '../jobs/lib/pipeline';
import { formatJobSummary, reasonTotals } from '../jobs/lib/quality';
import { portOpen } from '../jobs/lib/stream/broker';
import { loadStreamConfig } from '../jobs/lib/stream/config';
import { formatUserRevenue, runDbtBuild, topUserRevenue } from './dbt-run';
import { runStreamOnce, type StreamRunResult } from './stream-run';

const HELP = `Usage: npm start -- [--source-dir DIR] [--skip-stream] [--skip-dbt] [--help]

Runs the whole pipeline on the source folder into the warehouse and prints a summary:
  1. batch jobs: ${catalog.destinations.filter((d) => d.mode === 'batch').map((d) => d.table).join(', ')}
  2. stream: replays the stream files through the local Kafka broker (started if needed)
     into ${catalog.destinations.filter((d) => d.mode === 'stream').map((d) => d.table).join(', ')}
  3. dbt build on the warehouse, then the top rows of user_revenue

Options:
  --source-dir DIR   read source files from DIR (overrides ETL_SOURCE_DIR; default data_source)
  --skip-stream      do not start Kafka or replay the stream files
  --skip-dbt         do not run dbt
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

/** What the closing summary says besides the tables: dbt's result and the broker left running. */
export interface SummaryNotes {
  readonly dbt?: string;
  readonly kafka?: string;
}

export function formatSummary(results: readonly JobResult[], stream: StreamRunResult | null, notes: SummaryNotes = {}): string {
  const out: string[] = ['', 'Summary', '-------'];
  const row = (name: string, mode: string, rows: number, q: number | string) =>
    `${name.padEnd(36)}${mode.padEnd(8)}${String(rows).padStart(10)}${String(q).padStart(13)}`;
  out.push(`${'destination'.padEnd(36)}${'mode'.padEnd(8)}${'rows'.padStart(10)}${'quarantined'.padStart(13)}`);
  for (const r of results) out.push(row(r.run.destination, 'batch', r.run.rowsOut, r.run.rowsQuarantined));
  if (stream) {
    for (const [name, rows] of Object.entries(stream.tableRows)) {
      out.push(row(name, 'stream', rows, stream.quarantined[name] ?? '-'));
    }
    out.push(`(stream: ${stream.produced} events replayed through Kafka in ${stream.seconds.toFixed(1)} s; ${stream.rejected} invalid rows not sent)`);
  }
  const reasons = [...reasonTotals(results.map((r) => r.report))].sort((a, b) => b[1] - a[1]);
  out.push('', 'Quarantined source rows by reason (per job; a source read by two jobs counts twice):');
  if (reasons.length === 0) out.push('  none');
  for (const [code, n] of reasons) out.push(`  ${code.padEnd(26)}${String(n).padStart(8)}`);
  if (notes.dbt) out.push('', notes.dbt);
  if (notes.kafka) out.push('', notes.kafka);
  return out.join('\n');
}

/**
 * Runs dbt with its output in `logFile`; on a terminal, its latest line on one status line.
 * Returns dbt's closing counts line ("PASS=.. WARN=.. ERROR=.. SKIP=.. TOTAL=..").
 */
async function dbtBuildLogged(logFile: string): Promise<string> {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'w');
  const tty = Boolean(process.stdout.isTTY);
  const width = () => Math.max(20, (process.stdout.columns || 80) - 1);
  let done = '';
  try {
    await runDbtBuild({
      log: (line) => {
        fs.writeSync(fd, line + '\n');
        const m = /Done\. (PASS=.*)$/.exec(line);
        if (m) done = m[1].trim();
        if (tty && line.trim()) process.stdout.write(`\r\x1b[2K${`dbt: ${line.trim()}`.slice(0, width())}`);
      },
    });
  } catch (e) {
    (e as Error).message += `\n(dbt's whole output: ${logFile})`;
    throw e;
  } finally {
    fs.closeSync(fd);
    if (tty) process.stdout.write('\r\x1b[2K');
  }
  return done;
}

/** Where the broker is, and whether it was up before this run (so the summary can say who started it). */
async function brokerState(): Promise<{ bootstrap: string; local: boolean; wasUp: boolean }> {
  const bootstrap = loadStreamConfig().brokers[0];
  const [host, port] = bootstrap.split(':');
  return { bootstrap, local: ['localhost', '127.0.0.1', '::1'].includes(host), wasUp: await portOpen(host, Number(port ?? 9092)) };
}

if (require.main === module) {
  main(async () => {
    try {
      const values = parseCommandLine(
        process.argv.slice(2),
        { 'source-dir': { type: 'string' }, 'skip-stream': { type: 'boolean' }, 'skip-dbt': { type: 'boolean' } },
        HELP,
      );
      if (values === 'help') return 0;
      const config = loadConfig(undefined, values['source-dir'] ? { sourceDir: values['source-dir'] } : {});
      logger.info('pipeline started', { sourceDir: config.sourceDir, warehouse: config.warehouse });
      const results = await runAllBatch(config);
      for (const r of results) process.stdout.write(formatJobSummary(r.report) + '\n\n');
      let stream: StreamRunResult | null = null;
      const notes: { dbt?: string; kafka?: string } = {};
      if (!values['skip-stream']) {
        logger.info('stream layer: replaying the stream files through Kafka');
        const broker = await brokerState();
        stream = await runStreamOnce({ sourceDir: config.sourceDir });
        notes.kafka = !broker.local
          ? `Kafka: used the broker at ${broker.bootstrap}.`
          : `Kafka: the local broker on ${broker.bootstrap} ${broker.wasUp ? 'was already running and' : 'was started by this run and'} is left running; stop it with \`npm run kafka:stop\`.`;
      }
      let top = '';
      if (!values['skip-dbt'] && config.warehouse === 'duckdb') {
        const logFile = path.join(config.stateDir, 'logs', 'dbt-build.log');
        logger.info('serving layer: dbt build', { log: logFile });
        const done = await dbtBuildLogged(logFile);
        const shown = path.relative(process.cwd(), logFile);
        notes.dbt = `dbt build: ${done || 'done'} (dbt's output: ${shown.startsWith('..') ? logFile : shown})`;
        top = formatUserRevenue(await topUserRevenue(10, { duckdbPath: config.duckdbPath }));
      }
      // The summary and the top users are the last thing printed.
      process.stdout.write(formatSummary(results, stream, notes) + '\n' + (top ? top + '\n' : ''));
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}
