/**
 * The bulk path of staging: DuckDB reads a source file itself and checks every row with one
 * regular expression over its fields, compiled from the same catalog entries (and the same
 * patterns) as the ajv schemas. Rows that pass are staged in one INSERT; rows it flags are
 * handed back, with their exact line and fields, to the exact path (csv-parse semantics + ajv),
 * which alone decides a quarantine reason. The expression may flag a good row (it is then
 * loaded by the exact path), never pass a bad one.
 *
 * Line numbers must be exact, so a gate (native Buffer searches, no per-byte JavaScript) sends
 * any file with something the exact path treats specially back to the exact path whole, before
 * DuckDB reads it: a BOM, CR, NUL, U+FFFD, a line over MAX_RECORD_BYTES (DuckDB would hold a
 * rejected line whole), a quote in a comma-separated file; and a header that does not match.
 * Blank lines (which DuckDB skips), lines with a wrong field count and lines of invalid UTF-8
 * (which it rejects, with their line numbers) are mapped back exactly: a line count, run while
 * DuckDB reads, finds the blank and the invalid lines; each rejected line is re-read from the
 * file and must indeed have a wrong field count or be exactly a line the count found invalid,
 * and rows + rejected + blank lines must add up to the file's lines, or the file takes the
 * exact path. Anything else the reader rejects does the same.
 */
import fs from 'node:fs';
import { isUtf8 } from 'node:buffer';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { SourceColumn, SourceTable } from './catalog-types';
import { stagedColumns } from './catalog-check';
import { DUCKDB_TYPES, quoteIdent, SOURCE_TO_COLUMN_TYPE, stagingTableName } from './ddl';
import { checkHeader, type ExtractedRow, type HeaderInfo } from './extract';
import { logger } from './log';
import { RULE_PATTERNS, type RawRecord } from './schema';
import { sqlString } from './sql/quote';

const CHUNK = 1 << 20;

const FFFD = Buffer.from('\uFFFD', 'utf8');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Logs (debug) each step of a file's bulk staging with its duration: what a profile needs. */
function stepTimer(source: string): (step: string) => void {
  let last = process.hrtime.bigint();
  return (step) => {
    const now = process.hrtime.bigint();
    logger.debug('bulk step', { source, step, ms: Math.round(Number(now - last) / 1e6) });
    last = now;
  };
}

export type Prescan =
  | {
      readonly ok: true;
      readonly lines: number;
      readonly blanks: readonly number[];
      /** Lines with invalid UTF-8 (DuckDB must reject exactly these). */
      readonly invalid: readonly number[];
    }
  | { readonly ok: false; readonly why: string };

/** Past this many blank or rejected lines a file is not plain: the exact path takes it. */
const MAX_SKIPPED = 100_000;

class LineTooLong extends Error {}

/**
 * The file in chunks of whole lines (each ends with a newline but perhaps the file's last), so
 * that lines, multi-byte characters and patterns are never cut. A line longer than
 * `maxLineBytes` throws LineTooLong rather than being buffered.
 */
