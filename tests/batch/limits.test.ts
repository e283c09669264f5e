/**
 * Issue 11: bounded records, error positions, printable errors, scratch hygiene.
 * (Peak memory with a 200 MB line is measured by `npm run bench:memory`, not here.)
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, spawnJobPausedInLoad, tempDir } from '../helpers/env';
import { accounting, everythingWritten, header, leaks, quarantine, row, runJob, writeSources } from './faulty-files';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

describe('records longer than MAX_RECORD_BYTES', () => {
  test('a 3 MB line is quarantined with its line number and an excerpt; the job succeeds', async () => {
    const long = row('vendor', 3, 'V'.repeat(3 * 1024 * 1024), '555', 'v@x.io');
    const run = runJob('dim_vendors', writeSources({ vendor: [long, row('vendor', 4, 'Dot', '555-0104', 'd@dot.io')] }));
    expect(run.status).toBe(0);
    expect(accounting(run, 'dim_vendors').vendor).toEqual([4, 3, 1]);
    const [q] = await quarantine(run.db);
    expect(q).toMatchObject({ line: 4, code: 'record_too_long', column: null });
    expect(q.reason).toContain(`${Buffer.byteLength(long)} bytes`);
    expect(q.reason).toContain('1048576');
    expect(q.raw.length).toBeLessThanOrEqual(200);
    expect(q.raw.startsWith('3\tVVV')).toBe(true);
  });

  test('the limit is configurable, line numbers after a cut line hold, and the excerpt is PII-safe', async () => {
    const card = '4929 1234 5678 9012';
    const src = writeSources({
      orders_paid_creditcard: [
        `"${card}",1003`, //                                  5 fine
        `${card},${'9'.repeat(5000)}`, //                     6 too long, a card first
        `4929-1234-5678-${'0'.repeat(6000)}`, //              7 too long, digits across the cut
        'bad,1004', //                                        8 (a bad card: line number after cuts)
      ],
    });
    const run = runJob('fact_orders', src, { MAX_RECORD_BYTES: '2048' });
    expect(run.status).toBe(0);
    expect(accounting(run, 'fact_orders').orders_paid_creditcard).toEqual([7, 4, 3]);
    const q = await quarantine(run.db, 'orders_paid_creditcard');
    expect(q.map((r) => [r.line, r.code])).toEqual([[6, 'record_too_long'], [7, 'record_too_long'], [8, 'bad_card_number']]);
    expect(leaks(await everythingWritten(run), { cards: [card, '4929123456780000'] })).toEqual([]);
  });

  test('in a CRLF file, the row after an over-long line is read, at its own line', async () => {
    const lines = [header('vendor'), row('vendor', 1, 'A', '555', 'a@x.io'), row('vendor', 2, 'V'.repeat(3000), '555', 'v@x.io'),
      row('vendor', 3, 'C', '555', 'c@x.io'), row('vendor', 4, 'D', '555', 'd@x.io')];
    const run = runJob('dim_vendors', writeSources({}, { 'vendor.txt': lines.join('\r\n') + '\r\n' }), { MAX_RECORD_BYTES: '2048' });
    expect(run.status).toBe(0);
    expect(accounting(run, 'dim_vendors').vendor).toEqual([4, 3, 1]);
    expect((await quarantine(run.db)).map((q) => [q.line, q.code])).toEqual([[3, 'record_too_long']]);
  });

  test('an over-long first line is a file error, not a header', () => {
    const run = runJob('dim_vendors', writeSources({}, { 'vendor.txt': `${'z'.repeat(5000)}\n1\tA\t1\ta@b.c\n` }), { MAX_RECORD_BYTES: '2048' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/vendor\.txt:1: the header line is 5000 bytes, longer than MAX_RECORD_BYTES \(2048\)/);
  });

  test('MAX_RECORD_BYTES is checked when the config is read', () => {
    const run = runJob('dim_vendors', writeSources(), { MAX_RECORD_BYTES: '10' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/MAX_RECORD_BYTES must be at least 1024/);
  });
});

describe('error positions and messages', () => {
  const cards = (lines: string[]) => [header('orders_paid_creditcard'), ...lines].join('\n') + '\n';

  test('an unclosed quote is reported at the line where it opens', () => {
    const body = cards(['4111111111111111,1000', '4111111111111112,1001', '"4111111111111113,1002', '4111111111111114,1003', '4111111111111115,1004', '4111111111111116,1005']);
    const run = runJob('fact_orders', writeSources({}, { 'orders_paid_creditcard.txt': body }));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/orders_paid_creditcard\.txt:4: a quote opens on this line and is never closed/);
  });

  test('an unclosed quote in a big file stops at the record limit, still at its line', () => {
    const lines = ['4111111111111111,1000', '"4111111111111113,1002'];
    for (let i = 0; i < 500; i++) lines.push(`41111111111${String(10000 + i)},${2000 + i}`);
    const run = runJob('fact_orders', writeSources({}, { 'orders_paid_creditcard.txt': cards(lines) }), { MAX_RECORD_BYTES: '4096' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/orders_paid_creditcard\.txt:3: the record starting on this line runs past 4096 bytes/);
    expect(run.stderr).not.toMatch(/4111111111\d{5}/);
  });

  test('a directory in place of a file', () => {
    const src = writeSources({}, { 'vendor.txt': null });
    fs.mkdirSync(path.join(src, 'vendor.txt'));
    const run = runJob('dim_vendors', src);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/vendor\.txt: is a directory, not a file/);
  });

  test('a symlink loop and a dangling symlink', () => {
    const src = writeSources({}, { 'vendor.txt': null });
    fs.symlinkSync('vendor.txt', path.join(src, 'vendor.txt'));
    const loop = runJob('dim_vendors', src);
    expect(loop.status).toBe(2);
    expect(loop.stderr).toMatch(/vendor\.txt: symlink loop/);
    fs.rmSync(path.join(src, 'vendor.txt'));
    fs.symlinkSync('gone.txt', path.join(src, 'vendor.txt'));
    const dangling = runJob('dim_vendors', src);
    expect(dangling.stderr).toMatch(/vendor\.txt: is a symlink to a file that does not exist/);
  });

  test('a file without read permission', () => {
    const src = writeSources();
    fs.chmodSync(path.join(src, 'vendor.txt'), 0o000);
    let run: { status: number | null; stderr: string };
    if (process.getuid?.() === 0) {
      // root reads any file whatever its mode (CAP_DAC_OVERRIDE): run the job without that
      // capability (setpriv, util-linux), so the file's mode applies as to anyone.
      const state = tempDir('state');
      run = spawnSync(
        'setpriv',
        ['--bounding-set=-dac_override,-dac_read_search', process.execPath, path.join(ROOT, 'dist/jobs/dim_vendors.js'), '--source-dir', src],
        { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: state, ETL_STATE_DIR: state, LOG_FORMAT: 'json' } },
      );
    } else {
      run = runJob('dim_vendors', src);
    }
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/vendor\.txt: not readable/);
  });

  test('control bytes in a header are escaped in the messages', () => {
    // An added column loads under the default contract (rescue): its name is in the drift
    // warning and the summary, escaped.
    const body = `${header('vendor')}\tev\u001b[2Jil\n${row('vendor', 1, 'A', '1', 'a@b.c', 'x')}\n`;
    const run = runJob('dim_vendors', writeSources({}, { 'vendor.txt': body }));
    expect(run.status).toBe(0);
    expect(run.stderr).toContain('"field":"ev\\u001b[2Jil"');
    expect(run.stdout).toContain('drift added "ev\\u001b[2Jil"');
    expect(run.stderr).not.toMatch(CONTROL);
    expect(run.stdout).not.toMatch(CONTROL);
  });

  test('a binary file prints no raw control byte', () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) % 256;
    const run = runJob('dim_vendors', writeSources({}, { 'vendor.txt': bytes }));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/vendor\.txt/);
    expect(run.stderr).not.toMatch(CONTROL);
  });

  test('control bytes in a quarantined value are escaped in the reason and the summary', async () => {
    const run = runJob('dim_vendors', writeSources({ vendor: [row('vendor', '7\u0007\u001b[31m', 'Bell', '1', 'b@x.io')] }));
    expect(run.status).toBe(0);
    const [q] = await quarantine(run.db);
    expect(q.reason).toContain('\\u0007\\u001b[31m');
    expect(run.stdout).toContain('\\u001b[31m');
    expect(run.stdout).not.toMatch(CONTROL);
  });
});

describe('scratch hygiene', () => {
  const deadPid = (): number => {
    const child = require('node:child_process').spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  };

  test('a job sweeps scratch folders of dead jobs, keeps live ones, and removes its own', () => {
    const state = tempDir('state');
    const tmp = path.join(state, 'tmp');
    const mk = (name: string, pid: number | null, ageMs = 0) => {
      const dir = path.join(tmp, name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'spill.tmp'), 'x'.repeat(1000));
      if (pid !== null) fs.writeFileSync(path.join(dir, 'owner.pid'), String(pid));
      if (ageMs) fs.utimesSync(dir, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
    };
    mk('dead-run', deadPid());
    mk('live-run', process.pid);
    mk('old-ownerless', null, 10 * 60_000);
    mk('new-ownerless', null);
    const run = runJob('dim_vendors', writeSources(), {}, state);
    expect(run.status).toBe(0);
    expect(fs.readdirSync(tmp).sort()).toEqual(['live-run', 'new-ownerless']);
  });

  test('SIGTERM during the load removes the scratch folder; a killed load does not grow the warehouse', async () => {
    const src = writeSources();
    const state = tempDir('state');
    const db = path.join(state, 'warehouse.duckdb');
    expect(runJob('dim_vendors', src, {}, state).status).toBe(0);
    expect(runJob('dim_vendors', src, {}, state).status).toBe(0);
    const clean = fs.statSync(db).size;

    const paused = async (signal: NodeJS.Signals) => {
      const child = await spawnJobPausedInLoad('dim_vendors', src, state);
      expect(fs.readdirSync(path.join(state, 'tmp'))).toHaveLength(1);
      child.kill(signal);
      return new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    };
    expect(await paused('SIGTERM')).toBe(143);
    expect(fs.readdirSync(path.join(state, 'tmp'))).toEqual([]);

    await paused('SIGKILL');
    expect(fs.readdirSync(path.join(state, 'tmp'))).toHaveLength(1); // nobody could clean up
    expect(runJob('dim_vendors', src, {}, state).status).toBe(0);
    expect(fs.readdirSync(path.join(state, 'tmp'))).toEqual([]);
    expect(fs.statSync(db).size).toBeLessThanOrEqual(clean);
  });
});
