/**
 * The `_stream_outbox`: events (dead-letter copies, availability broadcasts) written in the same
 * transaction as the change that caused them and published after it commits.
 *
 * - Writes are set-based: one INSERT ... SELECT per batch, whatever the number of events.
 * - Publishing goes in `seq` order, in chunks bounded by events and bytes; each chunk is deleted
 *   as soon as the broker acknowledged it, so a failure later never republishes what went out.
 * - A message the broker can never accept (larger than its limit) is moved to
 *   `_stream_outbox_parked` with the reason and never blocks the messages behind it.
 * - On any other failure publishing stops at that message and resumes there next time: a later
 *   state of a key is never published before an earlier one, and the idempotent producer
 *   (maxInFlightRequests 1) keeps its own retries from duplicating or reordering.
 * A kill between an acknowledged publish and its delete publishes that chunk again (at least
 * once, same order): broadcast readers treat events as state, not as deltas.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { BIGINT, LIST, VARCHAR, listValue } from '@duckdb/node-api';
import type { Message, Producer } from 'kafkajs';
import { quoteIdent } from '../ddl';
import { logger } from '../log';
import { withTransaction, type SqlRunner } from '../sql/statements';

/**
 * Header flag of an outbox row whose key and value are base64: dead letters carry the original
 * bytes, which a VARCHAR cannot hold. The flag itself is never published.
 */
const BASE64_FLAG = 'x-outbox-base64';
/** A null value (tombstone) in base64 mode (msg_value is NOT NULL; '-' is not base64). */
const NULL_VALUE = '-';

export interface OutboxMessage {
  /** Unique per event: queuing the same id twice keeps one. */
  readonly id: string;
  readonly topic: string;
  /** Text (broadcasts) or the original bytes (dead letters: stored base64, published as they were). */
  readonly key: string | Buffer | null;
  /** null only for bytes: a dead letter of a tombstone stays a tombstone. */
  readonly value: string | Buffer | null;
  readonly headers?: Record<string, string>;
}

const isBinary = (m: OutboxMessage): boolean => Buffer.isBuffer(m.key) || Buffer.isBuffer(m.value) || m.value === null;

/** The row's text columns: bytes as base64 with the flag header, text as it is. */
function encode(m: OutboxMessage): { key: string | null; value: string; headers: string | null } {
  if (!isBinary(m)) return { key: m.key as string | null, value: m.value as string, headers: m.headers ? JSON.stringify(m.headers) : null };
  const b64 = (v: string | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8')).toString('base64');
  return {
    key: m.key === null ? null : b64(m.key),
    value: m.value === null ? NULL_VALUE : b64(m.value),
    headers: JSON.stringify({ ...m.headers, [BASE64_FLAG]: '1' }),
  };
}

/** The message as published: the flag removed and base64 decoded back to the original bytes. */
function decode(key: unknown, value: unknown, headersJson: unknown): Message {
  const headers = headersJson ? (JSON.parse(String(headersJson)) as Record<string, string>) : undefined;
  if (headers?.[BASE64_FLAG] !== '1') return { key: key === null ? null : String(key), value: String(value), headers };
  delete headers[BASE64_FLAG];
  return {
    key: key === null ? null : Buffer.from(String(key), 'base64'),
    value: value === NULL_VALUE ? null : Buffer.from(String(value), 'base64'),
    headers,
  };
}

export interface OutboxLimits {
  /** Most events per publish request. */
  readonly chunkEvents: number;
  /** Most bytes per publish request (well under the broker's 1 MB per partition batch). */
  readonly chunkBytes: number;
  /** Larger messages are parked without trying (the broker's message.max.bytes, 1 MB by default). */
  readonly maxMessageBytes: number;
}

// The byte bound usually decides (a broadcast is about 250 bytes): each chunk costs the file a read
// and a delete between two commits.
export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { chunkEvents: 2000, chunkBytes: 512 * 1024, maxMessageBytes: 1_000_000 };

export interface FlushResult {
  readonly published: number;
  readonly parked: number;
  /** True when publishing stopped at a failure with messages left (retried on the next flush). */
  readonly pending: boolean;
}

/** Queues `msgs` in the caller's transaction, after every message already queued: one statement. */
export async function queueOutbox(c: SqlRunner, dataset: string, msgs: readonly OutboxMessage[]): Promise<void> {
  if (msgs.length === 0) return;
  const ds = quoteIdent(dataset);
  const rows = msgs.map(encode);
  await c.run(
    `INSERT INTO ${ds}._stream_outbox (id, topic, msg_key, msg_value, headers, created_at, seq)
     SELECT id, topic, msg_key, msg_value, headers, now()::TIMESTAMP,
            (SELECT COALESCE(MAX(seq), 0) FROM ${ds}._stream_outbox) + i
     FROM (SELECT unnest($1::VARCHAR[]) AS id, unnest($2::VARCHAR[]) AS topic, unnest($3::VARCHAR[]) AS msg_key,
                  unnest($4::VARCHAR[]) AS msg_value, unnest($5::VARCHAR[]) AS headers, unnest($6::BIGINT[]) AS i)
     ON CONFLICT (id) DO NOTHING`,
    [
      listValue(msgs.map((m) => m.id)),
      listValue(msgs.map((m) => m.topic)),
      listValue(rows.map((r) => r.key)),
      listValue(rows.map((r) => r.value)),
      listValue(rows.map((r) => r.headers)),
      listValue(msgs.map((_, i) => BigInt(i + 1))),
    ],
    [LIST(VARCHAR), LIST(VARCHAR), LIST(VARCHAR), LIST(VARCHAR), LIST(VARCHAR), LIST(BIGINT)],
  );
}

interface Row {
  readonly id: string;
  readonly topic: string;
  readonly message: Message;
  readonly bytes: number;
}

/** Bytes the message takes in a record batch, roughly (key, value, headers, per-record overhead). */
function sizeOf(m: Message): number {
  const len = (v: Message['key'] | Message['value']) => (v == null ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(String(v)));
  let n = 70 + len(m.key) + len(m.value);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += 8 + Buffer.byteLength(k) + Buffer.byteLength(String(v));
  return n;
}

/** True for the broker's "too large" refusals (never accepted, whatever the retry). */
function tooLarge(e: unknown): boolean {
  for (let x = e as { type?: string; message?: string; originalError?: unknown; cause?: unknown } | undefined, i = 0; x && i < 5; i++) {
    if (x.type === 'MESSAGE_TOO_LARGE' || x.type === 'RECORD_LIST_TOO_LARGE') return true;
    x = (x.originalError ?? x.cause) as typeof x;
  }
  return false;
}

async function readChunkOn(c: DuckDBConnection, ds: string, limit: number): Promise<Row[]> {
  const rows = (
    await c.runAndReadAll(
      `SELECT id, topic, msg_key, msg_value, headers FROM ${ds}._stream_outbox ORDER BY seq NULLS FIRST, created_at, id LIMIT $1`,
      [limit],
    )
  ).getRowObjectsJS();
  return rows.map((r) => {
    const message = decode(r.msg_key, r.msg_value, r.headers);
    return { id: String(r.id), topic: String(r.topic), message, bytes: sizeOf(message) };
  });
}

const deleteIdsOn = (c: DuckDBConnection, ds: string, ids: readonly string[]) =>
  c.run(`DELETE FROM ${ds}._stream_outbox WHERE list_contains($1::VARCHAR[], id)`, [listValue([...ids])], [LIST(VARCHAR)]);

async function parkOn(c: DuckDBConnection, ds: string, row: Row, reason: string): Promise<void> {
  await withTransaction(c, async (tx) => {
    await tx.run(
      `INSERT INTO ${ds}._stream_outbox_parked
       SELECT id, topic, msg_key, msg_value, headers, created_at, seq, $2, now()::TIMESTAMP FROM ${ds}._stream_outbox WHERE id = $1`,
      [row.id, reason],
    );
    await tx.run(`DELETE FROM ${ds}._stream_outbox WHERE id = $1`, [row.id]);
  });
  logger.warn('outbox: message parked (the broker cannot accept it)', { id: row.id, topic: row.topic, bytes: row.bytes, reason });
}

async function send(producer: Producer, rows: readonly Row[]): Promise<void> {
  const byTopic = new Map<string, Message[]>();
  for (const r of rows) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.message]);
  await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
}

