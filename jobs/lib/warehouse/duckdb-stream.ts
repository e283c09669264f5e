/**
 * Stream micro-batches into DuckDB, exactly once: rows, quarantined events and the consumed
 * offsets are written in one transaction, so a consumer resuming from the stored offsets
 * neither loses nor repeats an event.
 *
 * Rows are upserted by the destination key: the stream tables have no primary key (see
 * writeOne), each batch deletes the rows of its keys and inserts its own, one per key (within a
 * batch a later event for a key wins). The whole batch is one text parameter, parsed and cast to
 * the column types in SQL: two statements per destination and batch.
 * `inTransaction` lets the stream layer maintain derived tables (vendor availability, outbox)
 * in the same transaction.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LIST, VARCHAR, listValue } from '@duckdb/node-api';
import type { StreamDestination } from '../catalog-types';
import { DUCKDB_TYPES, duckdbCreateTable, quoteIdent } from '../ddl';
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

/**
 * A stream file made when stream tables had a primary key (upserted with ON CONFLICT) keeps
 * working, but pays the index on every write: rebuild such a table without it, once, in one
 * transaction (same columns, same rows).
 */
export async function dropStreamPrimaryKeys(c: DuckDBConnection, dests: readonly StreamDestination[]): Promise<void> {
  // One look at the file's primary keys for all of them (start-up work).
  const keyed = new Set(
    (await c.runAndReadAll(
      `SELECT schema_name || '.' || table_name FROM duckdb_constraints()
       WHERE database_name = current_database() AND constraint_type = 'PRIMARY KEY'`,
    )).getRowsJS().map(([t]) => String(t)),
  );
  for (const dest of dests.filter((d) => keyed.has(`${d.dataset}.${d.table}`))) {
    const target = `${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`;
    const rebuilt = `${quoteIdent(dest.dataset)}.${quoteIdent(`${dest.table}__unkeyed`)}`;
    await c.run('BEGIN TRANSACTION');
    try {
      await c.run(duckdbCreateTable(dest, rebuilt, true));
      await c.run(`INSERT INTO ${rebuilt} SELECT * FROM ${target}`);
      await c.run(`DROP TABLE ${target}`);
      await c.run(`ALTER TABLE ${rebuilt} RENAME TO ${quoteIdent(dest.table)}`);
      await c.run('COMMIT');
    } catch (e) {
      await c.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
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

/** A batch's rows, typed and one per key, between the parse and the upsert. */
const STAGING = '_stream_in';

async function writeOne(c: DuckDBConnection, write: StreamWrite, now: string): Promise<void> {
  const dest = write.destination;
  const ds = quoteIdent(dest.dataset);
  const target = `${ds}.${quoteIdent(dest.table)}`;
  if (write.upserts.length > 0) {
    const cols = dest.columns;
    // updated_at is when the stream wrote the row: this commit's time, one SQL constant (not a
    // timestamp formatted and sent per row).
    const staged = cols.filter((col) => !isWriteTime(col));
    // The batch goes in as ONE text parameter, a JSON array of text per row and line (JSON
    // escapes any newline in a value): DuckDB splits and parses it on its own threads. Handing
    // over the values one by one (appender data chunks) kept the main thread busy per value.
    const lines = write.upserts.map((r) => JSON.stringify(staged.map((col) => cellText(r[col.name] ?? null)))).join('\n');
    // One row per key, the last event's (line order is arrival order): a hash aggregate, on
    // DuckDB's threads (a window over the key cost twice as much; arg_max_null keeps a NULL).
    const sel = cols
      .map((col) => {
        const typed = `CAST(_f[${staged.indexOf(col) + 1}] AS ${DUCKDB_TYPES[col.type]})`;
        const value = isWriteTime(col) ? `TIMESTAMP '${now}'` : dest.key.includes(col.name) ? typed : `arg_max_null(${typed}, _n)`;
        return `${value} AS ${quoteIdent(col.name)}`;
      })
      .join(', ');
    const key = dest.key.map(quoteIdent);
    await c.run(
      `CREATE OR REPLACE TEMP TABLE ${STAGING} AS SELECT ${sel} FROM (
         SELECT from_json(_l, '["VARCHAR"]') AS _f, _n FROM (
           SELECT unnest(_ls) AS _l, generate_subscripts(_ls, 1) AS _n FROM (SELECT string_split($1, chr(10)) AS _ls)))
       GROUP BY ALL`,
      [lines],
    );
    // An upsert as delete + insert: stream tables have no primary key, whose index costs every
    // row of every commit (`npm run bench:stream-upsert`, docs/stream.md). One row per key holds
    // by construction: every write of a key goes through here, in the commit with its offsets.
    await c.run(
      `DELETE FROM ${target} USING ${STAGING} _s WHERE ${key.map((k) => `${target}.${k} = _s.${k}`).join(' AND ')};
       INSERT INTO ${target} (${cols.map((col) => quoteIdent(col.name)).join(', ')}) SELECT * FROM ${STAGING}`,
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
