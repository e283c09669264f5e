/**
 * `npm run generate-data -- --quirks real-export`: a small export (tens of rows per file) with
 * every quirk of the store's real export at fixed places; the committed test fixture
 * tests/fixtures/store-export/ is its output.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { BRANDS, CATEGORIES, CITIES, dateFrom, drawLines, drawOptions, drawOrderLines, drawUser, FIRST, LAST, money, type OptionInfo, rng, scientific, STREETS, VARIANTS } from './generator-kit';

export async function generateRealExport(out: string, seed: number): Promise<Record<string, number>> {
  fs.mkdirSync(out, { recursive: true });
  const r = rng(seed);
  const counts: Record<string, number> = {};
  const FFFD = '\uFFFD'; // already decoded in the real export: a UTF-8 replacement character
  // Header names the real export pads with a trailing space.
  const padded: Record<string, readonly string[]> = {
    category: ['category_id'],
    option: ['option_id'],
    order: ['tax', 'ship_name', 'ship_address'],
    products_has_options: ['product_id', 'option_id', 'price', 'on_sale'],
    shoppingcart: ['shopping_cart_id'],
    vendor: ['vendor_id', 'vendor_name', 'vendor_phone', 'vendor_email'],
  };
  const write = (name: string, rows: readonly string[], blankLineAtEnd = false) => {
    const s = catalog.sources.find((x) => x.name === name)!;
    const header = s.columns.map((c) => ((padded[name] ?? []).includes(c.name) ? `${c.name} ` : c.name)).join(s.delimiter);
    const body = [header, ...rows, ...(blankLineAtEnd ? [''] : [])].join('\n') + '\n';
    fs.writeFileSync(path.join(out, s.file), body);
    counts[name] = rows.length;
  };
  const tsv = (...fields: (string | number)[]) => fields.join('\t');

  // category: 30 names; the line break after 4600 is lost, merging 4700 into its name.
  const categoryIds = CATEGORIES.map((_, i) => 4000 + i * 100);
  const category: string[] = [];
  for (let i = 0; i < CATEGORIES.length; i++) {
    if (i === 6) category.push(tsv(categoryIds[6], `${CATEGORIES[6]}${categoryIds[7]} ${CATEGORIES[7]}`));
    else if (i !== 7) category.push(tsv(categoryIds[i], CATEGORIES[i]));
  }
  write('category', category);

  // vendor: 20 vendors, names padded (" Microsoft ", "Apple "), a blank line at the end.
  const nVendors = 20;
  const vendor: string[] = [];
  for (let i = 0; i < nVendors; i++) {
    const brand = `${BRANDS[i % BRANDS.length]}${i >= BRANDS.length ? ` ${Math.floor(i / BRANDS.length)}` : ''}`;
    const name = i % 4 === 1 ? ` ${brand} ` : i % 4 === 2 ? `${brand} ` : brand;
    vendor.push(tsv(5000 + i * 100, name, String(2000000000 + r.int(0, 7999999999)), `${brand.toLowerCase().replace(/\W+/g, '')}@example.com`));
  }
  write('vendor', vendor, true);

  // products and their links. Lines 18 and 19 (products 2800, 2900) have spaces where the tab
  // after the name belongs; 2 descriptions and 4 specs hold U+FFFD; 3 names end in a space.
  const nProducts = 30;
  const options: OptionInfo[] = [];
  const products: string[] = [];
  const belong: string[] = [];
  const optionRows: string[] = [];
  const hasOptions: string[] = [];
  const soldBy: string[] = [];
  let specsWithFffd = 0;
  for (let i = 0; i < nProducts; i++) {
    const pid = 1200 + i * 100;
    const brand = r.pick(BRANDS);
    const cat = r.pick(categoryIds);
    const name = `${brand} ${CATEGORIES[(cat - 4000) / 100]} ${i}`;
    const desc = i === 1 || i === 6 ? `When it${FFFD}s time to relax, the ${name} lasts all day.` : `The ${name} is built for everyday use; reliable and fast.`;
    const shownName = i % 8 === 1 ? `${name} ` : name;
    if (i === 16) products.push(`${pid}\t${name} ${desc}`);
    else if (i === 17) products.push(`${pid}\t${name}  ${desc}`);
    else products.push(tsv(pid, shownName, desc));
    belong.push(tsv(pid, cat));
    // Repeated link rows, as the real export has them (the first one wins).
    if (i >= 9 && i <= 12) belong.push(tsv(pid, cat));
    for (const { optionId: oid, price, stock, label } of drawOptions(r, pid, name, options)) {
      optionRows.push(tsv(oid, label));
      let specs = `${name} spec sheet: ${r.pick(VARIANTS)}`;
      if (i >= 13 && specsWithFffd < 4) {
        specs = `${name}: 20 Hz${FFFD}20,000 Hz`;
        specsWithFffd++;
      }
      if (oid === 1301) specs += ' '; // a padded value
      hasOptions.push(tsv(pid, oid, stock, price, r.int(0, 1), specs));
    }
    const v1 = r.int(0, nVendors - 1);
    soldBy.push(tsv(5000 + v1 * 100, pid));
    if (r.next() < 0.3) {
      const v2 = (v1 + 1 + r.int(0, nVendors - 2)) % nVendors;
      soldBy.push(tsv(5000 + v2 * 100, pid));
    }
  }
  // Products in several categories: a second, different category for two products.
  for (const i of [3, 20]) {
    const pid = 1200 + i * 100;
    const first = Number(belong.find((l) => l.startsWith(`${pid}\t`))!.split('\t')[1]);
    belong.push(tsv(pid, categoryIds[(categoryIds.indexOf(first) + 1) % categoryIds.length]));
  }
  write('products', products);
  write('products_belong_category', belong);
  write('option', optionRows);
  write('products_has_options', hasOptions, true);
  write('product_sold_vendor', soldBy, true);

  // users and their cards: 7 card numbers damaged by a spreadsheet (2.56324E+15), one padded email.
  const nUsers = 27;
  const cards: string[] = [];
  const users: string[] = [];
  const userCards: string[] = [];
  for (let i = 0; i < nUsers; i++) {
    const u = drawUser(r, i);
    cards.push(u.card);
    users.push(tsv(u.id, u.login, u.password, u.name, u.address, `${u.email}${i === 1 ? ' ' : ''}`, u.phone));
    userCards.push(tsv(u.id, i % 4 === 1 ? scientific(u.card) : u.card));
  }
  write('user', users);
  write('user_has_creditcard', userCards);

  // orders: 27; padded values in ship_name, ship_address and tracking_number; 12 of the 27
  // card numbers in the comma-separated payment file damaged into scientific notation.
  const nOrders = 27;
  const orders: string[] = [];
  const placed: string[] = [];
  const paid: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < nOrders; i++) {
    const oid = 1000 + i;
    const user = r.int(0, nUsers - 1);
    const { lines: picked, items, subtotal, shipping, tax } = drawOrderLines(r, options);
    for (const { option, quantity } of picked) lines.push(tsv(oid, option.productId, option.optionId, quantity));
    const day = r.int(270, 300);
    const shipName = `${r.pick(FIRST)} ${r.pick(LAST)}${i % 5 === 2 ? ' ' : ''}`;
    const shipAddress = `${r.int(1, 99999)} ${r.pick(STREETS)}, ${r.pick(CITIES)}${i % 7 === 2 ? ' ' : ''}`;
    const tracking = `TR${String(r.int(0, 9999999)).padStart(7, '0')}${i % 2 === 0 ? ' ' : ''}`;
    orders.push(tsv(oid, items, shipping, tax, money(subtotal * (1 + tax) + shipping), dateFrom(day), dateFrom(day + r.int(1, 7)), shipName, shipAddress, tracking, r.int(0, 1)));
    placed.push(tsv(100 + user, oid));
    paid.push([(i * 7) % 9 < 4 ? scientific(cards[user]) : cards[user], oid].join(','));
  }
  write('order', orders);
  write('orders_placed_user', placed);
  write('orders_paid_creditcard', paid);
  write('orders_has_products', lines);

  // carts (stream sources): clean, apart from the padded header name.
  const carts: string[] = [];
  const cartLines: string[] = [];
  for (let i = 0; i < 15; i++) {
    const cid = 3000 + i * 100;
    carts.push(tsv(cid, r.next() < 0.5 ? 1 : 0));
    for (const { option, quantity } of drawLines(r, options)) cartLines.push(tsv(cid, option.productId, option.optionId, quantity));
  }
  write('shoppingcart', carts);
  write('carts_has_products', cartLines);
  return counts;
}
