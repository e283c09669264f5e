/**
 * The statements the BigQuery adapter sends for the stream and the run records, as text with
 * typed query parameters: MERGE by key (a later row of a batch wins), the quarantine and offset
 * MERGEs with their fence, the stale check, the run insert. Pure functions: warehouse.ts sends them.
 */
import type { ColumnType } from '../../catalog-types';
import { bqIdent } from '../../sql/quote';
import type { RunRecord, StreamWrite } from '../types';
import { AVAILABILITY_SCHEMA, QUARANTINE_NDJSON_COLUMNS } from './schema';

/** How a query parameter is typed in the REST request (an array: ARRAY of that type). */
export type QueryParamType = 'STRING' | 'INT64' | 'TIMESTAMP' | 'NUMERIC' | 'BOOL' | 'DATE' | string[];

/** Event ids parallel to write.upserts, checked: a mismatch would attach ids to the wrong rows. */
export function eventIdsOf(write: StreamWrite): string[] {
  if (write.eventIds.length !== write.upserts.length) {
    throw new Error(`stream batch for ${write.destination.name}: ${write.eventIds.length} event ids for ${write.upserts.length} rows`);
  }
  return [...write.eventIds];
}

/** `CAST(JSON_VALUE(r, '$.col') AS TYPE)`: typed column from a JSON array element. */
const jsonField = (alias: string, name: string, type: ColumnType): string =>
  type === 'STRING' ? `JSON_VALUE(${alias}, '$.${name}')` : `CAST(JSON_VALUE(${alias}, '$.${name}') AS ${type})`;

/** What a MERGE by key needs of a table: its columns with their types, and its key. */
export interface MergeShape {
  readonly columns: readonly { readonly name: string; readonly type: ColumnType }[];
  readonly key: readonly string[];
}

export const AVAILABILITY_MERGE: MergeShape = {
  columns: AVAILABILITY_SCHEMA.fields.map((f) => ({ name: f.name as string, type: f.type as ColumnType })),
  key: ['vendor_id', 'product_id', 'option_id'],
};

/** MERGE by the catalog key; a later row of the batch for the same key wins. */
export function mergeUpserts(target: string, dest: MergeShape, fence?: string): string {
  const cols = dest.columns.map((c) => c.name);
  const select = dest.columns.map((c) => `${jsonField('r', c.name, c.type)} AS ${bqIdent(c.name)}`).join(', ');
  const key = dest.key.map(bqIdent).join(', ');
  const on = dest.key.map((k) => `T.${bqIdent(k)} = S.${bqIdent(k)}`).join(' AND ');
  const nonKey = cols.filter((c) => !dest.key.includes(c));
  return (
    `MERGE ${target} T USING (\n` +
    '  SELECT * EXCEPT(_pos, _rn) FROM (\n' +
    `    SELECT *, ROW_NUMBER() OVER (PARTITION BY ${key} ORDER BY _pos DESC) AS _rn\n` +
    `    FROM (SELECT ${select}, _pos FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS r WITH OFFSET AS _pos)\n` +
    `  ) WHERE _rn = 1${fence ? ` AND ${fence}` : ''}\n` +
    `) S ON ${on}\n` +
    (nonKey.length ? `WHEN MATCHED THEN UPDATE SET ${nonKey.map((c) => `${bqIdent(c)} = S.${bqIdent(c)}`).join(', ')}\n` : '') +
    `WHEN NOT MATCHED THEN INSERT (${cols.map(bqIdent).join(', ')}) VALUES (${cols.map((c) => `S.${bqIdent(c)}`).join(', ')});`
  );
}

