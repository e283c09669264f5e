/**
 * Stream micro-batches into DuckDB, exactly once: rows, quarantined events and the consumed
 * offsets are written in one transaction, so a consumer resuming from the stored offsets
 * neither loses nor repeats an event. (Filled in by the stream layer.)
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { StreamOffset, StreamWrite } from './types';

/** Bookkeeping tables the stream layer needs in each dataset. */
export const STREAM_BOOKKEEPING_DDL = (dataset: string): string[] => [
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_offsets (consumer_group VARCHAR NOT NULL, topic VARCHAR NOT NULL, ` +
    `partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL, ` +
    `PRIMARY KEY (consumer_group, topic, partition))`,
];

export async function applyStreamBatchDuckDb(_c: DuckDBConnection, _write: StreamWrite): Promise<void> {
  throw new Error('stream writes into DuckDB are not implemented yet');
}

export async function readOffsetsDuckDb(
  _c: DuckDBConnection,
  _group: string,
  _topics: readonly string[],
): Promise<StreamOffset[]> {
  return [];
}
