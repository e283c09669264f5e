/**
 * csv-parse as extract.ts sets it up, for tests that check text read another way against it
 * (record-fields.ts), and random text over the bytes it treats specially.
 */
import { parse } from 'csv-parse/sync';

/** csv-parse's records: field count, raw text (line end trimmed as extract.ts does), blank as extract.ts sees it. */
export function csvParse(text: Buffer, delimiter: string): { fields: number; raw: string; blank: boolean }[] {
  const out = parse(text, {
    delimiter,
    bom: true,
    raw: true,
    relax_column_count: true,
    skip_empty_lines: false,
    quote: delimiter === ',' ? '"' : false,
    relax_quotes: true,
  }) as unknown as { record: string[]; raw: string }[];
  return out.map((r) => ({
    fields: r.record.length,
    raw: r.raw.replace(/\r?\n$|\r$/, ''),
    blank: r.record.length === 1 && r.record[0].trim() === '',
  }));
}

/** A plain header line, then up to 40 random pieces: delimiters, quotes, escaped quotes, CR, LF, NUL, text. */
export function randomCsv(random: () => number, delimiter: string, crlf: boolean): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
  const eol = crlf ? '\r\n' : '\n';
  const alphabet = ['a', 'b', delimiter, delimiter, '"', '"', '""', '\r', '\n', eol, '\0', 'é'];
  const body = Array.from({ length: 1 + Math.floor(random() * 40) }, () => pick(alphabet)).join('');
  return Buffer.from(`h1${delimiter}h2${eol}${body}${pick(['', '\n', eol])}`);
}
