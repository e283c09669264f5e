/**
 * csv-parse's reading of a source file, line by line, in native Buffer searches: where its
 * records start and end and how many fields a record has, so that a line of very many fields
 * can be counted instead of parsed (extract.ts: csv-parse would make a string per field), and
 * a flagged line of the bulk path counted before it is split.
 *
 * For the options extract.ts gives csv-parse: a one-byte delimiter; quote `"` (comma sources)
 * or none (tab); the quote its own escape; relax_quotes (a quote inside a field is text, and so
 * is a closing quote followed by anything but a delimiter, the record delimiter, NUL or the end);
 * no trimming, no comments; the record delimiter found at the file's first line break.
 */

/** The record delimiter csv-parse will use: LF or CRLF (a file of CR line ends is not read here). */
export type LineBreak = 'lf' | 'crlf';

/** Where csv-parse is at a line's start: inside a quoted field, and whether the field is empty so far. */
export interface ParseState {
  readonly inQuote: boolean;
  readonly fieldEmpty: boolean;
}

export const RECORD_START: ParseState = { inQuote: false, fieldEmpty: true };

export const isRecordStart = (s: ParseState): boolean => !s.inQuote && s.fieldEmpty;

const CR = 13;
const LF = 10;
const NUL = 0;
const QUOTE = 34;
const END = -1;

/** Occurrences of `byte` in buf[from, to). */
export function countByte(buf: Buffer, byte: number, from = 0, to = buf.length): number {
  let n = 0;
  for (let i = buf.indexOf(byte, from); i !== -1 && i < to; i = buf.indexOf(byte, i + 1)) n++;
  return n;
}

/** Fields of a line split on a delimiter, without quoting (the bulk path's flagged lines). */
export function fieldCount(text: string, delimiter: string): number {
  let n = 1;
  for (let i = text.indexOf(delimiter); i !== -1; i = text.indexOf(delimiter, i + delimiter.length)) n++;
  return n;
}

/**
 * The record delimiter csv-parse finds at the first CR or LF of a file whose first line (these
 * bytes, an LF after them) has no quote: CRLF when the first CR is the line's last byte, CR
 * (`null`: not read here) when a CR comes earlier, else LF.
 */
export function firstLineBreak(line: Buffer): LineBreak | null {
  const cr = line.indexOf(CR);
  if (cr === -1) return 'lf';
  return cr === line.length - 1 ? 'crlf' : null;
}

export interface LineRead {
  readonly state: ParseState;
  /** Whether a record ends with this line (at its line break, or at the end of the file). */
  readonly recordEnds: boolean;
  /** Delimiters outside quotes in the line: a record's fields are its delimiters plus one. */
  readonly delimiters: number;
}

/**
 * csv-parse's reading of one line: `line` is its bytes without the LF; `newline` whether an LF
 * follows (else the file ends); `state` where csv-parse is at the line's start.
 */
export function readLine(line: Buffer, state: ParseState, delimiter: number, quoting: boolean, lineBreak: LineBreak, newline: boolean): LineRead {
  const n = line.length;
  // Under CRLF the line's last CR, outside quotes, is half of the record delimiter.
  const crEnd = lineBreak === 'crlf' && newline && n > 0 && line[n - 1] === CR;
  const after = (k: number) => (k < n ? line[k] : newline ? LF : END);
  const isRecordDelimiter = (k: number) => (lineBreak === 'lf' ? after(k) === LF : crEnd && k === n - 1);
  let { inQuote, fieldEmpty } = state;
  let delimiters = 0;
  let i = 0;
  while (i < n) {
    const q = quoting ? line.indexOf(QUOTE, i) : -1;
    if (inQuote) {
      if ((q === -1 ? n : q) > i) fieldEmpty = false; // text of the quoted field
      if (q === -1) {
        break;
      }
      const next = after(q + 1);
      if (next === QUOTE) {
        fieldEmpty = false; // an escaped quote
        i = q + 2;
        continue;
      }
      inQuote = false;
      // A closing quote; else (relax_quotes) a quote that is text, and the field is no longer quoted.
      if (!(next === END || next === NUL || next === delimiter || isRecordDelimiter(q + 1))) fieldEmpty = false;
      i = q + 1;
      continue;
    }
    const end = q === -1 ? n : q;
    if (end > i) {
      delimiters += countByte(line, delimiter, i, end);
      fieldEmpty = line[end - 1] === delimiter;
    }
    if (q === -1) break;
    // A quote opens a quoted field at the field's start; elsewhere it is text.
    if (fieldEmpty) inQuote = true;
    i = q + 1;
  }
  const recordEnds = !inQuote && (!newline || lineBreak === 'lf' || crEnd);
  // An LF that does not end the record is text of the field (inside quotes, or a bare LF under CRLF).
  return { state: recordEnds ? RECORD_START : { inQuote, fieldEmpty: false }, recordEnds, delimiters };
}
