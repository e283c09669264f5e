/**
 * Publishes the `_stream_outbox` rows (dead-letter events, availability broadcasts) that a
 * committed micro-batch left behind, then deletes them. Written in the batch's transaction and
 * published after it, an outbox event is never lost; a kill between publish and delete publishes
 * it again (at least once), so broadcast readers treat events as state, not as deltas.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LIST, VARCHAR, listValue } from '@duckdb/node-api';
import type { Producer } from 'kafkajs';
import { quoteIdent } from '../ddl';
import { logger } from '../log';

/**
 * Header flag of an outbox row whose key and value are base64 (dead letters: the original
 * bytes, which a VARCHAR cannot hold); the flag itself is not published.
 */
export const OUTBOX_BASE64 = 'x-outbox-base64';
/** A null value (tombstone) in base64 mode (msg_value is NOT NULL; '-' is not base64). */
export const OUTBOX_NULL = '-';

export async function flushOutbox(c: DuckDBConnection, dataset: string, producer: Producer): Promise<number> {
  const ds = quoteIdent(dataset);
  const rows = (
    await c.runAndReadAll(`SELECT id, topic, msg_key, msg_value, headers FROM ${ds}._stream_outbox ORDER BY created_at, id`)
  ).getRowObjectsJS();
  if (rows.length === 0) return 0;
  const byTopic = new Map<string, { key: string | Buffer | null; value: string | Buffer | null; headers?: Record<string, string> }[]>();
  for (const r of rows) {
    const list = byTopic.get(String(r.topic)) ?? [];
    const headers = r.headers ? (JSON.parse(String(r.headers)) as Record<string, string>) : undefined;
    const b64 = headers?.[OUTBOX_BASE64] === '1';
    if (b64) delete headers![OUTBOX_BASE64];
    const decode = (v: unknown) =>
      v === null || (b64 && v === OUTBOX_NULL) ? null : b64 ? Buffer.from(String(v), 'base64') : String(v);
    list.push({ key: decode(r.msg_key), value: decode(r.msg_value), headers });
    byTopic.set(String(r.topic), list);
  }
  try {
    await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
  } catch (e) {
    logger.warn('outbox: publish failed, will retry after the next batch', { events: rows.length, error: (e as Error).message });
    return 0;
  }
  await c.run(`DELETE FROM ${ds}._stream_outbox WHERE list_contains($1::VARCHAR[], id)`, [listValue(rows.map((r) => String(r.id)))], [
    LIST(VARCHAR),
  ]);
  return rows.length;
}
