/**
 * patches/kafkajs+2.2.4.patch (applied by npm's postinstall, patch-package) makes kafkajs decode
 * records with number arithmetic where it is exact and without a Buffer per record
 * (docs/stream.md). The decoded messages must be the ones kafkajs always gave: record batches are
 * written with kafkajs's own (unpatched) encoder from known messages, and each decoded field is
 * compared with the value computed here from those messages (offsets and timestamps in BigInt),
 * at small bases, at bases past 2^53 (the BigInt path), with long timestamp deltas, headers,
 * null keys and values, log-append time, compression and the fetch-offset filter.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const Long = require('kafkajs/src/utils/long');
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0');
const Record = require('kafkajs/src/protocol/recordBatch/record/v0');
const RecordDecoder = require('kafkajs/src/protocol/recordBatch/record/v0/decoder');
const Decoder = require('kafkajs/src/protocol/decoder');
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder');
const { Types: Compression } = require('kafkajs/src/protocol/message/compression');
const Batch = require('kafkajs/src/consumer/batch');

interface Input {
  offsetDelta: number;
  timestampDelta: bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, string | string[]>;
}

interface Decoded {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[]>;
  attributes: number;
  isControlRecord: boolean;
  magicByte: number;
}

/** One record batch as the broker sends it: kafkajs's encoder, optionally log-append time. */
async function encode(firstOffset: bigint, firstTimestamp: bigint, inputs: Input[], opts: { logAppendTime?: boolean; compression?: number } = {}): Promise<Buffer> {
  const maxDelta = inputs.reduce((m, r) => (r.timestampDelta > m ? r.timestampDelta : m), 0n);
  const enc = await RecordBatch({
    compression: opts.compression ?? Compression.None,
    firstOffset: Long.fromValue(firstOffset.toString()),
    firstTimestamp: Long.fromValue(firstTimestamp.toString()),
    maxTimestamp: Long.fromValue((firstTimestamp + maxDelta).toString()),
    lastOffsetDelta: inputs[inputs.length - 1].offsetDelta,
    records: inputs.map((r) =>
      Record({ offsetDelta: r.offsetDelta, timestampDelta: Long.fromValue(r.timestampDelta.toString()), key: r.key, value: r.value, headers: r.headers ?? {} }),
    ),
  });
  const buf: Buffer = enc.buffer;
  // Attributes (int16) follow firstOffset 8, length 4, leader epoch 4, magic 1, crc 4: bit 3 of
  // the low byte is the timestamp type. kafkajs checks no CRC.
  if (opts.logAppendTime) buf[22] |= 0x08;
  return buf;
}

const decode = async (buf: Buffer): Promise<{ records: Decoded[]; maxTimestamp: string }> => decodeRecordBatch(new Decoder(buf));

const b = (s: string) => Buffer.from(s, 'utf8');

/** Inputs with deltas 0..n-1 and the given timestamp deltas; every 7th a null key, every 11th a tombstone. */
const inputs = (n: number, tsDelta: (i: number) => bigint): Input[] =>
  Array.from({ length: n }, (_, i) => ({
    offsetDelta: i,
    timestampDelta: tsDelta(i),
    key: i % 7 === 3 ? null : b(`k${i}`),
    value: i % 11 === 5 ? null : b(JSON.stringify({ shopping_cart_id: String(1000 + i), note: i % 2 ? 'café ☕' : '' })),
  }));

function expectRecords(got: Decoded[], firstOffset: bigint, firstTimestamp: bigint, ins: Input[]): void {
  expect(got).toHaveLength(ins.length);
  got.forEach((r, i) => {
    expect(r.offset).toBe((firstOffset + BigInt(ins[i].offsetDelta)).toString());
    expect(r.timestamp).toBe((firstTimestamp + ins[i].timestampDelta).toString());
    expect(r.key === null ? null : r.key.toString('utf8')).toBe(ins[i].key === null ? null : ins[i].key!.toString('utf8'));
    expect(r.value === null ? null : r.value.toString('utf8')).toBe(ins[i].value === null ? null : ins[i].value!.toString('utf8'));
    expect(r.headers).toEqual({});
    expect(r.attributes).toBe(0);
    expect(r.isControlRecord).toBe(false);
    expect(r.magicByte).toBe(2);
  });
}

