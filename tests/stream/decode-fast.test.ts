/**
 * The fast path of stream decoding (one regular expression over the event's text, compiled from
 * the bulk path's per-column patterns) must decide exactly as the exact path (JSON.parse, field
 * checks, ajv): same row, or the same quarantine column, code and reason, for every event. Checked
 * on a generated set of good and faulty events for every source of the catalog (the stream ones
 * and, as if they were streamed, the others: strings, dates, decimals, cards and PII policies).
 * The DuckDB sink takes a fast event as its own text and stages it in SQL: the same set checks
 * that DuckDB's row is the one the exact path's row gives.
 */
import { catalog } from '../../jobs/catalog';
import type { SourceColumn, SourceTable, StreamDestination } from '../../jobs/lib/catalog-types';
import { stagedColumns } from '../../jobs/lib/catalog-check';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckdbCreateTable, quoteIdent } from '../../jobs/lib/ddl';
import { decodeEvent, decodeEventExact, decodeEventText, encodeEvent } from '../../jobs/lib/stream/events';
import { applyStreamWritesDuckDb } from '../../jobs/lib/warehouse/duckdb/stream-write';
import { STREAM_BOOKKEEPING_DDL } from '../../jobs/lib/warehouse/duckdb/stream-ddl';

/** A valid value of each type, and values the batch rules reject or the exact path must judge. */
const GOOD: Record<string, string> = {
  id: '123', card: '4564 1481 4400 6084', string: 'Blue shirt, size M', int: '5', decimal: '12.5', bool01: '1', date: '2024-02-29',
};
const VARIANTS: Record<string, string[]> = {
  // Past the catalog's identifier length (20), at it, and a long run of digits.
  id: ['007', '12a', '-5', '2.56324E+15', ' 5', '5 ', '12345678901234567890', '123456789012345678901', '9'.repeat(400)],
  card: ['4564148144006084', '4564-1481-4400-6084', '4564 1481', '4564  1481 4400 6084', '4.56414E+15'],
  string: ['café ☕ \u2028 x', ' padded ', 'x\u00a0', 'tab\there', 'quote " inside', 'back\\slash', '\uFFFD'],
  // Around the maximums (999,999 per order or cart line, 999,999,999 in stock).
  int: ['0', '1', '-3', '12345678901234567', '1234567890123456789', '1.5', '01', '999999', '1000000', '999999999', '1000000000', '999999999999999999'],
  decimal: ['0', '-1', '12.34567', '99999999999999.9999', '1e3', '.5', '999999999.9999', '1000000000', '1000000000.0001'],
  bool01: ['0', '2', 'true', ' 1'],
  date: ['2023-02-29', '1999-12-31', '0999-01-01', '2024-13-01', '2024-1-01'],
};

/** The source as a stream destination: its staged columns and updated_at (as the catalog's stream tables). */
function destinationOf(source: SourceTable): StreamDestination {
  const real = catalog.destinations.find((d) => d.mode === 'stream' && d.sources[0] === source.name);
  if (real) return real as StreamDestination;
  return {
    name: `test.${source.name}`, dataset: 'test', table: source.name, mode: 'stream', description: '', sources: [source.name], key: source.key,
    columns: [...stagedColumns(source).map((c) => ({ name: c.name, type: 'STRING' as const, nullable: true, description: '' })),
      { name: 'updated_at', type: 'TIMESTAMP' as const, nullable: true, description: '' }],
  } as unknown as StreamDestination;
}

const goodRecord = (source: SourceTable) => Object.fromEntries(source.columns.map((c) => [c.name, GOOD[c.type]])) as Record<string, string | null>;

/** Events (raw bytes, or null for a tombstone) for one source: good ones first. */
function events(source: SourceTable): { good: Buffer[]; all: (Buffer | null)[] } {
  const rec = goodRecord(source);
  const json = (o: Record<string, unknown>) => Buffer.from(JSON.stringify(o), 'utf8');
  const encoded = encodeEvent(source, rec);
  if (Array.isArray(encoded)) throw new Error(`GOOD is not a valid ${source.name} row: ${encoded.map((e) => e.reason).join('; ')}`);
  const withNulls = { ...rec };
  for (const c of source.columns) if (!source.key.includes(c.name)) withNulls[c.name] = null;
  const good = [Buffer.from(encoded.value, 'utf8'), json(withNulls)];
  const all: (Buffer | null)[] = [...good];
  const set = (c: SourceColumn, v: unknown) => ({ ...rec, [c.name]: v });
  for (const c of source.columns) {
    for (const v of [...VARIANTS[c.type], '', null]) all.push(json(set(c, v)));
    const { [c.name]: _dropped, ...missing } = rec;
    all.push(json(missing));
    for (const lit of ['123', '2.56324E+15', '1.5', '-0', 'true', 'false', '1', '[1]', '{}', '"\\u0031\\u0032"', '"1\\n"']) {
      // A JSON literal in place of the field's value, as another producer might write it.
      all.push(Buffer.from(JSON.stringify(rec).replace(`"${c.name}":${JSON.stringify(rec[c.name])}`, `"${c.name}":${lit}`), 'utf8'));
    }
    // Invalid UTF-8 inside the value (decoded as U+FFFD).
    const [before, after] = JSON.stringify(set(c, 'a\u0001b')).split('\\u0001');
    all.push(Buffer.concat([Buffer.from(before, 'utf8'), Buffer.from([0xff, 0xfe]), Buffer.from(after, 'utf8')]));
  }
  const reversed = Object.fromEntries(Object.entries(rec).reverse());
  const text = JSON.stringify(rec);
  all.push(
    json(reversed), // another field order
    Buffer.from(JSON.stringify(rec, null, 1), 'utf8'), // whitespace
    Buffer.from(` ${text}`, 'utf8'),
    json({ ...rec, extra: '1' }), // an unknown field
    Buffer.from(text.replace('}', `,${JSON.stringify(source.columns[0].name)}:"9"}`), 'utf8'), // a field twice
    Buffer.from(text.slice(0, -1), 'utf8'), // cut
    Buffer.from('not json', 'utf8'),
    Buffer.from('null', 'utf8'), Buffer.from('[]', 'utf8'), Buffer.from('"x"', 'utf8'), Buffer.from('5', 'utf8'), Buffer.from('', 'utf8'),
    Buffer.from([0, 0xff, 0xfe, 0x10, 0x80]), // binary
    null, // tombstone
  );
  return { good, all };
}

