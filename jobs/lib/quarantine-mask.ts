/**
 * The one place where a batch job's quarantine is masked before it is written anywhere (the
 * warehouse's `_quarantine`, the report's samples): reasons and raw text of every row, whichever
 * step made them (the exact path, the bulk path's hand-back, duplicate keys and derived-value
 * rules built in SQL), go through maskCardRuns. Raw text was already redacted by column
 * (redactRaw); this pass is the free-text rule applied to everything alike.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { maskCardRuns } from './pii';

/** Rows that may hold a card number (12 digits or more in the reason or the raw text), a chunk at a time. */
const CANDIDATES = (table: string) =>
  `SELECT rowid, reason, raw FROM ${table}
   WHERE rowid > $1
     AND (length(regexp_replace(reason, '[^0-9]', '', 'g')) >= 12
          OR length(regexp_replace(coalesce(raw, ''), '[^0-9]', '', 'g')) >= 12)
   ORDER BY rowid LIMIT ${CHUNK}`;
/** Rows held in memory at once (a file of bad rows may quarantine millions). */
const CHUNK = 10_000;

/** Masks card numbers in the reason and raw of every quarantine row of `table`; returns how many rows changed. */
export async function maskQuarantineRows(c: DuckDBConnection, table: string): Promise<number> {
  await c.run(`CREATE OR REPLACE TEMP TABLE _masked (id BIGINT, reason VARCHAR, raw VARCHAR)`);
  try {
    let changed = 0;
    let last = -1n;
    for (;;) {
      const rows = (await c.runAndReadAll(CANDIDATES(table), [last])).getRowsJS() as [bigint, string, string | null][];
      if (rows.length === 0) break;
      last = BigInt(rows[rows.length - 1][0]);
      const a = await c.createAppender('_masked');
      for (const [rowid, reason, raw] of rows) {
        const r = maskCardRuns(reason);
        const w = raw === null ? null : maskCardRuns(raw);
        if (r === reason && w === raw) continue;
        a.appendBigInt(BigInt(rowid));
        a.appendVarchar(r);
        if (w === null) a.appendNull();
        else a.appendVarchar(w);
        a.endRow();
        changed++;
      }
      a.closeSync();
    }
    if (changed > 0) await c.run(`UPDATE ${table} SET reason = m.reason, raw = m.raw FROM _masked m WHERE ${table}.rowid = m.id`);
    return changed;
  } finally {
    await c.run(`DROP TABLE _masked`);
  }
}
