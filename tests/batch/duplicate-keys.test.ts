/**
 * hasDuplicateKeys (staging and the transform's result) against a count in JavaScript: keys of
 * one and three columns, with and without a repeat, NULLs included (grouped as equal, as SQL's
 * GROUP BY does).
 */
import { hasDuplicateKeys } from '../../jobs/lib/checks';
import { openDuckDb, type OpenDb } from '../../jobs/lib/sql/duckdb-file';

let db: OpenDb;
beforeAll(async () => {
  db = await openDuckDb(':memory:');
});
afterAll(() => db.close());

/** A deterministic pseudo-random sequence (the test must not depend on Math.random). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
}

async function load(rows: (string | null)[][]): Promise<void> {
  await db.connection.run('CREATE OR REPLACE TABLE t (a VARCHAR, b VARCHAR, c VARCHAR)');
  const app = await db.connection.createAppender('t');
  for (const r of rows) {
    for (const v of r) (v === null ? app.appendNull() : app.appendVarchar(v));
    app.endRow();
  }
  app.closeSync();
}

/** The expected answer, computed independently of SQL: whether the values at `at` repeat. */
const repeatsOn = (rows: (string | null)[][], at: number[]): boolean => {
  const seen = new Set<string>();
  for (const r of rows) {
    const k = JSON.stringify(at.map((i) => r[i]));
    if (seen.has(k)) return true;
    seen.add(k);
  }
  return false;
};
const repeats = (rows: (string | null)[][], width: number): boolean => repeatsOn(rows, [...Array(width).keys()]);

test.each([1, 3])('a key of %i column(s): unique rows, then one repeated row', async (width) => {
  const rnd = lcg(width);
  // Distinct keys: the row number spread over the columns, shuffled.
  const rows = Array.from({ length: 20_000 }, (_, i) => [String(i), String(i % 7), String(i % 13)]);
  rows.sort(() => rnd() - 0.5);
  const key = ['a', 'b', 'c'].slice(0, width);
  await load(rows);
  expect(repeats(rows, width)).toBe(false);
  expect(await hasDuplicateKeys(db.connection, 't', key)).toBe(false);

  const withRepeat = [...rows, [...rows[Math.floor(rnd() * rows.length)]]];
  await load(withRepeat);
  expect(repeats(withRepeat, width)).toBe(true);
  expect(await hasDuplicateKeys(db.connection, 't', key)).toBe(true);
});

test('three columns: the same values in other columns are not a repeat; NULLs repeat as equal', async () => {
  const rows = [['1', '2', '3'], ['1', '3', '2'], ['2', '1', '3'], ['3', '2', '1']];
  await load(rows);
  expect(await hasDuplicateKeys(db.connection, 't', ['a', 'b', 'c'])).toBe(false);
  expect(await hasDuplicateKeys(db.connection, 't', ['b'])).toBe(true);
  const nulls = [['1', null, '3'], ['1', null, '3'], ['2', '1', null], ['3', '2', '4']];
  await load(nulls);
  const columns = ['a', 'b', 'c'];
  for (const key of [['a', 'b', 'c'], ['b', 'c'], ['c'], ['b']]) {
    const expected = repeatsOn(nulls, key.map((k) => columns.indexOf(k)));
    expect({ key, repeated: await hasDuplicateKeys(db.connection, 't', key) }).toEqual({ key, repeated: expected });
  }
  // The cases above cover both answers.
  expect(repeatsOn(nulls, [0, 1, 2])).toBe(true);
  expect(repeatsOn([['1', null], ['1', '2']], [0, 1])).toBe(false);
});

test('an empty table has no repeated key', async () => {
  await load([]);
  expect(await hasDuplicateKeys(db.connection, 't', ['a'])).toBe(false);
});
