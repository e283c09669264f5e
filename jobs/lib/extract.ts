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
import { firstLineBreak, isRecordStart, type LineBreak, type ParseState, readLine, RECORD_START } from './record-fields';
import type { RawRecord } from './schema';

/** Characters of an over-long record kept for the quarantine (before redaction). */
const EXCERPT_BYTES = 200;

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

/** Stands in for an over-long line in what csv-parse reads (no delimiter, no quote in it). */
const TOO_LONG = '\u0000record too long\u0000';
/** Stands in for a line of too many fields, likewise. */
const WIDE = '\u0000record too wide\u0000';

/**
 * Most fields csv-parse is given in one line: a line with more is counted by the limiter and
 * never parsed (no catalog header comes near it; a header with more is a file error).
 */
export const MAX_PARSED_FIELDS = 1024;

interface Cut {
  readonly length: number;
  readonly excerpt: string;
}

/** A line of more than MAX_PARSED_FIELDS fields: its count and its text as csv-parse's raw would give it. */
interface WideCut {
  readonly fieldCount: number;
  readonly raw: string;
}

/**
 * Cuts lines longer than `limit` bytes out of the byte stream before csv-parse, which would
 * otherwise hold a whole record in memory (and a 200 MB line many times over): at most `limit`
 * bytes of a line are ever buffered. An over-long line is replaced by TOO_LONG (its newline
 * kept, so line numbers hold) and its length and first bytes are queued in `cuts`.
 *
 * Likewise a line that is a record of more than MAX_PARSED_FIELDS fields is replaced by WIDE and
 * its field count and text queued in `wide`: csv-parse would make a string per field. Only a line
 * of at least MAX_PARSED_FIELDS bytes can have that many, so a normal row costs one comparison.
 * The count is csv-parse's (record-fields.ts): the limiter follows csv-parse's records
 * through the text it passes on, quotes included, which costs a search per line only in a chunk
 * with a quote. Not followed (nothing cut): a file whose first line has a quote or a CR before
 * its end (CR line ends), and a source whose delimiter is more than one byte.
 */
class LineLimiter extends Transform {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** The over-long line being skipped: its length, first bytes, and whether its last byte so far is CR. */
  private over: { length: number; excerpt: Buffer; endsWithCr: boolean } | null = null;
  readonly cuts: Cut[] = [];
  readonly wide: WideCut[] = [];
  /** csv-parse's record delimiter, found at the first line break; 'other': records not followed. */
  private breaks: LineBreak | 'other' | null;
  private state: ParseState = RECORD_START;
  /** Whether the pending line has a quote (only looked for in a quoting source, in a chunk with one). */
  private lineHasQuote = false;
  private readonly delimiterByte: number;

  /** `delimiter`: the source's delimiter; `quoting`: whether csv-parse honours quotes in it. */
  constructor(private readonly limit: number, delimiter: string, private readonly quoting: boolean) {
    super();
    this.delimiterByte = delimiter.charCodeAt(0);
    this.breaks = Buffer.byteLength(delimiter) === 1 ? null : 'other';
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, data?: Buffer) => void): void {
    const out: Buffer[] = [];
    const quotes = this.quoting && chunk.indexOf(QUOTE) !== -1;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl + 1;
      const seg = chunk.subarray(start, nl === -1 ? end : nl);
      if (quotes && !this.lineHasQuote && seg.indexOf(QUOTE) !== -1) this.lineHasQuote = true;
      if (this.over) {
        this.over.length += seg.length;
        if (seg.length > 0) this.over.endsWithCr = seg[seg.length - 1] === CR;
      } else if (this.pendingLen + seg.length > this.limit) {
        const head = Buffer.concat([...this.pending, seg.subarray(0, EXCERPT_BYTES)]).subarray(0, EXCERPT_BYTES);
        const last = seg.length > 0 ? seg : this.pending[this.pending.length - 1];
        this.over = { length: this.pendingLen + seg.length, excerpt: Buffer.from(head), endsWithCr: last[last.length - 1] === CR };
        this.pending = [];
        this.pendingLen = 0;
      } else if (seg.length > 0) {
        this.pending.push(seg);
        this.pendingLen += seg.length;
      }
      if (nl === -1) break;
      this.endLine(out, true);
      start = end;
    }
    cb(null, out.length === 0 ? undefined : Buffer.concat(out));
  }

  override _flush(cb: (e?: Error | null, data?: Buffer) => void): void {
    const out: Buffer[] = [];
    if (this.over || this.pendingLen > 0) this.endLine(out, false);
    cb(null, out.length === 0 ? undefined : Buffer.concat(out));
  }

  private endLine(out: Buffer[], newline: boolean): void {
    // What csv-parse will read of this line: the line, or a stand-in for it.
    let text: Buffer;
    if (this.over) {
      this.cuts.push({ length: this.over.length, excerpt: this.over.excerpt.toString('utf8') });
      // The line's CR is kept: under CRLF line ends, csv-parse ends the record only at CR LF.
      text = Buffer.from(this.over.endsWithCr ? `${TOO_LONG}\r` : TOO_LONG);
      this.over = null;
      if (newline) this.breaks ??= 'lf';
    } else {
      text = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
      if (newline && this.breaks === null) this.breaks = this.lineHasQuote ? 'other' : (firstLineBreak(text) ?? 'other');
    }
    const breaks = this.breaks ?? 'lf'; // null: the file's only line, ended by the end of the file
    if (breaks !== 'other') {
      const long = text.length >= MAX_PARSED_FIELDS;
      if (long || this.lineHasQuote || !isRecordStart(this.state)) {
        const read = readLine(text, this.state, this.delimiterByte, this.quoting, breaks, newline);
        if (long && isRecordStart(this.state) && read.recordEnds && read.delimiters + 1 > MAX_PARSED_FIELDS) {
          const crEnd = text[text.length - 1] === CR;
          const raw = text.toString('utf8');
          // The raw text as extract gives it from csv-parse's: without the line's final CR.
          this.wide.push({ fieldCount: read.delimiters + 1, raw: crEnd ? raw.slice(0, -1) : raw });
          text = Buffer.from(crEnd ? `${WIDE}\r` : WIDE);
        }
        this.state = read.state;
      } else if (breaks === 'crlf' && newline && text[text.length - 1] !== CR) {
        this.state = { inQuote: false, fieldEmpty: false }; // a bare LF under CRLF is text
      }
    }
    out.push(text);
    if (newline) out.push(NEWLINE);
    this.pending = [];
    this.pendingLen = 0;
    this.lineHasQuote = false;
  }
}
const NEWLINE = Buffer.from('\n');
const CR = 13;
const QUOTE = 34;

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