/** Runs `fn` on the connection: the connection itself, or a way to borrow it per unit of work. */
export type OnConnection = DuckDBConnection | (<T>(fn: (c: DuckDBConnection) => Promise<T>) => Promise<T>);

/**
 * Publishes the queued messages in order (see the module comment). Never throws for a publish
 * failure. Given a way to borrow the connection, it holds it only to read and delete, never
 * while the broker acknowledges (the stream consumer's commits go on meanwhile).
 */
export async function flushOutbox(
  db: OnConnection,
  dataset: string,
  producer: Producer,
  limits: OutboxLimits = DEFAULT_OUTBOX_LIMITS,
): Promise<FlushResult> {
  const on = <T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> => (typeof db === 'function' ? db(fn) : fn(db));
  const readChunk = (ds: string, limit: number) => on((c) => readChunkOn(c, ds, limit));
  const deleteIds = (ds: string, ids: readonly string[]) => on((c) => deleteIdsOn(c, ds, ids));
  const park = (ds: string, row: Row, reason: string) => on((c) => parkOn(c, ds, row, reason));
  const ds = quoteIdent(dataset);
  let published = 0;
  let parked = 0;
  for (;;) {
    const rows = await readChunk(ds, limits.chunkEvents);
    if (rows.length === 0) return { published, parked, pending: false };
    if (rows[0].bytes > limits.maxMessageBytes) {
      await park(ds, rows[0], `message of ${rows[0].bytes} bytes exceeds the broker limit of ${limits.maxMessageBytes} bytes`);
      parked++;
      continue;
    }
    // The longest prefix within the byte bound and without an oversize message.
    const chunk: Row[] = [];
    let bytes = 0;
    for (const r of rows) {
      if (r.bytes > limits.maxMessageBytes || (chunk.length > 0 && bytes + r.bytes > limits.chunkBytes)) break;
      chunk.push(r);
      bytes += r.bytes;
    }
    try {
      await send(producer, chunk);
      await deleteIds(ds, chunk.map((r) => r.id));
      published += chunk.length;
      // The read found fewer than it asked for, and all went out: nothing was left then, and what
      // a commit queued since asks for its own publish (no read for nothing between commits).
      if (chunk.length === rows.length && rows.length < limits.chunkEvents) return { published, parked, pending: false };
      continue;
    } catch (e) {
      if (!tooLarge(e)) {
        logger.warn('outbox: publish failed, resuming at this message after the next batch', {
          id: chunk[0].id,
          error: (e as Error).message,
        });
        return { published, parked, pending: true };
      }
    }
    // The broker refused the chunk as too large: one by one, parking only what it refuses alone.
    for (const r of chunk) {
      try {
        await send(producer, [r]);
        await deleteIds(ds, [r.id]);
        published++;
      } catch (e) {
        if (!tooLarge(e)) {
          logger.warn('outbox: publish failed, resuming at this message after the next batch', { id: r.id, error: (e as Error).message });
          return { published, parked, pending: true };
        }
        await park(ds, r, `broker refused it: ${(e as Error).message}`);
        parked++;
      }
    }
  }
}
