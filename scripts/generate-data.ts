#!/usr/bin/env node
/**
 * Writes the store's 15 source files in exactly their source formats (tab-separated with a
 * header; orders_paid_creditcard.txt comma-separated), seeded and deterministic: the same
 * arguments always give the same bytes. `--orders` scales everything (benchmarks use 1M);
 * `--faults` injects the flaws the real export has, at `--fault-rate`, so the pipeline's
 * quarantine and report can be exercised on data of any size. `--quirks real-export` writes a
 * small export (tens of rows per file) with every quirk of the store's real export at fixed
 * places: the committed test fixture tests/fixtures/store-export/.
 *
 *   npm run generate-data -- --orders 1000000 --out .state/bench-data
 *   npm run generate-data -- --quirks real-export --out tests/fixtures/store-export
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import { main, parseCommandLine, reportError } from '../jobs/lib/cli';
import { UsageError } from '../jobs/lib/errors';
import { logger } from '../jobs/lib/log';
import { createProgress } from '../jobs/lib/progress';
import { BRANDS, CATEGORIES, CITIES, dateFrom, drawLines, drawOptions, drawOrderLines, drawUser, FIRST, LAST, money, type OptionInfo, rng, scientific, STREETS, VARIANTS, Writer } from './lib/generator-kit';
import { generateRealExport } from './lib/real-export';

const HELP = `Usage: npm run generate-data -- [--orders N] [--out DIR] [--seed S] [--faults] [--fault-rate R]
       npm run generate-data -- --quirks real-export [--out DIR] [--seed S]

Writes the 15 source files of the store into DIR (default: data_source), deterministic for a
given seed. Entity counts scale with --orders (default 500): users = orders/4, products =
orders/20, carts = orders/10 (each with sensible minimums).

Options:
  --orders N       number of orders (default 500)
  --out DIR        output folder (default data_source)
  --seed S         random seed (default 42)
  --faults         inject real-world flaws: damaged ids (2.56324E+15), rows with the wrong
                   separator, bad dates, non-numbers, blank lines, padded headers and values,
                   repeated link rows, invalid UTF-8 bytes
  --fault-rate R   share of rows with a flaw when --faults is on (default 0.02)
  --quirks real-export
                   a small export shaped like the store's real one, every quirk of it at a
                   fixed place (sizes fixed; --orders and --faults do not apply): padded
                   header names and values, the comma-separated card file, card ids damaged
                   into scientific notation, rows with spaces instead of a tab, a row merged
                   into the previous one, blank lines, U+FFFD characters, products in several
                   categories and repeated link rows. Makes tests/fixtures/store-export/.
  -h, --help       show this help`;

export interface GenerateOptions {
  readonly orders: number;
  readonly out: string;
  readonly seed: number;
  readonly faults: boolean;
  readonly faultRate: number;
  /** 'real-export': the fixed-size export with the real one's quirks (see generateRealExport). */
  readonly quirks?: 'real-export';
}

