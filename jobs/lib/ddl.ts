/** Warehouse DDL derived from the catalog. */
import { type ColumnType, type DestinationTable, RESCUED_DATA_COLUMN, type SourceTable, type SourceType } from './catalog-types';
import { stagedColumns } from './catalog-check';

export const DUCKDB_TYPES: Record<ColumnType, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  NUMERIC: 'DECIMAL(18,4)',
  BOOL: 'BOOLEAN',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
};

/** Staged (validated, typed) source columns use the same warehouse types. */
export const SOURCE_TO_COLUMN_TYPE: Record<SourceType, ColumnType> = {
  id: 'STRING',
  card: 'STRING',
  string: 'STRING',
  int: 'INT64',
  decimal: 'NUMERIC',
  bool01: 'BOOL',
  date: 'DATE',
};

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

export function duckdbColumnsDdl(dest: DestinationTable): string {
  return dest.columns
    .map((c) => `${quoteIdent(c.name)} ${DUCKDB_TYPES[c.type]}${c.nullable ? '' : ' NOT NULL'}`)
    .join(', ');
}

/** `CREATE TABLE <qualified> (...)` for a destination; `qualified` lets callers pick catalog/schema. */
export function duckdbCreateTable(dest: DestinationTable, qualified: string, orReplace = false): string {
  // No primary key, in batch or stream tables: a key is unique by how the table is written (a
  // batch load checks it, the stream upserts by it), and DuckDB's index would cost every write.
  return `CREATE ${orReplace ? 'OR REPLACE ' : ''}TABLE ${qualified} (${duckdbColumnsDdl(dest)})`;
}

export const stagingTableName = (source: SourceTable | string): string =>
  `src_${typeof source === 'string' ? source : source.name}`;

/**
 * Staging table for a source: `_line` (1-based line in the file), the staged columns, then
 * `_rescued_data` (the row's values of columns the catalog does not declare, as JSON text; NULL
 * when none: a transform selects it for a destination whose contract rescues).
 */
export function duckdbCreateStagingTable(source: SourceTable): string {
  const cols = stagedColumns(source).map(
    (c) => `${quoteIdent(c.name)} ${DUCKDB_TYPES[SOURCE_TO_COLUMN_TYPE[c.type]]}`,
  );
  return `CREATE TABLE ${stagingTableName(source)} (_line BIGINT NOT NULL, ${cols.join(', ')}, ${quoteIdent(RESCUED_DATA_COLUMN)} VARCHAR)`;
}

/** Columns of the quarantine tables (staging and warehouse alike). */
export const QUARANTINE_COLUMNS_DDL =
  'run_id VARCHAR NOT NULL, destination VARCHAR NOT NULL, source VARCHAR NOT NULL, file VARCHAR NOT NULL, ' +
  'line BIGINT, column_name VARCHAR, reason_code VARCHAR NOT NULL, reason VARCHAR NOT NULL, raw VARCHAR';

export const ETL_RUNS_COLUMNS_DDL =
  'run_id VARCHAR NOT NULL, destination VARCHAR NOT NULL, mode VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, ' +
  'ended_at TIMESTAMP NOT NULL, rows_in BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, ' +
  'rows_quarantined BIGINT NOT NULL, rows_out BIGINT NOT NULL, status VARCHAR NOT NULL, error VARCHAR, report VARCHAR';
