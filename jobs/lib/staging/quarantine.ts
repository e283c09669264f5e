/**
 * What every part of a job's staging shares: the job's context and the scratch quarantine
 * table (one row per rejected source row: file, line, column, reason, redacted raw).
 */
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import type { SchemaContract, SourceTable } from '../catalog-types';
import { QUARANTINE_COLUMNS_DDL } from '../ddl';

export const QUARANTINE_TABLE = 'quarantine';

export interface StageContext {
  readonly connection: DuckDBConnection;
  readonly runId: string;
  readonly destination: string;
  readonly sourceDir: string;
  readonly maxRecordBytes: number;
  /** `bulk`: DuckDB reads and checks files, the exact path takes flagged rows (default exact). */
  readonly batchPath?: 'bulk' | 'exact';
  /** The destination's schema contract for drift in its source files (default freeze: none allowed). */
  readonly contract?: SchemaContract;
}

export async function createQuarantineTable(c: DuckDBConnection): Promise<void> {
  await c.run(`CREATE TABLE ${QUARANTINE_TABLE} (${QUARANTINE_COLUMNS_DDL})`);
}

export function appendQuarantine(
  a: DuckDBAppender,
  ctx: StageContext,
  source: SourceTable,
  file: string,
  line: number,
  column: string | null,
  code: string,
  reason: string,
  raw: string,
): void {
  a.appendVarchar(ctx.runId);
  a.appendVarchar(ctx.destination);
  a.appendVarchar(source.name);
  a.appendVarchar(file);
  a.appendBigInt(BigInt(line));
  if (column === null) a.appendNull();
  else a.appendVarchar(column);
  a.appendVarchar(code);
  a.appendVarchar(reason);
  a.appendVarchar(raw);
  a.endRow();
}
