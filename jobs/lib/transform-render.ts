/**
 * The transforms (jobs/transforms/<table>.sql) are written once, in the SQL both warehouses
 * share (SELECT, joins, CASE, arithmetic), plus one named macro for what they do not share:
 *
 *   {{ merge_rescued(a, b, ...) }}   the rescued values (`_rescued_data`, a flat JSON object of
 *                                    strings) of the rows aliased a, b, ... merged into one
 *                                    object, a later alias's value winning (NULL when none)
 *
 * and their sources as `src_<source>` tables. `renderTransform` renders a transform for DuckDB
 * (the ETL path: the sources are the scratch database's src_ tables) or BigQuery (the ELT path:
 * the sources are the run's staging tables). tests/bigquery/elt-transforms.test.ts runs both
 * renderings of every transform on the same rows and compares them.
 */
import fs from 'node:fs';
import path from 'node:path';

export type Dialect = 'duckdb' | 'bigquery';

export interface RenderOptions {
  readonly dialect: Dialect;
  /** The table holding a source's staged rows (DuckDB's default: `src_<source>`, unquoted). */
  readonly sourceTable?: (source: string) => string;
}

const MACRO = /\{\{\s*merge_rescued\(([^)]*)\)\s*\}\}/g;
const SOURCE_TABLE = /\bsrc_([A-Za-z0-9_]+)\b/g;

/** A JSON string token of a flat object: keys and values alternate (RE2 syntax, both engines). */
const JSON_STRING_TOKEN = `"(?:[^"\\\\]|\\\\.)*"`;

function mergeRescued(aliases: readonly string[], dialect: Dialect): string {
  const cols = aliases.map((a) => `${a}._rescued_data`);
  const none = `${cols.map((c) => `${c} IS NULL`).join(' AND ')}`;
  if (dialect === 'duckdb') {
    // The usual row has none: NULL without building JSON.
    return `CASE WHEN ${none} THEN NULL\n        ELSE nullif(json_merge_patch(${cols.map((c) => `coalesce(${c}, '{}')`).join(', ')})::VARCHAR, '{}') END`;
  }
  // BigQuery has no json_merge_patch: the objects' key and value tokens are cut out as written
  // (no re-escaping) and merged as DuckDB's merge patch does: the last object's value of a key
  // wins, and a key takes the place of its last occurrence (object, then position in it).
  const objects = cols
    .map((c, i) => (i === 0 ? `STRUCT(0 AS s, REGEXP_EXTRACT_ALL(${c}, r'${JSON_STRING_TOKEN}') AS t)` : `STRUCT(${i}, REGEXP_EXTRACT_ALL(${c}, r'${JSON_STRING_TOKEN}'))`))
    .join(', ');
  return (
    `CASE WHEN ${none} THEN NULL ELSE (\n` +
    `        SELECT NULLIF(CONCAT('{', STRING_AGG(CONCAT(k, ':', v), ',' ORDER BY o), '}'), '{}') FROM (\n` +
    '          SELECT k, ARRAY_AGG(v ORDER BY o DESC LIMIT 1)[OFFSET(0)] AS v, MAX(o) AS o FROM (\n' +
    '            SELECT src.t[OFFSET(p)] AS k, src.t[OFFSET(p + 1)] AS v, src.s * 1000000 + p AS o\n' +
    `            FROM UNNEST([${objects}]) AS src, UNNEST(GENERATE_ARRAY(0, ARRAY_LENGTH(src.t) - 2, 2)) AS p)\n` +
    '          GROUP BY k)) END'
  );
}

/** Renders transform SQL text (a SELECT, no trailing `;`) for a dialect. */
export function renderSql(sql: string, opts: RenderOptions): string {
  const body = sql.replace(MACRO, (_m, args: string) => mergeRescued(args.split(',').map((a) => a.trim()).filter(Boolean), opts.dialect));
  const table = opts.sourceTable;
  return table ? body.replace(SOURCE_TABLE, (_m, source: string) => table(source)) : body;
}

/** The transform file jobs/transforms/<name>.sql, without its trailing `;`. */
export function readTransform(name: string): string {
  const file = path.join(__dirname, '..', 'transforms', `${name}.sql`);
  try {
    return fs.readFileSync(file, 'utf8').replace(/;\s*$/, '');
  } catch {
    throw new Error(`transform ${name} not found: ${file}`);
  }
}

/**
 * A transform rendered for a dialect; `dropRescued` for a destination without the rescued-data
 * column (DuckDB's EXCLUDE is BigQuery's EXCEPT).
 */
export function renderTransform(name: string, opts: RenderOptions & { readonly dropRescued: boolean }): string {
  const sql = renderSql(readTransform(name), opts);
  if (!opts.dropRescued) return sql;
  return `SELECT * ${opts.dialect === 'duckdb' ? 'EXCLUDE' : 'EXCEPT'} (_rescued_data) FROM (${sql})`;
}
