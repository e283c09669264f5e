/**
 * Issue 21, item 2: a line of very many fields (within MAX_RECORD_BYTES) costs memory bounded
 * whatever its field count, with the same answer as before: a `field_count` quarantine row with
 * its line, count and text. The exact path's reader must never ask csv-parse to make a string
 * per field of such a line (a counted hook on csv-parse's records), and a whole job on either
 * staging path peaks within a stated bound over the same job on a normal file (its own peak RSS,
 * in a child process).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { openSource, type ExtractedRow } from '../../jobs/lib/extract';
import { MAX_PARSED_FIELDS } from '../../jobs/lib/line-limiter';
import { mulberry32 } from '../../scripts/lib/generator-kit';
import { ROOT, tempDir } from '../helpers/env';
import { csvParse, randomCsv } from './csv-reference';
import { header, quarantine, row, writeSources } from './faulty-files';

/** The most fields csv-parse produced for one record, over every parser made in this file. */
let widest = 0;
jest.mock('csv-parse', () => {
  const actual = jest.requireActual('csv-parse');
  // With `raw: true` (extract.ts), a record comes as { record, raw }.
  type Parsed = string[] | { record: string[] };
  type OnRecord = (record: Parsed, context: unknown) => unknown;
  return {
    ...actual,
    parse: (options: { on_record?: OnRecord }) => actual.parse({
      ...options,
      on_record: (record: Parsed, context: unknown) => {
        widest = Math.max(widest, (Array.isArray(record) ? record : record.record).length);
        return options.on_record ? options.on_record(record, context) : record;
      },
    }),
  };
});

const source = (name: string) => catalog.sources.find((s) => s.name === name)!;

/** `n` fields of one digit each, joined by `delimiter`. */
const wide = (n: number, delimiter = '\t') => Array.from({ length: n }, (_, i) => String(i % 10)).join(delimiter);

async function readAll(name: string, body: string | Buffer): Promise<{ rows: ExtractedRow[]; crlfLines: number }> {
  const dir = tempDir('wide');
  fs.writeFileSync(path.join(dir, source(name).file), body);
  widest = 0;
  const reader = await openSource(source(name), dir);
  const rows: ExtractedRow[] = [];
  for await (const r of reader.rows()) rows.push(r);
  return { rows, crlfLines: reader.counters.crlfLines };
}

const brief = (r: ExtractedRow) =>
  r.kind === 'malformed' ? { kind: r.kind, line: r.line, fieldCount: r.fieldCount, raw: r.raw } : { kind: r.kind, line: r.line };

