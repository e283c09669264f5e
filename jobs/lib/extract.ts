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
 */
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { parse } from 'csv-parse';
import type { SourceTable } from './catalog-types';
import { SourceFileError } from './errors';
import type { RawRecord } from './schema';

export interface HeaderInfo {
  readonly found: readonly string[];
  readonly padded: readonly string[];
  readonly bom: boolean;
}

export type ExtractedRow =
  | { readonly kind: 'record'; readonly line: number; readonly record: RawRecord; readonly raw: string; readonly trimmed: number }
  | { readonly kind: 'malformed'; readonly line: number; readonly fieldCount: number; readonly raw: string };

export interface ExtractCounters {
  blankLines: number;
  crlfLines: number;
  bytesRead: number;
}

const DELIMITER_NAMES: Record<string, string> = { '\t': 'tab', ',': 'comma' };
export const delimiterName = (d: string): string => DELIMITER_NAMES[d] ?? JSON.stringify(d);

export interface SourceReader {
  readonly file: string;
  readonly sizeBytes: number;
  readonly header: HeaderInfo;
  readonly counters: ExtractCounters;
  rows(): AsyncGenerator<ExtractedRow>;
}

interface CsvChunk {
  record: string[];
  info: { lines: number };
  raw: string;
}

/** Opens a source file, reads and checks its header; `rows()` then streams the data rows. */
export async function openSource(source: SourceTable, dir: string): Promise<SourceReader> {
  const file = path.join(dir, source.file);
  let size: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch {
    throw new SourceFileError(file, null, null, `source file not found (expected ${source.file} in ${dir})`);
  }
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
    info: true,
    raw: true,
    relax_column_count: true,
    skip_empty_lines: false,
    // Tab-separated exports carry inch marks and stray quotes in free text: no quoting there.
    quote: source.delimiter === ',' ? '"' : false,
    relax_quotes: true,
  });
  const input = fs.createReadStream(file);
  input.on('error', (e) => parser.destroy(e));
  input.pipe(counting).pipe(parser);
  const it = parser[Symbol.asyncIterator]() as AsyncIterator<CsvChunk>;

  const next = async (): Promise<CsvChunk | null> => {
    try {
      const r = await it.next();
      return r.done ? null : r.value;
    } catch (e) {
      const err = e as Error & { lines?: number };
      throw new SourceFileError(file, err.lines ?? null, null, `cannot parse: ${err.message}`);
    }
  };
  const isBlank = (c: CsvChunk) => c.record.length === 1 && c.record[0].trim() === '';

  // Header: the first non-blank line.
  let first = await next();
  while (first && isBlank(first)) {
    counters.blankLines++;
    first = await next();
  }
  if (!first) throw new SourceFileError(file, null, null, 'file has only blank lines: no header, no rows');
  const header: HeaderInfo = { ...checkHeader(source, file, first), bom };

  const positions = source.columns.map((c) => header.found.indexOf(c.name));
  const width = header.found.length;

  async function* rows(): AsyncGenerator<ExtractedRow> {
    let chunk: CsvChunk | null;
    while ((chunk = await next())) {
      const line = chunk.info.lines;
      if (chunk.raw.endsWith('\r\n')) counters.crlfLines++;
      if (isBlank(chunk)) {
        counters.blankLines++;
        continue;
      }
      const raw = chunk.raw.replace(/\r?\n$/, '');
      if (chunk.record.length !== width) {
        yield { kind: 'malformed', line, fieldCount: chunk.record.length, raw };
        continue;
      }
      const record: RawRecord = {};
      let trimmed = 0;
      for (let i = 0; i < positions.length; i++) {
        const v = chunk.record[positions[i]];
        const t = v.trim();
        if (t.length !== v.length) trimmed++;
        record[source.columns[i].name] = t === '' ? null : t;
      }
      yield { kind: 'record', line, record, raw, trimmed };
    }
  }

  return { file, sizeBytes: size, header, counters, rows };
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

function checkHeader(source: SourceTable, file: string, chunk: CsvChunk): Omit<HeaderInfo, 'bom'> {
  const line = chunk.info.lines;
  const found = chunk.record.map((h) => h.trim());
  const padded = chunk.record.filter((h) => h.trim() !== h).map((h) => h.trim());
  const expected = source.columns.map((c) => c.name);
  const dupes = found.filter((h, i) => found.indexOf(h) !== i);
  if (dupes.length > 0) throw new SourceFileError(file, line, dupes[0], 'column appears twice in the header');
  const missing = expected.filter((c) => !found.includes(c));
  const unexpected = found.filter((c) => !expected.includes(c));
  if (missing.length > 0) {
    const other = source.delimiter === '\t' ? ',' : '\t';
    const hint =
      found.length === 1 && found[0].includes(other)
        ? ` (the header has one field: the file looks ${delimiterName(other)}-separated, but the catalog says ${delimiterName(source.delimiter)})`
        : ` (header: ${found.join(', ')})`;
    throw new SourceFileError(file, line, missing[0], `missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}${hint}`);
  }
  if (unexpected.length > 0) {
    throw new SourceFileError(
      file,
      line,
      unexpected[0],
      `unexpected column${unexpected.length > 1 ? 's' : ''} ${unexpected.map((m) => `'${m}'`).join(', ')} not in the catalog (expected: ${expected.join(', ')})`,
    );
  }
  return { found, padded };
}
