/**
 * A slice: the part of one partition's fetched batch that goes into one commit, decoded when it
 * is fetched. What the sinks share about it: which events are new past a stored offset, which
 * are accepted and which quarantined, and the dead-letter copy of a quarantined one.
 */
import type { SourceTable, StreamDestination } from '../catalog-types';
import { RecordLines, type QuarantineRow, type StreamOffset } from '../warehouse/types';
import { deadLetterValue, quarantineRaw, type Decoded } from './events';

/** A fetched message as the stream layer keeps it: only a rejected one keeps its bytes. */
export interface RawMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** What every decoded slice has, however its events were decoded. */
interface SliceOf {
  readonly topic: string;
  readonly partition: number;
  readonly dest: StreamDestination;
  readonly source: SourceTable;
  /** Per message, in order. */
  readonly offsets: readonly string[];
  /** Producer timestamps (ms), per message. */
  readonly timestamps: Float64Array;
  /** When the slice was decoded, i.e. fetched (ms): the benchmark's latency breakdown. */
  readonly fetchedAt: number;
}

/**
 * A partition slice decoded message by message, without its Kafka messages: a slice waits in
 * memory for its commit, and a message object (with its key and value views, which keep the
 * whole fetch response alive) held that long made most of the consumer's garbage collection.
 */
export interface EachSlice<E> extends SliceOf {
  readonly decoded: readonly Decoded<E>[];
  /** The message of each rejected event, by index: its dead-letter copy keeps the bytes. */
  readonly rejected: ReadonlyMap<number, RawMessage>;
}

/**
 * A partition slice whose every message the sink accepted at once (its decodeLines): their
 * texts, one per line, in offset order. No string or result object per event: at full speed
 * those cost a tenth of the consumer's CPU, in decoding and garbage collection (docs/benchmarks.md).
 */
export interface LinesSlice extends SliceOf {
  readonly lines: string;
}

export type DecodedSlice<E> = EachSlice<E> | LinesSlice;

/** The slice as decoded one by one (a sink without decodeLines never gets another). */
export function eachSlice<E>(slice: DecodedSlice<E>): EachSlice<E> {
  if ('lines' in slice) throw new Error(`${slice.topic}:${slice.partition}: a slice of lines reached a sink that decodes events one by one`);
  return slice;
}

/** Index of the slice's first message at or past `from` (offsets grow): 0 in the usual case, length when none. */
export function firstFresh(offsets: readonly string[], from: bigint | undefined): number {
  if (from === undefined || BigInt(offsets[0]) >= from) return 0;
  const i = offsets.findIndex((o) => BigInt(o) >= from);
  return i < 0 ? offsets.length : i;
}

/** A dead-letter copy waiting to be sent: the rejected message and its quarantine row. */
export interface DeadLetter {
  readonly m: RawMessage;
  readonly q: QuarantineRow;
}

/** A slice's events from an index on, sorted (sortEvents). */
export interface SortedEvents<E> {
  readonly events: E[];
  readonly quarantine: QuarantineRow[];
  /** Producer timestamps (ms) of the accepted events. */
  readonly timestamps: number[];
  readonly dlq: DeadLetter[];
  /** The offset to resume the partition from after the slice. */
  readonly offsets: [StreamOffset];
}

/**
 * A slice's events from index `from` on, sorted into accepted ones, with their producer
 * timestamps, and quarantined ones, with their dead-letter copies; and the slice's next offset.
 * A slice of lines is one RecordLines (from its line `from`).
 */
export function sortEvents<E>(runId: string, slice: EachSlice<E>, from: number): SortedEvents<E>;
export function sortEvents<E>(runId: string, slice: DecodedSlice<E>, from: number): SortedEvents<E | RecordLines>;
export function sortEvents<E>(runId: string, slice: DecodedSlice<E>, from: number): SortedEvents<E | RecordLines> {
  const { topic, partition } = slice;
  const next = (BigInt(slice.offsets[slice.offsets.length - 1]) + 1n).toString();
  const offsets: [StreamOffset] = [{ topic, partition, offset: next }];
  if ('lines' in slice) {
    const events = [new RecordLines(linesFrom(slice.lines, from))];
    return { events, quarantine: [], timestamps: Array.from(slice.timestamps.subarray(from)), dlq: [], offsets };
  }
  const events: E[] = [];
  const quarantine: QuarantineRow[] = [];
  const timestamps: number[] = [];
  const dlq: DeadLetter[] = [];
  for (let i = from; i < slice.decoded.length; i++) {
    const d = slice.decoded[i];
    if (d.ok) {
      events.push(d.event);
      timestamps.push(slice.timestamps[i]);
    } else {
      const m = slice.rejected.get(i)!;
      const q: QuarantineRow = {
        runId,
        destination: slice.dest.name,
        source: slice.source.name,
        // Where the event is in Kafka: `<topic>:<partition>`, and the offset as its line.
        file: `${topic}:${partition}`,
        line: Number(m.offset),
        column: d.column,
        reasonCode: d.code,
        reason: d.reason,
        raw: quarantineRaw(slice.source, m.value),
      };
      quarantine.push(q);
      dlq.push({ m, q });
    }
  }
  return { events, quarantine, timestamps, dlq, offsets };
}

/** The lines of `text` from line `from` (0-based) on. */
function linesFrom(text: string, from: number): string {
  let at = 0;
  for (let i = 0; i < from; i++) at = text.indexOf('\n', at) + 1;
  return at === 0 ? text : text.slice(at);
}

/** The dead-letter copy: key and value byte for byte (a tombstone stays null), see deadLetterValue. */
export function deadLetterMessage(slice: Pick<DecodedSlice<unknown>, 'topic' | 'partition' | 'source'>, { m, q }: DeadLetter) {
  return {
    key: m.key ?? null,
    value: deadLetterValue(slice.source, m.value),
    headers: {
      source_topic: slice.topic,
      source_partition: String(slice.partition),
      source_offset: m.offset,
      destination: q.destination,
      reason_code: q.reasonCode,
      reason: q.reason,
      ...(q.column ? { column: q.column } : {}),
    },
  };
}
