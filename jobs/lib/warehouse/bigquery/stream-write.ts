/**
 * BigQuery's side of the stream (the DuckDB side: ../duckdb/stream-write.ts): a micro-batch as a
 * changelog append plus ONE fenced transaction (upsert, quarantine, offsets), the stored offsets,
 * one consistent snapshot for a consumer's state store, and the availability MERGE. The
 * guarantees: warehouse.ts's header and docs/production.md.
 */
import type { Table } from '@google-cloud/bigquery';
import type { DestinationTable } from '../../catalog-types';
import type { RetryPolicy } from '../../retry';
import type { StreamOffset, StreamWrite } from '../types';
import { withRetry } from './retry';
import { changelogTable, jsonRow } from './schema';
import { AVAILABILITY_MERGE, eventIdsOf, mergeOffsets, mergeQuarantine, mergeUpserts, type QueryParamType, staleCheck } from './statements';
import { AVAILABILITY_TABLE } from '../duckdb/stream-ddl';

/** insertAll requests carry at most this many rows (BigQuery recommends 500). */
const INSERT_CHUNK = 500;

/** What the stream statements need of the warehouse (warehouse.ts hands it over). */
export interface BigQueryStreamTarget {
  readonly retry: RetryPolicy;
  datasetOf(dest: DestinationTable | string): string;
  table(dataset: string, table: string): Table;
  /** `project.dataset.table`, quoted for standard SQL. */
  fq(dataset: string, table: string): string;
  query(what: string, sql: string, params: Record<string, unknown>, types: Record<string, QueryParamType>): Promise<Record<string, unknown>[]>;
}

/** One micro-batch (see the steps below); false when the fence turned it away (another member applied it). */
export async function applyStreamBatchBigQuery(t: BigQueryStreamTarget, write: StreamWrite): Promise<boolean> {
  const dest = write.destination;
  const ds = t.datasetOf(dest);
  const ids = eventIdsOf(write);
  const ingestedAt = new Date().toISOString();

  // 1. Append the events to the changelog, one stable insertId per event.
  for (let i = 0; i < write.upserts.length; i += INSERT_CHUNK) {
    const rows = write.upserts.slice(i, i + INSERT_CHUNK).map((row, j) => ({
      insertId: ids[i + j],
      json: { _event_id: ids[i + j], _consumer_group: write.consumerGroup, _ingested_at: ingestedAt, ...jsonRow(dest, row) },
    }));
    await withRetry(`insertAll into ${ds}.${changelogTable(dest)}`, t.retry, () =>
      t.table(ds, changelogTable(dest)).insert(rows, { raw: true, partialRetries: 0 } as never),
    );
  }

  // 2. Upsert, quarantine and offsets in one transaction, fenced: when a stored offset of the
  //    group is already past the batch's first event (`from`; without it: reaches the batch's
  //    end) - another consumer took the partition over and applied part or all of it - the
  //    batch changes nothing, offsets included, so a consumer that lost its partitions can
  //    neither overwrite newer rows, quarantine an event twice, nor move an offset. BigQuery aborts one of two transactions
  //    writing _stream_offsets at once, so the check and the writes cannot interleave.
  const statements: string[] = ['BEGIN TRANSACTION;'];
  const params: Record<string, unknown> = { consumer_group: write.consumerGroup };
  const types: Record<string, QueryParamType> = { consumer_group: 'STRING' };
  if (write.offsets.length > 0) {
    params.offsets = JSON.stringify(write.offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, from: o.from ?? null })));
    types.offsets = 'STRING';
    statements.unshift(`DECLARE stale BOOL DEFAULT FALSE;`);
    statements.push(staleCheck(t.fq(ds, '_stream_offsets')));
  }
  const fence = write.offsets.length > 0 ? 'NOT stale' : undefined;
  if (write.upserts.length > 0) {
    params.rows = JSON.stringify(write.upserts.map((r) => jsonRow(dest, r)));
    types.rows = 'STRING';
    statements.push(mergeUpserts(t.fq(ds, dest.table), dest, fence));
  }
  if (write.quarantine.length > 0) {
    params.quarantine = JSON.stringify(
      write.quarantine.map((q) => ({
        run_id: q.runId, destination: q.destination, source: q.source, file: q.file, line: q.line,
        column_name: q.column, reason_code: q.reasonCode, reason: q.reason, raw: q.raw,
      })),
    );
    types.quarantine = 'STRING';
    statements.push(mergeQuarantine(t.fq(ds, '_quarantine'), fence));
  }
  if (write.offsets.length > 0) statements.push(mergeOffsets(t.fq(ds, '_stream_offsets'), fence));
  if (write.upserts.length === 0 && write.quarantine.length === 0 && write.offsets.length === 0) return true;
  statements.push('COMMIT TRANSACTION;');
  // The script's result is its last statement: whether the fence let the batch through.
  if (fence) statements.push('SELECT NOT stale AS applied;');
  const rows = await t.query(`stream batch into ${dest.name}`, statements.join('\n'), params, types);
  return !fence || rows[0]?.applied !== false;
}

