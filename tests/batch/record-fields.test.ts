/**
 * record-fields.ts follows csv-parse's records and field counts line by line (issue 21,
 * item 2: a wide line is counted, not parsed). The reference is csv-parse itself, with the
 * options extract.ts gives it, over random text made of the bytes that matter (delimiters,
 * quotes, CR, LF, NUL): every record's field count must agree, quotes, escaped quotes, quotes
 * inside fields, records spanning lines and CRLF included. (Through extract.ts, with wide
 * lines: tests/batch/wide-line.test.ts.)
 */
import { firstLineBreak, isRecordStart, type ParseState, readLine, RECORD_START } from '../../jobs/lib/record-fields';
import { mulberry32 } from '../../scripts/lib/generator-kit';
import { csvParse, randomCsv } from './csv-reference';

/** Field counts of every record, line by line with readLine (null: the file is not followed). */
function followed(text: Buffer, delimiter: string): number[] | null {
  const lines: Buffer[] = [];
  for (let start = 0; ;) {
    const nl = text.indexOf(10, start);
    lines.push(text.subarray(start, nl === -1 ? text.length : nl));
    if (nl === -1) break;
    start = nl + 1;
  }
  if (lines[lines.length - 1].length === 0) lines.pop(); // the file ends with its last LF
  const lineBreak = lines.length > 1 || text[text.length - 1] === 10 ? firstLineBreak(lines[0]) : 'lf';
  if (lineBreak === null || lines[0].includes(34)) return null;
  const counts: number[] = [];
  let state: ParseState = RECORD_START;
  let delimiters = 0;
  lines.forEach((line, i) => {
    const newline = i < lines.length - 1 || text[text.length - 1] === 10;
    const read = readLine(line, state, delimiter.charCodeAt(0), delimiter === ',', lineBreak, newline);
    delimiters += read.delimiters;
    if (read.recordEnds) {
      counts.push(delimiters + 1);
      delimiters = 0;
    }
    state = read.state;
  });
  // The end of the file ends a record still open (after a bare LF under CRLF).
  if (!isRecordStart(state)) counts.push(delimiters + 1);
  return counts;
}

const random = mulberry32(2104);

test('record boundaries and field counts agree with csv-parse on 8,000 random comma and tab files', () => {
  let compared = 0;
  let multiLine = 0;
  for (let k = 0; k < 8_000; k++) {
    const delimiter = k % 4 === 0 ? '\t' : ',';
    const text = randomCsv(random, delimiter, k % 2 === 1);
    let expected: { fields: number; raw: string }[];
    try {
      expected = csvParse(text, delimiter);
    } catch {
      continue; // a quote never closed: a file error, whatever the counts
    }
    const got = followed(text, delimiter);
    expect(got).not.toBeNull();
    if (JSON.stringify(got) !== JSON.stringify(expected.map((r) => r.fields))) {
      throw new Error(`disagree on ${JSON.stringify(text.toString('latin1'))}: ${JSON.stringify(got)} vs ${JSON.stringify(expected.map((r) => r.fields))}`);
    }
    compared++;
    if (expected.some((r) => r.raw.includes('\n'))) multiLine++;
  }
  // Most files parse, and many have a record spanning lines: the comparison is not vacuous.
  expect(compared).toBeGreaterThan(4000);
  expect(multiLine).toBeGreaterThan(400);
});
