/**
 * Normalize + stage: every row of a source is validated against the catalog's schema, then
 * either appended to its staging table `src_<source>` (typed, PII dropped or masked) or to the
 * `quarantine` table with file, line, column and reason. Key duplicates are moved to the
 * quarantine afterwards, in SQL, so memory stays flat however large the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import type { BatchDestination, DerivedProductRule, SourceTable } from './catalog-types';
import { stagedColumns } from './catalog-check';
import { duckdbCreateStagingTable, QUARANTINE_COLUMNS_DDL, quoteIdent, stagingTableName } from './ddl';
import { type BulkResult, bulkStage } from './bulk';
import { delimiterName, type ExtractedRow, type HeaderInfo, openSource } from './extract';
import { logger } from './log';
import { createProgress } from './progress';
import type { OrphanCheck, SourceQuality } from './quality';
import { redactRaw } from './pii';
import { type ReasonCode, type RowError, rowValidator, stagedValues } from './schema';

export const QUARANTINE_TABLE = 'quarantine';

export interface StageContext {
  readonly connection: DuckDBConnection;
  readonly runId: string;
  readonly destination: string;
  readonly sourceDir: string;
  readonly maxRecordBytes: number;
  /** `bulk`: DuckDB reads and checks files, the exact path takes flagged rows (default exact). */
  readonly batchPath?: 'bulk' | 'exact';
}

export async function createQuarantineTable(c: DuckDBConnection): Promise<void> {
  await c.run(`CREATE TABLE ${QUARANTINE_TABLE} (${QUARANTINE_COLUMNS_DDL})`);
}

/** Mutable tallies while a source streams by; frozen into a SourceQuality at the end. */
class Tally {
  rowsRead = 0;
  rowsLoaded = 0;
  rowsQuarantined = 0;
  valuesTrimmed = 0;
  readonly byReason = new Map<ReasonCode, number>();
  readonly typeMismatches = new Map<string, number>();
  readonly nulls = new Map<string, number>();
  readonly fffdColumns = new Set<string>();
  fffdValues = 0;
  readonly sciSamples: string[] = [];
  sciCount = 0;

  reason(code: ReasonCode, n = 1) {
    this.byReason.set(code, (this.byReason.get(code) ?? 0) + n);
  }
}

/** Which path staged a source, and why the bulk path did not when it did not. */
export interface StagedSource {
  readonly quality: SourceQuality;
  readonly path: 'bulk' | 'exact';
  readonly fallback?: string;
}

/**
 * Stages a source by the configured path: bulk (bulk.ts) when the file allows it, the exact
 * streaming path for the whole file otherwise (logged), and in every case the exact path's
 * validation for every row the bulk path flags.
 */
export async function stageSource(ctx: StageContext, source: SourceTable): Promise<StagedSource> {
  const c = ctx.connection;
  const file = path.join(ctx.sourceDir, source.file);
  let fallback: string | undefined;
  if ((ctx.batchPath ?? 'exact') === 'bulk') {
    let plain = false;
    try {
      const st = fs.statSync(file);
      plain = st.isFile() && st.size > 0;
    } catch {
      /* the exact path says what is wrong with it */
    }
    if (plain) {
      await c.run(duckdbCreateStagingTable(source));
      let bulk: Awaited<ReturnType<typeof bulkStage>>;
      try {
        bulk = await bulkStage(c, source, file, ctx.maxRecordBytes);
      } catch (e) {
        // Nothing is in the quarantine yet and the staging table is dropped below: the exact
        // path starts the file over (and reports what is wrong with it, if anything).
        bulk = { fallback: `pre-scan failed: ${(e as Error).message}` };
      }
      if (!('fallback' in bulk)) return { quality: await finishBulk(ctx, source, file, bulk), path: 'bulk' };
      fallback = bulk.fallback;
      logger.info('bulk path not taken for this file: exact path for all of it', { source: source.name, file, why: fallback });
      await c.run(`DROP TABLE ${stagingTableName(source)}`);
    } else {
      fallback = 'not a readable, non-empty file';
    }
  }
  return { quality: await stageExact(ctx, source), path: 'exact', fallback };
}

