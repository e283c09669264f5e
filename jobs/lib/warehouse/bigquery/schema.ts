/**
 * BigQuery schemas derived from the catalog, and the encodings that go with them: the NDJSON that
 * a batch load job reads (produced by the scratch DuckDB itself, streamed) and the JSON values of
 * stream rows.
 */
import type { TableField } from '@google-cloud/bigquery';
import type { ColumnType, DestinationTable } from '../../catalog-types';
import { quoteIdent } from '../../ddl';
import type { CellValue, Row } from '../types';

export interface BigQueryTableSchema {
  readonly fields: TableField[];
}

const field = (name: string, type: ColumnType, required: boolean, description?: string): TableField => ({
  name,
  type,
  mode: required ? 'REQUIRED' : 'NULLABLE',
  ...(description ? { description } : {}),
});

/** A destination's schema, column for column from the catalog (type, mode and description). */
export function destinationSchema(dest: DestinationTable): BigQueryTableSchema {
  return { fields: dest.columns.map((c) => field(c.name, c.type, !c.nullable, c.description)) };
}

/** `_etl_runs`: mirrors ETL_RUNS_COLUMNS_DDL in ddl.ts. */
export const ETL_RUNS_SCHEMA: BigQueryTableSchema = {
  fields: [
    field('run_id', 'STRING', true), field('destination', 'STRING', true), field('mode', 'STRING', true),
    field('started_at', 'TIMESTAMP', true), field('ended_at', 'TIMESTAMP', true),
    field('rows_in', 'INT64', true), field('rows_loaded', 'INT64', true),
    field('rows_quarantined', 'INT64', true), field('rows_out', 'INT64', true),
    field('status', 'STRING', true), field('error', 'STRING', false), field('report', 'STRING', false),
  ],
};

/** `_quarantine`: mirrors QUARANTINE_COLUMNS_DDL in ddl.ts (same column order). */
export const QUARANTINE_SCHEMA: BigQueryTableSchema = {
  fields: [
    field('run_id', 'STRING', true), field('destination', 'STRING', true), field('source', 'STRING', true),
    field('file', 'STRING', true), field('line', 'INT64', false), field('column_name', 'STRING', false),
    field('reason_code', 'STRING', true), field('reason', 'STRING', true), field('raw', 'STRING', false),
  ],
};

/** `_stream_offsets`: mirrors STREAM_BOOKKEEPING_DDL (next offset to consume per group/topic/partition). */
export const STREAM_OFFSETS_SCHEMA: BigQueryTableSchema = {
  fields: [
    field('consumer_group', 'STRING', true), field('topic', 'STRING', true), field('partition', 'INT64', true),
    field('next_offset', 'INT64', true), field('updated_at', 'TIMESTAMP', true),
  ],
};

/** `vendor_product_availability`: mirrors AVAILABILITY_COLUMNS_DDL (stream-ddl.ts), key vendor+product+option. */
export const AVAILABILITY_SCHEMA: BigQueryTableSchema = {
  fields: [
    field('vendor_id', 'STRING', true), field('product_id', 'STRING', true), field('option_id', 'STRING', true),
    field('stock', 'INT64', true), field('held_in_open_carts', 'INT64', true), field('available', 'INT64', true),
    field('sold_out', 'BOOL', true), field('updated_at', 'TIMESTAMP', true),
  ],
};

/** Append-only log of the events a stream destination received, one row per event id. */
export const changelogTable = (dest: DestinationTable): string => `_changelog_${dest.table}`;

export function changelogSchema(dest: DestinationTable): BigQueryTableSchema {
  return {
    fields: [
      field('_event_id', 'STRING', true, 'Stable event id: <topic>-<partition>-<offset> (also the insertId).'),
      field('_consumer_group', 'STRING', true, 'Consumer group that applied the event.'),
      field('_ingested_at', 'TIMESTAMP', true, 'When the consumer appended the event.'),
      ...dest.columns.map((c) => field(c.name, c.type, false, c.description)),
    ],
  };
}

/** Staging table a batch's quarantined rows are loaded into before they replace the old ones. */
export const quarantineStagingTable = (dest: DestinationTable): string => `_staging_quarantine_${dest.table}`;

/**
 * DuckDB expression rendering a column as BigQuery's JSON input expects it. Numbers that must not
 * pass through a double (INT64, NUMERIC) and dates/timestamps travel as strings.
 */
function duckJsonValue(name: string, type: ColumnType): string {
  const q = quoteIdent(name);
  switch (type) {
    case 'INT64':
    case 'NUMERIC':
    case 'DATE':
      return `CAST(${q} AS VARCHAR)`;
    case 'TIMESTAMP':
      // Naive TIMESTAMP in DuckDB is UTC by convention here; BigQuery reads 'YYYY-MM-DD HH:MM:SS[.ffffff]' as UTC.
      return `strftime(${q}, '%Y-%m-%d %H:%M:%S.%f')`;
    case 'BOOL':
    case 'STRING':
      return q;
  }
}

/** A SELECT over `table` yielding one VARCHAR column: one NDJSON line per row, catalog columns only. */
export function duckdbNdjsonSelect(columns: readonly { name: string; type: ColumnType }[], table: string): string {
  const pairs = columns.map((c) => `'${c.name.replace(/'/g, "''")}', ${duckJsonValue(c.name, c.type)}`);
  return `SELECT CAST(json_object(${pairs.join(', ')}) AS VARCHAR) AS line FROM ${table}`;
}

export const QUARANTINE_NDJSON_COLUMNS = QUARANTINE_SCHEMA.fields.map((f) => ({
  name: f.name as string,
  type: f.type as ColumnType,
}));

/** A cell as a JSON value for insertAll / JSON query parameters (TIMESTAMP as ISO-8601 UTC). */
export function jsonCell(v: CellValue | undefined): string | number | boolean | null {
  if (v === undefined || v === null) return null;
  if (v instanceof Date) return v.toISOString();
  return v;
}

export function jsonRow(dest: DestinationTable, row: Row): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const c of dest.columns) out[c.name] = jsonCell(row[c.name]);
  return out;
}