export async function generate(o: GenerateOptions): Promise<Record<string, number>> {
  fs.mkdirSync(o.out, { recursive: true });
  if (o.quirks === 'real-export') return generateRealExport(o.out, o.seed);
  const r = rng(o.seed);
  const fault = () => o.faults && r.next() < o.faultRate;
  const src = (name: string) => catalog.sources.find((s) => s.name === name)!;
  const open = async (name: string): Promise<Writer> => {
    const s = src(name);
    const w = new Writer(path.join(o.out, s.file));
    // The real export pads some header names with a space; the pipeline must not care.
    const names = s.columns.map((c, i) => (o.faults && i === s.columns.length - 1 && s.delimiter === '\t' ? `${c.name} ` : c.name));
    await w.line(names.join(s.delimiter));
    return w;
  };
  const counts: Record<string, number> = {};
  const done = async (name: string, w: Writer) => {
    await w.close();
    counts[name] = w.rows;
  };

  const nUsers = Math.max(20, Math.floor(o.orders / 4));
  const nProducts = Math.max(30, Math.floor(o.orders / 20));
  const nVendors = Math.max(10, Math.floor(o.orders / 2000));
  const nCarts = Math.max(10, Math.floor(o.orders / 10));
  const categoryIds = CATEGORIES.map((_, i) => 4000 + i * 100);

  // Dimensions first: options are kept in memory (a few per product) to price order lines.
  let w = await open('category');
  for (let i = 0; i < CATEGORIES.length; i++) await w.row([categoryIds[i], CATEGORIES[i]]);
  await done('category', w);

  w = await open('vendor');
  for (let i = 0; i < nVendors; i++) {
    const brand = `${BRANDS[i % BRANDS.length]}${i >= BRANDS.length ? ` ${Math.floor(i / BRANDS.length)}` : ''}`;
    const name = fault() ? ` ${brand} ` : brand;
    await w.row([5000 + i * 100, name, String(2000000000 + r.int(0, 7999999999)), `${brand.toLowerCase().replace(/\W+/g, '')}@example.com`]);
  }
  if (o.faults) await w.line('');
  await done('vendor', w);

  const options: OptionInfo[] = [];
  const products = await open('products');
  const belong = await open('products_belong_category');
  const optionFile = await open('option');
  const hasOptions = await open('products_has_options');
  const soldBy = await open('product_sold_vendor');
  for (let i = 0; i < nProducts; i++) {
    const pid = 1200 + i * 100;
    const brand = r.pick(BRANDS);
    const cat = r.pick(categoryIds);
    const name = `${brand} ${CATEGORIES[(cat - 4000) / 100]} ${i}`;
    const desc = `The ${name} is built for everyday use; reliable and fast.`;
    if (fault()) {
      // The wrong separator: the row collapses into two fields.
      await products.row([pid, `${name}  ${desc}`]);
    } else if (fault()) {
      // Invalid UTF-8 in free text, as the real export has.
      products.rows++;
      await products.line(Buffer.concat([Buffer.from(`${pid}\t${name}\t`), Buffer.from([0xff, 0xfe]), Buffer.from(desc)]));
    } else {
      await products.row([pid, name, desc]);
    }
    await belong.row([pid, cat]);
    if (fault()) await belong.row([pid, cat]); // a repeated link row
    for (const { optionId: oid, price, stock, label } of drawOptions(r, pid, name, options)) {
      await optionFile.row([oid, label]);
      await hasOptions.row([pid, oid, stock, price, r.int(0, 1), `${name} spec sheet: ${r.pick(VARIANTS)}`]);
    }
    const v1 = r.int(0, nVendors - 1);
    await soldBy.row([5000 + v1 * 100, pid]);
    if (r.next() < 0.3) {
      const v2 = (v1 + 1 + r.int(0, nVendors - 2)) % nVendors;
      if (v2 !== v1) await soldBy.row([5000 + v2 * 100, pid]);
    }
  }
  if (o.faults) await hasOptions.line('');
  await done('products', products);
  await done('products_belong_category', belong);
  await done('option', optionFile);
  await done('products_has_options', hasOptions);
  await done('product_sold_vendor', soldBy);

  const cards: string[] = [];
  w = await open('user');
  const userCards = await open('user_has_creditcard');
  for (let i = 0; i < nUsers; i++) {
    const u = drawUser(r, i);
    cards.push(u.card);
    await w.row([u.id, u.login, u.password, u.name, u.address, u.email, u.phone]);
    await userCards.row([u.id, fault() ? scientific(u.card) : u.card]);
  }
  await done('user', w);
  await done('user_has_creditcard', userCards);

  const orders = await open('order');
  const placed = await open('orders_placed_user');
  const paid = await open('orders_paid_creditcard');
  const lines = await open('orders_has_products');
  const progress = createProgress('generate orders', o.orders);
  for (let i = 0; i < o.orders; i++) {
    const oid = 1000 + i;
    const user = r.int(0, nUsers - 1);
    const { lines: picked, items, subtotal, shipping, tax } = drawOrderLines(r, options);
    for (const { option, quantity } of picked) await lines.row([oid, option.productId, option.optionId, quantity]);
    const day = r.int(0, 6 * 365);
    let orderDate = dateFrom(day);
    let total = money(subtotal * (1 + tax) + shipping);
    if (fault()) orderDate = '2018-02-30';
    else if (fault()) total = 'N/A';
    const shipName = fault() ? ` ${r.pick(FIRST)} ${r.pick(LAST)} ` : `${r.pick(FIRST)} ${r.pick(LAST)}`;
    await orders.row([oid, items, shipping, tax, total, orderDate, dateFrom(day + r.int(1, 7)), shipName, `${r.int(1, 99999)} ${r.pick(STREETS)}, ${r.pick(CITIES)}`, `TR${String(r.int(0, 9999999)).padStart(7, '0')}`, r.int(0, 1)]);
    if (o.faults && i % 997 === 500) await orders.line('');
    await placed.row([100 + user, oid]);
    const card = cards[user];
    await paid.row([fault() ? scientific(card) : card, oid], ',');
    if ((i & 0xffff) === 0) progress.update(i, i);
  }
  progress.update(o.orders, o.orders);
  progress.stop();
  await done('order', orders);
  await done('orders_placed_user', placed);
  await done('orders_paid_creditcard', paid);
  await done('orders_has_products', lines);

  // Stream sources: carts and what they hold.
  const carts = await open('shoppingcart');
  const cartLines = await open('carts_has_products');
  for (let i = 0; i < nCarts; i++) {
    const cid = 3000 + i * 100;
    await carts.row([cid, r.next() < 0.5 ? 1 : 0]);
    for (const { option, quantity } of drawLines(r, options)) await cartLines.row([cid, option.productId, option.optionId, quantity]);
  }
  await done('shoppingcart', carts);
  await done('carts_has_products', cartLines);
  return counts;
}

