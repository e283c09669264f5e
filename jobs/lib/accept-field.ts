/**
 * Accepting a drifted field: once the catalog declares the column (and DDL, schemas, DAGs and
 * dbt sources are regenerated), the rows already loaded get the column filled from their
 * `_rescued_data`, and the key removed from it (NULL when nothing is left). A value that does
 * not convert to the column's type stays rescued, so nothing is lost. The table gains the column
 * first when it lacks it. The statements of both warehouses, built here from the catalog.
 */
import { type DestinationTable, RESCUED_DATA_COLUMN } from './catalog-types';
import { DUCKDB_TYPES, quoteIdent } from './ddl';
import { sqlString } from './sql/quote';

const BIGQUERY_TYPES = { STRING: 'STRING', INT64: 'INT64', NUMERIC: 'NUMERIC', BOOL: 'BOOL', DATE: 'DATE', TIMESTAMP: 'TIMESTAMP' } as const;

function acceptedColumn(dest: DestinationTable, column: string) {
  const col = dest.columns.find((c) => c.name === column);
  if (!col) throw new Error(`${dest.name} has no column '${column}' in the catalog: add it first (docs/schema-contracts.md)`);
  if (!dest.columns.some((c) => c.name === RESCUED_DATA_COLUMN)) throw new Error(`${dest.name} does not rescue (its contract is not rescue): nothing to accept`);
  return col;
}

/**
 * DuckDB: the accepted column on a table made before it (appended, NULL in the rows there; a no-op
 * when it exists). BigQuery's adapter does the same in ensureSchema.
 */
export function addAcceptedColumnDuckDb(dest: DestinationTable, column: string): string {
  const col = acceptedColumn(dest, column);
  return `ALTER TABLE ${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)} ADD COLUMN IF NOT EXISTS ${quoteIdent(column)} ${DUCKDB_TYPES[col.type]}`;
}

/** DuckDB: fills `column` from `_rescued_data.<field>` where it converts, and removes the key there. */
export function acceptFieldDuckDb(dest: DestinationTable, field: string, column = field): string {
  const col = acceptedColumn(dest, column);
  const path = sqlString(`$.${JSON.stringify(field)}`);
  const r = quoteIdent(RESCUED_DATA_COLUMN);
  const value = `TRY_CAST(json_extract_string(${r}, ${path}) AS ${DUCKDB_TYPES[col.type]})`;
  const removed = `nullif(json_merge_patch(${r}, ${sqlString(JSON.stringify({ [field]: null }))})::VARCHAR, '{}')`;
  return `UPDATE ${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)} SET ${quoteIdent(column)} = ${value}, ${r} = ${removed}
WHERE ${value} IS NOT NULL`;
}

/**
 * BigQuery (GoogleSQL), the same statement on `table` (`project.dataset.table` in backticks):
 * run by BigQueryWarehouse.acceptField. JSON_REMOVE works on the JSON type, hence PARSE_JSON and
 * TO_JSON_STRING back to the STRING column.
 */
export function acceptFieldBigQuery(dest: DestinationTable, table: string, field: string, column = field): string {
  const col = acceptedColumn(dest, column);
  const path = `'$.${JSON.stringify(field).replace(/'/g, "\\'")}'`;
  const value = `SAFE_CAST(JSON_VALUE(${RESCUED_DATA_COLUMN}, ${path}) AS ${BIGQUERY_TYPES[col.type]})`;
  const removed = `NULLIF(TO_JSON_STRING(JSON_REMOVE(PARSE_JSON(${RESCUED_DATA_COLUMN}), ${path})), '{}')`;
  return `UPDATE ${table} SET \`${column}\` = ${value}, ${RESCUED_DATA_COLUMN} = ${removed}
WHERE ${value} IS NOT NULL`;
}

/** The catalog entries that would accept a drifted field (to paste into jobs/catalog.ts). */
export function catalogEntryFor(source: string, field: string): string {
  return [
    `  sources[${JSON.stringify(source)}].columns:  { name: ${JSON.stringify(field)}, type: 'string' },`,
    `  destination columns:                 col(${JSON.stringify(field)}, 'STRING', '<what it is>'),`,
    `  (and the transform's SELECT for a batch table), then: npm run make-dags; npm run -s build && node dist/scripts/dbt-sources.js;`,
    `  npm run accept-field -- <table> ${field}`,
  ].join('\n');
}
