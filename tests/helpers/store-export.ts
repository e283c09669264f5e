/**
 * A tiny, independent reader of the store's source files, for expected values in tests.
 *
 * It shares no code with the pipeline (jobs/lib/extract.ts, stage.ts): only the catalog's
 * spec (file, delimiter, column types, key) and the documented rules of docs/batch.md —
 * header names and values are trimmed; blank lines are skipped and counted; a row with the
 * wrong number of fields is quarantined (`field_count`); a value that does not fit its type is
 * quarantined with the reason of its first bad column; a later row repeating a key is
 * quarantined (`duplicate_key`, the first wins). Plain string splitting, no CSV parser: the
 * store's files have no quoting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { ROOT } from './env';

/** The committed fixture: the generator's `--quirks real-export` output. */
export const STORE_EXPORT = path.join(ROOT, 'tests', 'fixtures', 'store-export');

export type Row = Record<string, string>;

export interface SourceFacts {
  readonly source: string;
  readonly header: string[];
  /** Header names written with surrounding spaces. */
  readonly paddedNames: string[];
  readonly rowsRead: number;
  readonly blankLines: number;
  /** Good rows, trimmed, in file order; `line` is the 1-based file line. */
  readonly loaded: (Row & { line: string })[];
  /** Quarantined rows: file line and reason code. */
  readonly quarantined: { line: number; code: string }[];
  /** Values (of rows with the right field count) that had surrounding spaces. */
  readonly valuesTrimmed: number;
  /** Values holding U+FFFD per column (rows with the right field count). */
  readonly replacementChars: Record<string, number>;
}

const SCIENTIFIC = /^\d+(\.\d+)?E\+\d+$/i;

function validDate(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** Reason code for one value of a column of type `type`, or null when it is good. */
function badValue(type: string, v: string, isKey: boolean): string | null {
  if (v === '') return isKey ? 'missing_key' : null;
  switch (type) {
    case 'id':
      return /^\d+$/.test(v) ? null : SCIENTIFIC.test(v) ? 'scientific_notation_id' : 'bad_identifier';
    case 'card':
      return /^\d{12,19}$/.test(v) ? null : SCIENTIFIC.test(v) ? 'scientific_notation_id' : 'bad_card_number';
    case 'int':
      return /^-?\d+$/.test(v) ? null : 'not_an_integer';
    case 'decimal':
      return /^-?\d+(\.\d{1,4})?$/.test(v) ? null : 'not_a_number';
    case 'bool01':
      return v === '0' || v === '1' ? null : 'bad_boolean';
    case 'date':
      return validDate(v) ? null : 'bad_date';
    default:
      return null;
  }
}

export function readSource(dir: string, name: string): SourceFacts {
  const spec = catalog.sources.find((s) => s.name === name);
  if (!spec) throw new Error(`no source ${name} in the catalog`);
  const text = fs.readFileSync(path.join(dir, spec.file), 'utf8');
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines[lines.length - 1] === '') lines.pop(); // the file's final newline
  const rawHeader = lines[0].replace(/^\uFEFF/, '').split(spec.delimiter);
  const header = rawHeader.map((h) => h.trim());
  const facts: SourceFacts = {
    source: name,
    header,
    paddedNames: rawHeader.filter((h) => h !== h.trim()).map((h) => h.trim()),
    rowsRead: 0,
    blankLines: 0,
    loaded: [],
    quarantined: [],
    valuesTrimmed: 0,
    replacementChars: {},
  };
  const seen = new Set<string>();
  const types = new Map(spec.columns.map((c) => [c.name, c.type as string]));
  lines.slice(1).forEach((raw, i) => {
    const line = i + 2;
    if (raw.trim() === '') {
      (facts as { blankLines: number }).blankLines++;
      return;
    }
    (facts as { rowsRead: number }).rowsRead++;
    const fields = raw.split(spec.delimiter);
    if (fields.length !== header.length) {
      facts.quarantined.push({ line, code: 'field_count' });
      return;
    }
    const row: Row = {};
    header.forEach((h, k) => {
      const v = fields[k];
      if (v !== v.trim()) (facts as { valuesTrimmed: number }).valuesTrimmed++;
      if (v.includes('\uFFFD')) facts.replacementChars[h] = (facts.replacementChars[h] ?? 0) + 1;
      row[h] = v.trim();
    });
    for (const h of header) {
      const code = badValue(types.get(h) ?? 'string', row[h], spec.key.includes(h));
      if (code) {
        facts.quarantined.push({ line, code });
        return;
      }
    }
    const key = spec.key.map((k) => row[k]).join('\u0000');
    if (seen.has(key)) {
      facts.quarantined.push({ line, code: 'duplicate_key' });
      return;
    }
    seen.add(key);
    facts.loaded.push({ ...row, line: String(line) });
  });
  return facts;
}