/** The group's stored offsets of `topics`, over `datasets`. */
export async function readOffsetsBigQuery(t: BigQueryStreamTarget, datasets: readonly string[], consumerGroup: string, topics: readonly string[]): Promise<StreamOffset[]> {
  const out: StreamOffset[] = [];
  for (const ds of datasets) {
    const rows = await t.query(
      `read offsets of ${consumerGroup}`,
      `SELECT topic, \`partition\`, next_offset FROM ${t.fq(ds, '_stream_offsets')} ` +
        'WHERE consumer_group = @consumer_group AND topic IN UNNEST(@topics) ORDER BY topic, `partition`',
      { consumer_group: consumerGroup, topics: [...topics] },
      { consumer_group: 'STRING', topics: ['STRING'] },
    );
    for (const r of rows) {
      out.push({ topic: String(r.topic), partition: Number(r.partition), offset: String(r.next_offset) });
    }
  }
  return out;
}

/**
 * Every row of `tables` as JSON text (TO_JSON_STRING: INT64 and NUMERIC as their literal
 * digits, TIMESTAMP as ISO-8601 UTC) and the group's stored offsets of `topics`, read by ONE
 * query: one snapshot, so a consumer's local state store loaded from it resumes each partition
 * from the offset its rows were written up to, while other members keep committing.
 */
export async function readSnapshotJsonBigQuery(
  t: BigQueryStreamTarget,
  dataset: string,
  tables: readonly string[],
  consumerGroup: string,
  topics: readonly string[],
): Promise<{ rows: Map<string, string[]>; offsets: StreamOffset[] }> {
  const parts = tables.map((name, i) => `SELECT ${i} AS t, TO_JSON_STRING(x) AS j FROM ${t.fq(dataset, name)} AS x`);
  parts.push(
    `SELECT -1 AS t, TO_JSON_STRING(o) AS j FROM (SELECT topic, \`partition\`, next_offset FROM ${t.fq(dataset, '_stream_offsets')} ` +
      'WHERE consumer_group = @consumer_group AND topic IN UNNEST(@topics)) AS o',
  );
  const result = await t.query(`read a snapshot of ${dataset}`, parts.join('\nUNION ALL\n'), { consumer_group: consumerGroup, topics: [...topics] }, { consumer_group: 'STRING', topics: ['STRING'] });
  const rows = new Map(tables.map((name) => [name, [] as string[]]));
  const offsets: StreamOffset[] = [];
  for (const r of result) {
    const i = Number(r.t);
    if (i >= 0) rows.get(tables[i])!.push(String(r.j));
    else {
      const o = JSON.parse(String(r.j)) as { topic: string; partition: number | string; next_offset: number | string };
      offsets.push({ topic: o.topic, partition: Number(o.partition), offset: String(o.next_offset) });
    }
  }
  return { rows, offsets };
}

/**
 * Upserts availability rows (JSON objects with AVAILABILITY_SCHEMA's columns) by vendor, product
 * and option, in one MERGE: one DML job per call, whatever the number of rows.
 */
export async function mergeAvailabilityBigQuery(t: BigQueryStreamTarget, dataset: string, rowsJson: readonly string[]): Promise<void> {
  await t.query(
    `upsert ${dataset}.${AVAILABILITY_TABLE}`,
    mergeUpserts(t.fq(dataset, AVAILABILITY_TABLE), AVAILABILITY_MERGE),
    { rows: `[${rowsJson.join(',')}]` },
    { rows: 'STRING' },
  );
}
