/**
 * The checks that follow staging, over the staged sources of one job (set-based SQL in the
 * job's scratch DuckDB, whichever strategy staged them): later repeats of a source's key are
 * quarantined (`duplicate_key`, the first wins), then the destination's derived-value rules
 * (`derived_out_of_range`), then foreign keys are counted (orphans are reported, not removed).
 */
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BatchDestination, Catalog, DerivedProductRule, SourceTable } from './catalog-types';
import { findSource, stagedColumns } from './catalog-check';
import { quoteIdent, stagingTableName } from './ddl';
import { logger } from './log';
import type { OrphanCheck, SourceQuality } from './quality';
import type { ReasonCode } from './schema';
import { QUARANTINE_TABLE, type StageContext } from './staging/quarantine';

/** Moves rows from a source's loaded to its quarantined count, under a reason. */
export function moved(q: SourceQuality, code: ReasonCode, n: number): SourceQuality {
  if (n === 0) return q;
  return {
    ...q,
    rowsLoaded: q.rowsLoaded - n,
    rowsQuarantined: q.rowsQuarantined + n,
    quarantinedByReason: { ...q.quarantinedByReason, [code]: (q.quarantinedByReason[code] ?? 0) + n },
  };
}

/** Runs every check on a job's staged sources; returns their reports with the checks' counts. */
export async function checkStagedSources(
  ctx: StageContext,
  catalog: Catalog,
  dest: BatchDestination,
  staged: readonly SourceQuality[],
): Promise<SourceQuality[]> {
  const sources = [...staged];
  const fileOf = (q: SourceQuality) => path.join(ctx.sourceDir, q.file);
  for (let i = 0; i < sources.length; i++) {
    const duplicates = await quarantineDuplicateKeys(ctx, findSource(catalog, sources[i].source), fileOf(sources[i]));
    sources[i] = { ...moved(sources[i], 'duplicate_key', duplicates.count), duplicateKeys: duplicates };
  }
  for (const rule of dest.derived ?? []) {
    const i = sources.findIndex((q) => q.source === rule.source.source);
    const source = findSource(catalog, sources[i].source);
    const n = await quarantineDerived(ctx, dest, rule, source, findSource(catalog, rule.via.source), fileOf(sources[i]));
    if (n > 0) logger.warn('rows quarantined by a derived-value rule', { job: dest.name, source: source.name, column: rule.column, rows: n });
    sources[i] = moved(sources[i], 'derived_out_of_range', n);
  }
  const names = new Set(dest.sources);
  for (let i = 0; i < sources.length; i++) {
    const orphanForeignKeys = await checkForeignKeys(ctx.connection, findSource(catalog, sources[i].source), names);
    sources[i] = { ...sources[i], orphanForeignKeys };
  }
  return sources;
}

/**
 * Whether a table repeats a key. The key's hashes are sorted and each compared with the one
 * before it: equal keys hash alike, so no repeated hash means no repeated key, and the sort
 * costs 0.55-0.75x a hash aggregate over the same rows (measured on 2.5-3M keys of one and
 * three columns). A repeated hash is then checked on the columns themselves.
 */
export async function hasDuplicateKeys(c: DuckDBConnection, table: string, key: readonly string[]): Promise<boolean> {
  const yes = async (sql: string) => (await c.runAndReadAll(`SELECT EXISTS (${sql})`)).getRowsJS()[0][0] === true;
  const columns = key.map(quoteIdent).join(', ');
  const hashRepeats = await yes(
    `SELECT 1 FROM (SELECT _h, lag(_h) OVER (ORDER BY _h) AS _prev FROM (SELECT hash(${columns}) AS _h FROM ${table})) WHERE _h = _prev`,
  );
  return hashRepeats && yes(`SELECT 1 FROM ${table} GROUP BY ${columns} HAVING count(*) > 1`);
}

