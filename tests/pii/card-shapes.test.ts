/**
 * Issue 26.4 and 21.5 on real job runs, on both staging paths: a card number in any column,
 * with any separators, quoted or not, is never written in clear (tables, `_quarantine.raw` and
 * `reason`, reports, `_etl_runs`, logs); every reason follows the one masking rule.
 */
import { maskCardRuns } from '../../jobs/lib/pii';
import { accounting, everythingWritten, quarantine, row, runJob, writeSources, type JobRun } from '../batch/faulty-files';
import { card, glue, mulberry32, pick } from './generate';

/** Where the digits of a card show up in order, whatever (up to 20 characters) stands between them. */
function leaksOf(written: Record<string, string>, cards: readonly string[]): [string, string][] {
  const found: [string, string][] = [];
  for (const c of cards) {
    const re = new RegExp(c.split('').join('\\D{0,20}'));
    for (const [place, text] of Object.entries(written)) if (re.test(text)) found.push([place, c]);
  }
  return found;
}

const PATHS = ['bulk', 'exact'] as const;

describe.each(PATHS)('the two lines of the issue (BATCH_PATH=%s)', (batchPath) => {
  let run: JobRun;
  beforeAll(() => {
    run = runJob('fact_orders', writeSources({
      orders_paid_creditcard: [
        '"1001,4111  1111  1111  1111"', // 5 a quoted whole line
        '1001,4111/1111/1111/1111', //     6 columns swapped, slashes
      ],
    }), { BATCH_PATH: batchPath });
  });

  test('both are quarantined, masked in raw and reason', async () => {
    expect(run.status).toBe(0);
    expect(accounting(run, 'fact_orders').orders_paid_creditcard).toEqual([5, 3, 2]);
    const q = await quarantine(run.db, 'orders_paid_creditcard');
    expect(q.map((r) => [r.line, r.code, r.raw])).toEqual([
      [5, 'field_count', '"1001,****  ****  ****  1111"'],
      [6, 'bad_card_number', '1001,****/****/****/1111'],
    ]);
    expect(q[1].reason).toContain(`"****/****/****/1111" in 'order_id' is not an identifier`);
  });

  test('no digit of either card is written in clear anywhere', async () => {
    expect(leaksOf(await everythingWritten(run), ['4111111111111111'])).toEqual([]);
  });
});

/**
 * Generated lines: a Luhn-valid card of 12-19 digits written with random separators, in either
 * column of the comma source (quoted field, quoted whole line, or bare) and in any column of a
 * tab source without PII (vendor) as its id or beside an extra field.
 */
function generated(seed: number, n: number): { paid: string[]; vendor: string[]; cards: string[] } {
  const rnd = mulberry32(seed);
  const paid: string[] = [];
  const vendor: string[] = [];
  const cards: string[] = [];
  for (let i = 0; i < n; i++) {
    const { groups, seps } = card(rnd);
    cards.push(groups.join(''));
    const c = glue(groups, seps);
    const order = String(1000 + (i % 3));
    const fields = pick(rnd, [[c, order], [order, c], [`"${c}"`, order], [order, `"${c}"`], [c, order, 'x']]);
    const line = fields.join(',');
    paid.push(pick(rnd, [line, `"${line}"`, line]));
    // Quarantined lines only: a card in a valid row's free-text column (a vendor's name) is that
    // row's data, loaded as it is; the catalog's PII policy is what protects a column.
    const v = ['7', 'Acme', '555-0101', 'a@acme.io'];
    const at = Math.floor(rnd() * 4);
    v[at] = c;
    if (at > 0 || rnd() < 0.3) v.push('extra');
    vendor.push(v.join('\t'));
  }
  return { paid, vendor, cards };
}

