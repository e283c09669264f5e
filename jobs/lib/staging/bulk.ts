/**
 * The bulk staging strategy: DuckDB reads a source file itself, each line whole (no delimiter,
 * no quoting: one VARCHAR per line), and checks every line with one regular expression compiled
 * from the catalog's rules (rule-patterns.ts: the ajv schema's patterns). A line matches only
 * when it has exactly the header's fields, each one valid, so a wrong field count (a trailing
 * delimiter included) can never load, and DuckDB never splits a line whose field count is wrong:
 * cost stays linear in the line however many fields it has. Matching lines are split and
 * staged in one INSERT; every other line is handed, with its exact line number and text, to the
 * exact path's row code (rows.ts), which alone decides a quarantine reason. The expression may
 * flag a good row (the row code then loads it), never pass a bad one.
 *
 * The read writes the staging table itself (one copy of the rows): a flagged line's text rides
 * along in a working column, and its row is taken out before the row code sees it. The working
 * columns are dropped before anything else reads the table.
 *
 * Line numbers must be exact, so a gate (file-scan.ts) sends any file the exact path reads
 * otherwise back to the exact path whole before DuckDB reads it: a BOM, CR, NUL, U+FFFD, a line
 * over MAX_RECORD_BYTES, a quote in a comma-separated file; and a header that does not match.
 * Every line is a row (a blank one too) but for lines of invalid UTF-8, which DuckDB rejects
 * with their line numbers: a line count, run while DuckDB reads, must find exactly those, each
 * is re-read from the file, and rows + rejected lines must add up to the file's lines, or the
 * file takes the exact path.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SourceTable } from '../catalog-types';
import { stagedColumns } from '../catalog-check';
import { DUCKDB_TYPES, duckdbCreateStagingTable, quoteIdent, SOURCE_TO_COLUMN_TYPE, stagingTableName } from '../ddl';
import type { ExtractedRow } from '../extract';
import { checkHeader, type HeaderInfo } from '../header';
import { logger } from '../log';
import type { SourceQuality } from '../quality';
import { fieldPattern, rangeOkSql, stagedInSql, stagedSql } from '../rule-patterns';
import type { RawRecord } from '../schema';
import { sqlString } from '../sql/quote';
import { countLines, firstLine, gate, MAX_SKIPPED, type Prescan, readLines } from './file-scan';
import { QUARANTINE_TABLE, type StageContext } from './quarantine';
import { fieldCount } from '../record-fields';
import { rowStager, sourceQuality, Tally } from './rows';

/** Logs (debug) each step of a file's bulk staging with its duration: what a profile needs. */
function stepTimer(source: string): (step: string) => void {
  let last = process.hrtime.bigint();
  return (step) => {
    const now = process.hrtime.bigint();
    logger.debug('bulk step', { source, step, ms: Math.round(Number(now - last) / 1e6) });
    last = now;
  };
}

/** Whether every column's rule and policy compiles to SQL (else the source takes the exact path). */
export const bulkCapable = (source: SourceTable): boolean => source.columns.length > 1 && stagedInSql(source);

const FLAGGED = '_bulk_flagged';
/** Working column of the staging table during the read: a flagged line's text (NULL on a good row). */
const FLAGGED_TEXT = '_bulk_flagged_text';
/** Working column: whether the j-th unstaged column's field was empty (its nulls are still counted). */
const unstagedNull = (j: number) => `_bulk_null_${j}`;
const SKIPS = '_bulk_skips';
const INVALID_ENCODING = 'INVALID ENCODING';
const PAGE = 10_000;

/** The file's fields as the exact path's extract gives them: a blank line, a wrong field count, or a record. */
function extractedRow(source: SourceTable, header: HeaderInfo, line: number, text: string): ExtractedRow | 'blank' {
  // Counted before splitting (no quoting: the gate sent quoted files to the exact path), so a
  // line of 100,000 fields is not made into as many strings.
  const count = fieldCount(text, source.delimiter);
  // csv-parse sees a whitespace-only line as blank.
  if (count === 1 && text.trim() === '') return 'blank';
  if (count !== header.found.length) return { kind: 'malformed', line, fieldCount: count, raw: text };
  const fields = text.split(source.delimiter);
  const record: RawRecord = {};
  let trimmed = 0;
  for (const col of source.columns) {
    const v = fields[header.found.indexOf(col.name)];
    const t = v.trim();
    if (t.length !== v.length) trimmed++;
    record[col.name] = t === '' ? null : t;
  }
  return { kind: 'record', line, record, raw: text, trimmed };
}

