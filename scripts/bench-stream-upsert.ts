#!/usr/bin/env node
/**
 * `npm run bench:stream-upsert`: what one small stream commit costs on a large cart table, with
 * the stream write's form (no key; `DELETE ... USING` + `INSERT`) against a primary key and
 * `INSERT ... ON CONFLICT DO UPDATE` (the form before), on the same machine in one run. Each
 * table gets N rows of fact_carts_has_products' shape, then commits of E events alternate between
 * the two, for recent carts (the newest ids, as a live shop's events mostly are) and for random
 * old ones. Figures only; nothing here asserts a time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main, parseCommandLine, reportError } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { UsageError } from '../jobs/lib/errors';
import { openDuckDb } from '../jobs/lib/sql/duckdb-file';

const HELP = `Usage: npm run bench:stream-upsert -- [--rows N] [--events E] [--commits C]

Builds two cart tables of N rows (default 5000000) in a scratch DuckDB file under
$ETL_STATE_DIR/bench, one without a key and one with a primary key, then times C commits
(default 5) of E events (default 100) into each, for recent and for random old carts, and
prints the load time and the median commit time of each.`;

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench(rows: number, events: number, commits: number): Promise<void> {
  const file = path.join(loadConfig().stateDir, 'bench', 'stream-upsert.duckdb');
  for (const f of [file, `${file}.wal`]) fs.rmSync(f, { force: true });
  const db = await openDuckDb(file);
  const c = db.connection;
  const carts = Math.max(1, Math.floor(rows / 7));
  const cols = 'shopping_cart_id VARCHAR NOT NULL, product_id VARCHAR NOT NULL, option_id VARCHAR NOT NULL, quantity BIGINT, updated_at TIMESTAMP NOT NULL';
  const out: string[] = [];
  try {
    const load: Record<string, number> = {};
    for (const [t, pk] of [['unkeyed', ''], ['keyed', ', PRIMARY KEY (shopping_cart_id, product_id, option_id)']] as const) {
      await c.run(`CREATE TABLE ${t} (${cols}${pk})`);
      const t0 = process.hrtime.bigint();
      await c.run(`INSERT INTO ${t} SELECT (1000000 + r // 7)::VARCHAR, (r % 5000)::VARCHAR, (r % 7)::VARCHAR, 1, now() FROM range(${rows}) t(r)`);
      await c.run('CHECKPOINT');
      load[t] = ms(t0);
    }
    const times: Record<string, number[]> = {};
    for (let i = 0; i < commits; i++) {
      for (const kind of ['recent', 'random'] as const) {
        const cart = kind === 'recent' ? `1000000 + ${carts} - 50 + r % 60` : `1000000 + (r * 7919 * ${i + 1}) % ${carts}`;
        await c.run(
          `CREATE OR REPLACE TEMP TABLE batch AS SELECT (${cart})::VARCHAR AS shopping_cart_id, (r % 5000)::VARCHAR AS product_id,
             (r % 7)::VARCHAR AS option_id, 2::BIGINT AS quantity, now()::TIMESTAMP AS updated_at FROM range(${events}) t(r)`,
        );
        let t0 = process.hrtime.bigint();
        await c.run('BEGIN TRANSACTION');
        await c.run(`DELETE FROM unkeyed USING batch b WHERE unkeyed.shopping_cart_id = b.shopping_cart_id
                       AND unkeyed.product_id = b.product_id AND unkeyed.option_id = b.option_id`);
        await c.run('INSERT INTO unkeyed SELECT * FROM batch');
        await c.run('COMMIT');
        (times[`${kind} unkeyed`] ??= []).push(ms(t0));
        t0 = process.hrtime.bigint();
        await c.run('BEGIN TRANSACTION');
        await c.run(`INSERT INTO keyed SELECT * FROM batch ON CONFLICT (shopping_cart_id, product_id, option_id)
                       DO UPDATE SET quantity = excluded.quantity, updated_at = excluded.updated_at`);
        await c.run('COMMIT');
        (times[`${kind} keyed`] ??= []).push(ms(t0));
      }
    }
    out.push(`stream upsert benchmark: ${rows.toLocaleString('en-US')} rows, commits of ${events} events, median of ${commits}; ${os.cpus().length} cores, load average ${os.loadavg().map((n) => n.toFixed(2)).join(' ')}`);
    out.push(`  load ${rows.toLocaleString('en-US')} rows      no key ${load.unkeyed.toFixed(0)} ms, primary key ${load.keyed.toFixed(0)} ms`);
    for (const kind of ['recent', 'random']) {
      out.push(`  commit, ${kind.padEnd(7)} carts   delete + insert, no key ${median(times[`${kind} unkeyed`]).toFixed(1)} ms; ON CONFLICT, primary key ${median(times[`${kind} keyed`]).toFixed(1)} ms`);
    }
  } finally {
    db.close();
    for (const f of [file, `${file}.wal`]) fs.rmSync(f, { force: true });
  }
  process.stdout.write(out.join('\n') + '\n');
}

if (require.main === module) {
  main(async () => {
    try {
      const v = parseCommandLine(process.argv.slice(2), { rows: { type: 'string' }, events: { type: 'string' }, commits: { type: 'string' } }, HELP);
      if (v === 'help') return 0;
      const num = (s: string | undefined, d: number, name: string) => {
        const n = s === undefined ? d : Number(s);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1`);
        return n;
      };
      await bench(num(v.rows, 5_000_000, 'rows'), num(v.events, 100, 'events'), num(v.commits, 5, 'commits'));
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}
