/**
 * Stream micro-batches into DuckDB, exactly once: rows, quarantined events and the consumed
 * offsets are written in one transaction, so a consumer resuming from the stored offsets
 * neither loses nor repeats an event.
 *
 * Rows are upserted by the destination key (INSERT ... ON CONFLICT DO UPDATE; stream tables have
 * that key as PRIMARY KEY). Within one batch a later event for a key wins. The whole batch is
 * appended as text (data chunks) to a temporary table and cast to the column types in SQL: one
 * upsert statement per destination and batch.
 * `inTransaction` lets the stream layer maintain derived tables (vendor availability, outbox)
 * in the same transaction.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBDataChunk, LIST, VARCHAR, listValue } from '@duckdb/node-api';
import { DUCKDB_TYPES, quoteIdent } from '../ddl';
import {
  AVAILABILITY_COLUMNS_DDL,
  AVAILABILITY_PENDING_DDL,
  AVAILABILITY_TABLE,
  OUTBOX_COLUMNS_DDL,
  utcTimestamp,
} from '../stream/availability';
import { OUTBOX_PARKED_DDL } from '../stream/outbox';
import { sqlString } from './duckdb-connect';
import type { CellValue, Row, StreamOffset, StreamWrite } from './types';

/** Bookkeeping tables the stream layer needs in each dataset. */
export const STREAM_BOOKKEEPING_DDL = (dataset: string): string[] => [
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_offsets (consumer_group VARCHAR NOT NULL, topic VARCHAR NOT NULL, ` +
    `partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL, ` +
    `PRIMARY KEY (consumer_group, topic, partition))`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_outbox (${OUTBOX_COLUMNS_DDL})`,
  // Files made before the outbox had its publish order.
  `ALTER TABLE ${dataset}._stream_outbox ADD COLUMN IF NOT EXISTS seq BIGINT`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_outbox_parked (${OUTBOX_PARKED_DDL})`,
  `CREATE TABLE IF NOT EXISTS ${dataset}.${AVAILABILITY_TABLE} (${AVAILABILITY_COLUMNS_DDL})`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._availability_pending (${AVAILABILITY_PENDING_DDL})`,
];

const cellText = (v: CellValue): string | null => {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return utcTimestamp(v);
  return String(v);
};

/** Last event per key wins (ON CONFLICT cannot touch one row twice in a statement). */
function lastPerKey(key: readonly string[], rows: readonly Row[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const r of rows) {
    const k = key.length === 1 ? String(r[key[0]] ?? '\u0000') : key.map((c) => String(r[c] ?? '\u0000')).join('\u0001');
    byKey.delete(k);
    byKey.set(k, r);
  }
  return [...byKey.values()];
}

export async function applyStreamBatchDuckDb(
  c: DuckDBConnection,
  write: StreamWrite,
  inTransaction?: (c: DuckDBConnection) => Promise<void>,
): Promise<void> {
  await applyStreamWritesDuckDb(c, [write], inTransaction);
}

/**
 * Several micro-batches (e.g. one per partition fetched together) in ONE transaction: a group
 * commit. All rows, quarantined events and offsets become visible together or not at all.
 */
