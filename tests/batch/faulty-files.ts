/**
 * Test helper for issue 11: writes small source folders of our own (clean rows from the
 * catalog's shapes, plus the faulty lines a test injects) into a temp dir, runs a built job on
 * them, and scans everything a run writes (every warehouse table, report files, stdout/stderr)
 * for injected secrets with a separator-tolerant pattern.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { latestReport, query, runNode, tempDir } from '../helpers/env';

const sourceOf = (name: string) => {
  const s = catalog.sources.find((x) => x.name === name);
  if (!s) throw new Error(`no source ${name}`);
  return s;
};

/** Header line of a source, from the catalog. */
export const header = (source: string): string => {
  const s = sourceOf(source);
  return s.columns.map((c) => c.name).join(s.delimiter);
};

/** Joins values with the source's delimiter. */
export const row = (source: string, ...values: (string | number)[]): string => values.join(sourceOf(source).delimiter);

/** Clean rows of every source a batch job reads: ids from 1000, all valid and linked. */
export function cleanRows(): Record<string, string[]> {
  const r: Record<string, string[]> = {};
  const orders = [1000, 1001, 1002];
  r.order = orders.map((o) => row('order', o, 2, '7', '0.0925', '50.02', '2018-10-17', '2018-10-20', 'Anna', '1 Candy Rd', `ZW${o}`, 1));
  r.orders_placed_user = orders.map((o, i) => row('orders_placed_user', 2000 + i, o));
  r.orders_paid_creditcard = orders.map((o, i) => row('orders_paid_creditcard', `411111111111${1000 + i}`, o));
  r.orders_has_products = orders.map((o) => row('orders_has_products', o, 1200, 1201, 2));
  r.products_has_options = [row('products_has_options', 1200, 1201, 3, '1299', 1, 'spec'), row('products_has_options', 1200, 1202, 0, '10.5', 0, 'spec 2')];
  r.products = [row('products', 1200, 'Laptop', 'A laptop')];
  r.products_belong_category = [row('products_belong_category', 1200, 10)];
  r.category = [row('category', 10, 'Computers')];
  r.option = [row('option', 1201, '13-inch'), row('option', 1202, '15-inch')];
  r.user = [2000, 2001, 2002].map((u) => row('user', u, `user${u}`, `pw-${u}-plain`, 'Full Name', 'Addr', `u${u}@x.io`, '555-0100'));
  r.user_has_creditcard = [2000, 2001, 2002].map((u) => row('user_has_creditcard', u, `55555555555${u}0`));
  r.vendor = [row('vendor', 1, 'Acme', '555-0101', 'a@acme.io'), row('vendor', 2, 'Bolt', '555-0102', 'b@bolt.io')];
  r.shoppingcart = [row('shoppingcart', 3000, 1)];
  r.carts_has_products = [row('carts_has_products', 3000, 1200, 1201, 1)];
  r.product_sold_vendor = [row('product_sold_vendor', 1, 1200)];
  return r;
}

/**
 * A source folder: every source's header + clean rows, with `extra` lines appended to the named
 * sources and `replace` bodies written verbatim instead (null: the file is left out).
 */
export function writeSources(
  extra: Record<string, string[]> = {},
  replace: Record<string, string | Buffer | null> = {},
): string {
  const dir = tempDir('faulty');
  const clean = cleanRows();
  for (const s of catalog.sources) {
    if (s.file in replace) {
      const body = replace[s.file];
      if (body !== null) fs.writeFileSync(path.join(dir, s.file), body);
      continue;
    }
    const lines = [header(s.name), ...(clean[s.name] ?? []), ...(extra[s.name] ?? [])];
    fs.writeFileSync(path.join(dir, s.file), lines.join('\n') + '\n');
  }
  return dir;
}

export interface JobRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly state: string;
  readonly db: string;
}

/** Runs `jobs/<table>.js` on a source folder with its own state folder (JSON logs at info). */
export function runJob(table: string, src: string, env: Record<string, string> = {}, state = tempDir('state')): JobRun {
  const r = runNode(`jobs/${table}.js`, ['--source-dir', src], { ETL_STATE_DIR: state, LOG_LEVEL: 'info', ...env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, state, db: path.join(state, 'warehouse.duckdb') };
}

/** Matches the digits of `card` in order with up to 3 non-digits between any two. */
export function cardPattern(card: string): RegExp {
  const digits = card.replace(/\D/g, '');
  return new RegExp(digits.split('').join('[^0-9]{0,3}'));
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

/** Every row of every table of the warehouse as text, one entry per table. */
export async function warehouseText(db: string): Promise<Record<string, string>> {
  const tables = await query(db, `SELECT table_schema, table_name FROM information_schema.tables`);
  const out: Record<string, string> = {};
  for (const [schema, table] of tables) {
    const name = `"${String(schema)}"."${String(table)}"`;
    out[name] = json(await query(db, `SELECT * FROM ${name}`));
  }
  return out;
}

/** Everything a run wrote: tables, report files, stdout and stderr (logs). */
export async function everythingWritten(run: JobRun): Promise<Record<string, string>> {
  const out: Record<string, string> = { stdout: run.stdout, stderr: run.stderr };
  if (fs.existsSync(run.db)) Object.assign(out, await warehouseText(run.db));
  const reports = path.join(run.state, 'reports');
  if (fs.existsSync(reports)) {
    for (const f of fs.readdirSync(reports)) out[`reports/${f}`] = fs.readFileSync(path.join(reports, f), 'utf8');
  }
  return out;
}

/** Where each secret shows up in clear: `[place, secret]` pairs; [] when none leaked. */
export function leaks(written: Record<string, string>, secrets: { cards?: string[]; passwords?: string[] }): [string, string][] {
  const found: [string, string][] = [];
  for (const [place, text] of Object.entries(written)) {
    for (const c of secrets.cards ?? []) if (cardPattern(c).test(text)) found.push([place, c]);
    for (const p of secrets.passwords ?? []) if (text.includes(p)) found.push([place, p]);
  }
  return found;
}

/** Per source, [read, loaded, quarantined] from the run's report. */
export function accounting(run: JobRun, table: string): Record<string, [number, number, number]> {
  return Object.fromEntries(
    latestReport(run.state, table).sources.map((s) => [s.source, [s.rowsRead, s.rowsLoaded, s.rowsQuarantined]]),
  );
}

/** Quarantine rows of a run as objects. */
export async function quarantine(db: string, source?: string): Promise<{ source: string; line: number; column: string | null; code: string; reason: string; raw: string }[]> {
  const rows = await query(
    db,
    `SELECT source, line::INTEGER, column_name, reason_code, reason, raw FROM store._quarantine
     ${source ? `WHERE source = '${source}'` : ''} ORDER BY source, line`,
  );
  return rows.map(([s, line, column, code, reason, raw]) => ({
    source: String(s),
    line: Number(line),
    column: column === null ? null : String(column),
    code: String(code),
    reason: String(reason),
    raw: String(raw),
  }));
}