/** Keeps the first row of each key (lowest line) and moves later ones to the quarantine. */
async function quarantineDuplicateKeys(
  ctx: StageContext,
  source: SourceTable,
  file: string,
): Promise<{ count: number; samples: string[] }> {
  const c = ctx.connection;
  const table = stagingTableName(source);
  const keys = source.key.map(quoteIdent).join(', ');
  const keyText = source.key.map((k) => `'${k}=' || ${quoteIdent(k)}`).join(` || ', ' || `);
  const cols = stagedColumns(source).map((col) => `${quoteIdent(col.name)} := ${quoteIdent(col.name)}`).join(', ');
  // Most sources have none, and a hash aggregate says so in about half the time of the window
  // below (measured: 0.3 vs 0.55 s on 2.5M order lines), which then runs only when needed.
  if (!(await hasDuplicateKeys(c, table, source.key))) return { count: 0, samples: [] };
  await c.run(
    `INSERT INTO ${QUARANTINE_TABLE}
     SELECT $1, $2, $3, $4, _line, $5, 'duplicate_key',
            'duplicate key (' || ${keyText} || '): first seen on line ' || _first,
            CAST(to_json(struct_pack(${cols})) AS VARCHAR)
     FROM (SELECT *, row_number() OVER w AS _rn, min(_line) OVER w AS _first
           FROM ${table} WINDOW w AS (PARTITION BY ${keys} ORDER BY _line))
     WHERE _rn > 1`,
    [ctx.runId, ctx.destination, source.name, file, source.key.join(',')],
  );
  await c.run(
    `DELETE FROM ${table} WHERE _line IN
       (SELECT line FROM ${QUARANTINE_TABLE} WHERE source = $1 AND reason_code = 'duplicate_key')`,
    [source.name],
  );
  const r = await c.runAndReadAll(
    `SELECT count(*)::INTEGER, list(reason ORDER BY line)[1:5] FROM ${QUARANTINE_TABLE}
     WHERE source = $1 AND reason_code = 'duplicate_key'`,
    [source.name],
  );
  const [count, samples] = r.getRowsJS()[0] as [number, string[] | null];
  return { count, samples: samples ?? [] };
}

/** Counts rows whose foreign key has no match in the referenced source (both staged). */
async function checkForeignKeys(
  c: DuckDBConnection,
  source: SourceTable,
  staged: ReadonlySet<string>,
): Promise<OrphanCheck[]> {
  const out: OrphanCheck[] = [];
  // An ANTI JOIN, not NOT EXISTS: DuckDB decorrelates the latter into a delim join that costs
  // 2.5 times as much (measured: 1M order links against 1M orders, 0.45 vs 0.17 s).
  for (const fk of source.foreignKeys ?? []) {
    if (!staged.has(fk.references.source)) continue;
    const on = fk.columns
      .map((col, i) => `r.${quoteIdent(fk.references.columns[i])} = s.${quoteIdent(col)}`)
      .join(' AND ');
    const notNull = fk.columns.map((col) => `s.${quoteIdent(col)} IS NOT NULL`).join(' AND ');
    const shown = fk.columns.map((col) => `s.${quoteIdent(col)}`).join(` || '/' || `);
    const r = await c.runAndReadAll(
      `SELECT count(*)::INTEGER, list(DISTINCT ${shown} ORDER BY ${shown})[1:5]
       FROM ${stagingTableName(source)} s ANTI JOIN ${stagingTableName(fk.references.source)} r ON ${on}
       WHERE ${notNull}`,
    );
    const [count, samples] = r.getRowsJS()[0] as [number, string[] | null];
    out.push({
      columns: fk.columns,
      references: `${fk.references.source}(${fk.references.columns.join(',')})`,
      count,
      samples: samples ?? [],
    });
  }
  return out;
}

/** Digits before the point of DECIMAL(18,4), the only NUMERIC the warehouses use. */
const NUMERIC_INT_DIGITS = 14;

/**
 * Applies a destination's derived-value rules (catalog `derived`): a row of `rule.source` whose
 * product with the row its foreign key points at would not fit the destination column is moved
 * to the quarantine, so the transform can never overflow. Exact: integers as HUGEINT, decimals
 * scaled by 10^4 into HUGEINT (a product of two 18-digit values still fits in 38 digits).
 * Returns the number of rows moved.
 */