/**
 * The store's real export in miniature: sizes like the real sample (tens of rows per file) and
 * each of its quirks at a fixed, documented place, so tests can name the line of every flaw.
 * Small enough to build in memory. Line numbers below are 1-based file lines (header = 1).
 */
function parseOptions(argv: string[]): GenerateOptions | 'help' {
  const values = parseCommandLine(
    argv,
    {
      orders: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      faults: { type: 'boolean' },
      'fault-rate': { type: 'string' },
      quirks: { type: 'string' },
    },
    HELP,
  );
  if (values === 'help') return 'help';
  const quirks = (v: unknown): 'real-export' | undefined => {
    if (v === undefined) return undefined;
    if (v !== 'real-export') throw new UsageError(`--quirks must be 'real-export', got '${String(v)}'`);
    return v;
  };
  const num = (name: string, v: unknown, dflt: number, min: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got '${String(v)}'`);
    return n;
  };
  return {
    orders: Math.floor(num('orders', values.orders, 500, 1)),
    out: path.resolve(String(values.out ?? 'data_source')),
    seed: Math.floor(num('seed', values.seed, 42, 0)),
    faults: Boolean(values.faults),
    faultRate: num('fault-rate', values['fault-rate'], 0.02, 0),
    quirks: quirks(values.quirks),
  };
}

if (require.main === module) {
  main(async () => {
    try {
      const opts = parseOptions(process.argv.slice(2));
      if (opts === 'help') return 0;
      const t0 = Date.now();
      const counts = await generate(opts);
      logger.info('data generated', { out: opts.out, seconds: (Date.now() - t0) / 1000 });
      for (const [name, n] of Object.entries(counts)) process.stdout.write(`${name.padEnd(26)} ${String(n).padStart(10)} rows\n`);
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}