/** Stages the bulk path's flagged rows through the exact path and sums up the source. */
async function finishBulk(ctx: StageContext, source: SourceTable, file: string, bulk: BulkResult): Promise<SourceQuality> {
  const c = ctx.connection;
  const tally = new Tally();
  tally.rowsLoaded = bulk.loaded;
  // Good rows had no value to trim (the bulk path flags those): the flagged rows count theirs.
  for (const [name, n] of bulk.nulls) if (n) tally.nulls.set(name, n);
  const header = bulk.header;
  // The flagged rows are counted as the exact path stages them.
  tally.rowsRead = bulk.loaded;
  try {
    // A clean file has none: no appenders to open.
    if (bulk.read > bulk.loaded) {
      const rows = await c.createAppender(stagingTableName(source));
      const quarantine = await c.createAppender(QUARANTINE_TABLE);
      const stageRow = rowStager(ctx, source, file, header.found, rows, quarantine, tally);
      try {
        for await (const page of bulk.flagged()) for (const row of page) stageRow(row);
      } finally {
        rows.closeSync();
        quarantine.closeSync();
      }
    }
  } finally {
    await bulk.close();
  }
  if (tally.rowsRead !== bulk.read) throw new Error(`bulk staging of ${source.file}: ${bulk.read} rows read, ${tally.rowsRead} accounted for`);
  return summarize(ctx, source, file, header, { blankLines: bulk.blankLines, crlfLines: 0 }, tally);
}

async function stageExact(ctx: StageContext, source: SourceTable): Promise<SourceQuality> {
  const c = ctx.connection;
  const reader = await openSource(source, ctx.sourceDir, { maxRecordBytes: ctx.maxRecordBytes });
  await c.run(duckdbCreateStagingTable(source));
  const rows = await c.createAppender(stagingTableName(source));
  const quarantine = await c.createAppender(QUARANTINE_TABLE);
  const tally = new Tally();
  const progress = createProgress(`${source.file}`, reader.sizeBytes);
  const stageRow = rowStager(ctx, source, reader.file, reader.header.found, rows, quarantine, tally);
  try {
    for await (const batch of reader.batches()) {
      for (const row of batch) stageRow(row);
      progress.update(reader.counters.bytesRead, tally.rowsRead);
    }
    progress.update(reader.sizeBytes, tally.rowsRead);
  } finally {
    progress.stop();
    rows.closeSync();
    quarantine.closeSync();
  }
  return summarize(ctx, source, reader.file, reader.header, reader.counters, tally);
}

/**
 * The exact path for one row: the catalog's ajv schema decides, and a rejected row goes to the
 * quarantine with its line, first column and every reason.
 */