const now = new Date(0);
const streamSources = new Set(catalog.destinations.filter((d) => d.mode === 'stream').map((d) => d.sources[0]));

describe('fast stream decode agrees with the exact decode', () => {
  test.each(catalog.sources.map((s) => [s.name, s] as const))('%s', (_name, source) => {
    const dest = destinationOf(source);
    const { good, all } = events(source);
    const codes = new Set<string>();
    for (const value of all) {
      const fast = decodeEvent(dest, source, value, now);
      expect({ value: value?.toString('utf8'), d: fast }).toEqual({ value: value?.toString('utf8'), d: decodeEventExact(dest, source, value, now) });
      codes.add(fast.ok ? 'ok' : fast.code);
    }
    // The set exercises both paths and the main faults (the exact path's reasons are tested in validation.test.ts).
    for (const code of ['ok', 'missing_field', 'bad_event']) expect(codes).toContain(code);
    if (source.columns.some((c) => c.type === 'id')) expect(codes).toContain('scientific_notation_id');
    if (source.columns.some((c) => c.type === 'bool01')) expect(codes).toContain('bad_boolean');

    // What the producer writes takes the fast path (no JSON.parse) for the stream sources.
    if (streamSources.has(source.name)) {
      const parse = jest.spyOn(JSON, 'parse');
      try {
        for (const value of good) expect(decodeEvent(dest, source, value, now).ok).toBe(true);
        expect(parse).not.toHaveBeenCalled();
      } finally {
        parse.mockRestore();
      }
    }
  });

  test('PII columns are masked or dropped on the fast path too', () => {
    const cards = catalog.sources.find((s) => s.name === 'user_has_creditcard')!;
    const d = decodeEvent(destinationOf(cards), cards, Buffer.from('{"user_id":"1","credit_card_number":"4564 1481 4400 6084"}'), now);
    expect(d.ok && String(d.event.credit_card_number)).toMatch(/^[* ]+6084$/);
    const users = catalog.sources.find((s) => s.name === 'user')!;
    const rec = { ...goodRecord(users), password: 'hunter2' };
    const u = decodeEvent(destinationOf(users), users, Buffer.from(JSON.stringify(rec), 'utf8'), now);
    expect(u.ok).toBe(true);
    expect(JSON.stringify(u)).not.toContain('hunter2');
  });
});

describe('an event handed to DuckDB as its text is staged as the exact path stages it', () => {
  test.each(catalog.sources.map((s) => [s.name, s] as const))('%s', async (_name, source) => {
    const dest = destinationOf(source);
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      await c.run(`CREATE SCHEMA ${quoteIdent(dest.dataset)}`);
      for (const s of STREAM_BOOKKEEPING_DDL(dest.dataset)) if (!s.includes('availability')) await c.run(s);
      await c.run(duckdbCreateTable(dest, `${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`));
      const cols = dest.columns.filter((col) => col.name !== 'updated_at').map((col) => quoteIdent(col.name)).join(', ');
      const stored = async (event: string | Record<string, unknown>) => {
        await c.run(`DELETE FROM ${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`);
        await applyStreamWritesDuckDb(c, [{ destination: dest, source, consumerGroup: 'g', quarantine: [], offsets: [], events: [event as string] }]);
        return (await c.runAndReadAll(`SELECT ${cols} FROM ${quoteIdent(dest.dataset)}.${quoteIdent(dest.table)}`)).getRowsJS();
      };
      let texts = 0;
      for (const value of events(source).all) {
        const d = decodeEventText(dest, source, value, now);
        const exact = decodeEventExact(dest, source, value, now);
        expect(d.ok).toBe(exact.ok);
        if (!d.ok || !exact.ok || typeof d.event !== 'string') continue;
        texts++;
        expect(d.event).toBe(value!.toString('utf8'));
        expect({ event: d.event, row: await stored(d.event) }).toEqual({ event: d.event, row: await stored(exact.event) });
      }
      // Both good events of a stream source go as text (the producer's form); a PII source too.
      if (streamSources.has(source.name) || source.columns.some((col) => col.pii)) expect(texts).toBeGreaterThanOrEqual(2);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});