export async function applyStreamWritesDuckDb(
  c: DuckDBConnection,
  writes: readonly StreamWrite[],
  inTransaction?: (c: DuckDBConnection) => Promise<void>,
): Promise<void> {
  const now = utcTimestamp(new Date());
  await c.run('BEGIN TRANSACTION');
  try {
    const merged = mergeByDestination(writes);
    for (const write of merged) await writeOne(c, write, now);
    await storeOffsets(c, merged, now);
    if (inTransaction) await inTransaction(c);
    await testPauseBeforeCommit();
    await c.run('COMMIT');
  } catch (e) {
    await c.run('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * One write per destination and group: the slices' rows in their order (a later event of a key
 * still wins), their quarantined events, and the highest offset per partition. A commit of many
 * small slices then costs one load and one upsert per table, not one per slice.
 */
export function mergeByDestination(writes: readonly StreamWrite[]): StreamWrite[] {
  const merged = new Map<string, { destination: StreamWrite['destination']; consumerGroup: string; upserts: Row[]; eventIds: string[]; quarantine: StreamWrite['quarantine'][number][]; offsets: Map<string, StreamOffset> }>();
  for (const w of writes) {
    const k = `${w.destination.name}\u0000${w.consumerGroup}`;
    let m = merged.get(k);
    if (!m) {
      m = { destination: w.destination, consumerGroup: w.consumerGroup, upserts: [], eventIds: [], quarantine: [], offsets: new Map() };
      merged.set(k, m);
    }
    for (const r of w.upserts) m.upserts.push(r);
    for (const id of w.eventIds) m.eventIds.push(id);
    for (const q of w.quarantine) m.quarantine.push(q);
    for (const o of w.offsets) {
      const ok = `${o.topic}:${o.partition}`;
      const had = m.offsets.get(ok);
      if (!had || BigInt(o.offset) > BigInt(had.offset)) m.offsets.set(ok, o);
    }
  }
  return [...merged.values()].map((m) => ({ ...m, offsets: [...m.offsets.values()] }));
}

/** The column a stream table keeps its write time in (see catalog: updatedAt). */
const isWriteTime = (col: { name: string; type: string }) => col.name === 'updated_at' && col.type === 'TIMESTAMP';

/** Quarantined events per INSERT statement. */
const QUARANTINE_ROWS = 200;

/** Rows per appended data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;

async function writeOne(c: DuckDBConnection, write: StreamWrite, now: string): Promise<void> {
  const dest = write.destination;
  const ds = quoteIdent(dest.dataset);
  const target = `${ds}.${quoteIdent(dest.table)}`;
  const rows = lastPerKey(dest.key, write.upserts);
  if (rows.length > 0) {
    const cols = dest.columns;
    const keys = new Set(dest.key);
    const nonKey = cols.filter((col) => !keys.has(col.name));
    // updated_at is when the stream wrote the row: this commit's time, one SQL constant (not a
    // timestamp formatted and appended per row).
    const staged = cols.filter((col) => !isWriteTime(col));
    // The batch goes in as text through the appender (data chunks: no SQL values, no per-row
    // statement) into a temporary table, then ONE INSERT ... SELECT casts and upserts it.
    const staging = quoteIdent(`_stream_in_${dest.table}`);
    await c.run(`CREATE TEMP TABLE IF NOT EXISTS ${staging} (${staged.map((_, i) => `c${i} VARCHAR`).join(', ')})`);
    await c.run(`DELETE FROM ${staging}`);
    const appender = await c.createAppender(`_stream_in_${dest.table}`, null, 'temp');
    try {
      for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
        const part = rows.slice(i, i + CHUNK_ROWS);
        const chunk = DuckDBDataChunk.create(staged.map(() => VARCHAR), part.length);
        chunk.setColumns(staged.map((col) => part.map((r) => cellText(r[col.name] ?? null))));
        appender.appendDataChunk(chunk);
      }
    } finally {
      appender.closeSync();
    }
    const sel = cols
      .map((col) => {
        const value = isWriteTime(col) ? `TIMESTAMP '${now}'` : `CAST(c${staged.indexOf(col)} AS ${DUCKDB_TYPES[col.type]})`;
        return `${value} AS ${quoteIdent(col.name)}`;
      })
      .join(', ');
    const conflict =
      nonKey.length > 0
        ? `DO UPDATE SET ${nonKey.map((col) => `${quoteIdent(col.name)} = excluded.${quoteIdent(col.name)}`).join(', ')}`
        : 'DO NOTHING';
    await c.run(
      `INSERT INTO ${target} (${cols.map((col) => quoteIdent(col.name)).join(', ')}) ` +
        `SELECT ${sel} FROM ${staging} ON CONFLICT (${dest.key.map(quoteIdent).join(', ')}) ${conflict}`,
    );
  }
  // Quarantined events in a few statements (each costs milliseconds), as parameters: raw is anything.
  for (let i = 0; i < write.quarantine.length; i += QUARANTINE_ROWS) {
    const part = write.quarantine.slice(i, i + QUARANTINE_ROWS);
    await c.run(
      `INSERT INTO ${ds}._quarantine VALUES ${part.map((_, j) => `(${Array.from({ length: 9 }, (_, k) => `$${j * 9 + k + 1}`).join(', ')})`).join(', ')}`,
      part.flatMap((q) => [q.runId, q.destination, q.source, q.file, q.line, q.column, q.reasonCode, q.reason, q.raw]),
    );
  }
}

/**
 * The writes' next offsets, one statement per dataset (a statement with ON CONFLICT costs
 * milliseconds, whatever its rows: one per partition made most of a small commit). The values
 * are literals: topic and group are quoted, partition and offset are numbers.
 */
async function storeOffsets(c: DuckDBConnection, writes: readonly StreamWrite[], now: string): Promise<void> {
  const byDataset = new Map<string, string[]>();
  for (const w of writes) {
    const rows = byDataset.get(w.destination.dataset) ?? [];
    for (const o of w.offsets) {
      rows.push(`(${sqlString(w.consumerGroup)}, ${sqlString(o.topic)}, ${Number(o.partition)}, ${BigInt(o.offset)}, TIMESTAMP ${sqlString(now)})`);
    }
    byDataset.set(w.destination.dataset, rows);
  }
  for (const [dataset, rows] of byDataset) {
    if (rows.length === 0) continue;
    await c.run(
      `INSERT INTO ${quoteIdent(dataset)}._stream_offsets VALUES ${rows.join(', ')}
       ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
    );
  }
}

export async function readOffsetsDuckDb(
  c: DuckDBConnection,
  group: string,
  topics: readonly string[],
  datasetHint?: string,
): Promise<StreamOffset[]> {
  if (topics.length === 0) return [];
  const datasets = datasetHint ? [datasetHint] : (
    await c.runAndReadAll(
      `SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_name = '_stream_offsets'`,
    )
  ).getRowObjectsJS().map((r) => String(r.table_schema));
  const out: StreamOffset[] = [];
  for (const d of datasets) {
    const rows = (
      await c.runAndReadAll(
        `SELECT topic, partition, next_offset FROM ${quoteIdent(d)}._stream_offsets
         WHERE consumer_group = $1 AND list_contains($2::VARCHAR[], topic) ORDER BY topic, partition`,
        [group, listValue([...topics])],
        [VARCHAR, LIST(VARCHAR)],
      )
    ).getRowObjectsJS();
    for (const r of rows) out.push({ topic: String(r.topic), partition: Number(r.partition), offset: String(r.next_offset) });
  }
  return out;
}

/** Test hook, inert unless set: ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS holds the transaction open. */
async function testPauseBeforeCommit(): Promise<void> {
  const pause = Number(process.env.ETL_TEST_STREAM_PAUSE_BEFORE_COMMIT_MS ?? 0);
  if (pause > 0) await new Promise((r) => setTimeout(r, pause));
}
