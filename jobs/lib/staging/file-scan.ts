/**
 * Passes over a source file in native Buffer searches (no per-byte JavaScript), for the bulk
 * strategy: the gate before DuckDB reads the file (what would make DuckDB's reading differ from
 * csv-parse's, and lines over MAX_RECORD_BYTES), the line count while it reads (lines of invalid
 * UTF-8, which DuckDB rejects), and re-reading given lines.
 */
import fs from 'node:fs';
import { isUtf8 } from 'node:buffer';
import type { SourceTable } from '../catalog-types';

const CHUNK = 1 << 20;

const FFFD = Buffer.from('\uFFFD', 'utf8');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export type Prescan =
  | {
      readonly ok: true;
      readonly lines: number;
      /** Lines with invalid UTF-8 (DuckDB must reject exactly these). */
      readonly invalid: readonly number[];
    }
  | { readonly ok: false; readonly why: string };

/** Past this many lines of invalid UTF-8 a file is not plain: the exact path takes it. */
export const MAX_SKIPPED = 100_000;

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
export function firstLine(file: string, maxBytes: number): string {
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
 * Second pass, while DuckDB reads the file: counts the lines and finds those of invalid UTF-8,
 * which DuckDB rejects, so that its row n can be mapped to the file's line.
 */
export function countLines(file: string): Prescan {
  let lineNo = 0;
  const invalid: number[] = [];
  for (const lines of wholeLineChunks(file)) {
    // Line by line only in a chunk that has some: the exact path decodes them as U+FFFD.
    const valid = isUtf8(lines);
    for (let start = 0; start < lines.length; ) {
      const nl = lines.indexOf(10, start);
      const end = nl === -1 ? lines.length : nl;
      lineNo++;
      if (!valid && !isUtf8(lines.subarray(start, end))) {
        if (lineNo === 1) return { ok: false, why: 'invalid UTF-8 in the header' };
        if (invalid.push(lineNo) > MAX_SKIPPED) return { ok: false, why: 'too many lines of invalid UTF-8' };
      }
      start = end + 1;
    }
  }
  return lineNo === 0 ? { ok: false, why: 'no header' } : { ok: true, lines: lineNo, invalid };
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
