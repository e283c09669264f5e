/**
 * Stream micro-batches into DuckDB, exactly once: rows, quarantined events and the consumed
 * offsets are written in one transaction, so a consumer resuming from the stored offsets
 * neither loses nor repeats an event.
 *
 * Rows are upserted by the destination key: the stream tables have no primary key (see
 * upsertRows), each batch deletes the rows of its keys and inserts its own, one per key (within a
 * batch a later event for a key wins). A destination's events are one text, parsed, staged and
 * cast to the column types in SQL; the texts go over in one statement, then the whole transaction
 * in one call (StatementBatch). An event the fast pattern accepted goes in as its own text (the
 * source record's JSON, staged by the catalog's SQL, `stagedSql`), so the consumer builds no row
 * for it; others as rows staged in JavaScript.
 * `inTransaction` lets the stream layer maintain derived tables (vendor availability, outbox)
 * in the same transaction, from the batch's staged rows. The bookkeeping tables: stream-ddl.ts.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LIST, VARCHAR, listValue } from '@duckdb/node-api';
import { stagedSql } from '../../rule-patterns';
import { stagedColumns } from '../../catalog-check';
import { RESCUED_DATA_COLUMN, type SourceTable, type StreamDestination } from '../../catalog-types';
import { DUCKDB_TYPES, duckdbCreateTable, quoteIdent } from '../../ddl';
import { sqlString, utcTimestamp } from '../../sql/quote';
import { withTransaction, type SqlRunner, type StatementBatch } from '../../sql/statements';
import { RecordLines, type CellValue, type Row, type StreamOffset, type StreamWrite } from '../types';
import { testHooks } from '../../config';
import { TextStage } from './text-stage';

/**
 * An accepted event for the DuckDB sink: the source record's JSON text exactly as the stream's
 * fast pattern accepted it (events.ts: one line, `{...}`, every value valid and trimmed), a run
 * of such texts (RecordLines: a slice accepted whole), or a destination row staged in
 * JavaScript (the exact path's events, callers with rows).
 */
export type DuckStreamEvent = string | RecordLines | Row;

/** A record's text (`{...}`), or a run of them: the events the fast pattern accepted. */
const isRecordText = (e: DuckStreamEvent): e is string | RecordLines => typeof e === 'string' || e instanceof RecordLines;

/** A stream micro-batch for DuckDB: StreamWrite with events in either form, in arrival order. */
export interface DuckStreamWrite extends Omit<StreamWrite, 'upserts' | 'eventIds'> {
  /** The source the text events are records of. */
  readonly source: SourceTable;
  readonly events: readonly DuckStreamEvent[];
}

/** Per destination table written by a commit: the temporary table of its staged rows (one per key). */
export type StagedTables = ReadonlyMap<string, string>;

const cellText = (v: CellValue): string | null => {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return utcTimestamp(v);
  return String(v);
};

/**
 * A stream file made when stream tables had a primary key (upserted with ON CONFLICT) keeps
 * working, but pays the index on every write: rebuild such a table without it, once, in one
 * transaction (the catalog's columns, same rows).
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
    await withTransaction(c, async (tx) => {
      await tx.run(duckdbCreateTable(dest, rebuilt, true));
      // By name: a file older than the schema contracts has no rescued-data column (NULL here).
      await tx.run(`INSERT INTO ${rebuilt} BY NAME SELECT * FROM ${target}`);
      await tx.run(`DROP TABLE ${target}`);
      await tx.run(`ALTER TABLE ${rebuilt} RENAME TO ${quoteIdent(dest.table)}`);
    });
  }
}

export async function applyStreamBatchDuckDb(
  c: DuckDBConnection,
  write: StreamWrite,
  source: SourceTable,
): Promise<void> {
  await applyStreamWritesDuckDb(c, [{ ...write, source, events: write.upserts }]);
}

/**
 * Several micro-batches (e.g. one per partition fetched together) in ONE transaction: a group
 * commit. All rows, quarantined events and offsets become visible together or not at all. The
 * events' text is staged on `c` itself first (stageCommit); a caller with a stage of its own
 * stages the next commit while this one runs, and applies it with applyStagedCommit.
 */
