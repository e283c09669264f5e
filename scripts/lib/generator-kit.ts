/**
 * What the store's data generators share (generate-data.ts, real-export.ts): the seeded random
 * numbers, the buffered file writer, the word lists, and the value shapes of the real export
 * (dates, money, card numbers and what a spreadsheet makes of them).
 */
import fs from 'node:fs';
import { once } from 'node:events';

/** mulberry32: small, fast, good enough for test data, and identical on every machine (the tests' seeded randomness too). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function rng(seed: number) {
  const next = mulberry32(seed);
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
  };
}
export type Rng = ReturnType<typeof rng>;

/** Buffered file writer that respects backpressure, so memory stays flat at any scale. */
export class Writer {
  private buf: string[] = [];
  private size = 0;
  private readonly stream: fs.WriteStream;
  rows = 0;
  constructor(file: string) {
    this.stream = fs.createWriteStream(file);
  }
  async line(s: string | Buffer): Promise<void> {
    if (Buffer.isBuffer(s)) {
      await this.flush();
      if (!this.stream.write(Buffer.concat([s, Buffer.from('\n')]))) await once(this.stream, 'drain');
      return;
    }
    this.buf.push(s);
    this.size += s.length + 1;
    if (this.size > 1 << 16) await this.flush();
  }
  async row(fields: readonly (string | number)[], sep = '\t'): Promise<void> {
    this.rows++;
    await this.line(fields.join(sep));
  }
  private async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const chunk = this.buf.join('\n') + '\n';
    this.buf = [];
    this.size = 0;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'finish');
  }
}

export const FIRST = ['Anna', 'Carol', 'Julia', 'Irene', 'Rachel', 'Sophie', 'Wendy', 'Gregory', 'Jessica', 'Jason', 'Diana', 'Leroy', 'Hailey', 'Kenneth', 'Nicholas', 'Samantha', 'Corey', 'Michael'];
export const LAST = ['Addison', 'Campbell', 'Jones', 'Everly', 'Rose', 'Sutton', 'West', 'Adams', 'Stephens', 'Smith', 'Mccall', 'Riggs', 'Aguilar', 'Kaiser', 'Moore', 'Molina', 'Ellis', 'Kelly'];
export const STREETS = ['Candy Rd', 'Brown St', 'Seaside St', 'East Dr', 'River Dr', 'West Dr', 'Vine St', 'Holt Glens', 'Miller Tunnel'];
export const CITIES = ['San Francisco, CA', 'Gainesville, FL', 'Seattle, WA', 'Houston, TX', 'Boston, MA', 'Portland, OR', 'Chicago, IL'];
export const CATEGORIES = ['Laptops', 'Mobile phones', 'Tablets', 'Servers', 'PC', 'Cables', 'Headphones', 'Monitors', 'Keyboards', 'Mice', 'Printers', 'Scanners', 'Webcams', 'Speakers', 'Microphones', 'External Drives', 'Memory Cards', 'USB Hubs', 'Routers', 'Switches', 'Modems', 'Projectors', 'Smartwatches', 'Fitness Trackers', 'VR Headsets', 'Drones', 'Game Consoles', 'Smart TVs', 'Streaming Devices', 'E-readers'];
export const BRANDS = ['Apple', 'Microsoft', 'Lenovo', 'Asus', 'Dell', 'Monoprice', 'Sony', 'HP', 'Samsung', 'Google', 'Bose', 'JBL', 'Garmin', 'DJI', 'Philips', 'TP-Link'];
export const VARIANTS = ['13-inch', '15-inch', '64GB', '128GB', '256GB', 'Black', 'Silver', 'Wireless', 'Pro', 'Mini'];
export const CARD_PREFIXES = ['4', '51', '37', '6011', '35'];

export const pad2 = (n: number) => String(n).padStart(2, '0');
export const dateFrom = (day: number) => {
  const d = new Date(Date.UTC(2018, 0, 1) + day * 86400000);
  return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
};
export const money = (x: number) => (Math.round(x * 100) / 100).toFixed(2);

export function cardNumber(r: Rng): string {
  let s = r.pick(CARD_PREFIXES);
  while (s.length < 16) s += String(r.int(0, 9));
  return s;
}
/** What a spreadsheet does to a 16-digit number: 4564148144006084 -> 4.56415E+15. */
export const scientific = (digits: string) => `${(Number(digits) / 10 ** (digits.length - 1)).toFixed(5).replace(/0+$/, '')}E+${digits.length - 1}`;

export interface OptionInfo {
  productId: number;
  optionId: number;
  price: number;
  stock: number;
}

/** One option as drawn for a product, with the name its option row shows. */
export interface DrawnOption extends OptionInfo {
  readonly label: string;
}

/**
 * A product's 1-3 options, drawn in the order both generators depend on for their output (count;
 * then per option price, stock, its name's variant), each added to `options` and yielded before
 * the next is drawn: what the caller draws for an option comes between, as it always did.
 */
export function* drawOptions(r: Rng, productId: number, name: string, options: OptionInfo[]): Generator<DrawnOption> {
  const n = r.int(1, 3);
  for (let j = 1; j <= n; j++) {
    const option = { productId, optionId: productId + j, price: r.int(5, 2500), stock: r.int(0, 60) };
    options.push(option);
    yield { ...option, label: `${name} ${r.pick(VARIANTS)}` };
  }
}

/** A user as both generators draw one: the order of the draws is what their output depends on. */
export function drawUser(r: Rng, i: number) {
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const card = cardNumber(r);
  const address = `${r.int(1, 99999)} ${r.pick(STREETS)}, ${r.pick(CITIES)} ${r.int(10000, 99999)}`;
  const password = `pw-${r.int(100000, 999999)}`;
  const phone = String(2000000000 + r.int(0, 7999999999));
  return {
    id: 100 + i,
    login: `${first.toLowerCase()}${i}`,
    password,
    name: `${first} ${last}`,
    address,
    email: `${first.toLowerCase()}.${last.toLowerCase()}${i}@example.com`,
    phone,
    card,
  };
}

/**
 * The lines of an order or a cart as both generators draw them: 1-4 picks of an option, a
 * repeated one skipped, each kept one with a quantity of 1-3, yielded before the next pick.
 */
export function* drawLines(r: Rng, options: readonly OptionInfo[]): Generator<{ readonly option: OptionInfo; readonly quantity: number }> {
  const seen = new Set<number>();
  for (let k = r.int(1, 4); k > 0; k--) {
    const option = options[r.int(0, options.length - 1)];
    if (seen.has(option.optionId)) continue;
    seen.add(option.optionId);
    yield { option, quantity: r.int(1, 3) };
  }
}

/** An order's lines (drawLines), then its shipping and tax rate: the draws both generators make for an order's money. */
export function drawOrderLines(r: Rng, options: readonly OptionInfo[]) {
  const lines = [...drawLines(r, options)];
  let items = 0;
  let subtotal = 0;
  for (const { option, quantity } of lines) {
    items += quantity;
    subtotal += quantity * option.price;
  }
  return { lines, items, subtotal, shipping: r.int(2, 20), tax: r.int(500, 1025) / 10000 };
}
