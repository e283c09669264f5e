/** The generator: deterministic bytes per seed, exact source formats, faults that the pipeline accounts for. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { generate } from '../../scripts/generate-data';
import { tempDir } from '../helpers/env';

const digest = (dir: string) =>
  fs
    .readdirSync(dir)
    .sort()
    .map((f) => `${f}:${crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')}`)
    .join('\n');

test('same seed, same bytes; another seed, other bytes', async () => {
  const [a, b, c] = [tempDir('g'), tempDir('g'), tempDir('g')];
  await generate({ orders: 300, out: a, seed: 1, faults: true, faultRate: 0.05 });
  await generate({ orders: 300, out: b, seed: 1, faults: true, faultRate: 0.05 });
  await generate({ orders: 300, out: c, seed: 2, faults: true, faultRate: 0.05 });
  expect(digest(a)).toBe(digest(b));
  expect(digest(a)).not.toBe(digest(c));
  expect(fs.readdirSync(a).sort()).toEqual(catalog.sources.map((s) => s.file).sort());
  const paid = fs.readFileSync(path.join(a, 'orders_paid_creditcard.txt'), 'utf8').split('\n');
  expect(paid[0]).toBe('credit_card_number,order_id');
  expect(paid.length - 2).toBe(300); // header + trailing newline
});

test('clean data loads whole; faulty data balances with every fault quarantined', async () => {
  const clean = tempDir('clean');
  const faulty = tempDir('faulty');
  await generate({ orders: 2000, out: clean, seed: 3, faults: false, faultRate: 0 });
  await generate({ orders: 2000, out: faulty, seed: 3, faults: true, faultRate: 0.05 });
  const ok = await runBatchJob(catalog, 'fact_orders', loadConfig({}, { sourceDir: clean, stateDir: tempDir('s1') }));
  expect(ok.run.rowsQuarantined).toBe(0);
  expect(ok.run.rowsOut).toBe(2000);
  const bad = await runBatchJob(catalog, 'fact_orders', loadConfig({}, { sourceDir: faulty, stateDir: tempDir('s2') }));
  expect(bad.report.accountingBalanced).toBe(true);
  const order = bad.report.sources.find((s) => s.source === 'order')!;
  expect(order.rowsRead).toBe(2000);
  expect(order.quarantinedByReason.bad_date).toBeGreaterThan(0);
  expect(order.quarantinedByReason.not_a_number).toBeGreaterThan(0);
  expect(order.blankLines).toBe(2);
  expect(bad.run.rowsOut).toBe(order.rowsLoaded);
  const paid = bad.report.sources.find((s) => s.source === 'orders_paid_creditcard')!;
  expect(paid.scientificNotationIds.count).toBe(paid.rowsQuarantined);
  expect(paid.rowsQuarantined).toBeGreaterThan(50);
});