describe('the exact reader never parses a wide line field by field', () => {
  const vendorRows = [row('vendor', 1, 'Acme', '555-0101', 'a@acme.io'), row('vendor', 2, 'Bolt', '555-0102', 'b@bolt.io')];

  test('a line of 400,000 fields: its count and text, csv-parse given no record wider than the header', async () => {
    const line = wide(400_000);
    const { rows } = await readAll('vendor', [header('vendor'), vendorRows[0], line, vendorRows[1]].join('\n') + '\n');
    expect(rows.map(brief)).toEqual([
      { kind: 'record', line: 2 },
      { kind: 'malformed', line: 3, fieldCount: 400_000, raw: line },
      { kind: 'record', line: 4 },
    ]);
    expect(widest).toBe(4);
  });

  test('at the limit: a line of MAX_PARSED_FIELDS fields is parsed, one more is counted', async () => {
    const { rows } = await readAll('vendor', [header('vendor'), wide(MAX_PARSED_FIELDS), wide(MAX_PARSED_FIELDS + 1)].join('\n') + '\n');
    expect(rows.map((r) => (r.kind === 'malformed' ? r.fieldCount : r.kind))).toEqual([MAX_PARSED_FIELDS, MAX_PARSED_FIELDS + 1]);
    expect(widest).toBe(MAX_PARSED_FIELDS);
  });

  test('CRLF line ends, a CR ending one line of an LF file, and a last line without a newline', async () => {
    const line = wide(5000);
    const crlf = await readAll('vendor', [header('vendor'), line, vendorRows[0], line].join('\r\n') + '\r\n');
    expect(crlf.rows.map(brief)).toEqual([
      { kind: 'malformed', line: 2, fieldCount: 5000, raw: line },
      { kind: 'record', line: 3 },
      { kind: 'malformed', line: 4, fieldCount: 5000, raw: line },
    ]);
    expect(crlf.crlfLines).toBe(3); // the data lines, as counted for every CRLF file
    expect(widest).toBe(4);
    const lf = await readAll('vendor', `${header('vendor')}\n${line}\r\n${vendorRows[0]}\n${line}`);
    expect(lf.rows.map(brief)).toEqual([
      { kind: 'malformed', line: 2, fieldCount: 5000, raw: line },
      { kind: 'record', line: 3 },
      { kind: 'malformed', line: 4, fieldCount: 5000, raw: line },
    ]);
    expect(lf.crlfLines).toBe(1);
    expect(widest).toBe(4);
  });

  test('invalid UTF-8 and multi-byte characters in a wide line are decoded as csv-parse decodes them', async () => {
    const line = Buffer.concat([Buffer.from(`é\t${wide(3000)}\t`), Buffer.from([0xff, 0xc3]), Buffer.from('\t€')]);
    const { rows } = await readAll('vendor', Buffer.concat([Buffer.from(`${header('vendor')}\n`), line, Buffer.from('\n')]));
    expect(rows.map(brief)).toEqual([{ kind: 'malformed', line: 2, fieldCount: 3003, raw: line.toString('utf8') }]);
    expect(widest).toBe(4);
  });

  test('the comma source: quotes are honoured in the count, and a wide line inside a quoted field is text', async () => {
    const h = header('orders_paid_creditcard');
    const unquoted = await readAll('orders_paid_creditcard', `${h}\n${wide(3000, ',')}\n4111111111111111,1000\n`);
    expect(unquoted.rows.map(brief)).toEqual([
      { kind: 'malformed', line: 2, fieldCount: 3000, raw: wide(3000, ',') },
      { kind: 'record', line: 3 },
    ]);
    expect(widest).toBe(2);
    // A quoted field holding the delimiter and an escaped quote is one field; a quote inside a
    // field is text; a record spanning two lines comes before.
    const quotedLine = `"a,""b",x"y,${wide(3000, ',')}`;
    const quoted = await readAll('orders_paid_creditcard', `${h}\n"4111\n111111111111",1000\n${quotedLine}\n`);
    expect(quoted.rows.map(brief)).toEqual([
      { kind: 'record', line: 2 },
      { kind: 'malformed', line: 4, fieldCount: 3002, raw: quotedLine },
    ]);
    expect(widest).toBe(2);
    // Lines inside a quoted field are not records of their own: csv-parse reads them (one field).
    const inside = `"${wide(2000, ',')}\n${wide(2000, ',')}",1000`;
    const spanning = await readAll('orders_paid_creditcard', `${h}\n${inside}\n`);
    expect(spanning.rows.map(brief)).toEqual([{ kind: 'record', line: 2 }]);
  });

  /** Wide lines among random quoted text: every row is csv-parse's, and most wide lines are counted, not parsed. */
  test('random comma files with wide lines: the rows csv-parse gives unguarded', async () => {
    const random = mulberry32(2121);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const wideLine = (n: number) => Array.from({ length: n }, () => pick(['1', '"q"', '"a,b"', '""', 'x"y', ''])).join(',');
    let counted = 0;
    for (let k = 0; k < 40; k++) {
      const eol = k % 2 === 1 ? '\r\n' : '\n';
      const lines = [header('orders_paid_creditcard')];
      for (let j = 0; j < 8; j++) {
        lines.push(random() < 0.4 ? wideLine(1100 + Math.floor(random() * 3000)) : randomCsv(random, ',', eol === '\r\n').toString('utf8').split(/\r?\n/)[1] ?? '');
      }
      const text = Buffer.from(lines.join(eol) + eol);
      let expected: ReturnType<typeof csvParse>;
      try {
        expected = csvParse(text, ',').slice(1);
      } catch {
        continue; // a quote never closed: a file error
      }
      const { rows } = await readAll('orders_paid_creditcard', text);
      const got = rows.map((r) => (r.kind === 'malformed' ? { fields: r.fieldCount, raw: r.raw } : { fields: 2, raw: r.kind === 'record' ? r.raw : '' }));
      expect(got).toEqual(expected.filter((r) => !r.blank).map(({ fields, raw }) => ({ fields, raw })));
      if (widest <= MAX_PARSED_FIELDS && expected.some((r) => r.fields > MAX_PARSED_FIELDS)) counted++;
    }
    expect(counted).toBeGreaterThan(10);
  });

  test('a header of more than MAX_PARSED_FIELDS fields is a file error', async () => {
    await expect(readAll('vendor', `${wide(2000)}\n${row('vendor', 1, 'A', '1', 'a@b.c')}\n`))
      .rejects.toThrow(/vendor\.txt:1: the header line has 2000 fields, more than 1024: is this the source file\?/);
  });
});

/**
 * Peak RSS of a job over the same job on a normal file. The bound is docs/batch.md's for a line
 * of any length: 64 MB (before this fix a line of 400,000 fields cost ~300 MB on the bulk path
 * and ~180 MB on the exact one).
 */
describe('a job fed a line of 400,000 fields peaks within 64 MB of a normal file', () => {
  const BOUND_MB = 64;

  function peakRssMb(src: string, batchPath: string): { mb: number; status: number | null; state: string } {
    const state = tempDir('wide-state');
    const rssFile = path.join(state, 'maxrss');
    const hook = path.join(state, 'rss-hook.js');
    fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
    const r = spawnSync(process.execPath, ['--require', hook, path.join(ROOT, 'dist/jobs/dim_vendors.js'), '--source-dir', src], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ETL_STATE_DIR: state, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', BATCH_PATH: batchPath },
    });
    if (r.status !== 0) throw new Error(`dim_vendors exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
    return { mb: Number(fs.readFileSync(rssFile, 'utf8')) / 1024, status: r.status, state };
  }

  test.each(['bulk', 'exact'])('%s path', async (batchPath) => {
    const normal = writeSources();
    const withWide = writeSources({ vendor: [wide(400_000)] });
    const base = peakRssMb(normal, batchPath);
    const run = peakRssMb(withWide, batchPath);
    const [q] = await quarantine(path.join(run.state, 'warehouse.duckdb'), 'vendor');
    // Line 4: after the header and the two clean rows; the answer the exact path always gave.
    expect(q).toMatchObject({ line: 4, code: 'field_count', column: null, reason: 'expected 4 fields separated by tab, found 400000' });
    expect(q.raw).toBe(wide(400_000));
    expect(run.mb - base.mb).toBeLessThan(BOUND_MB);
  });
});
