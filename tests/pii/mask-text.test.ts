/**
 * Issues 26.4 and 21.4: card numbers are masked in free text on the text as found, whatever
 * separates their digits, and identifiers (run ids, paths, hashes) are printed exactly. Cards
 * are generated with their Luhn check digit computed here; expected texts are built from the
 * generated parts, not from the function under test.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { luhnValid, maskCardRuns, redactEvent, redactRaw } from '../../jobs/lib/pii';
import { deadLetterValue } from '../../jobs/lib/stream/events';
import { ROOT } from '../helpers/env';
import { card, digitsIn, glue, mulberry32, pick } from './generate';

const src = (name: string) => catalog.sources.find((s) => s.name === name)!;

/** The expected masked form: every digit but the last four of `groups` starred, separators kept. */
const masked = (groups: string[], seps: string[]) => {
  const n = groups.join('').length;
  let seen = 0;
  const starred = groups.map((g) => [...g].map((d) => (++seen <= n - 4 ? '*' : d)).join(''));
  return glue(starred, seps);
};

describe('a card in free text', () => {
  test('the Luhn check of the generator agrees with known card numbers', () => {
    expect(['4111111111111111', '5105105105105100', '378282246310005', '6011000990139424'].map(luhnValid)).toEqual([true, true, true, true]);
    expect(['4111111111111112', '999999999999999999'].map(luhnValid)).toEqual([false, false]);
  });

  test('is masked with any separators, in any position and quoting (2,000 generated cases)', () => {
    const rnd = mulberry32(26);
    for (let i = 0; i < 2000; i++) {
      const { groups, seps } = card(rnd);
      const [before, after] = pick(rnd, [['', ''], ['"', '"'], ["'", "'"], ['1001,', ''], ['', ',1001'], ['x ', ' y'], ['(', ')'], ['1001\t', '\t7'], ['{"v":"', '"}']]);
      const text = `${before}${glue(groups, seps)}${after}`;
      const out = maskCardRuns(text);
      expect(out).toBe(`${before}${masked(groups, seps)}${after}`);
      expect(digitsIn(out)).not.toContain(groups.join('').slice(0, -4));
    }
  });

  test('the two lines of the issue', () => {
    expect(maskCardRuns('"1001,4111  1111  1111  1111"')).toBe('"1001,****  ****  ****  1111"');
    expect(maskCardRuns('"4111/1111/1111/1111" in \'order_id\' is not an identifier')).toBe('"****/****/****/1111" in \'order_id\' is not an identifier');
  });

  test('next to an id in one run of digits, the card is masked and the id kept', () => {
    expect(maskCardRuns('1001 4111 1111 1111 1111')).toBe('1001 **** **** **** 1111');
  });

  test('behind an escape a serializer wrote (JSON, printable), the card is still masked', () => {
    expect(maskCardRuns('{"v":"\\u00014111 1111 1111 1111"}')).toBe('{"v":"\\u0001**** **** **** 1111"}');
    expect(maskCardRuns('a\\t4111111111111111')).toBe('a\\t************1111');
    expect(maskCardRuns('4111\\u00a01111\\u00a01111\\u00a01111')).toBe('****\\u00a0****\\u00a0****\\u00a01111');
  });

  test('digits that fail the Luhn check are no card: shown as found', () => {
    expect(maskCardRuns('quantity 999999999999999999 x price 1299')).toBe('quantity 999999999999999999 x price 1299');
    expect(maskCardRuns('4111 1111 1111 1112')).toBe('4111 1111 1111 1112');
  });
});

describe('identifiers are printed exactly', () => {
  // A run id's last 12 digits that pass the Luhn check: what a bare digit pattern masked.
  const suffixes = Array.from({ length: 1000 }, (_, i) => String(100000 + i * 899).padStart(6, '0'));
  const runIds = suffixes.map((s) => `fact_orders-20261204T101530-${s}`);

  test('run ids with an all-digit suffix, and the report paths named after them', () => {
    expect(runIds.filter((id) => luhnValid(id.replace(/\D/g, '').slice(-12))).length).toBeGreaterThan(50);
    for (const id of runIds) {
      const line = `job succeeded runId=${id} report=/state/reports/${id}.json`;
      expect(maskCardRuns(line)).toBe(line);
    }
  });

  test('hashes, uuids and timestamps', () => {
    for (const s of [
      '9bbef19476623ca56c17da75fd57734dbf82530686043a6e491c6d71befe8f6e',
      '123e4567-e89b-12d3-a456-426614174000',
      '2026-12-04T10:15:30.123Z',
    ]) expect(maskCardRuns(s)).toBe(s);
  });

  test("the job logger prints a run id and its report path exactly, and masks a card in the same line", () => {
    const id = 'fact_orders-20261204T101530-123401';
    expect(luhnValid('101530123401')).toBe(true);
    const script = `require(${JSON.stringify(path.join(ROOT, 'dist/jobs/lib/log.js'))}).logger.child({ job: 'store.fact_orders', runId: ${JSON.stringify(id)} })` +
      `.info('job succeeded', { report: ${JSON.stringify(`/state/reports/${id}.json`)}, note: 'card 4111 1111 1111 1111' })`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH, LOG_FORMAT: 'json' } });
    const line = JSON.parse(r.stderr.trim());
    expect(line).toMatchObject({ runId: id, report: `/state/reports/${id}.json`, note: 'card **** **** **** 1111' });
  });
});

describe('raw text of a source with PII, as found', () => {
  test('a quoted whole line of the comma source is masked, not re-split', () => {
    const paid = src('orders_paid_creditcard');
    expect(redactRaw(paid, ['credit_card_number', 'order_id'], '"1001,4111  1111  1111  1111"')).toBe('"1001,****  ****  ****  1111"');
    expect(redactRaw(paid, ['credit_card_number', 'order_id'], '"1001,4111  1111  1111  1112"')).toBe('"****,****  ****  ****  1112"');
  });

  test('an event with a misspelt password field keeps no value of it', () => {
    const user = src('user');
    expect(redactEvent(user, JSON.stringify({ user_id: '1', pasword: 'S3cret-Pw' }))).not.toContain('S3cret-Pw');
  });

  test('a dead letter of a source without PII is masked only when it holds a card', () => {
    const carts = src('carts_has_products');
    const clean = Buffer.from('{"cart_id":"1","quantity":"2"}');
    expect(deadLetterValue(carts, clean)).toBe(clean);
    const withCard = Buffer.from('{"cart_id":"4111/1111/1111/1111","quantity":"2"}');
    expect(deadLetterValue(carts, withCard)!.toString()).toBe('{"cart_id":"****/****/****/1111","quantity":"2"}');
  });
});
