/**
 * Every transform (jobs/transforms/*.sql) rendered for both warehouses (transform-render.ts):
 * the DuckDB rendering runs on DuckDB, the BigQuery one on the executing double (ZetaSQL analyzes
 * and executes it), over the same staged rows, and they give the same rows. The rows carry
 * rescued values in several sources at once (a key in two sources, characters JSON escapes,
 * NULLs), so the merge_rescued macro's two renderings are compared where they differ most.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { findSource, stagedColumns } from '../../jobs/lib/catalog-check';
import { RESCUED_DATA_COLUMN, type BatchDestination, type SourceTable } from '../../jobs/lib/catalog-types';
import { DUCKDB_TYPES, SOURCE_TO_COLUMN_TYPE } from '../../jobs/lib/ddl';
import { renderSql, renderTransform } from '../../jobs/lib/transform-render';
import { describeWithDouble, doubleForSuite, PROJECT } from './bigquery-double';
import { canonicalRow, duckCanonical } from './canonical';

jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const BATCH = catalog.destinations.filter((d): d is BatchDestination => d.mode === 'batch');
const ROWS = 4;

/** Row j of a source (s: its index): keys j so every join matches, rescued values that collide across sources. */
function rowOf(source: SourceTable, s: number, j: number): (string | number | boolean | null)[] {
  const values = stagedColumns(source).map((c) => {
    switch (SOURCE_TO_COLUMN_TYPE[c.type]) {
      case 'INT64':
        return j + 1;
      case 'NUMERIC':
        return `${j + 1}.${s}5`;
      case 'BOOL':
        return j % 2 === 0;
      case 'DATE':
        return `2024-0${(j % 9) + 1}-1${s % 10}`;
      default:
        return c.name.endsWith('_id') || source.key.includes(c.name) ? `${j}` : `${c.name} ${s}/${j} <&>"é`;
    }
  });
  // Row 0: no rescued value anywhere; other rows: some sources, with a shared key ("extra") and their own.
  const rescued = j === 0 || (j + s) % 3 === 0 ? null : JSON.stringify({ [`own_${s}`]: `v${s}`, extra: `from ${source.name} "q" \\ <&>`, [`z${j}`]: 'ü' });
  return [j + 1, ...values, rescued];
}

const sqlLiteral = (v: string | number | boolean | null, type: string): string =>
  v === null ? `CAST(NULL AS ${type})` : typeof v === 'string' ? `CAST('${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}' AS ${type})` : `CAST(${v} AS ${type})`;

describeWithDouble('transforms rendered for DuckDB and for BigQuery give the same rows', () => {
  const suite = doubleForSuite();

  test('the renderer: a macro per dialect, sources renamed, nothing else changed', () => {
    const sql = 'SELECT {{ merge_rescued(a, b) }} AS r FROM src_x AS a JOIN src_y AS b ON a.k = b.k';
    expect(renderSql(sql, { dialect: 'duckdb' })).toBe(
      "SELECT CASE WHEN a._rescued_data IS NULL AND b._rescued_data IS NULL THEN NULL\n" +
      "        ELSE nullif(json_merge_patch(coalesce(a._rescued_data, '{}'), coalesce(b._rescued_data, '{}'))::VARCHAR, '{}') END AS r FROM src_x AS a JOIN src_y AS b ON a.k = b.k",
    );
    const big = renderSql(sql, { dialect: 'bigquery', sourceTable: (s) => `\`p.d.stg_${s}\`` });
    expect(big).toContain('FROM `p.d.stg_x` AS a JOIN `p.d.stg_y` AS b ON a.k = b.k');
    expect(big).not.toMatch(/json_merge_patch|::|src_/);
  });

  test.each(BATCH.map((d) => [d.table, d] as const))('%s', async (_name, dest) => {
    await suite.bq.reset();
    await suite.bq.client().createDataset('t');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      for (const [s, name] of dest.sources.entries()) {
        const source = findSource(catalog, name);
        const cols = [{ name: '_line', duck: 'BIGINT', bq: 'INT64' },
          ...stagedColumns(source).map((col) => ({ name: col.name, duck: DUCKDB_TYPES[SOURCE_TO_COLUMN_TYPE[col.type]], bq: SOURCE_TO_COLUMN_TYPE[col.type] })),
          { name: RESCUED_DATA_COLUMN, duck: 'VARCHAR', bq: 'STRING' }];
        const rows = Array.from({ length: ROWS }, (_, j) => rowOf(source, s, j));
        await c.run(`CREATE TABLE src_${name} (${cols.map((col) => `"${col.name}" ${col.duck}`).join(', ')})`);
        await c.run(`INSERT INTO src_${name} VALUES ${rows.map((r) => `(${r.map((v, i) => (v === null ? 'NULL' : `CAST(${typeof v === 'string' ? `'${v.replace(/'/g, "''")}'` : v} AS ${cols[i].duck})`)).join(', ')})`).join(', ')}`);
        await suite.bq.sql(`CREATE TABLE \`${PROJECT}.t.stg_${name}\` (${cols.map((col) => `\`${col.name}\` ${col.bq}`).join(', ')})`);
        await suite.bq.sql(`INSERT INTO \`${PROJECT}.t.stg_${name}\` (${cols.map((col) => `\`${col.name}\``).join(', ')}) VALUES ` +
          rows.map((r) => `(${r.map((v, i) => sqlLiteral(v, cols[i].bq)).join(', ')})`).join(', '));
      }
      const dropRescued = !dest.columns.some((col) => col.name === RESCUED_DATA_COLUMN);
      const types = dest.columns.map((col) => col.type);
      const duckSql = renderTransform(dest.transform, { dialect: 'duckdb', dropRescued });
      const duckRows = (await c.runAndReadAll(`SELECT ${dest.columns.map((col) => duckCanonical(col.name, col.type)).join(', ')} FROM (${duckSql})`))
        .getRowsJS().map((r) => canonicalRow(r, types)).sort();
      const bqSql = renderTransform(dest.transform, { dialect: 'bigquery', dropRescued, sourceTable: (s) => `\`${PROJECT}.t.stg_${s}\`` });
      const bqRows = (await suite.bq.sql(`SELECT ${dest.columns.map((col) => `\`${col.name}\``).join(', ')} FROM (${bqSql})`))
        .map((r) => canonicalRow(dest.columns.map((col) => r[col.name]), types)).sort();
      expect(duckRows.length).toBeGreaterThanOrEqual(ROWS);
      if (!dropRescued) {
        // The merge is exercised: some rows merge rescued values of two sources or more.
        const merged = duckRows.map((r) => JSON.parse(r).at(-1)).filter((v: string | null) => v !== null && (v.match(/own_/g) ?? []).length > 1);
        if (dest.sources.length > 1) expect(merged.length).toBeGreaterThan(0);
      }
      expect(bqRows).toEqual(duckRows);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  }, 120_000);
});
