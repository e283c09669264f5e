/**
 * The bulk path's passes over a file in native Buffer searches: the gate (before DuckDB reads)
 * and the line count (while it reads), on files whose lines cross the 1 MiB chunks the passes
 * read in. Expected values come from splitting the same text on '\n' in the test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { countLines, gate, readLines } from '../../jobs/lib/staging/file-scan';
import { tempDir } from '../helpers/env';

const vendor = catalog.sources.find((s) => s.name === 'vendor')!;
const MiB = 1 << 20;

function write(name: string, text: string): string {
  const file = path.join(tempDir('prescan'), name);
  fs.writeFileSync(file, text);
  return file;
}

/** A seeded text of ~3 MiB: lines of 0..3000 bytes (some blank), so many cross a chunk's end. */
function lines(seed: number): string[] {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const out = ['vendor_id\tvendor_name\tvendor_phone\tvendor_email'];
  for (let size = 0; size < 3 * MiB; ) {
    // Its number, then filler: a line cut or shifted at a chunk's end cannot look right.
    const line = rnd() < 0.05 ? '' : `${out.length}:`.padEnd(Math.floor(rnd() * 3000), String.fromCharCode(97 + (out.length % 26)));
    out.push(line);
    size += line.length + 1;
  }
  return out;
}

describe('countLines and readLines', () => {
  test.each([[true], [false]])('count every line, blank ones included (final newline: %s)', (finalNewline) => {
    const all = lines(7);
    const file = write('count.txt', all.join('\n') + (finalNewline ? '\n' : ''));
    expect(all.filter((l) => l === '').length).toBeGreaterThan(10);
    expect(countLines(file)).toEqual({ ok: true, lines: all.length, invalid: [] });
    // Every line, so that those crossing a chunk's end are among them.
    const text = readLines(file, new Set(all.map((_, i) => i + 1)));
    expect([...text.keys()]).toEqual(all.map((_, i) => i + 1));
    expect([...text.values()]).toEqual(all);
    expect(readLines(file, new Set([3]))).toEqual(new Map([[3, all[2]]]));
  });

  test('lines of invalid UTF-8 are found by number', () => {
    const all = lines(11);
    const file = path.join(tempDir('prescan'), 'utf8.txt');
    const parts = all.map((l, i) => (i === 700 || i === 1500 ? Buffer.concat([Buffer.from(l), Buffer.from([0xc3, 0x28])]) : Buffer.from(l)));
    fs.writeFileSync(file, Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')])));
    const scan = countLines(file);
    expect(scan.ok && scan.invalid).toEqual([701, 1501]);
  });
});

describe('gate', () => {
  const max = 4096;
  const header = 'vendor_id\tvendor_name\tvendor_phone\tvendor_email';
  const row = (n: number) => `${n}\t${'n'.repeat(Math.max(0, n - String(n).length - 3))}\t1\te`;

  test('a line of exactly the limit passes, one byte more does not, wherever it is', () => {
    const body = Array.from({ length: 6000 }, (_, i) => row(10 + (i % 500)));
    for (const at of [1, 3000, 5999]) {
      const exact = [...body];
      exact[at] = 'x'.repeat(max);
      expect(gate(write('ok.txt', [header, ...exact].join('\n') + '\n'), vendor, max)).toBeNull();
      const over = [...body];
      over[at] = 'x'.repeat(max + 1);
      expect(gate(write('over.txt', [header, ...over].join('\n') + '\n'), vendor, max)).toBe('a line longer than MAX_RECORD_BYTES');
      // The last line, without a newline after it.
      expect(gate(write('last.txt', [header, ...body, 'x'.repeat(max + 1)].join('\n')), vendor, max)).toBe('a line longer than MAX_RECORD_BYTES');
      expect(gate(write('last-ok.txt', [header, ...body, 'x'.repeat(max)].join('\n')), vendor, max)).toBeNull();
    }
  });

  test('a line longer than a whole chunk is found without holding it', () => {
    expect(gate(write('huge.txt', `${header}\n${'y'.repeat(3 * MiB)}\n1\ta\t1\te\n`), vendor, MiB)).toBe('a line longer than MAX_RECORD_BYTES');
    expect(gate(write('big-ok.txt', `${header}\n${'y'.repeat(MiB)}\n1\ta\t1\te\n`), vendor, MiB)).toBeNull();
  });

  test.each([
    ['\uFEFF' + header + '\n1\ta\t1\te\n', 'byte-order mark'],
    [header + '\r\n1\ta\t1\te\r\n', 'CR line ends'],
    [header + '\n1\ta\u0000\t1\te\n', 'a NUL byte'],
    [header + '\n1\ta\uFFFD\t1\te\n', 'U+FFFD characters'],
  ])('what DuckDB would read otherwise than csv-parse sends the file to the exact path (%#)', (text, why) => {
    expect(gate(write('odd.txt', text), vendor, max)).toBe(why);
  });
});
