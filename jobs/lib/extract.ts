/**
 * Extract: streams a source file through csv-parse, one record at a time (never the whole file
 * in memory), and checks its header against the catalog. Yields trimmed records with their line
 * numbers; file-level faults (missing file, empty file, wrong header) are SourceFileErrors.
 *
 * What the store's files really contain, and what happens to it:
 *  - padded header names and values: trimmed (counted in the report)
 *  - a UTF-8 BOM, CRLF line ends: accepted (reported)
 *  - blank lines: skipped and counted, they are not rows
 *  - invalid UTF-8: decoded as U+FFFD, the row kept, counted per column in the report
 *  - a row whose field count differs from the header's: yielded with `fields` only, so the
 *    caller quarantines it (fields were not separated as the header says)
 *  - a line longer than the record limit (MAX_RECORD_BYTES): cut before csv-parse sees it and
 *    yielded as `too_long` with a short excerpt, so memory does not grow with a line's length
 *  - a line of more than MAX_PARSED_FIELDS fields: counted (native searches) and cut before
 *    csv-parse sees it, then yielded as `malformed` with its count and text, so memory does not
 *    grow with a line's field count either (csv-parse would make a string per field)
 *  - an unclosed quote (comma source): a file error at the line where the quote opens
 */
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { parse } from 'csv-parse';
import type { SchemaContract, SourceTable } from './catalog-types';
import { DEFAULT_MAX_RECORD_BYTES } from './config';
import { SourceFileError } from './errors';
import { checkHeader, type HeaderInfo } from './header';
import { type Cut, LineLimiter, MAX_PARSED_FIELDS, TOO_LONG, WIDE } from './line-limiter';
import type { RawRecord } from './schema';

export type ExtractedRow =
  | {
      readonly kind: 'record'; readonly line: number; readonly record: RawRecord; readonly raw: string; readonly trimmed: number;
      /** Values of the header's columns the catalog does not declare (schema drift), trimmed, empty -> null. */
      readonly added?: readonly (readonly [string, string | null])[];
    }
  | { readonly kind: 'malformed'; readonly line: number; readonly fieldCount: number; readonly raw: string }
  | { readonly kind: 'too_long'; readonly line: number; readonly length: number; readonly limit: number; readonly excerpt: string };

export interface ExtractCounters {
  blankLines: number;
  crlfLines: number;
  bytesRead: number;
}

export interface SourceReader {
  readonly file: string;
  readonly sizeBytes: number;
  readonly header: HeaderInfo;
  readonly counters: ExtractCounters;
  /** Data rows in file order, in batches (one await per batch, not per row, keeps it fast). */
  batches(): AsyncGenerator<ExtractedRow[]>;
  /** The same rows one at a time, for callers where per-row awaiting is no cost. */
  rows(): AsyncGenerator<ExtractedRow>;
}

export interface CsvChunk {
  record: string[];
  raw: string;
}

const BATCH = 2048;

/** Why a path cannot be read as a source file, in words ("is a directory", "symlink loop"). */
function checkFile(file: string, expected: string, dir: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new SourceFileError(file, null, null, 'symlink loop: the path resolves to itself');
    if (code === 'EACCES') throw new SourceFileError(file, null, null, 'not readable: permission denied on the file or a folder above it');
    let dangling = false;
    try {
      dangling = fs.lstatSync(file).isSymbolicLink();
    } catch {
      /* not there at all */
    }
    if (dangling) throw new SourceFileError(file, null, null, 'is a symlink to a file that does not exist');
    throw new SourceFileError(file, null, null, `source file not found (expected ${expected} in ${dir})`);
  }
  if (st.isDirectory()) throw new SourceFileError(file, null, null, 'is a directory, not a file');
  if (!st.isFile()) throw new SourceFileError(file, null, null, 'is not a regular file (a device, FIFO or socket)');
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new SourceFileError(file, null, null, 'not readable: permission denied');
  }
  return st.size;
}

export interface ExtractLimits {
  /** Longest record in bytes; a longer one is quarantined as `record_too_long`. */
  readonly maxRecordBytes: number;
  /** The table's schema contract: whether the header may add or lack columns (header.ts). */
  readonly contract?: SchemaContract;
}