export async function applyStreamWritesDuckDb(
  c: DuckDBConnection,
  writes: readonly DuckStreamWrite[],
  inTransaction?: (tx: StatementBatch, staged: StagedTables) => Promise<void>,
): Promise<void> {
  const commit = await stageCommit(TextStage.on(c), writes);
  try {
    await applyStagedCommit(c, commit, inTransaction);
  } finally {
    await commit.release();
  }
}

/** A group commit whose events' text is staged (stageCommit), ready for its transaction. */
export interface StagedCommit {
  readonly merged: readonly DuckStreamWrite[];
  /** The writes with accepted events and the stage table of their text (null: none). */
  readonly events: { readonly text: string; readonly writes: readonly { readonly write: DuckStreamWrite; readonly forms: EventForms }[] } | null;
  /** Drops the staged text (the commit is over, committed or not). */
  release(): Promise<void>;
}

/**
 * The writes merged per destination and their events' text staged (TextStage: outside the
 * transaction, by an appender, no round trip per value). The commit's statements then take no
 * parameters and go to DuckDB in one call (StatementBatch).
 */
export async function stageCommit(stage: TextStage, writes: readonly DuckStreamWrite[]): Promise<StagedCommit> {
  const merged = mergeByDestination(writes);
  const withEvents = merged.filter((w) => w.events.length > 0).map((write) => ({ write, forms: formsOf(write.events) }));
  if (withEvents.length === 0) return { merged, events: null, release: () => Promise.resolve() };
  const text = await stage.stage(withEvents.map(({ write, forms }) => [write.destination.table, eventLines(write, forms)]));
  return { merged, events: { text, writes: withEvents }, release: () => stage.release(text) };
}

/** The transaction of a staged group commit (applyStreamWritesDuckDb); may be run again after a failure. */
export async function applyStagedCommit(
  c: DuckDBConnection,
  { merged, events }: StagedCommit,
  inTransaction?: (tx: StatementBatch, staged: StagedTables) => Promise<void>,
): Promise<void> {
  const now = utcTimestamp(new Date());
  await withTransaction(
    c,
    async (tx) => {
      const staged = new Map<string, string>();
      if (events) for (const { write, forms } of events.writes) staged.set(write.destination.table, await upsertRows(tx, write, forms, events.text, now));
      for (const write of merged) await insertQuarantine(tx, write);
      await storeOffsets(tx, merged, now);
      if (inTransaction) await inTransaction(tx, staged);
      const pause = testPauseMs();
      if (pause > 0) {
        await tx.flush();
        await new Promise((r) => setTimeout(r, pause));
      }
    },
    { batched: true },
  );
}

/**
 * One write per destination and group: the slices' events in their order (a later event of a
 * key still wins), their quarantined events, and the highest offset per partition. A commit of
 * many small slices then costs one load and one upsert per table, not one per slice.
 */
export function mergeByDestination(writes: readonly DuckStreamWrite[]): DuckStreamWrite[] {
  const merged = new Map<string, { destination: StreamDestination; source: SourceTable; consumerGroup: string; events: (readonly DuckStreamEvent[])[]; quarantine: StreamWrite['quarantine'][number][]; offsets: Map<string, StreamOffset> }>();
  for (const w of writes) {
    const k = `${w.destination.name}\u0000${w.consumerGroup}`;
    let m = merged.get(k);
    if (!m) {
      m = { destination: w.destination, source: w.source, consumerGroup: w.consumerGroup, events: [], quarantine: [], offsets: new Map() };
      merged.set(k, m);
    }
    m.events.push(w.events);
    for (const q of w.quarantine) m.quarantine.push(q);
    for (const o of w.offsets) {
      const ok = `${o.topic}:${o.partition}`;
      const had = m.offsets.get(ok);
      if (!had || BigInt(o.offset) > BigInt(had.offset)) m.offsets.set(ok, o);
    }
  }
  return [...merged.values()].map((m) => ({ ...m, events: concatAll(m.events), offsets: [...m.offsets.values()] }));
}

