/**
 * The canonical form both warehouses' rows are compared in (tests/bigquery/pipeline.test.ts,
 * stream.test.ts): NULL as null; INT64 and NUMERIC as decimal strings without trailing zeros;
 * BOOL 'true'/'false'; DATE 'YYYY-MM-DD'; TIMESTAMP as microseconds since the epoch in UTC;
 * STRING as is. A row is the JSON text of its canonical values; tables compare as sorted lists.
 */
import type { ColumnType } from '../../jobs/lib/catalog-types';

/** A decimal string without trailing zeros ('10.5000' -> '10.5', '3.0' -> '3'). */
export const decimal = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

/** A type as BigQuery's REST schema names it (INTEGER, BOOLEAN) in the catalog's words. */
export const fromRestType = (t: string): ColumnType =>
  (({ INTEGER: 'INT64', BOOLEAN: 'BOOL' }) as Record<string, ColumnType>)[t] ?? (t as ColumnType);

/** DuckDB expression giving the canonical text of a column. */
export function duckCanonical(name: string, type: ColumnType): string {
  const q = `"${name}"`;
  switch (type) {
    case 'TIMESTAMP':
      return `CAST(epoch_us(${q}) AS VARCHAR)`;
    case 'BOOL':
      return `CASE WHEN ${q} IS NULL THEN NULL WHEN ${q} THEN 'true' ELSE 'false' END`;
    default:
      return `CAST(${q} AS VARCHAR)`;
  }
}

/** One row (values in column order: DuckDB's canonical texts or BigQuery's REST values) as text. */
export const canonicalRow = (r: unknown[], types: ColumnType[]): string =>
  JSON.stringify(r.map((v, i) => (v === null || v === undefined ? null : types[i] === 'NUMERIC' || types[i] === 'INT64' ? decimal(String(v)) : String(v))));
