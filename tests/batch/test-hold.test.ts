/**
 * The hold-file test hooks (jobs/lib/test-hold.ts) hold where they say and only then: unset, or
 * set for another phase, or with no file, they return at once; held, they say so in `<file>.held`
 * (this pid) and return once the file is deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { holdAtEltPhase, holdWhileFileExists } from '../../jobs/lib/test-hold';
import { tempDir } from '../helpers/env';

const state = (p: Promise<void>) => Promise.race([p.then(() => 'returned'), new Promise((r) => setImmediate(() => r('waiting')))]);

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

describe('hold-file test hooks', () => {
  const dir = tempDir('hold');
  const file = path.join(dir, 'hold');
  const HOOKS = ['ETL_TEST_HOLD_FILE', 'ETL_TEST_HOLD_AT_PHASE'];
  const saved = HOOKS.map((k) => process.env[k]);
  afterEach(() => {
    fs.rmSync(file, { force: true });
    HOOKS.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('holds while the file exists, with <file>.held naming this process', async () => {
    fs.writeFileSync(file, '');
    const hold = holdWhileFileExists(file);
    await until(() => fs.existsSync(`${file}.held`));
    expect(fs.readFileSync(`${file}.held`, 'utf8')).toBe(String(process.pid));
    expect(await state(hold)).toBe('waiting');
    fs.rmSync(file);
    await hold;
    expect(fs.existsSync(`${file}.held`)).toBe(false);
  });

  test('inert without a file: unset, or a file that does not exist', async () => {
    expect(await state(holdWhileFileExists(undefined))).toBe('returned');
    expect(await state(holdWhileFileExists(file))).toBe('returned');
  });

  test('an ELT phase holds only when ETL_TEST_HOLD_AT_PHASE names it', async () => {
    fs.writeFileSync(file, '');
    // The file exists but no phase is set, or another one: no hold.
    process.env.ETL_TEST_HOLD_FILE = file;
    expect(await state(holdAtEltPhase('commit'))).toBe('returned');
    process.env.ETL_TEST_HOLD_AT_PHASE = 'upload';
    expect(await state(holdAtEltPhase('commit'))).toBe('returned');
    process.env.ETL_TEST_HOLD_AT_PHASE = 'commit';
    const hold = holdAtEltPhase('commit');
    await until(() => fs.existsSync(`${file}.held`));
    expect(await state(hold)).toBe('waiting');
    fs.rmSync(file);
    await hold;
    expect(fs.existsSync(`${file}.held`)).toBe(false);
  });
});