/**
 * The writes' events in order, copied once into an array of their total length: pushed one by
 * one, the 70,000 events of a commit at full speed grew the array step by step (a tenth of a
 * second of the JavaScript thread per million events in a CPU profile).
 */
function concatAll(parts: readonly (readonly DuckStreamEvent[])[]): readonly DuckStreamEvent[] {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Array<DuckStreamEvent>(n);
  let i = 0;
  for (const p of parts) for (let j = 0; j < p.length; j++) out[i++] = p[j];
  return out;
}

/** The column a stream table keeps its write time in (see catalog: updatedAt). */
const isWriteTime = (col: { name: string; type: string }) => col.name === 'updated_at' && col.type === 'TIMESTAMP';

/**
 * The columns a row's JSON array holds, in order: the destination's but updated_at, which is
 * this commit's time, one SQL constant (not a timestamp formatted and sent per row).
 */
const rowColumns = (dest: StreamDestination) => dest.columns.filter((col) => !isWriteTime(col));

/**
 * The destination columns a write stages: all of them, but the rescued-data column only when a
 * row staged in JavaScript is among the events. An event's own text is one the fast pattern
 * accepted, with no field the catalog lacks, so it has nothing to rescue: the column is left to
 * its NULL default rather than carried through the parse, the per-key aggregate and the insert.
 */
const stagedDestColumns = (dest: StreamDestination, forms: EventForms) =>
  forms.rows ? dest.columns : dest.columns.filter((col) => col.name !== RESCUED_DATA_COLUMN);

/** Quarantined events per INSERT statement. */
const QUARANTINE_ROWS = 200;

/** A batch's typed rows of one destination, one per key, between the parse and the upsert. */
const stagingTable = (dest: StreamDestination) => quoteIdent(`_stream_in_${dest.table}`);

/**
 * The SELECT of a batch's typed rows, one per key (the last event's), from $1: one event per
 * line, a record's JSON text (`{...}`) or a row's staged values as a JSON array of text (`[...]`;
 * JSON escapes any newline in a value). DuckDB splits, parses and types them, off the consumer's
 * JavaScript thread: handing over values one by one (appender data chunks) kept that thread busy
 * per value.
 */
function stagingSelect(dest: StreamDestination, source: SourceTable, forms: EventForms, text: string, now: string): string {
  const cols = stagedDestColumns(dest, forms);
  const listed = rowColumns(dest);
  const sourceCols = new Map(stagedColumns(source).map((col) => [col.name, col]));
  const fromRecord = (col: (typeof cols)[number]): string => {
    const s = sourceCols.get(col.name);
    const sql = s ? stagedSql(s, `_r.${quoteIdent(s.name)}`) : 'NULL';
    if (sql === null) throw new Error(`${source.name}.${col.name}: no SQL staging for its policy; send rows`);
    return sql;
  };
  const branch = (form: 'records' | 'rows', lines: string) => {
    const typed = listed.filter((col) => cols.includes(col)).map((col) => {
      const v = form === 'records' ? fromRecord(col) : `_f[${listed.indexOf(col) + 1}]`;
      return `CAST(${v} AS ${DUCKDB_TYPES[col.type]}) AS ${quoteIdent(col.name)}`;
    });
    const parsed = form === 'records'
      ? `from_json(_l, ${sqlString(JSON.stringify(Object.fromEntries([...sourceCols.keys()].map((n) => [n, 'VARCHAR']))))})`
      : `from_json(_l, '["VARCHAR"]')`;
    return `SELECT ${typed.join(', ')}, _n FROM (SELECT ${parsed} AS ${form === 'records' ? '_r' : '_f'}, _n FROM ${lines})`;
  };
  const split = `(SELECT unnest(_ls) AS _l, generate_subscripts(_ls, 1) AS _n FROM (SELECT string_split((SELECT lines FROM ${text} WHERE dest = ${sqlString(dest.table)}), chr(10)) AS _ls))`;
  // Usually one form only (every event fast, or a caller with rows): no shared scan to keep.
  const body = forms.records && forms.rows
    ? `WITH _lines AS MATERIALIZED ${split}
       ${branch('records', `_lines WHERE starts_with(_l, '{')`)} UNION ALL ${branch('rows', `_lines WHERE starts_with(_l, '[')`)}`
    : branch(forms.records ? 'records' : 'rows', split);
  // One row per key, the last event's (line order is arrival order): a hash aggregate (a window
  // over the key cost twice as much; arg_max_null keeps a NULL).
  const sel = cols.map((col) => {
    const name = quoteIdent(col.name);
    const value = isWriteTime(col) ? `TIMESTAMP '${now}'` : dest.key.includes(col.name) ? name : `arg_max_null(${name}, _n)`;
    return `${value} AS ${name}`;
  });
  return `SELECT ${sel.join(', ')} FROM (${body}) GROUP BY ALL`;
}

