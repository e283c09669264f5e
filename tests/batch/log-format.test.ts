/**
 * Issue 21.11: under LOG_FORMAT=plain (what the Airflow tasks set) a job prints aligned lines
 * a person reads in the task log panel: level, step, duration, counts; no JSON. Checked on the
 * text a real job CLI prints on the fixture; LOG_FORMAT=json stays one JSON object a line.
 */
import path from 'node:path';
import { ROOT, runNode, tempDir } from '../helpers/env';

const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'store-export');
const runDimVendors = (format: string) =>
  runNode('jobs/dim_vendors.js', ['--source-dir', FIXTURE], { ETL_STATE_DIR: tempDir('logfmt'), LOG_LEVEL: 'info', LOG_FORMAT: format });

describe('LOG_FORMAT=plain', () => {
  let lines: string[];
  let stdout: string;
  beforeAll(() => {
    const r = runDimVendors('plain');
    expect(r.status).toBe(0);
    lines = r.stderr.trimEnd().split('\n');
    stdout = r.stdout;
  });

  test('the job, its run id, then one aligned line per step; no JSON', () => {
    expect(lines[0]).toMatch(/^----\s+job=store\.dim_vendors runId=dim_vendors-\d{8}T\d{6}-[0-9a-f]{6}$/);
    const steps = lines.slice(1).map((l) => /^(\w+)\s+(.+?)\s{2,}|^(\w+)\s+(.+)$/.exec(l)).map((m) => [m?.[1] ?? m?.[3], (m?.[2] ?? m?.[4])?.trim()]);
    expect(steps).toEqual([
      ['INFO', 'job started'], ['INFO', 'source staged'], ['INFO', 'staged'], ['INFO', 'checked foreign keys'],
      ['INFO', 'transformed'], ['INFO', 'loaded'], ['INFO', 'job succeeded'],
    ]);
    expect(lines.some((l) => l.includes('{'))).toBe(false);
  });

  test('levels, steps and durations line up in columns', () => {
    const body = lines.slice(1);
    // Level in characters 0-6, the step from 7, the duration in 34-41, the fields from 44.
    for (const l of body) expect(l.slice(0, 7)).toBe('INFO   ');
    const timed = body.filter((l) => /^ *\d+\.\d\d s$/.test(l.slice(34, 42)));
    expect(timed.map((l) => l.slice(7, 34).trim())).toEqual(['staged', 'checked foreign keys', 'transformed', 'loaded']);
    const withFields = body.filter((l) => l.length > 44);
    expect(withFields.length).toBe(4);
    for (const l of withFields) expect(l.slice(42, 45)).toMatch(/^ {2}\w$/);
  });

  test('counts are fields of their step', () => {
    expect(lines.find((l) => l.startsWith('INFO   source staged'))).toMatch(/ {2}source=vendor path=bulk read=20 loaded=20 quarantined=0$/);
    expect(lines.find((l) => l.startsWith('INFO   job succeeded'))).toMatch(/ {2}rowsOut=20 quarantined=0 report=\S+\/reports\/dim_vendors-\d{8}T\d{6}-[0-9a-f]{6}\.json$/);
    expect(stdout).toMatch(/^store\.dim_vendors: 20 rows written/);
  });
});

test('LOG_FORMAT=json: every stderr line is a JSON object with the same steps', () => {
  const r = runDimVendors('json');
  expect(r.status).toBe(0);
  const records = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as { message: string; job: string });
  expect(records.map((x) => x.message)).toEqual(['job started', 'source staged', 'staged', 'checked foreign keys', 'transformed', 'loaded', 'job succeeded']);
  expect(new Set(records.map((x) => x.job))).toEqual(new Set(['store.dim_vendors']));
});

test('an unknown LOG_FORMAT logs JSON and says so, with the values it takes, on its first line', () => {
  const r = runDimVendors('pretty');
  expect(r.status).toBe(0);
  const [first] = r.stderr.split('\n').map((l) => JSON.parse(l || '{}') as { level?: string; message?: string });
  expect(first).toMatchObject({ level: 'warn', message: "LOG_FORMAT must be 'json' or 'plain', got 'pretty': logging json" });
});
