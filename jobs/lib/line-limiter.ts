/**
 * The guard between a source file's bytes and csv-parse (extract.ts): lines too long or too wide
 * to parse are cut out of the byte stream and replaced by stand-ins, so memory never grows with
 * one line's length or field count; what was cut is queued for extract to report.
 */
import { Transform } from 'node:stream';
import { firstLineBreak, isRecordStart, type LineBreak, type ParseState, readLine, RECORD_START } from './record-fields';

/** Characters of an over-long record kept for the quarantine (before redaction). */
const EXCERPT_BYTES = 200;

/** Stands in for an over-long line in what csv-parse reads (no delimiter, no quote in it). */
export const TOO_LONG = '\u0000record too long\u0000';
/** Stands in for a line of too many fields, likewise. */
export const WIDE = '\u0000record too wide\u0000';

/**
 * Most fields csv-parse is given in one line: a line with more is counted by the limiter and
 * never parsed (no catalog header comes near it; a header with more is a file error).
 */
export const MAX_PARSED_FIELDS = 1024;

export interface Cut {
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
export class LineLimiter extends Transform {
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
