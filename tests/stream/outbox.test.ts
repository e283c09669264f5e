/**
 * The outbox without a broker: a scripted producer that records what it was asked to send and
 * fails when told to. Publishing order, per-chunk deletion, parking and retries are checked on a
 * real DuckDB file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Producer, ProducerBatch } from 'kafkajs';
import { catalog } from '../../jobs/catalog';
import { flushOutbox, queueOutbox, type OutboxMessage } from '../../jobs/lib/stream/outbox';
import { DuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';

interface Script {
  sent: { topic: string; key: string | null; value: string }[];
  /** Per send: 'ok', 'down' (a transient failure) or 'too-large' when a message contains 'BIG'. */
  fail: ('down' | null)[];
}

function fakeProducer(script: Script): Producer {
  return {
    sendBatch: async (b: ProducerBatch) => {
      const f = script.fail.shift();
      if (f === 'down') throw new Error('Connection error: connect ECONNREFUSED');
      const msgs = (b.topicMessages ?? []).flatMap((t) => t.messages.map((m) => ({ topic: t.topic, key: (m.key as string) ?? null, value: String(m.value) })));
      if (msgs.some((m) => m.value.includes('BIG'))) {
        throw Object.assign(new Error('The request included a message larger than the max message size the server will accept'), {
          type: 'MESSAGE_TOO_LARGE',
        });
      }
      script.sent.push(...msgs);
      return [];
    },
  } as unknown as Producer;
}

const msg = (id: string, key: string, value: string): OutboxMessage => ({ id, topic: 'broadcast', key, value });

describe('outbox', () => {
  let dir: string;
  let wh: DuckDbWarehouse;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-test-'));
    wh = new DuckDbWarehouse({ path: path.join(dir, 'w.duckdb'), lockRetries: 5, catalog });
    await wh.ensureSchema();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const queue = (msgs: OutboxMessage[]) => wh.withConnection((c) => queueOutbox(c, 'store', msgs));
  const flush = (script: Script, chunkEvents = 500) =>
    wh.withConnection((c) => flushOutbox(c, 'store', fakeProducer(script), { chunkEvents, chunkBytes: 512 * 1024, maxMessageBytes: 1000 }));
  const left = () => wh.withConnection(async (c) => (await c.runAndReadAll('SELECT id FROM store._stream_outbox ORDER BY seq')).getRowObjectsJS().map((r) => String(r.id)));

  it('publishes in queue order across batches; a failure stops at that message and the retry resumes there', async () => {
    await queue([msg('a1', 'k', 'sold_out'), msg('b1', 'j', 'sold_out')]);
    await queue([msg('a2', 'k', 'back_in_stock')]); // a later transaction: after a1 whatever the ids
    await queue([msg('a0', 'k', 'sold_out again')]);
    const script: Script = { sent: [], fail: [null, 'down'] };
    // Chunks of one message: the first goes out and is deleted, the second fails.
    expect(await flush(script, 1)).toEqual({ published: 1, parked: 0, pending: true });
    expect(script.sent.map((m) => m.value)).toEqual(['sold_out']);
    expect(await left()).toEqual(['b1', 'a2', 'a0']);
    expect(await flush(script, 1)).toEqual({ published: 3, parked: 0, pending: false });
    // Key k: sold_out, back_in_stock, sold_out again, each once, never an older state after a newer one.
    expect(script.sent.filter((m) => m.key === 'k').map((m) => m.value)).toEqual(['sold_out', 'back_in_stock', 'sold_out again']);
    expect(script.sent).toHaveLength(4);
    expect(await left()).toEqual([]);
  });

  it('queuing an id twice keeps one message', async () => {
    await queue([msg('x', 'k', 'v')]);
    await queue([msg('x', 'k', 'v')]);
    const script: Script = { sent: [], fail: [] };
    expect(await flush(script)).toMatchObject({ published: 1 });
  });

  it('a message the broker refuses as too large is parked with the reason; the rest of its chunk and later ones go out in order', async () => {
    await queue([msg('1', 'k', 'one'), msg('2', 'k', 'BIG'), msg('3', 'k', 'three')]);
    await queue([msg('4', 'k', 'x'.repeat(2000))]); // over maxMessageBytes: parked without trying
    await queue([msg('5', 'k', 'five')]);
    const script: Script = { sent: [], fail: [] };
    expect(await flush(script)).toEqual({ published: 3, parked: 2, pending: false });
    expect(script.sent.map((m) => m.value)).toEqual(['one', 'three', 'five']);
    const parked = await wh.withConnection(async (c) =>
      (await c.runAndReadAll('SELECT id, reason FROM store._stream_outbox_parked ORDER BY seq')).getRowObjectsJS(),
    );
    expect(parked.map((p) => p.id)).toEqual(['2', '4']);
    expect(String(parked[0].reason)).toContain('larger than the max message size');
    expect(String(parked[1].reason)).toMatch(/exceeds the broker limit of 1000 bytes/);
    expect(await left()).toEqual([]);
  });
});
