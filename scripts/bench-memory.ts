#!/usr/bin/env node
/**
 * `npm run bench:memory`: peak memory of a batch job fed one enormous record, against the same
 * job on a normal file. Generates (streaming, never in memory) a source folder whose vendor.txt
 * holds a 200 MB line - without any delimiter, or as one 200 MB field - or a line of 100,000
 * fields (within MAX_RECORD_BYTES, so the bulk path reads it), and runs the built job in a child
 * process per case and staging strategy (BATCH_PATH bulk, then exact); the child reports its own
 * peak RSS (process.resourceUsage) at exit. The record limit (MAX_RECORD_BYTES, docs/batch.md)
 * cuts a long line before csv-parse, a line of very many fields is counted rather than parsed,
 * and the bulk path never splits a line of the wrong field count, so the peak should depend
 * neither on the line's length nor on its field count. Prints figures and whether each case
 * stayed under the stated bound; asserts no time.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import { main, parseCommandLine } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { UsageError } from '../jobs/lib/errors';

const HELP = `Usage: npm run bench:memory -- [--mb N] [--fields F] [--wide-only] [--paths P] [--bound-mb B] [--keep]

Writes a source folder with one N MB line (default 200), and one with a line of F fields
(default 100000, about 2 bytes each: under MAX_RECORD_BYTES), into a temp folder, runs the
dim_vendors job on each and on a normal folder, each in its own process, under each staging
strategy of P (default bulk,exact: BATCH_PATH), and prints each run's peak RSS and time. A case
passes when its peak exceeds the normal run's under the same strategy by less than B MB
(default 64, the bound stated in docs/batch.md). --wide-only runs the normal and the F-field
cases only. --keep leaves the generated folders in place.`;

const ROOT = path.resolve(__dirname, '..', '..');

/** Writes the catalog's vendor header, two good rows, then `line(writeChunk)`, then a good row. */
function writeVendors(dir: string, body: ((write: (s: string) => void) => void) | null): void {
  fs.mkdirSync(dir, { recursive: true });
  const vendor = catalog.sources.find((s) => s.name === 'vendor')!;
  const fd = fs.openSync(path.join(dir, vendor.file), 'w');
  const write = (s: string) => fs.writeSync(fd, s);
  write(vendor.columns.map((c) => c.name).join('\t') + '\n');
  write('1\tAcme\t555-0101\ta@acme.io\n2\tBolt\t555-0102\tb@bolt.io\n');
  if (body) {
    body(write);
    write('\n');
  }
  write('9\tLast\t555-0109\tl@last.io\n');
  fs.closeSync(fd);
}

/** `mb` megabytes of `ch`, written 1 MB at a time. */
const filler = (mb: number, ch: string) => (write: (s: string) => void) => {
  const chunk = ch.repeat(1024 * 1024);
  for (let i = 0; i < mb; i++) write(chunk);
};

interface Measure {
  readonly name: string;
  readonly status: number | null;
  readonly peakRssMb: number;
  readonly seconds: number;
}

function measure(name: string, sourceDir: string, stateDir: string, batchPath: string): Measure {
  const rssFile = path.join(stateDir, 'maxrss');
  fs.mkdirSync(stateDir, { recursive: true });
  const hook = path.join(stateDir, 'rss-hook.js');
  // Preloaded into the child: its own peak RSS (KiB on Linux) written as it exits.
  fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--require', hook, path.join(ROOT, 'dist/jobs/dim_vendors.js'), '--source-dir', sourceDir], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, ETL_STATE_DIR: stateDir, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', BATCH_PATH: batchPath },
    maxBuffer: 1 << 24,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) process.stderr.write(`${name}: job exited ${r.status}: ${r.stderr.slice(0, 2000)}\n`);
  const kib = Number(fs.readFileSync(rssFile, 'utf8'));
  return { name, status: r.status, peakRssMb: kib / 1024, seconds };
}

main(async () => {
  const values = parseCommandLine(process.argv.slice(2), {
    mb: { type: 'string' },
    fields: { type: 'string' },
    'wide-only': { type: 'boolean' },
    paths: { type: 'string' },
    'bound-mb': { type: 'string' },
    keep: { type: 'boolean' },
  }, HELP);
  if (values === 'help') return 0;
  const mb = Number(values.mb ?? 200);
  const bound = Number(values['bound-mb'] ?? 64);
  if (!Number.isInteger(mb) || mb < 1) throw new UsageError(`--mb must be a whole number of megabytes, got '${values.mb}'`);
  const fields = Number(values.fields ?? 100_000);
  if (!Number.isInteger(fields) || fields < 5) throw new UsageError(`--fields must be a whole number above 4, got '${values.fields}'`);
  if (!(bound > 0)) throw new UsageError(`--bound-mb must be a positive number, got '${values['bound-mb']}'`);
  const paths = (values.paths ?? 'bulk,exact').split(',');
  if (paths.length === 0 || paths.some((p) => p !== 'bulk' && p !== 'exact')) {
    throw new UsageError(`--paths must list bulk and/or exact, comma-separated, got '${values.paths}'`);
  }

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-memory-'));
  const wide: [string, (write: (s: string) => void) => void] = [`line of ${fields} fields`, (write) => {
    // Digits and tabs, 2 bytes a field: the line is far under the record limit.
    const field = '7\t';
    for (let left = fields - 1; left > 0; left -= 10_000) write(field.repeat(Math.min(left, 10_000)));
    write('7');
  }];
  const cases: [string, ((write: (s: string) => void) => void) | null][] = values['wide-only'] ? [['normal file', null], wide] : [
    ['normal file', null],
    [`${mb} MB line, no delimiter`, filler(mb, 'x')],
    [`${mb} MB field`, (write) => {
      write('3\t');
      filler(mb, 'y')(write);
      write('\t555-0103\tc@x.io');
    }],
    wide,
  ];
  // results[case][path]
  const results: Measure[][] = [];
  try {
    for (const [i, [name, body]] of cases.entries()) {
      const src = path.join(work, `src-${i}`);
      writeVendors(src, body);
      results.push(paths.map((p) => measure(name, src, path.join(work, `state-${i}-${p}`), p)));
      fs.rmSync(src, { recursive: true, force: true });
    }
  } finally {
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
  }
  const out = [`dim_vendors, one process per case and staging strategy (record limit: MAX_RECORD_BYTES=${loadConfig().maxRecordBytes})`,
    `bound: a case peaks under ${bound} MB more RSS than the normal file under the same strategy, whatever its line's length or field count`];
  out.push(`${'case'.padEnd(30)}${paths.map((p) => `${`${p}: peak MB`.padStart(17)}${'over'.padStart(6)}${'s'.padStart(6)}`).join('')}  bound`);
  let ok = true;
  for (const [c, row] of results.entries()) {
    const cells = row.map((m, j) => {
      const over = m.peakRssMb - results[0][j].peakRssMb;
      const pass = m.status === 0 && over < bound;
      if (c > 0) ok &&= pass;
      return { text: `${(m.status === 0 ? m.peakRssMb.toFixed(0) : `exit ${m.status}`).padStart(17)}${(c === 0 ? '-' : over.toFixed(0)).padStart(6)}${m.seconds.toFixed(1).padStart(6)}`, pass };
    });
    const verdict = c === 0 ? '-' : cells.every((x) => x.pass) ? `ok (< ${bound} MB over)` : 'EXCEEDED';
    out.push(`${row[0].name.padEnd(30)}${cells.map((x) => x.text).join('')}  ${verdict}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return ok ? 0 : 1;
});