async function quarantineDerived(
  ctx: StageContext,
  dest: BatchDestination,
  rule: DerivedProductRule,
  source: SourceTable,
  /** The source `rule.via` names, joined through `source`'s foreign key. */
  via: SourceTable,
  file: string,
): Promise<number> {
  const c = ctx.connection;
  const fk = (source.foreignKeys ?? []).find((f) => f.references.source === rule.via.source);
  if (!fk) throw new Error(`catalog: ${dest.name} derived ${rule.column}: ${source.name} has no foreign key to ${rule.via.source}`);
  const typeOf = (s: SourceTable, col: string) => s.columns.find((x) => x.name === col)?.type;
  const factors = [
    { alias: 's', col: rule.source.column, type: typeOf(source, rule.source.column) },
    { alias: 'r', col: rule.via.column, type: typeOf(via, rule.via.column) },
  ];
  const scaled = factors.map((f) =>
    f.type === 'decimal'
      ? `CAST(${f.alias}.${quoteIdent(f.col)} * 10000 AS HUGEINT)`
      : `CAST(${f.alias}.${quoteIdent(f.col)} AS HUGEINT)`,
  );
  const limitDigits = NUMERIC_INT_DIGITS + 4 * factors.filter((f) => f.type === 'decimal').length;
  const limit = `CAST('1${'0'.repeat(limitDigits)}' AS HUGEINT)`;
  const on = fk.columns.map((col, i) => `r.${quoteIdent(fk.references.columns[i])} = s.${quoteIdent(col)}`).join(' AND ');
  const cols = stagedColumns(source).map((col) => `${quoteIdent(col.name)} := s.${quoteIdent(col.name)}`).join(', ');
  const a = rule.source.column;
  const b = rule.via.column;
  // A bound first: when the largest factors of each side cannot reach the limit, no pair can
  // (two column scans instead of the join, which costs ~1 s on 7.5M order lines).
  const bounds = await c.runAndReadAll(
    `SELECT (SELECT max(abs(${scaled[0]})) FROM ${stagingTableName(source)} s)::VARCHAR,
            (SELECT max(abs(${scaled[1]})) FROM ${stagingTableName(via)} r)::VARCHAR`,
  );
  const [maxA, maxB] = bounds.getRowsJS()[0];
  if (maxA === null || maxB === null || BigInt(String(maxA)) * BigInt(String(maxB)) < 10n ** BigInt(limitDigits)) return 0;
  await c.run(
    `INSERT INTO ${QUARANTINE_TABLE}
     SELECT $1, $2, $3, $4, s._line, $5, 'derived_out_of_range',
            $6 || CAST(s.${quoteIdent(a)} AS VARCHAR) || ' x ' || $7 || CAST(r.${quoteIdent(b)} AS VARCHAR)
               || ' (' || $8 || ' line ' || r._line || ') does not fit ' || $9,
            CAST(to_json(struct_pack(${cols})) AS VARCHAR)
     FROM ${stagingTableName(source)} s JOIN ${stagingTableName(via)} r ON ${on}
     WHERE abs(${scaled[0]} * ${scaled[1]}) >= ${limit}`,
    [
      ctx.runId, ctx.destination, source.name, file, rule.source.column,
      `${rule.column} = ${a} `, `${b} `, rule.via.source, 'DECIMAL(18,4)',
    ],
  );
  const r = await c.runAndReadAll(
    `SELECT count(*)::INTEGER FROM ${QUARANTINE_TABLE} WHERE source = $1 AND reason_code = 'derived_out_of_range'`,
    [source.name],
  );
  const n = Number(r.getRowsJS()[0][0]);
  if (n > 0) {
    await c.run(
      `DELETE FROM ${stagingTableName(source)} WHERE _line IN
         (SELECT line FROM ${QUARANTINE_TABLE} WHERE source = $1 AND reason_code = 'derived_out_of_range')`,
      [source.name],
    );
  }
  return n;
}
