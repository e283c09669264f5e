import { maskCardRuns, printable } from './pii';

/**
 * Errors a job reports without a stack trace, each with its own exit code so that callers
 * (Airflow, scripts) can tell bad input from an unavailable warehouse.
 */
export class SourceFileError extends Error {
  readonly exitCode = 2;
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly column: string | null,
    readonly problem: string,
  ) {
    // Printed to terminals and logs: control bytes escaped, card-like runs masked.
    super(printable(maskCardRuns(`${file}${line !== null ? `:${line}` : ''}${column ? ` column '${column}'` : ''}: ${problem}`)));
    this.name = 'SourceFileError';
  }
}

export class WarehouseError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(printable(maskCardRuns(message)));
    this.name = 'WarehouseError';
  }
}

/** Usage errors (unknown flag, unknown table). */
export class UsageError extends Error {
  readonly exitCode = 64;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const exitCodeOf = (e: unknown): number =>
  e instanceof SourceFileError || e instanceof WarehouseError || e instanceof UsageError ? e.exitCode : 1;