function rowStager(
  ctx: StageContext,
  source: SourceTable,
  file: string,
  headerFound: readonly string[],
  rows: DuckDBAppender,
  quarantine: DuckDBAppender,
  tally: Tally,
): (row: ExtractedRow) => void {
  // Compiled on the first row that needs it: the bulk path often hands over none, and a
  // compile costs ~30 ms (a tenth of a small job).
  let validator: ReturnType<typeof rowValidator> | undefined;
  const reject = (line: number, err: RowError, raw: string, redacted = false) => {
    appendQuarantine(quarantine, ctx, source, file, line, err.column, err.code, err.reason,
      redacted ? raw : redactRaw(source, headerFound, raw));
    tally.rowsQuarantined++;
    tally.reason(err.code);
  };

  return (row: ExtractedRow) => {
    tally.rowsRead++;
    if (row.kind === 'too_long') {
      // Only an excerpt was ever held; its fields cannot be told apart (it is cut).
      const excerpt = redactRaw(source, null, row.excerpt);
      reject(row.line, {
        column: null,
        code: 'record_too_long',
        reason: `record is longer than the limit of ${row.limit} bytes (MAX_RECORD_BYTES): ${row.length} bytes; only its first ${row.excerpt.length} characters are kept in raw`,
      }, excerpt, true);
    } else if (row.kind === 'malformed') {
      reject(row.line, {
        column: null,
        code: 'field_count',
        reason: `expected ${headerFound.length} fields separated by ${delimiterName(source.delimiter)}, found ${row.fieldCount}`,
      }, row.raw);
    } else {
      tally.valuesTrimmed += row.trimmed;
      for (const col of source.columns) {
        const v = row.record[col.name];
        if (v === null) tally.nulls.set(col.name, (tally.nulls.get(col.name) ?? 0) + 1);
        else if (v.includes('\uFFFD')) {
          tally.fffdValues++;
          tally.fffdColumns.add(col.name);
        }
      }
      const errors = (validator ??= rowValidator(source)).validate(row.record);
      if (errors.length === 0) {
        rows.appendBigInt(BigInt(row.line));
        for (const v of stagedValues(source, row.record)) {
          if (v === null) rows.appendNull();
          else rows.appendVarchar(v);
        }
        rows.endRow();
        tally.rowsLoaded++;
      } else {
        for (const e of errors) {
          if (e.column && e.code !== 'missing_key') {
            tally.typeMismatches.set(e.column, (tally.typeMismatches.get(e.column) ?? 0) + 1);
          }
          if (e.code === 'scientific_notation_id') {
            tally.sciCount++;
            // A damaged card is still (part of) a card: counted, never sampled.
            const pii = source.columns.find((col) => col.name === e.column)?.pii;
            if (!pii && tally.sciSamples.length < 5) tally.sciSamples.push(String(row.record[e.column ?? ''] ?? ''));
          }
        }
        // One quarantine row per rejected source row keeps the accounting exact; the first
        // error names the column, the reason lists them all.
        const [first] = errors;
        reject(row.line, { ...first, reason: errors.map((e) => e.reason).join('; ') }, row.raw);
      }
    }
  };
}

/** Moves key duplicates to the quarantine and freezes the tallies into the source's report. */
async function summarize(
  ctx: StageContext,
  source: SourceTable,
  file: string,
  header: HeaderInfo,
  counters: { readonly blankLines: number; readonly crlfLines: number },
  tally: Tally,
): Promise<SourceQuality> {
  const duplicates = await quarantineDuplicateKeys(ctx, source, file);
  tally.rowsLoaded -= duplicates.count;
  tally.rowsQuarantined += duplicates.count;
  if (duplicates.count) tally.reason('duplicate_key', duplicates.count);

  return {
    source: source.name,
    file: source.file,
    delimiter: delimiterName(source.delimiter),
    bom: header.bom,
    crlfLines: counters.crlfLines,
    header: { columns: header.found, paddedNames: header.padded },
    shape: { rows: tally.rowsRead, columns: header.found.length },
    rowsRead: tally.rowsRead,
    rowsLoaded: tally.rowsLoaded,
    rowsQuarantined: tally.rowsQuarantined,
    blankLines: counters.blankLines,
    quarantinedByReason: Object.fromEntries(tally.byReason),
    typeMismatches: Object.fromEntries(tally.typeMismatches),
    nullsPerColumn: Object.fromEntries(source.columns.map((col) => [col.name, tally.nulls.get(col.name) ?? 0])),
    valuesTrimmed: tally.valuesTrimmed,
    invalidUtf8: { values: tally.fffdValues, columns: [...tally.fffdColumns] },
    scientificNotationIds: { count: tally.sciCount, samples: tally.sciSamples },
    duplicateKeys: duplicates,
    orphanForeignKeys: [],
  };
}

function appendQuarantine(
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
export async function checkForeignKeys(
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
export async function quarantineDerived(
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
