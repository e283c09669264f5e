/**
 * The bulk path lets a row through on one regular expression per field (run by DuckDB's RE2).
 * It may flag a good value, never pass a bad one: every value a field's pattern matches must be
 * one the exact path (trim + ajv + business rules, rowValidator) accepts unchanged. Checked for
 * every column of the catalog on a list of tricky values, and dates against a calendar computed
 * here from the Gregorian rules.
 */
import { catalog } from '../../jobs/catalog';
import type { SourceColumn, SourceTable } from '../../jobs/lib/catalog-types';
import { DATE_PATTERN, fieldPattern } from '../../jobs/lib/rule-patterns';
import { rowValidator } from '../../jobs/lib/schema';
import { openDuckDb, type OpenDb } from '../../jobs/lib/sql/duckdb-file';
import { sqlString } from '../../jobs/lib/sql/quote';

let db: OpenDb;
beforeAll(async () => {
  db = await openDuckDb(':memory:');
});
afterAll(() => db.close());

/** Which of `values` RE2 fully matches with `pattern`. */
async function matching(pattern: string, values: readonly string[]): Promise<Set<string>> {
  await db.connection.run('CREATE OR REPLACE TEMP TABLE cand (v VARCHAR)');
  const a = await db.connection.createAppender('cand');
  for (const v of values) {
    a.appendVarchar(v);
    a.endRow();
  }
  a.closeSync();
  const r = await db.connection.runAndReadAll(`SELECT v FROM cand WHERE regexp_full_match(v, ${sqlString(pattern)})`);
  return new Set(r.getRowsJS().map(([v]) => String(v)));
}

const GOOD: Record<SourceColumn['type'], string> = {
  id: '7', card: '4564148144006084', int: '5', decimal: '1.5', bool01: '1', date: '2024-01-31', string: 'x',
};

const TRICKY = [
  '0', '1', '2', '-1', '-0', '00', '0001', '+1', ' 1', '1 ', '1.5', '1.', '.5', '-1.5', '1e3', '1E3', '0x1F', '1_000',
  '12345678901234567', '123456789012345678', '1234567890123456789', '99999999999999.9999', '999999999999999', '0.00001',
  '2024-02-29', '2023-02-29', '1900-02-29', '2000-02-29', '2100-02-29', '1904-02-29', '0999-01-01', '0000-01-01',
  '2024-13-01', '2024-00-10', '2024-04-31', '2024-04-30', '2024-12-31', '9999-12-31', '2024-1-01', '2024-01-1', '2024/01/01',
  'x', 'a b', '\u00a0x', 'x\u00a0', '\tx', 'x\t', '\u2028x', 'x\ufeff', '\u3000', ' ', 'é', 'Ünïcode ok', 'a,b', 'a\u0001b',
  '4564 1481 4400 6084', '4564-1481-4400-6084', '4564--1481-4400-6084', '4564 1481 4400 608', '2.56324E+15',
  '1234567890123', '12345678901234567890', '45641481440060841', ' 4564148144006084',
  // Around the catalog's maximums: 20-digit ids, 999,999 per line, 999,999,999 in stock, money under a billion.
  '123456789012345678901', '999999', '1000000', '0999999', '999999999', '1000000000', '999999999.9999', '1000000000.0000',
  '999999999999999999', '9'.repeat(400),
];

describe.each(catalog.sources.map((s) => [s.name, s] as const))('%s', (_, source: SourceTable) => {
  test.each(source.columns.map((c) => [c.name, c] as const))('%s: a matching value is one the exact path accepts as it is', async (__, col) => {
    const { pattern, checked } = fieldPattern(col, source.delimiter);
    // The catalog's rules (minimums 0 and 1, maximums by digit count, id lengths) are in the
    // patterns; no SQL check is needed.
    expect(checked).toBe(true);
    const validator = rowValidator(source);
    const base = Object.fromEntries(source.columns.map((c) => [c.name, GOOD[c.type]]));
    expect(validator.validate(base)).toEqual([]);
    const matched = await matching(pattern, TRICKY);
    for (const v of matched) {
      expect([v, v.trim()]).toEqual([v, v]);
      expect([v, validator.validate({ ...base, [col.name]: v })]).toEqual([v, []]);
    }
    // Not vacuous: the column's plain good value passes.
    expect(await matching(pattern, [GOOD[col.type]])).toEqual(new Set([GOOD[col.type]]));
  });
});

test('a rule the pattern does not hold is left to SQL', () => {
  expect(fieldPattern({ name: 'q', type: 'int', rules: { min: 5 } }, '\t').checked).toBe(false);
  expect(fieldPattern({ name: 'q', type: 'decimal', rules: { min: 1 } }, '\t').checked).toBe(false);
  expect(fieldPattern({ name: 'q', type: 'int', rules: { min: -5, max: 10 } }, '\t').checked).toBe(false);
});

test('a maximum is held by the digit count: every value of the largest length it allows is within it', () => {
  expect(fieldPattern({ name: 'q', type: 'int', rules: { min: 1, max: 999_999 } }, '\t').pattern).toBe('(?:[1-9][0-9]{0,5})');
  expect(fieldPattern({ name: 'q', type: 'int', rules: { min: 0, max: 1_500_000 } }, '\t').pattern).toBe('(?:[0-9]{1,6})');
  expect(fieldPattern({ name: 'm', type: 'decimal', rules: { min: 0, max: 999_999_999.9999 } }, '\t').pattern).toBe('(?:[0-9]{1,9}(?:\\.[0-9]{1,4})?)');
  expect(fieldPattern({ name: 'm', type: 'decimal', rules: { min: 0, max: 999_999_999.999 } }, '\t').pattern).toBe('(?:[0-9]{1,8}(?:\\.[0-9]{1,4})?)');
  expect(fieldPattern({ name: 'i', type: 'id', rules: { maxLength: 20 } }, '\t').pattern).toBe('(?:[0-9]{1,20})');
});

test('the date pattern matches exactly the real days of the years 1000-9999', async () => {
  const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = (y: number, m: number) => [31, leap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
  const years = [999, 1000, 1001, 1004, 1100, 1600, 1700, 1896, 1900, 1904, 1999, 2000, 2023, 2024, 2100, 2400, 2401, 9996, 9999];
  const values: string[] = [];
  const real = new Set<string>();
  const p2 = (n: number) => String(n).padStart(2, '0');
  for (const y of years) {
    for (let m = 0; m <= 13; m++) {
      for (let d = 0; d <= 32; d++) {
        const v = `${String(y).padStart(4, '0')}-${p2(m)}-${p2(d)}`;
        values.push(v);
        if (y >= 1000 && m >= 1 && m <= 12 && d >= 1 && d <= days(y, m)) real.add(v);
      }
    }
  }
  expect(real.size).toBeGreaterThan(6000);
  expect(await matching(DATE_PATTERN, values)).toEqual(real);
});
