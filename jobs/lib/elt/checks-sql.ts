/**
 * The checks of checks.ts in BigQuery's SQL, over a run's staging tables (ELT): the same rules
 * and the same quarantine texts, row for row, as the scratch DuckDB writes them (ETL), so both
 * modes give identical `_quarantine` rows. Each function returns one statement or script.
 */
import type { BatchDestination, DerivedProductRule, SourceTable } from '../catalog-types';
import { stagedColumns } from '../catalog-check';
import { SOURCE_TO_COLUMN_TYPE } from '../ddl';
import { bqIdent } from '../sql/quote';
import type { ColumnType } from '../catalog-types';


/**
 * A value as DuckDB's CAST(... AS VARCHAR) prints it: DECIMAL(18,4) keeps its four decimals
 * ('12.5000'), which BigQuery's CAST(NUMERIC AS STRING) drops.
 */
function text(expr: string, type: ColumnType): string {
  switch (type) {
    case 'STRING':
      return expr;
    case 'NUMERIC':
      return `FORMAT('%.4f', ${expr})`;
    case 'BOOL':
      return `IF(${expr}, 'true', 'false')`;
    default:
      return `CAST(${expr} AS STRING)`;
  }
}

/** A value as DuckDB's to_json writes it inside an object (strings and dates quoted, NULL as null). */
function jsonValue(expr: string, type: ColumnType): string {
  const v = type === 'STRING' ? `TO_JSON_STRING(${expr})` : type === 'DATE' ? `CONCAT('"', CAST(${expr} AS STRING), '"')` : text(expr, type);
  return `IFNULL(${v}, 'null')`;
}

/** DuckDB's CAST(to_json(struct_pack(<staged columns>)) AS VARCHAR) of a staged row aliased `alias`. */
export function stagedRowJson(source: SourceTable, alias: string): string {
  const parts = stagedColumns(source).map(
    (c, i) => `'${i === 0 ? '{' : ','}"${c.name}":', ${jsonValue(`${alias}.${bqIdent(c.name)}`, SOURCE_TO_COLUMN_TYPE[c.type])}`,
  );
  return `CONCAT(${parts.join(', ')}, '}')`;
}

const quarantineInsert = (q: string) =>
  `INSERT INTO ${q} (run_id, destination, source, file, line, column_name, reason_code, reason, raw)`;

/** Later repeats of a source's key to the quarantine (the first line wins), then out of the source. */
export function duplicateKeysScript(source: SourceTable, staged: string, q: string): string {
  const keys = source.key.map(bqIdent).join(', ');
  const keyText = source.key.map((k, i) => `'${i === 0 ? '' : ', '}${k}=', ${text(bqIdent(k), keyType(source, k))}`).join(', ');
  return [
    `${quarantineInsert(q)}`,
    `SELECT @run_id, @destination, @source, @file, _line, @key_columns, 'duplicate_key',`,
    `  CONCAT('duplicate key (', ${keyText}, '): first seen on line ', CAST(_first AS STRING)), ${stagedRowJson(source, 't')}`,
    `FROM (SELECT *, ROW_NUMBER() OVER w AS _rn, MIN(_line) OVER w AS _first FROM ${staged} WINDOW w AS (PARTITION BY ${keys} ORDER BY _line)) AS t`,
    'WHERE _rn > 1;',
    `DELETE FROM ${staged} WHERE _line IN (SELECT line FROM ${q} WHERE source = @source AND reason_code = 'duplicate_key');`,
  ].join('\n');
}

const keyType = (source: SourceTable, col: string): ColumnType => {
  const c = source.columns.find((x) => x.name === col);
  if (!c) throw new Error(`catalog: ${source.name} has no key column ${col}`);
  return SOURCE_TO_COLUMN_TYPE[c.type];
};

/** Digits before the point of DECIMAL(18,4), the only NUMERIC the warehouses use (checks.ts). */
const NUMERIC_LIMIT = '100000000000000';

/**
 * A derived-value rule (catalog `derived`): rows of `source` whose product with the row their
 * foreign key points at would not fit DECIMAL(18,4) go to the quarantine, then out of the source.
 * BIGNUMERIC holds the exact product of two such values.
 */
export function derivedScript(
  dest: BatchDestination,
  rule: DerivedProductRule,
  source: SourceTable,
  via: SourceTable,
  staged: string,
  viaStaged: string,
  q: string,
): string {
  const fk = (source.foreignKeys ?? []).find((f) => f.references.source === rule.via.source);
  if (!fk) throw new Error(`catalog: ${dest.name} derived ${rule.column}: ${source.name} has no foreign key to ${rule.via.source}`);
  const typeOf = (s: SourceTable, col: string) => SOURCE_TO_COLUMN_TYPE[s.columns.find((x) => x.name === col)!.type];
  const a = rule.source.column;
  const b = rule.via.column;
  const on = fk.columns.map((col, i) => `r.${bqIdent(fk.references.columns[i])} = s.${bqIdent(col)}`).join(' AND ');
  return [
    `${quarantineInsert(q)}`,
    `SELECT @run_id, @destination, @source, @file, s._line, @column, 'derived_out_of_range',`,
    `  CONCAT(@what_a, ${text(`s.${bqIdent(a)}`, typeOf(source, a))}, ' x ', @what_b, ${text(`r.${bqIdent(b)}`, typeOf(via, b))},`,
    `         ' (', @via, ' line ', CAST(r._line AS STRING), ') does not fit ', @fits), ${stagedRowJson(source, 's')}`,
    `FROM ${staged} s JOIN ${viaStaged} r ON ${on}`,
    `WHERE ABS(CAST(s.${bqIdent(a)} AS BIGNUMERIC) * CAST(r.${bqIdent(b)} AS BIGNUMERIC)) >= ${NUMERIC_LIMIT};`,
    `DELETE FROM ${staged} WHERE _line IN (SELECT line FROM ${q} WHERE source = @source AND reason_code = 'derived_out_of_range');`,
  ].join('\n');
}

/** Parameters of derivedScript besides the quarantine row's own. */
export const derivedParams = (rule: DerivedProductRule) => ({
  column: rule.source.column,
  what_a: `${rule.column} = ${rule.source.column} `,
  what_b: `${rule.via.column} `,
  via: rule.via.source,
  fits: 'DECIMAL(18,4)',
});

/** Orphans of one foreign key: their count and the first five distinct values. */
export function foreignKeyQuery(fk: NonNullable<SourceTable['foreignKeys']>[number], staged: string, referenced: string): string {
  const on = fk.columns.map((col, i) => `r.${bqIdent(fk.references.columns[i])} = s.${bqIdent(col)}`).join(' AND ');
  const notNull = fk.columns.map((col) => `s.${bqIdent(col)} IS NOT NULL`).join(' AND ');
  const shown = fk.columns.length === 1 ? `CAST(s.${bqIdent(fk.columns[0])} AS STRING)` : `CONCAT(${fk.columns.map((col) => `CAST(s.${bqIdent(col)} AS STRING)`).join(", '/', ")})`;
  return (
    // No orphan: ARRAY_AGG is NULL, which BigQuery returns as an empty array (said here for any reader).
    `SELECT COUNT(*) AS n, IFNULL(ARRAY_AGG(DISTINCT ${shown} ORDER BY ${shown} LIMIT 5), ARRAY<STRING>[]) AS samples ` +
    `FROM ${staged} s WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${referenced} r WHERE ${on})`
  );
}