describe.each(PATHS)('generated cards in any column, any separators and quoting (BATCH_PATH=%s)', (batchPath) => {
  const g = generated(batchPath === 'bulk' ? 261 : 262, 40);
  let runs: JobRun[];
  beforeAll(() => {
    const dir = writeSources({ orders_paid_creditcard: g.paid, vendor: g.vendor });
    runs = [runJob('fact_orders', dir, { BATCH_PATH: batchPath }), runJob('dim_vendors', dir, { BATCH_PATH: batchPath })];
  });

  test('every line is accounted for', () => {
    expect(runs.map((r) => r.status)).toEqual([0, 0]);
    const [paid] = [accounting(runs[0], 'fact_orders').orders_paid_creditcard];
    const [vendor] = [accounting(runs[1], 'dim_vendors').vendor];
    expect([paid[0], paid[1] + paid[2]]).toEqual([3 + 40, 3 + 40]);
    expect([vendor[0], vendor[1] + vendor[2]]).toEqual([2 + 40, 2 + 40]);
  });

  test('no card is written in clear anywhere', async () => {
    for (const run of runs) expect(leaksOf(await everythingWritten(run), g.cards)).toEqual([]);
  });

  test('every quarantine reason and raw text is as the masking rule leaves it', async () => {
    for (const run of runs) {
      for (const r of await quarantine(run.db)) {
        expect([r.reason, r.raw]).toEqual([maskCardRuns(r.reason), maskCardRuns(r.raw)]);
      }
    }
  });
});

describe('21.5: a range reason quoting a value follows the masking rule', () => {
  let run: JobRun;
  beforeAll(() => {
    run = runJob('fact_order_details', writeSources({
      orders_has_products: [
        row('orders_has_products', 1000, 1200, 1202, '4111111111111111'), // 5 a card as quantity: past the catalog's range
        row('orders_has_products', 1001, 1200, 1202, '999999999999999999'), // 6 no card (fails the Luhn check): shown as found
      ],
    }));
  });

  test('the card is masked in the reason, other digits are shown as in every reason', async () => {
    expect(run.status).toBe(0);
    const q = await quarantine(run.db, 'orders_has_products');
    // The catalog's range on quantity (at most 999,999) stops both before price x quantity.
    expect(q.map((r) => [r.line, r.code])).toEqual([[5, 'out_of_range'], [6, 'out_of_range']]);
    expect(q[0].reason).toContain('************1111');
    expect(q[0].reason).not.toContain('4111111111111111');
    expect(q[1].reason).toContain('999999999999999999');
    expect(q[0].raw).toContain('************1111');
    expect(leaksOf(await everythingWritten(run), ['4111111111111111'])).toEqual([]);
  });
});

/**
 * Passwords have no shape to recognise: the column policy alone protects them. Generated user
 * lines put a distinct password in every shape a line can take (bad id, wrong delimiter, a
 * field too many or too few, quotes, separators and spaces inside it, an over-long line).
 */
describe.each(PATHS)('a password in any shape of line is never written (BATCH_PATH=%s)', (batchPath) => {
  const rnd = mulberry32(batchPath === 'bulk' ? 2611 : 2612);
  const passwords: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < 40; i++) {
    const pw = `Pw${i}-${pick(rnd, ['q', 'z', 'k'])}${Math.floor(rnd() * 1e6)}!`;
    passwords.push(pw);
    const value = pick(rnd, [pw, `"${pw}"`, ` ${pw} `, `${pw}, x`, `${pw}"`]);
    const fields = [String(3000 + i), `user${i}`, value, 'Name', 'Addr', 'x@y.io', '555'];
    const shape = pick(rnd, ['bad id', 'comma', 'extra', 'missing', 'long', 'ok']);
    if (shape === 'bad id') fields[0] = `${3000 + i}x`;
    if (shape === 'extra') fields.push('extra');
    if (shape === 'missing') fields.splice(5, 1);
    if (shape === 'long') fields[4] = 'A'.repeat(1100);
    lines.push(fields.join(shape === 'comma' ? ',' : '\t'));
  }
  let run: JobRun;
  beforeAll(() => {
    run = runJob('dim_users', writeSources({ user: lines }), { BATCH_PATH: batchPath, MAX_RECORD_BYTES: '1024' });
  });

  test('every line is accounted for and no password shows anywhere', async () => {
    expect(run.status).toBe(0);
    const [read, loaded, quarantined] = accounting(run, 'dim_users').user;
    expect([read, loaded + quarantined]).toEqual([3 + 40, 3 + 40]);
    const written = await everythingWritten(run);
    expect(passwords.flatMap((p) => Object.entries(written).filter(([, text]) => text.includes(p)).map(([place]) => [place, p]))).toEqual([]);
  });
});