/**
 * Stages `source` by the bulk strategy; `{ fallback: why }` (nothing staged, nothing in the
 * quarantine) when the file must take the exact path whole. A header that does not match the
 * catalog falls back too: the exact path reports it, with the same words.
 */
export async function stageBulk(ctx: StageContext, source: SourceTable): Promise<SourceQuality | { readonly fallback: string }> {
  if (!bulkCapable(source)) return { fallback: 'a column rule or PII policy has no SQL form' };
  const file = path.join(ctx.sourceDir, source.file);
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size === 0) return { fallback: 'not a readable, non-empty file' };
  } catch {
    return { fallback: 'not a readable, non-empty file' }; // the exact path says what is wrong with it
  }
  const lap = stepTimer(source.name);
  let why: string | null;
  let header: HeaderInfo;
  try {
    why = gate(file, source, ctx.maxRecordBytes);
    if (why !== null) return { fallback: why };
    header = { ...checkHeader(source, file, firstLine(file, ctx.maxRecordBytes).split(source.delimiter), 1, ctx.contract), bom: false };
  } catch (e) {
    return { fallback: e instanceof Error && e.name === 'SourceFileError' ? 'header does not match the catalog' : `pre-scan failed: ${(e as Error).message}` };
  }
  // A file with drift (an added or missing column, the contract allowing it) is the exact path's:
  // its rows are handled per contract by the shared row code; a file without keeps this SQL.
  if (header.added.length > 0 || header.missing.length > 0) return { fallback: 'schema drift: columns added or missing in the header' };
  lap('gate');
  const c = ctx.connection;
  const delimiterRe = source.delimiter === '\t' ? '\\t' : source.delimiter;
  const key = new Set(source.key);
  const byName = new Map(source.columns.map((col) => [col.name, col]));
  /** A field of the line, by header position (empty -> NULL, as the exact path has it). */
  const field = (name: string) => `nullif(_f[${header.found.indexOf(name) + 1}], '')`;
  // One expression over the whole line: each field's pattern (none holds the delimiter), joined
  // by the delimiter, so a match has exactly the header's fields.
  const checks = header.found.map((name) => {
    const col = byName.get(name)!;
    const f = fieldPattern(col, source.delimiter);
    return { col, ...f, pattern: key.has(name) ? f.pattern : `${f.pattern}?` };
  });
  const rowOk = [
    '_m',
    ...checks.filter((k) => !k.checked).map((k) => `(${field(k.col.name)} IS NULL OR coalesce(${rangeOkSql(k.col, field(k.col.name))}, false))`),
  ].join(' AND ');
  const staged = stagedColumns(source);
  // A column not staged (a dropped PII column) still has its nulls counted.
  const unstaged = source.columns.filter((col) => !staged.includes(col));

  const table = stagingTableName(source);
  // The working columns, dropped before anything else reads the table.
  const working = [{ name: FLAGGED_TEXT, type: 'VARCHAR' }, ...unstaged.map((_, j) => ({ name: unstagedNull(j), type: 'BOOLEAN' }))];
  const preserving = (await c.runAndReadAll(`SELECT current_setting('preserve_insertion_order')`)).getRowsJS()[0][0] === true;
  // DuckDB keeps adding to a rejects table of the same name: every return below drops this
  // file's tables, so each file starts with none.
  const cleanUp = () => c.run([SKIPS, '_bulk_rejects', '_bulk_scan'].map((t) => `DROP TABLE IF EXISTS ${t}`).join('; '));
  await c.run([duckdbCreateStagingTable(source), ...working.map((w) => `ALTER TABLE ${table} ADD COLUMN ${w.name} ${w.type}`)].join('; '));
  // A good line gets its staged values, typed; a flagged one its text. _line is set below, once
  // the rejected lines are known. Insertion order is kept for this statement: rowids follow the
  // file's lines (mapped below).
  const reading = c.run(
    `${preserving ? '' : 'SET preserve_insertion_order = true; '}INSERT INTO ${table}
       (_line, ${[...staged.map((col) => quoteIdent(col.name)), ...working.map((w) => w.name)].join(', ')})
     SELECT 0,
            ${staged.map((col) => `CASE WHEN NOT _bad THEN CAST(${stagedSql(col, field(col.name))} AS ${DUCKDB_TYPES[SOURCE_TO_COLUMN_TYPE[col.type]]}) END, `).join('')}
            CASE WHEN _bad THEN coalesce(_text, '') END
            ${unstaged.map((col) => `, ${field(col.name)} IS NULL`).join('')}
     FROM (SELECT *, NOT coalesce(${rowOk}, false) AS _bad
       -- Only a matching line is split (it has the header's fields): one of 100,000 fields is not.
       FROM (SELECT _text, _m, CASE WHEN _m THEN string_split(_text, ${sqlString(source.delimiter)}) END AS _f
       FROM (SELECT line AS _text, regexp_full_match(line, ${sqlString(checks.map((k) => k.pattern).join(delimiterRe))}) AS _m
         FROM read_csv(${sqlString(file)}, columns = {'line': 'VARCHAR'}, header = false, skip = 1,
           delim = '', quote = '', escape = '', new_line = '\\n', auto_detect = false, strict_mode = true,
           null_padding = false, max_line_size = ${Math.max(2_097_152, ctx.maxRecordBytes + 16)},
           store_rejects = true, rejects_table = '_bulk_rejects', rejects_scan = '_bulk_scan'))))`,
  ).then(() => null, (e: Error) => e);
  // Lines are counted while DuckDB reads (the main thread; DuckDB has its own threads).
  let scan: Prescan;
  try {
    scan = countLines(file);
  } catch (e) {
    scan = { ok: false, why: `pre-scan failed: ${(e as Error).message}` };
  }
  const readError = await reading;
  if (!preserving) await c.run('SET preserve_insertion_order = false');
  lap('read and check');
  // The exact path stages the whole file into a table of its own.
  const fellBack = async (reason: string) => {
    await cleanUp();
    await c.run(`DROP TABLE IF EXISTS ${table}`);
    return { fallback: reason };
  };
  if (!scan.ok) return fellBack(scan.why);
  if (readError) return fellBack(`DuckDB's reader failed: ${String(readError.message).split('\n')[0]}`);
  const rejected = (await c.runAndReadAll(`SELECT DISTINCT line::BIGINT, error_type FROM _bulk_rejects ORDER BY 1`))
    .getRowsJS().map(([l, type]) => ({ line: Number(l), type: String(type) }));
  const other = rejected.find((r) => r.type !== INVALID_ENCODING);
  if (other) return fellBack(`DuckDB's reader rejected line ${other.line}: ${other.type}`);
  if (rejected.length > MAX_SKIPPED) return fellBack(`${rejected.length} lines rejected`);
  // DuckDB must reject for their encoding exactly the lines Node finds invalid UTF-8 in.
  const invalid = new Set(scan.invalid);
  if (rejected.length !== invalid.size || rejected.some((r) => !invalid.has(r.line))) {
    return fellBack(`invalid UTF-8 on ${invalid.size} line(s), DuckDB rejected ${rejected.length} for their encoding`);
  }
  // A staged value is NULL exactly when its field was empty (the PII forms keep NULL).
  const good = `${FLAGGED_TEXT} IS NULL`;
  const nullCounts = source.columns.map((col) => (staged.includes(col)
    ? `count(*) FILTER (WHERE ${good} AND ${quoteIdent(col.name)} IS NULL)::BIGINT`
    : `count(*) FILTER (WHERE ${good} AND ${unstagedNull(unstaged.indexOf(col))})::BIGINT`));
  const stats = await c.runAndReadAll(`SELECT count(*)::BIGINT, (count(*) FILTER (WHERE ${good}))::BIGINT, ${nullCounts.join(', ')} FROM ${table}`);
  const [rowCount, loaded, ...nulls] = stats.getRowsJS()[0].map(Number);
  if (rowCount + rejected.length !== scan.lines - 1) {
    return fellBack(`lines do not add up: ${rowCount} rows + ${rejected.length} rejected != ${scan.lines - 1}`);
  }

  // Row r of the table is line r + 2 + (rejected lines before it): the k-th rejected line s_k
  // (0-based) shifts every row from index s_k - 2 - k on by one more.
  if (rejected.length === 0) {
    await c.run(`UPDATE ${table} SET _line = rowid + 2`);
  } else {
    await c.run(`CREATE TABLE ${SKIPS} (th BIGINT, n BIGINT)`);
    const a = await c.createAppender(SKIPS);
    rejected.forEach((r, k) => {
      a.appendBigInt(BigInt(r.line - 2 - k));
      a.appendBigInt(BigInt(k + 1));
      a.endRow();
    });
    a.closeSync();
    await c.run(
      `UPDATE ${table} SET _line = _l FROM (SELECT _r, _r + 2 + coalesce(_s.n, 0) AS _l
         FROM (SELECT rowid AS _r FROM ${table}) ASOF LEFT JOIN ${SKIPS} _s ON _r >= _s.th) WHERE ${table}.rowid = _r`,
    );
  }
  // A clean file (the usual case) has no flagged line: no table of them to make, read or drop.
  const anyFlagged = loaded < rowCount;
  if (anyFlagged) {
    await c.run(`CREATE TEMP TABLE ${FLAGGED} AS SELECT _line, ${FLAGGED_TEXT} AS _text FROM ${table} WHERE NOT (${good});
                 DELETE FROM ${table} WHERE NOT (${good})`);
  }
  await c.run(working.map((w) => `ALTER TABLE ${table} DROP COLUMN ${w.name}`).join('; '));
  lap('line numbers and flagged lines');
  await cleanUp();

  const tally = new Tally();
  tally.rowsRead = loaded;
  tally.rowsLoaded = loaded;
  for (const [i, col] of source.columns.entries()) if (nulls[i]) tally.nulls.set(col.name, nulls[i]);
  let blankLines = 0;
  // Lines of invalid UTF-8, decoded with U+FFFD as the exact path does, go in line order with the flagged.
  const texts = readLines(file, invalid);
  const reread = rejected.map((r) => ({ line: r.line, text: texts.get(r.line) ?? '' }));
  if (anyFlagged || reread.length > 0) {
    const rows = await c.createAppender(stagingTableName(source));
    const quarantine = await c.createAppender(QUARANTINE_TABLE);
    const stageRow = rowStager(ctx, source, file, header, rows, quarantine, tally);
    const take = (line: number, text: string) => {
      const row = extractedRow(source, header, line, text);
      if (row === 'blank') blankLines++;
      else stageRow(row);
    };
    try {
      let m = 0;
      for (let after = 0; anyFlagged;) {
        const page = (await c.runAndReadAll(`SELECT _line, _text FROM ${FLAGGED} WHERE _line > ${after} ORDER BY _line LIMIT ${PAGE}`)).getRowsJS();
        if (page.length === 0) break;
        for (const [lineValue, text] of page) {
          const line = Number(lineValue);
          while (m < reread.length && reread[m].line < line) take(reread[m].line, reread[m++].text);
          take(line, String(text));
          after = line;
        }
      }
      while (m < reread.length) take(reread[m].line, reread[m++].text);
    } finally {
      rows.closeSync();
      quarantine.closeSync();
      if (anyFlagged) await c.run(`DROP TABLE IF EXISTS ${FLAGGED}`);
    }
  }
  lap('flagged rows');
  const read = rowCount + rejected.length - blankLines;
  if (tally.rowsRead !== read) throw new Error(`bulk staging of ${source.file}: ${read} rows read, ${tally.rowsRead} accounted for`);
  return sourceQuality(source, header, { blankLines, crlfLines: 0 }, tally);
}
