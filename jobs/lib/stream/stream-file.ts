/**
 * The stream layer's own DuckDB file and what it shares with the rest of the warehouse.
 *
 * One consumer process holds the stream file open from start to stop (DuckDB: a file opened
 * read-write by one process cannot be opened by any other, not even read-only). So:
 *  - stock for availability comes from a mirror of `store.dim_products` inside the stream file,
 *    refreshed from the batch file (DUCKDB_PATH) by a brief READ_ONLY attach when that file
 *    changed; a busy batch file keeps the old mirror until the next try (never waits);
 *  - dbt reads a snapshot of the stream file (STREAM_SNAPSHOT_PATH), written by the holder to a
 *    temporary file and renamed over the old one: periodically when something changed, at stop,
 *    and when a `<snapshot>.request` file is newer than the last snapshot (scripts/dbt_stream_snapshot.py
 *    drops it). When no process holds the stream file, the dbt side copies it itself.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../ddl';
import { logger } from '../log';
import { isLockError } from '../sql/duckdb-file';
import { sqlString } from '../sql/quote';
import { withTransaction } from '../sql/statements';
import { markAvailabilityPending } from './availability';

const MIRROR_ALIAS = '_batch_src';
const SNAPSHOT_ALIAS = '_snapshot_out';

/** What the last mirror refresh saw: the batch file's stat and the content marker of dim_products. */
export interface MirrorState {
  stat: string | null;
  marker: string | null;
}

/** mtime and size of a DuckDB file and its WAL: changes whenever a process wrote to it. */
export function fileStamp(file: string): string | null {
  const one = (f: string) => {
    try {
      const s = fs.statSync(f);
      return `${s.mtimeMs}:${s.size}`;
    } catch {
      return '-';
    }
  };
  if (!fs.existsSync(file)) return null;
  return `${one(file)}|${one(`${file}.wal`)}`;
}

/**
 * Replaces `<dataset>.dim_products` in the stream file with the batch file's when the batch file
 * changed and its dim_products content differs, and marks all availability pending in the same
 * transaction. Returns true when the mirror was replaced; false when nothing changed, the batch
 * file does not exist or is busy (held by a writer: tried again at the next call).
 */
export async function refreshProductMirror(
  c: DuckDBConnection,
  batchPath: string,
  dataset: string,
  state: MirrorState,
): Promise<boolean> {
  const stat = fileStamp(batchPath);
  if (stat === null || stat === state.stat) return false;
  try {
    await c.run(`ATTACH ${sqlString(batchPath)} AS ${MIRROR_ALIAS} (READ_ONLY)`);
  } catch (e) {
    if (!isLockError(e)) throw e;
    logger.debug('stream: batch file busy, dim_products mirror kept for now', { file: batchPath });
    return false;
  }
  const ds = quoteIdent(dataset);
  const src = `${MIRROR_ALIAS}.${ds}.dim_products`;
  try {
    const exists = (
      await c.runAndReadAll(
        `SELECT COUNT(*) AS n FROM duckdb_tables() WHERE database_name = '${MIRROR_ALIAS}' AND schema_name = $1 AND table_name = 'dim_products'`,
        [dataset],
      )
    ).getRowObjectsJS()[0].n;
    if (Number(exists) === 0) {
      state.stat = stat;
      return false;
    }
    const marker = String(
      (
        await c.runAndReadAll(
          `SELECT COUNT(*) || ':' || COALESCE(SUM(hash(product_id, option_id, stock_quantity)), 0) AS m FROM ${src}`,
        )
      ).getRowObjectsJS()[0].m,
    );
    state.stat = stat;
    if (marker === state.marker) return false;
    await withTransaction(c, async (tx) => {
      await tx.run(`DELETE FROM ${ds}.dim_products`);
      await tx.run(`INSERT INTO ${ds}.dim_products BY NAME SELECT * FROM ${src}`);
      await markAvailabilityPending(tx, dataset, { all: true });
    });
    state.marker = marker;
    logger.info('stream: dim_products mirror refreshed from the batch file; availability recomputed', { file: batchPath });
    return true;
  } finally {
    await c.run(`DETACH ${MIRROR_ALIAS}`).catch(() => undefined);
  }
}

/**
 * Copies the database open on `c` (the stream file, or an attached `from`) into `snapshotPath`:
 * written to a temporary file beside it, then renamed over the old snapshot, so a reader sees
 * the old or the new file, never a partial one.
 */
export async function publishSnapshot(c: DuckDBConnection, snapshotPath: string, from?: string): Promise<void> {
  const tmp = `${snapshotPath}.tmp-${process.pid}`;
  for (const f of [tmp, `${tmp}.wal`]) fs.rmSync(f, { force: true });
  fs.mkdirSync(path.dirname(snapshotPath), { recursive: true });
  const db = from ?? String((await c.runAndReadAll('SELECT current_database() AS d')).getRowObjectsJS()[0].d);
  await c.run(`ATTACH ${sqlString(tmp)} AS ${SNAPSHOT_ALIAS}`);
  try {
    await c.run(`COPY FROM DATABASE ${quoteIdent(db)} TO ${SNAPSHOT_ALIAS}`);
  } finally {
    await c.run(`DETACH ${SNAPSHOT_ALIAS}`);
  }
  fs.renameSync(tmp, snapshotPath);
}

const snapshotRequestPath = (snapshotPath: string): string => `${snapshotPath}.request`;

/** mtime (ms) of a pending snapshot request, 0 when none. */
export function snapshotRequestedAt(snapshotPath: string): number {
  try {
    return fs.statSync(snapshotRequestPath(snapshotPath)).mtimeMs;
  } catch {
    return 0;
  }
}