/** Which forms a write's events take: texts (`{...}` records), rows, or both. */
interface EventForms {
  readonly records: boolean;
  readonly rows: boolean;
}

const formsOf = (events: readonly DuckStreamEvent[]): EventForms => ({
  records: events.some(isRecordText),
  rows: events.some((e) => !isRecordText(e)),
});

/**
 * A write's events as text, one per line: a record's JSON text (`{...}`) or a row's staged values
 * as a JSON array of text (`[...]`; JSON escapes any newline in a value).
 */
function eventLines(write: DuckStreamWrite, forms: EventForms): string {
  const listed = rowColumns(write.destination);
  const line = (e: DuckStreamEvent): string =>
    typeof e === 'string' ? e : e instanceof RecordLines ? e.text : JSON.stringify(listed.map((col) => cellText(e[col.name] ?? null)));
  // Usually every event is a text or a run of them, and joined as they are.
  if (!forms.rows && write.events.every((e) => typeof e === 'string')) return write.events.join('\n');
  return write.events.map(line).join('\n');
}

/** Upserts one destination's merged events (at least one); returns its staging table. */
async function upsertRows(tx: SqlRunner, write: DuckStreamWrite, forms: EventForms, text: string, now: string): Promise<string> {
  const dest = write.destination;
  const target = `${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`;
  const staging = stagingTable(dest);
  await tx.run(`CREATE OR REPLACE TEMP TABLE ${staging} AS ${stagingSelect(dest, write.source, forms, text, now)}`);
  // An upsert as delete + insert: stream tables have no primary key, whose index costs every
  // row of every commit (`npm run bench:stream-upsert`, docs/stream.md). One row per key holds
  // by construction: every write of a key goes through here, in the commit with its offsets.
  const key = dest.key.map(quoteIdent);
  await tx.run(`DELETE FROM ${target} USING ${staging} _s WHERE ${key.map((k) => `${target}.${k} = _s.${k}`).join(' AND ')}`);
  await tx.run(`INSERT INTO ${target} (${stagedDestColumns(dest, forms).map((col) => quoteIdent(col.name)).join(', ')}) SELECT * FROM ${staging}`);
  return staging;
}

/** A write's quarantined events in a few statements (each costs milliseconds), as parameters: raw is anything. */
async function insertQuarantine(tx: SqlRunner, write: DuckStreamWrite): Promise<void> {
  const ds = quoteIdent(write.destination.dataset);
  for (let i = 0; i < write.quarantine.length; i += QUARANTINE_ROWS) {
    const part = write.quarantine.slice(i, i + QUARANTINE_ROWS);
    await tx.run(
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
async function storeOffsets(tx: SqlRunner, writes: readonly DuckStreamWrite[], now: string): Promise<void> {
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
    await tx.run(
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
const testPauseMs = (): number => testHooks().streamPauseBeforeCommitMs;