function* wholeLineChunks(file: string, maxLineBytes = Infinity): Generator<Buffer> {
  const fd = fs.openSync(file, 'r');
  try {
    // One buffer, reused: a fresh one per read costs more in page faults than the searches.
    // A chunk is only valid until the next is asked for.
    let buf = Buffer.allocUnsafe(CHUNK);
    let kept = 0; // the start of an unfinished line, at the start of buf
    for (;;) {
      if (kept === buf.length) {
        if (kept > maxLineBytes) throw new LineTooLong();
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, kept);
        buf = bigger;
      }
      const n = fs.readSync(fd, buf, kept, buf.length - kept, null);
      const end = kept + n;
      if (n === 0) {
        if (end > 0) yield buf.subarray(0, end);
        return;
      }
      const cut = buf.lastIndexOf(10, end - 1) + 1;
      if (cut > 0) {
        yield buf.subarray(0, cut);
        buf.copy(buf, 0, cut, end);
      }
      kept = end - cut;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The file's first line (without its newline), of at most `maxBytes` (the gate saw to it). */
function firstLine(file: string, maxBytes: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, fs.fstatSync(fd).size));
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const nl = buf.subarray(0, n).indexOf(10);
    return buf.toString('utf8', 0, nl === -1 ? n : nl);
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether a chunk of whole lines has one longer than `max` bytes, in about length/max searches. */
function hasLineLongerThan(lines: Buffer, max: number): boolean {
  // From a line start p, that line ends by p + max exactly when a newline is in [p, p + max];
  // the last one there is the start of the next jump.
  for (let p = 0; lines.length - p > max; ) {
    const q = lines.lastIndexOf(10, p + max);
    if (q < p) return true;
    p = q + 1;
  }
  return false;
}

/**
 * First pass, before DuckDB reads the file, in native Buffer searches only: whether DuckDB's
 * fields can be exactly what csv-parse gives, and no line is too long (DuckDB would keep a
 * rejected line whole in memory). Null when the file is plain, else why not (for the log).
 */
export function gate(file: string, source: SourceTable, maxRecordBytes: number): string | null {
  let first = true;
  try {
    for (const lines of wholeLineChunks(file, maxRecordBytes)) {
      if (first && lines.subarray(0, 3).equals(BOM)) return 'byte-order mark';
      first = false;
      if (lines.indexOf(13) !== -1) return 'CR line ends';
      if (lines.indexOf(0) !== -1) return 'a NUL byte';
      if (source.delimiter === ',' && lines.indexOf(0x22) !== -1) return 'quotes';
      if (lines.indexOf(FFFD) !== -1) return 'U+FFFD characters';
      if (hasLineLongerThan(lines, maxRecordBytes)) return 'a line longer than MAX_RECORD_BYTES';
    }
  } catch (e) {
    if (e instanceof LineTooLong) return 'a line longer than MAX_RECORD_BYTES';
    throw e;
  }
  return null;
}

/**
 * Second pass, while DuckDB reads the file (the line-by-line part): counts the lines and finds
 * the blank ones and those of invalid UTF-8, which DuckDB skips or rejects, so that its row n
 * can be mapped to the file's line.
 */
export function countLines(file: string): Prescan {
  let lineNo = 0;
  const blanks: number[] = [];
  const invalid: number[] = [];
  for (const lines of wholeLineChunks(file)) {
    // Line by line only in a chunk that has some: the exact path decodes them as U+FFFD.
    const valid = isUtf8(lines);
    for (let start = 0; start < lines.length; ) {
      const nl = lines.indexOf(10, start);
      const end = nl === -1 ? lines.length : nl;
      lineNo++;
      if (end === start) {
        if (lineNo === 1) return { ok: false, why: 'a blank first line' };
        if (blanks.push(lineNo) > MAX_SKIPPED) return { ok: false, why: 'too many blank lines' };
      }
      if (!valid && !isUtf8(lines.subarray(start, end))) {
        if (lineNo === 1) return { ok: false, why: 'invalid UTF-8 in the header' };
        if (invalid.push(lineNo) > MAX_SKIPPED) return { ok: false, why: 'too many lines of invalid UTF-8' };
      }
      start = end + 1;
    }
  }
  return lineNo === 0 ? { ok: false, why: 'no header' } : { ok: true, lines: lineNo, blanks, invalid };
}

/** The text of the given lines (1-based) of a file. */
export function readLines(file: string, wanted: ReadonlySet<number>): Map<number, string> {
  const out = new Map<number, string>();
  if (wanted.size === 0) return out; // a clean file: nothing to read again
  let lineNo = 0;
  for (const lines of wholeLineChunks(file)) {
    for (let start = 0; start < lines.length; ) {
      const nl = lines.indexOf(10, start);
      const end = nl === -1 ? lines.length : nl;
      lineNo++;
      if (wanted.has(lineNo)) out.set(lineNo, lines.toString('utf8', start, end));
      start = end + 1;
    }
    // Leaving the loop closes the file (the generator's finally).
    if (out.size === wanted.size) break;
  }
  return out;
}

/** What JavaScript's trim removes (WhiteSpace and LineTerminator), as an RE2 class body. */
const TRIM_WS = ' \\t\\n\\x0B\\f\\r\\x{00A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';

/** The leap years of 1000-9999: multiples of 4 but not of 100, and multiples of 400. */
const LEAP_YEAR = '(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)';
/**
 * A real calendar day of the years 1000-9999 as YYYY-MM-DD (days 1-28 of every month, the 29th
 * and 30th of all but February, the 31st of the long months, and February 29th of a leap year):
 * what ajv-formats' `date` accepts and DuckDB's DATE gives back unchanged (other years take the
 * exact path).
 */
export const DATE_PATTERN = `(?:[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|${LEAP_YEAR}-02-29)`;

const unanchored = (pattern: string) => `(?:${pattern.replace(/^\^/, '').replace(/\$$/, '')})`;

/**
 * The RE2 pattern a raw (untrimmed, non-empty) field must fully match for the exact path to
 * take it as it is and accept it: no edge whitespace to trim (such a row is flagged, and the
 * exact path trims it), then the type's pattern (RULE_PATTERNS, the ajv schema's), narrowed to
 * the values at or above a minimum of 0 or 1. `minChecked` false: the minimum needs its SQL
 * check too. Every match must be a value the exact path accepts; the converse need not hold.
 */
export function fieldPattern(c: SourceColumn, delimiter: string): { readonly pattern: string; readonly minChecked: boolean } {
  const min = c.rules?.min;
  const rule = RULE_PATTERNS[c.type];
  switch (c.type) {
    case 'bool01':
      return { pattern: '[01]', minChecked: min === undefined };
    case 'date':
      return { pattern: DATE_PATTERN, minChecked: min === undefined };
    case 'string': {
      const d = delimiter === '\t' ? '\\t' : delimiter;
      return { pattern: `(?:[^${TRIM_WS}](?:[^${d}]*[^${TRIM_WS}])?)`, minChecked: min === undefined };
    }
    case 'int':
      // No sign, and for a minimum of 1 no leading zero either (17 digits at most).
      if (min === 0) return { pattern: '(?:[0-9]{1,18})', minChecked: true };
      if (min === 1) return { pattern: '(?:[1-9][0-9]{0,16})', minChecked: true };
      break;
    case 'decimal':
      if (min === 0) return { pattern: '(?:[0-9]{1,14}(?:\\.[0-9]{1,4})?)', minChecked: true };
      break;
    default:
      break;
  }
  if (!rule) throw new Error(`no pattern for type ${c.type}`);
  return { pattern: unanchored(rule), minChecked: min === undefined };
}

/** SQL that is true when a valid value also meets its column's minimum (as checkRules compares). */
function minOkSql(c: SourceColumn, v: string): string {
  const min = c.rules!.min!;
  // Integers exactly, anything else as a double; no check can raise (NULL fails the row).
  return c.type === 'int' && Number.isInteger(min) ? `try_cast(${v} AS HUGEINT) >= ${BigInt(min)}` : `try_cast(${v} AS DOUBLE) >= ${min}`;
}

/**
 * The staged value of a valid trimmed value, as `stagedValues` computes it (the bulk path's
 * rows, and the stream's events the fast pattern accepted: duckdb-stream.ts).
 */
export function stagedSql(c: SourceColumn, t: string): string | null {
  // Most cards have no separator: replace() costs twice the rest of the mask (measured).
  const digits = `CASE WHEN contains(${t}, ' ') OR contains(${t}, '-') THEN replace(replace(${t}, ' ', ''), '-', '') ELSE ${t} END`;
  switch (c.pii) {
    case 'mask_last4':
      return c.type === 'card' ? `repeat('*', length(${digits}) - 4) || right(${digits}, 4)` : null;
    case 'hash':
      return `sha256(${c.type === 'card' ? digits : t})`;
    case undefined:
      return c.type === 'bool01' ? `(${t} = '1')` : t;
    default:
      return null;
  }
}

/** Whether every column's rule and policy compiles to SQL (else the source takes the exact path). */
export function bulkCapable(source: SourceTable): boolean {
  return source.columns.length > 1 && stagedColumns(source).every((c) => stagedSql(c, 'x') !== null);
}

export interface BulkResult {
  readonly header: HeaderInfo;
  /** Rows staged by SQL. */
  readonly loaded: number;
  /** All data rows of the file. */
  readonly read: number;
  readonly nulls: ReadonlyMap<string, number>;
  readonly blankLines: number;
  /** The flagged rows and lines of a wrong field count, in file order, in pages, for the exact path. */
  flagged(): AsyncGenerator<ExtractedRow[]>;
  /** Drops the scratch tables. */
  close(): Promise<void>;
}

const RAW = '_bulk_raw';
const FLAGGED = '_bulk_flagged';
const SKIPS = '_bulk_skips';
const FIELD_COUNT_ERRORS = new Set(['MISSING COLUMNS', 'TOO MANY COLUMNS']);
const INVALID_ENCODING = 'INVALID ENCODING';
const PAGE = 10_000;

/**
 * Reads `file` into DuckDB and stages its good rows; `{ fallback: why }` (nothing staged) when
 * the file must take the exact path whole. A header that does not match the catalog falls back
 * too: the exact path reports it, with the same words.
 */
export async function bulkStage(
  c: DuckDBConnection,
  source: SourceTable,
  file: string,
  maxRecordBytes: number,
): Promise<BulkResult | { readonly fallback: string }> {
  if (!bulkCapable(source)) return { fallback: 'a column rule or PII policy has no SQL form' };
  const lap = stepTimer(source.name);
  const why = gate(file, source, maxRecordBytes);
  if (why !== null) return { fallback: why };
  const headerLine = firstLine(file, maxRecordBytes);
  let header: HeaderInfo;
  try {
    header = { ...checkHeader(source, file, { record: headerLine.split(source.delimiter), raw: headerLine }, 1), bom: false };
  } catch {
    return { fallback: 'header does not match the catalog' };
  }
  lap('gate');
  const rawCol = (i: number) => `c${i}`;
  const width = header.found.length;
  // The raw field of a catalog column (the header may order columns differently than the catalog).
  const raw = (col: SourceColumn) => rawCol(header.found.indexOf(col.name));
  const key = new Set(source.key);
  // One regular expression over the whole row (its fields joined again; an empty field is NULL,
  // which concat takes as ''): a column at a time costs twice as much (measured on order.txt).
  // A field can hold no delimiter, so each field of the pattern matches exactly its own.
  const byName = new Map(source.columns.map((col) => [col.name, col]));
  const checks = header.found.map((name) => {
    const col = byName.get(name)!;
    const f = fieldPattern(col, source.delimiter);
    return { col, ...f, pattern: key.has(name) ? f.pattern : `${f.pattern}?` };
  });
  const delimiterRe = source.delimiter === '\t' ? '\\t' : source.delimiter;
  const rowOk = [
    `regexp_full_match(concat(${header.found.map((_, i) => rawCol(i)).join(`, ${sqlString(source.delimiter)}, `)}), ${sqlString(checks.map((k) => k.pattern).join(delimiterRe))})`,
    ...checks.filter((k) => !k.minChecked).map((k) => `(${raw(k.col)} IS NULL OR coalesce(${minOkSql(k.col, raw(k.col))}, false))`),
  ].join(' AND ');
  const columns = header.found.map((_, i) => `${sqlString(rawCol(i))}: 'VARCHAR'`).join(', ');
  const staged = stagedColumns(source);
  // A column not staged (a dropped PII column) still has its nulls counted.
  const unstaged = source.columns.filter((col) => !staged.includes(col));

  // DuckDB keeps adding to a rejects table of the same name: every return below drops this
  // file's tables (`cleanUp`), so each file starts with none and needs no drops of its own.
  const preserving = (await c.runAndReadAll(`SELECT current_setting('preserve_insertion_order')`)).getRowsJS()[0][0] === true;
  const cleanUp = () =>
    c.run([RAW, SKIPS, '_bulk_rejects', '_bulk_scan'].map((t0) => `DROP TABLE IF EXISTS ${t0}`).join('; '));
  // A good row keeps its staged values, typed (s<i>); a flagged row its raw fields, in one list
  // (_raw): a column per field, NULL in almost every row, held 40% more memory (order.txt).
  // Insertion order is kept for this statement (the job does not keep it elsewhere): rowids
  // follow the file's lines (mapped to them below).
  const reading = c.run(
    `${preserving ? '' : 'SET preserve_insertion_order = true; '}CREATE TEMP TABLE ${RAW} AS
     SELECT _bad,
            ${staged.map((col, j) => `CASE WHEN NOT _bad THEN CAST(${stagedSql(col, raw(col))} AS ${DUCKDB_TYPES[SOURCE_TO_COLUMN_TYPE[col.type]]}) END AS s${j}`).join(', ')},
            ${unstaged.map((col, j) => `${raw(col)} IS NULL AS n${j}, `).join('')}
            CASE WHEN _bad THEN [${header.found.map((_, i) => rawCol(i)).join(', ')}] END AS _raw
     FROM (SELECT *, NOT coalesce(${rowOk}, false) AS _bad
     FROM read_csv(${sqlString(file)}, columns = {${columns}}, header = false, skip = 1,
       delim = ${sqlString(source.delimiter)}, quote = '', escape = '', new_line = '\\n',
       auto_detect = false, strict_mode = true, null_padding = false,
       store_rejects = true, rejects_table = '_bulk_rejects', rejects_scan = '_bulk_scan'))`,
  ).then(() => null, (e: Error) => e);
  // Lines are counted while DuckDB reads (this needs the main thread only, DuckDB its own
  // threads); the connection is free again only once the read is over, whatever the count says.
  let scan: Prescan;
  try {
    scan = countLines(file);
  } catch (e) {
    scan = { ok: false, why: `pre-scan failed: ${(e as Error).message}` };
  }
  lap('count lines');
  const readError = await reading;
  if (!preserving) await c.run('SET preserve_insertion_order = false');
  lap('read and check');
  const fellBack = async (why: string) => {
    await cleanUp();
    return { fallback: why };
  };
  if (!scan.ok) return fellBack(scan.why);
  if (readError) return fellBack(`DuckDB's reader failed: ${String(readError.message).split('\n')[0]}`);
  const rejected = (await c.runAndReadAll(`SELECT DISTINCT line::BIGINT, error_type FROM _bulk_rejects ORDER BY 1`))
    .getRowsJS().map(([l, type]) => ({ line: Number(l), type: String(type) }));
  const other = rejected.find((r) => !FIELD_COUNT_ERRORS.has(r.type) && r.type !== INVALID_ENCODING);
  if (other) return fellBack(`DuckDB's reader rejected line ${other.line}: ${other.type}`);
  if (rejected.length > MAX_SKIPPED) return fellBack(`${rejected.length} lines with a wrong field count`);
  // DuckDB must reject for their encoding exactly the lines Node finds invalid UTF-8 in.
  const badUtf8 = rejected.filter((r) => r.type === INVALID_ENCODING).map((r) => r.line);
  const invalidSet = new Set(scan.invalid);
  if (badUtf8.length !== scan.invalid.length || badUtf8.some((l) => !invalidSet.has(l))) {
    return fellBack(`invalid UTF-8 on ${scan.invalid.length} line(s), DuckDB rejected ${badUtf8.length} for their encoding`);
  }
  // A staged value is NULL exactly when its field was empty (the PII forms keep NULL), and in
  // every flagged row: its nulls are the good rows less its values (cheaper than a FILTER each).
  const nullCounts = source.columns.map((col) => (staged.includes(col)
    ? `(count(*) FILTER (WHERE NOT _bad) - count(s${staged.indexOf(col)}))::BIGINT`
    : `count(*) FILTER (WHERE NOT _bad AND n${unstaged.indexOf(col)})::BIGINT`));
  const stats = await c.runAndReadAll(
    `SELECT count(*)::BIGINT, (count(*) FILTER (WHERE NOT _bad))::BIGINT, ${nullCounts.join(', ')} FROM ${RAW}`,
  );
  const [rowCount, loaded, ...nulls] = stats.getRowsJS()[0].map(Number);
  if (rowCount + rejected.length + scan.blanks.length !== scan.lines - 1) {
    return fellBack(`lines do not add up: ${rowCount} rows + ${rejected.length} rejected + ${scan.blanks.length} blank != ${scan.lines - 1}`);
  }
  /** A row of raw fields as the exact path's extract makes it (trimmed, empty -> null). */
  const positions = source.columns.map((col) => header.found.indexOf(col.name));
  const toRecord = (line: number, fields: readonly string[]): ExtractedRow => {
    const record: RawRecord = {};
    let trimmedValues = 0;
    for (let i = 0; i < positions.length; i++) {
      const v = fields[positions[i]];
      const tv = v.trim();
      if (tv.length !== v.length) trimmedValues++;
      record[source.columns[i].name] = tv === '' ? null : tv;
    }
    return { kind: 'record', line, record, raw: fields.join(source.delimiter), trimmed: trimmedValues };
  };

  // Each rejected line, re-read: one of a field-count error must have a wrong field count, or
  // DuckDB's line is not ours. Lines of invalid UTF-8 are decoded as the exact path does (U+FFFD).
  lap('rejects and count');
  const texts = readLines(file, new Set(rejected.map((r) => r.line)));
  const reread: ExtractedRow[] = [];
  let blankLines = scan.blanks.length;
  for (const { line, type } of rejected) {
    const text = texts.get(line);
    const fields = text?.split(source.delimiter);
    if (text === undefined || fields === undefined) return fellBack(`DuckDB rejected line ${line}, which the file does not have`);
    if (type === INVALID_ENCODING && fields.length === width) {
      reread.push(toRecord(line, fields));
      continue;
    }
    if (fields.length === width) {
      return fellBack(`DuckDB rejected line ${line}, which has the right field count`);
    }
    // csv-parse sees a whitespace-only line as blank, DuckDB as a missing column.
    if (fields.length === 1 && text.trim() === '') blankLines++;
    else reread.push({ kind: 'malformed', line, fieldCount: fields.length, raw: text });
  }

  // Row r of the table is line r + 2 + (skipped lines before it): the k-th skipped line s_k
  // (0-based) shifts every row from index s_k - 2 - k on by one more.
  const skipped = [...scan.blanks, ...rejected.map((r) => r.line)].sort((a, b) => a - b);
  let lineSql = '_r + 2';
  let from = `(SELECT rowid AS _r, * FROM ${RAW})`;
  if (skipped.length > 0) {
    const thresholds = new Map<number, number>();
    skipped.forEach((s0, k) => thresholds.set(s0 - 2 - k, k + 1));
    await c.run(`CREATE TABLE ${SKIPS} (th BIGINT, n BIGINT)`);
    const a = await c.createAppender(SKIPS);
    for (const [th, n] of thresholds) {
      a.appendBigInt(BigInt(th));
      a.appendBigInt(BigInt(n));
      a.endRow();
    }
    a.closeSync();
    lineSql = '_r + 2 + coalesce(_s.n, 0)';
    from = `${from} ASOF LEFT JOIN ${SKIPS} _s ON _r >= _s.th`;
  }

  await c.run(
    `INSERT INTO ${stagingTableName(source)} (_line, ${staged.map((col) => quoteIdent(col.name)).join(', ')})
     SELECT ${lineSql}, ${staged.map((_, j) => `s${j}`).join(', ')} FROM ${from} WHERE NOT _bad`,
  );
  lap('insert good rows');
  // A clean file (the usual case) has no flagged row: no table of them to make, read or drop.
  const anyFlagged = loaded < rowCount;
  if (anyFlagged) {
    await c.run(
      `CREATE TEMP TABLE ${FLAGGED} AS SELECT ${lineSql} AS _line, ${header.found.map((_, i) => `_raw[${i + 1}]`).join(', ')}
       FROM ${from} WHERE _bad ORDER BY _r`,
    );
  }
  await cleanUp();
  lap('flagged rows');

  async function* flagged(): AsyncGenerator<ExtractedRow[]> {
    let m = 0;
    for (let after = 0; anyFlagged;) {
      const r = await c.runAndReadAll(`SELECT * FROM ${FLAGGED} WHERE _line > ${after} ORDER BY _line LIMIT ${PAGE}`);
      const rows = r.getRowsJS();
      if (rows.length === 0) {
        if (m < reread.length) yield reread.slice(m);
        return;
      }
      const out: ExtractedRow[] = [];
      for (const [lineValue, ...values] of rows) {
        const fields = values.map((v) => (v === null ? '' : String(v)));
        const line = Number(lineValue);
        while (m < reread.length && reread[m].line < line) out.push(reread[m++]);
        out.push(toRecord(line, fields));
        after = line;
      }
      yield out;
    }
    if (reread.length > 0) yield reread;
  }
  return {
    header,
    read: rowCount + reread.length,
    loaded,
    blankLines,
    nulls: new Map(source.columns.map((col, i) => [col.name, nulls[i]])),
    flagged,
    close: async () => {
      if (anyFlagged) await c.run(`DROP TABLE IF EXISTS ${FLAGGED}`);
    },
  };
}