/** Opens a source file, reads and checks its header; `rows()` then streams the data rows. */
export async function openSource(
  source: SourceTable,
  dir: string,
  limits: ExtractLimits = { maxRecordBytes: DEFAULT_MAX_RECORD_BYTES },
): Promise<SourceReader> {
  const file = path.join(dir, source.file);
  const size = checkFile(file, source.file, dir);
  if (size === 0) throw new SourceFileError(file, null, null, 'file is empty: no header, no rows');

  const counters: ExtractCounters = { blankLines: 0, crlfLines: 0, bytesRead: 0 };
  const bom = hasBom(file);
  const counting = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      counters.bytesRead += chunk.length;
      cb(null, chunk);
    },
  });
  const parser = parse({
    delimiter: source.delimiter,
    bom: true,
    raw: true,
    relax_column_count: true,
    skip_empty_lines: false,
    // Tab-separated exports carry inch marks and stray quotes in free text: no quoting there.
    quote: source.delimiter === ',' ? '"' : false,
    relax_quotes: true,
    // Lines are cut by the limiter; this catches a record spanning lines (an open quote).
    max_record_size: limits.maxRecordBytes,
    on_record: (record: string[], context: { lines: number }) => {
      lastRecordLine = context.lines;
      return record;
    },
  });
  // The line a record that fails to parse starts on: the line after the last good record.
  let lastRecordLine = 0;
  const limiter = new LineLimiter(limits.maxRecordBytes, source.delimiter, source.delimiter === ',');
  const input = fs.createReadStream(file);
  input.on('error', (e) => parser.destroy(e));
  input.pipe(counting).pipe(limiter).pipe(parser);
  let ended = false;
  let failure: Error | null = null;
  parser.on('end', () => (ended = true));
  parser.on('error', (e) => (failure = e));
  // Line numbers come from the raw text: a record spans its newlines (a quoted field may hold
  // some). csv-parse keeps a record's LF in `raw` but not the LF of a CRLF, hence the +1 there.
  let nextLine = 1;

  /** Up to BATCH parsed records with their first line; [] once the file is done. */
  const read = async (): Promise<{ chunk: CsvChunk; line: number }[]> => {
    const out: { chunk: CsvChunk; line: number }[] = [];
    for (;;) {
      if (failure) throw parseError(file, failure, lastRecordLine + 1, limits.maxRecordBytes);
      let chunk: CsvChunk | null;
      while (out.length < BATCH && (chunk = parser.read() as CsvChunk | null) !== null) {
        out.push({ chunk, line: nextLine });
        let nl = 0;
        for (let i = chunk.raw.indexOf('\n'); i !== -1; i = chunk.raw.indexOf('\n', i + 1)) nl++;
        nextLine += chunk.raw.endsWith('\n') ? nl : nl + 1;
      }
      if (out.length > 0 || ended) return out;
      await new Promise<void>((resolve) => {
        const done = () => {
          parser.off('readable', done);
          parser.off('end', done);
          parser.off('error', done);
          resolve();
        };
        parser.on('readable', done);
        parser.on('end', done);
        parser.on('error', done);
      });
    }
  };
  const isBlank = (c: CsvChunk) => c.record.length === 1 && c.record[0].trim() === '';

  // Header: the first non-blank line.
  let pending = await read();
  let first: { chunk: CsvChunk; line: number } | undefined;
  while (!first) {
    if (pending.length === 0) throw new SourceFileError(file, null, null, 'file has only blank lines: no header, no rows');
    const candidate = pending.shift()!;
    if (isBlank(candidate.chunk)) counters.blankLines++;
    else first = candidate;
    if (!first && pending.length === 0) pending = await read();
  }
  if (first.chunk.raw.includes(TOO_LONG)) {
    const cut = limiter.cuts.shift();
    throw new SourceFileError(file, first.line, null,
      `the header line is ${cut?.length ?? 'more than'} bytes, longer than MAX_RECORD_BYTES (${limits.maxRecordBytes}): is this the source file?`);
  }
  if (first.chunk.raw.startsWith(WIDE)) {
    const cut = limiter.wide.shift();
    throw new SourceFileError(file, first.line, null,
      `the header line has ${cut?.fieldCount ?? 'more than'} fields, more than ${MAX_PARSED_FIELDS}: is this the source file?`);
  }
  const header: HeaderInfo = { ...checkHeader(source, file, first.chunk.record, first.line, limits.contract), bom };

  const positions = source.columns.map((c) => header.found.indexOf(c.name));
  const width = header.found.length;
  const addedAt = header.added.map((name) => [name, header.found.indexOf(name)] as const);

  async function* batches(): AsyncGenerator<ExtractedRow[]> {
    // The header may have come alone in the first read: then the rows start with the next one.
    for (let input = pending.length > 0 ? pending : await read(); input.length > 0; input = await read()) {
      const out: ExtractedRow[] = [];
      for (const { chunk, line } of input) {
        if (/\r\n?$/.test(chunk.raw)) counters.crlfLines++;
        if (isBlank(chunk)) {
          counters.blankLines++;
          continue;
        }
        const raw = chunk.raw.replace(/\r?\n$|\r$/, '');
        if (raw.includes(TOO_LONG)) {
          // One queued cut per stand-in (several only inside a multi-line quoted record).
          let cut: Cut | undefined;
          for (let i = raw.indexOf(TOO_LONG); i !== -1; i = raw.indexOf(TOO_LONG, i + 1)) {
            const next = limiter.cuts.shift();
            cut = cut ?? next;
          }
          out.push({ kind: 'too_long', line, length: cut?.length ?? 0, limit: limits.maxRecordBytes, excerpt: cut?.excerpt ?? '' });
          continue;
        }
        const wide = raw === WIDE ? limiter.wide.shift() : undefined;
        if (wide) {
          out.push({ kind: 'malformed', line, fieldCount: wide.fieldCount, raw: wide.raw });
          continue;
        }
        if (chunk.record.length !== width) {
          out.push({ kind: 'malformed', line, fieldCount: chunk.record.length, raw });
          continue;
        }
        const record: RawRecord = {};
        let trimmed = 0;
        for (let i = 0; i < positions.length; i++) {
          // A column the header lacks (a missing nullable one, schema drift) reads as empty.
          const v = positions[i] < 0 ? '' : chunk.record[positions[i]];
          const t = v.trim();
          if (t.length !== v.length) trimmed++;
          record[source.columns[i].name] = t === '' ? null : t;
        }
        if (addedAt.length === 0) out.push({ kind: 'record', line, record, raw, trimmed });
        else {
          const added = addedAt.map(([name, at]) => {
            const t = chunk.record[at].trim();
            return [name, t === '' ? null : t] as const;
          });
          out.push({ kind: 'record', line, record, raw, trimmed, added });
        }
      }
      yield out;
    }
  }

  async function* rows(): AsyncGenerator<ExtractedRow> {
    for await (const batch of batches()) yield* batch;
  }

  return { file, sizeBytes: size, header, counters, batches, rows };
}

/** A csv-parse failure as a file error at the line where the failing record starts. */
function parseError(file: string, err: Error, startLine: number, limit: number): SourceFileError {
  const code = (err as Error & { code?: string }).code;
  if (code === 'CSV_QUOTE_NOT_CLOSED') {
    return new SourceFileError(file, startLine, null, 'a quote opens on this line and is never closed');
  }
  if (code === 'CSV_MAX_RECORD_SIZE') {
    return new SourceFileError(file, startLine, null,
      `the record starting on this line runs past ${limit} bytes (MAX_RECORD_BYTES) across several lines: is a quote on it never closed?`);
  }
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EISDIR') return new SourceFileError(file, null, null, 'is a directory, not a file');
  if (e.code === 'EACCES') return new SourceFileError(file, null, null, 'not readable: permission denied');
  return new SourceFileError(file, startLine, null, `cannot parse: ${err.message.replace(/ at line \d+/, '')}`);
}

function hasBom(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(3);
    const n = fs.readSync(fd, b, 0, 3, 0);
    return n === 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
  } finally {
    fs.closeSync(fd);
  }
}
