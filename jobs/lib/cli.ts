/**
 * The command line of a batch job: `node dist/jobs/<table>.js [--source-dir DIR] [--help]`.
 * Exit codes: 0 success, 1 unexpected error, 2 bad source input, 3 warehouse unavailable or
 * failed, 64 usage. Errors print one clear line, not a stack trace (LOG_LEVEL=debug adds it).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { BatchDestination, Catalog } from './catalog-types';
import { findDestination } from './catalog-check';
import { loadConfig } from './config';
import { envHelp } from './config/render';
import { exitCodeOf, UsageError } from './errors';
import { logger } from './log';
import { maskCardRuns } from './pii';
import { runBatchJob } from './pipeline';
import { formatJobSummary } from './quality';

/** The settings every job reads, generated from the spec (jobs/lib/config/spec.ts). */
export const ENV_HELP = envHelp(['general', 'batch']);

export function jobHelp(dest: BatchDestination): string {
  return `Usage: node dist/jobs/${dest.table}.js [--source-dir DIR] [--help]

Builds ${dest.name}: ${dest.description}
Sources: ${dest.sources.join(', ')}
Key: ${dest.key.join(', ')}

Every source row is either loaded or quarantined (${dest.dataset}._quarantine) with its file,
line, column and reason; the table is replaced atomically and the run recorded in
${dest.dataset}._etl_runs. A data-quality report is written to $ETL_STATE_DIR/reports/.

Options:
  --source-dir DIR   read source files from DIR (overrides ETL_SOURCE_DIR)
  -h, --help         show this help

${ENV_HELP}

Exit codes: 0 ok, 1 unexpected error, 2 bad source input, 3 warehouse error, 64 usage.`;
}

export function reportError(e: unknown): number {
  const code = exitCodeOf(e);
  const message = (e as Error)?.message ?? String(e);
  // Any error may quote source text (a driver's conversion message): the card rule applies.
  process.stderr.write(`error: ${maskCardRuns(message)}\n`);
  if (code === 1 || logger.isLevelEnabled('debug')) logger.debug('stack', { stack: (e as Error)?.stack });
  return code;
}

/** Entry point of every per-table job module (the catalog is passed in: jobs/lib knows no concrete store). */
export async function runJobCli(catalog: Catalog, table: string, argv = process.argv.slice(2)): Promise<number> {
  try {
    const dest = findDestination(catalog, table);
    if (dest.mode !== 'batch') throw new UsageError(`${dest.name} is not a batch table`);
    const values = parseCommandLine(argv, { 'source-dir': { type: 'string' } }, jobHelp(dest));
    if (values === 'help') return 0;
    const config = loadConfig(undefined, values['source-dir'] ? { sourceDir: values['source-dir'] } : {});
    const result = await runBatchJob(catalog, dest.name, config);
    process.stdout.write(formatJobSummary(result.report) + '\n');
    return 0;
  } catch (e) {
    return reportError(e);
  }
}

/** Runs a CLI main and exits with its code once logs are flushed. */
export function main(run: () => Promise<number>): void {
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.exitCode = reportError(e);
    },
  );
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * Parses a command line the same way for every command of the project: strict options, `-h` /
 * `--help`, and a usage error (exit 64) that repeats the help text. Returns the option values,
 * or 'help' once the help text has been printed.
 */
export function parseCommandLine<const O extends OptionsConfig>(
  argv: readonly string[],
  options: O,
  help: string,
): ReturnType<typeof parseArgs<{ options: O & typeof HELP_OPTION; strict: true }>>['values'] | 'help' {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { ...options, ...HELP_OPTION }, strict: true }));
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${help}`);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(help + '\n');
    return 'help';
  }
  return values;
}
