/**
 * The sink contract: what the consumer asks of a warehouse, after Kafka Connect's SinkTask. The
 * consumer owns the group, fetching, batching and the offset commits to Kafka (group.ts,
 * scheduler.ts); a sink owns only its warehouse: one implementation per warehouse
 * (sink-duckdb.ts, sink-bigquery.ts), picked by whoever builds the consumer.
 *
 * The consumer makes its sink from a SinkFactory with its context (e.g. duckDbSink(warehouse)).
 *
 *   claim   -> start -> open (again on every join) -> put ... (flush when the queue is empty) -> stop
 */
import type { Catalog, SourceTable, StreamDestination } from '../catalog-types';
import type { RunRecord, StreamOffset } from '../warehouse/types';
import type { Producer } from 'kafkajs';
import type { StreamConfig } from './config';
import type { Decoded } from './events';
import type { DecodedSlice } from './slices';

/** What a put did with one slice. */
export type PutResult =
  /** Written: its events, in rows and quarantined ones. */
  | { readonly rows: number; readonly quarantined: number; readonly timestamps: number[] }
  /** Nothing new (every event below the stored offset: a redelivery). */
  | null
  /** The stored offset is below the slice's first event: fetch the partition again from there. */
  | { readonly gap: bigint };

/** One unit of the consumer's warehouse work: a group commit, an availability step, an outbox publish, a snapshot. */
export interface CommitInfo {
  readonly kind: 'batch' | 'availability' | 'outbox' | 'snapshot';
  readonly ms: number;
  /** Events (batch), broadcast events queued (availability), messages published (outbox); 0 for a snapshot. */
  readonly events: number;
  /** An availability step run inside the group commit's transaction (its ms are the commit's). */
  readonly inCommit?: boolean;
}

export interface SinkContext {
  readonly cfg: StreamConfig;
  readonly catalog: Catalog;
  readonly runId: string;
  /** The topics consumed (their stored offsets are this group's). */
  readonly topics: readonly string[];
  /** The dataset of the consumed tables (the stream bookkeeping tables live there). */
  readonly dataset: string;
  /** Connected by the consumer's start: dead letters and broadcasts go out through it. */
  readonly producer: Producer;
  readonly onCommit?: (c: CommitInfo) => void;
}

export interface StreamSink {
  /** For logs (file path, project.dataset). */
  readonly location: string;
  /**
   * true: slices of many partitions share one transaction and commits overlap the next fetches
   * (at most three times STREAM_COMMIT_MAX_EVENTS events in flight, two puts at a time); false: one transaction per slice,
   * awaited by the fetch that brought it.
   */
  readonly groupCommit: boolean;
  /**
   * true: several consumer processes may share the group, each owning some partitions
   * (BigQuery); false: the group takes one process, which holds every partition (DuckDB).
   */
  readonly scalesOut: boolean;
  /** An event's value as this sink takes it (accepted: text or row; rejected: the reason). */
  decode(dest: StreamDestination, source: SourceTable, value: Buffer | null, now: Date): Decoded<unknown>;
  /** Optional: a slice's values accepted at once, as lines (a LinesSlice); null: decoded one by one. */
  readonly decodeLines?: (dest: StreamDestination, source: SourceTable, values: readonly (Buffer | null)[]) => string | null;
  /** Takes what this process must own before joining the group (waits as a standby while another holds it). */
  claim(cancelled: () => boolean): Promise<void>;
  /** Tables, repairs left by a kill, what waits to be published. */
  start(): Promise<void>;
  /** The stored offsets of the group: where to resume (on start and every join). */
  open(): Promise<StreamOffset[]>;
  /** Writes slices (in one transaction when groupCommit) with their offsets; a result per slice. `more`: slices wait behind. */
  put(slices: readonly DecodedSlice<unknown>[], more: boolean): Promise<{ results: PutResult[]; commitMs: number | null }>;
  /** Work the puts left for a quiet moment (the queue is empty). Never throws. */
  flush(): Promise<void>;
  /** Nothing more will be put: the last publish, the runs recorded, files released by their owner. */
  stop(runs: readonly RunRecord[]): Promise<void>;
  /** Stopped before it ever claimed what it needed (a standby). */
  readonly standby: boolean;
}

/** How a consumer makes its sink (it hands over its context). */
export type SinkFactory = (ctx: SinkContext) => StreamSink;