export function readAll(dir: string): Record<string, SourceFacts> {
  return Object.fromEntries(catalog.sources.map((s) => [s.name, readSource(dir, s.name)]));
}

/** Reason code -> count over some sources. */
export function reasons(facts: SourceFacts[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of facts) for (const q of f.quarantined) out[q.code] = (out[q.code] ?? 0) + 1;
  return out;
}

/**
 * Rows of each batch destination, by the documented joins (jobs/transforms/*.sql): one per
 * good order, order line, user or vendor; one per good product and option (a product without
 * an option still gives one row).
 */
export function destinationRows(f: Record<string, SourceFacts>): Record<string, number> {
  const optionsPerProduct = new Map<string, number>();
  for (const o of f.products_has_options.loaded) optionsPerProduct.set(o.product_id, (optionsPerProduct.get(o.product_id) ?? 0) + 1);
  return {
    'store.fact_orders': f.order.loaded.length,
    'store.fact_order_details': f.orders_has_products.loaded.length,
    'store.dim_products': f.products.loaded.reduce((n, p) => n + Math.max(1, optionsPerProduct.get(p.product_id) ?? 0), 0),
    'store.dim_users': f.user.loaded.length,
    'store.dim_vendors': f.vendor.loaded.length,
  };
}

/** Decimal text to an exact integer count of 1/10000 (DECIMAL(18,4) in the warehouse). */
export function toUnits(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,4}))?$/.exec(text.trim());
  if (!m) throw new Error(`not a decimal: '${text}'`);
  const units = BigInt(m[2]) * 10000n + BigInt((m[3] ?? '').padEnd(4, '0'));
  return m[1] ? -units : units;
}
export const unitsToText = (u: bigint) => `${u / 10000n}.${(u % 10000n).toString().padStart(4, '0')}`;

/** user_revenue as documented: sum of total_cost over delivered orders, per user. */
export function expectedUserRevenue(f: Record<string, SourceFacts>): Map<string, { full_name: string | null; units: bigint }> {
  const placed = new Map(f.orders_placed_user.loaded.map((r) => [r.order_id, r.user_id]));
  const users = new Map(f.user.loaded.map((r) => [r.user_id, r]));
  const out = new Map<string, { full_name: string | null; units: bigint }>();
  for (const o of f.order.loaded) {
    if (o.delivery_status !== '1') continue;
    const userId = placed.get(o.order_id);
    if (!userId) continue;
    const e = out.get(userId) ?? { full_name: users.get(userId)?.full_name ?? null, units: 0n };
    e.units += toUnits(o.total_cost);
    out.set(userId, e);
  }
  return out;
}

/** The top `n` users by revenue as the summary prints them: id, name, revenue with 2 decimals. */
export function topUsers(f: Record<string, SourceFacts>, n: number): string[][] {
  return [...expectedUserRevenue(f)]
    .sort((a, b) => (a[1].units === b[1].units ? a[0].localeCompare(b[0]) : a[1].units > b[1].units ? -1 : 1))
    .slice(0, n)
    .map(([id, e]) => [id, e.full_name ?? '', (Number(e.units) / 10000).toFixed(2)]);
}