/** Inserts quarantined events unless already there (a retried transaction adds nothing twice). */
export function mergeQuarantine(target: string, fence?: string): string {
  const cols = QUARANTINE_NDJSON_COLUMNS;
  const select = cols.map((c) => `${jsonField('q', c.name, c.type)} AS ${bqIdent(c.name)}`).join(', ');
  return (
    `MERGE ${target} T USING (SELECT ${select} FROM UNNEST(JSON_QUERY_ARRAY(@quarantine)) AS q${fence ? ` WHERE ${fence}` : ''}) S\n` +
    'ON T.run_id = S.run_id AND T.destination = S.destination AND T.file = S.file ' +
    'AND IFNULL(T.line, -1) = IFNULL(S.line, -1) AND T.reason_code = S.reason_code ' +
    "AND IFNULL(T.column_name, '') = IFNULL(S.column_name, '')\n" +
    `WHEN NOT MATCHED THEN INSERT (${cols.map((c) => c.name).join(', ')}) VALUES (${cols.map((c) => `S.${c.name}`).join(', ')});`
  );
}

/**
 * Sets `stale` when a stored offset of the group is past the batch's first offset (`from`: another
 * member applied part or all of it), or without `from`, reaches the end of this batch.
 */
export function staleCheck(target: string): string {
  return (
    `SET stale = EXISTS (SELECT 1 FROM ${target} T JOIN UNNEST(JSON_QUERY_ARRAY(@offsets)) AS o\n` +
    "  ON T.topic = JSON_VALUE(o, '$.topic') AND T.`partition` = CAST(JSON_VALUE(o, '$.partition') AS INT64)\n" +
    '  WHERE T.consumer_group = @consumer_group AND T.next_offset > ' +
    "IFNULL(CAST(JSON_VALUE(o, '$.from') AS INT64), CAST(JSON_VALUE(o, '$.offset') AS INT64) - 1));"
  );
}

export function mergeOffsets(target: string, fence?: string): string {
  return (
    `MERGE ${target} T USING (\n` +
    "  SELECT @consumer_group AS consumer_group, JSON_VALUE(o, '$.topic') AS topic,\n" +
    "    CAST(JSON_VALUE(o, '$.partition') AS INT64) AS `partition`, CAST(JSON_VALUE(o, '$.offset') AS INT64) AS next_offset\n" +
    `  FROM UNNEST(JSON_QUERY_ARRAY(@offsets)) AS o${fence ? ` WHERE ${fence}` : ''}\n` +
    ') S ON T.consumer_group = S.consumer_group AND T.topic = S.topic AND T.`partition` = S.`partition`\n' +
    // Forward only: a stale or replayed batch never moves a stored offset back.
    'WHEN MATCHED AND S.next_offset > T.next_offset THEN UPDATE SET next_offset = S.next_offset, updated_at = CURRENT_TIMESTAMP()\n' +
    'WHEN NOT MATCHED THEN INSERT (consumer_group, topic, `partition`, next_offset, updated_at) ' +
    'VALUES (S.consumer_group, S.topic, S.`partition`, S.next_offset, CURRENT_TIMESTAMP());'
  );
}

export const INSERT_RUN = (target: string): string =>
  `INSERT INTO ${target} (run_id, destination, mode, started_at, ended_at, rows_in, rows_loaded, rows_quarantined, rows_out, status, error, report) ` +
  'VALUES (@run_id, @run_destination, @mode, @started_at, @ended_at, @rows_in, @rows_loaded, @rows_quarantined, @rows_out, @status, @error, @report)';

export const RUN_PARAM_TYPES: Record<string, QueryParamType> = {
  destination: 'STRING',
  run_id: 'STRING', run_destination: 'STRING', mode: 'STRING', started_at: 'TIMESTAMP', ended_at: 'TIMESTAMP',
  rows_in: 'INT64', rows_loaded: 'INT64', rows_quarantined: 'INT64', rows_out: 'INT64',
  status: 'STRING', error: 'STRING', report: 'STRING',
};

export function runParams(run: RunRecord): Record<string, unknown> {
  return {
    run_id: run.runId, run_destination: run.destination, mode: run.mode,
    started_at: run.startedAt, ended_at: run.endedAt,
    // INT64 travels as a decimal string in the REST API: no double in between.
    rows_in: String(run.rowsIn), rows_loaded: String(run.rowsLoaded),
    rows_quarantined: String(run.rowsQuarantined), rows_out: String(run.rowsOut),
    status: run.status, error: run.error, report: run.report,
  };
}