describe('kafkajs record decoding (patched)', () => {
  test('the patch is applied (npm postinstall: patch-package)', () => {
    expect(typeof RecordDecoder.decodeInPlace).toBe('function');
  });

  test.each([
    ['small offsets and timestamps', 0n, 1_700_000_000_000n],
    ['offsets past 2^53 (BigInt path)', 9_007_199_254_740_000n, 1_700_000_000_000n],
    ['the largest int64 offset and timestamp bases', 9_223_372_036_854_000_000n, 9_223_372_036_000_000_000n],
    ['no timestamp (-1)', 42n, -1n],
  ])('%s: every offset and timestamp is the base plus its delta', async (_name, firstOffset, firstTimestamp) => {
    const ins = inputs(300, (i) => BigInt((i * 37) % 1000));
    expectRecords((await decode(await encode(firstOffset, firstTimestamp, ins))).records, firstOffset, firstTimestamp, ins);
  });

  test('timestamp deltas of every varlong length, negative ones included', async () => {
    // 1 to 10 bytes once zigzag-encoded: the number path takes up to 7, the Long path the rest.
    const deltas = [0n, 1n, -1n, 63n, -64n, 8191n, 1n << 20n, -(1n << 27n), 1n << 34n, (1n << 41n) - 1n, 1n << 48n, -(1n << 48n), 1n << 55n, 1n << 62n, -(1n << 62n)];
    const ins = deltas.map((d, i) => ({ offsetDelta: i, timestampDelta: d, key: b(`k${i}`), value: b('v') }));
    const base = 1_000_000_000_000n;
    expectRecords((await decode(await encode(5n, base, ins))).records, 5n, base, ins);
  });

  test('headers: single, repeated (an array, in order) and none', async () => {
    const ins: Input[] = [
      { offsetDelta: 0, timestampDelta: 0n, key: b('a'), value: b('1'), headers: { source_topic: 'carts', reason: 'bad_json' } },
      { offsetDelta: 1, timestampDelta: 1n, key: b('b'), value: b('2'), headers: { x: ['one', 'two', 'three'] } },
      { offsetDelta: 2, timestampDelta: 2n, key: b('c'), value: b('3') },
    ];
    const { records } = await decode(await encode(10n, 2_000n, ins));
    const text = (h: Buffer | Buffer[]) => (Array.isArray(h) ? h.map((x) => x.toString()) : h.toString());
    expect(Object.fromEntries(Object.entries(records[0].headers).map(([k, v]) => [k, text(v)]))).toEqual({ source_topic: 'carts', reason: 'bad_json' });
    expect(text(records[1].headers.x)).toEqual(['one', 'two', 'three']);
    expect(records[2].headers).toEqual({});
    expect(records.map((r) => r.value!.toString())).toEqual(['1', '2', '3']);
  });

  test('log-append time: every record carries the batch maximum timestamp', async () => {
    const ins = inputs(50, (i) => BigInt(i * 3));
    const { records, maxTimestamp } = await decode(await encode(7n, 5_000n, ins, { logAppendTime: true }));
    expect(maxTimestamp).toBe((5_000n + 147n).toString());
    expect(new Set(records.map((r) => r.timestamp))).toEqual(new Set(['5147']));
    expect(records.map((r) => r.offset)).toEqual(ins.map((r) => (7n + BigInt(r.offsetDelta)).toString()));
  });

  test('a gzip batch decodes to the same records', async () => {
    const ins = inputs(200, (i) => BigInt(i));
    expectRecords((await decode(await encode(1_000n, 1_700_000_000_000n, ins, { compression: Compression.GZIP }))).records, 1_000n, 1_700_000_000_000n, ins);
  });

  test('consecutive batches in one fetch keep their own bases', async () => {
    const a = inputs(20, (i) => BigInt(i));
    const c = inputs(20, (i) => BigInt(2 * i));
    const buf = Buffer.concat([await encode(100n, 1_000n, a), await encode(120n, 9_000n, c)]);
    const d = new Decoder(buf);
    const first = await decodeRecordBatch(d);
    const second = await decodeRecordBatch(d);
    expectRecords(first.records, 100n, 1_000n, a);
    expectRecords(second.records, 120n, 9_000n, c);
  });

  test.each([
    ['small offsets', 1_000n],
    ['offsets past 2^53', 9_007_199_254_740_990n],
  ])('%s: a fetch keeps the messages at or past the fetched offset', async (_name, base) => {
    const ins = inputs(10, () => 0n);
    const { records } = await decode(await encode(base, 0n, ins));
    const fetched = (base + 4n).toString();
    const batch = new Batch('t', fetched, { partition: 0, highWatermark: String(base + 10n), messages: records, abortedTransactions: [] });
    expect(batch.messages.map((m: Decoded) => m.offset)).toEqual(ins.slice(4).map((r) => (base + BigInt(r.offsetDelta)).toString()));
  });
});
