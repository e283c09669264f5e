/**
 * Stream events: one JSON object per source row, with the source file's column names and the
 * values as text (exactly as in the file), keyed by the entity id (the first key column), so
 * every event of one destination key lands in the same partition, in order.
 *
 * Decoding validates with the same ajv schema and rules as the batch layer (lib/schema.ts), and
 * as strictly: every field of the source must be present (null = an empty value in the file);
 * values are JSON strings as the producer writes them, or null. A JSON number is accepted only
 * in an id/int/decimal field, read from its literal text (JSON.parse would turn 2.56324E+15
 * into 2563240000000000): the literal then meets the batch checks, so an exponent in an id is
 * `scientific_notation_id` as in a file. Flags are the strings "0"/"1" (the producer's
 * encoding): a JSON 1 or true is not a flag. A poison event becomes a quarantine reason, never
 * an error.
 */
import { RESCUED_DATA_COLUMN, type SourceTable, type StreamDestination } from '../catalog-types';
import { DriftTally, driftReason, rescuedJson } from '../drift';
import { fieldPattern, stagedSql } from '../rule-patterns';
import { contractOf, stagedColumns } from '../catalog-check';
import { maskCardRuns, printable, redactEvent } from '../pii';
import { normalizeRecord, rowValidator, stagedValues, type RawRecord, type RowError, type RowValidator } from '../schema';
import type { CellValue, Row } from '../warehouse/types';

export interface EncodedEvent {
  readonly key: string;
  readonly value: string;
}

export const eventKey = (source: SourceTable, record: RawRecord): string => record[source.key[0]] ?? '';

/** Validates a source record and encodes it; returns the errors instead when it is invalid. */
export function encodeEvent(source: SourceTable, record: RawRecord): EncodedEvent | RowError[] {
  const errors = rowValidator(source).validate(record);
  if (errors.length > 0) return errors;
  const obj: Record<string, string | null> = {};
  for (const c of source.columns) obj[c.name] = record[c.name] ?? null;
  return { key: eventKey(source, record), value: JSON.stringify(obj) };
}

const NUMERIC_TYPES = new Set(['id', 'int', 'decimal']);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The literal text of a JSON number field in the raw event (its digits as sent). */
function numberLiteral(text: string, name: string, parsed: number): string {
  const m = new RegExp(`"${escapeRe(name)}"\\s*:\\s*(-?[0-9][0-9.eE+-]*)`).exec(text);
  return m ? m[1] : String(parsed);
}

/** Field values as text, or why the event is not a well-formed row of the source. */
function eventFields(
  source: SourceTable,
  obj: Record<string, unknown>,
  text: string,
  /** Whether a missing non-key field reads as null (the contract allows drift). */
  optional: boolean,
): { values: Record<string, string | null> } | { error: { column: string; code: string; reason: string } } {
  const out: Record<string, string | null> = {};
  for (const c of source.columns) {
    if (!(c.name in obj)) {
      // A key field is never optional (nor is any under freeze).
      if (optional && !source.key.includes(c.name)) {
        out[c.name] = null;
        continue;
      }
      return { error: { column: c.name, code: 'missing_field', reason: `event has no '${c.name}' field (send null for an empty value)` } };
    }
    const v = obj[c.name];
    if (v === null || typeof v === 'string') out[c.name] = v;
    else if (typeof v === 'number' && NUMERIC_TYPES.has(c.type)) out[c.name] = numberLiteral(text, c.name, v);
    else if (c.type === 'bool01') {
      return { error: { column: c.name, code: 'bad_boolean', reason: `'${c.name}' is a JSON ${typeof v}, not the string "0" or "1" the producer writes` } };
    } else {
      return { error: { column: c.name, code: 'bad_event', reason: `'${c.name}' is a JSON ${Array.isArray(v) ? 'array' : typeof v}, not a string` } };
    }
  }
  return { values: out };
}

/**
 * The quarantine copy of an event: redacted by the source's PII policy (values of PII columns
 * never leave them), as text; a binary value is decoded as UTF-8 (U+FFFD for bad bytes) here
 * and kept byte for byte only in the dead-letter copy.
 */
export function quarantineRaw(source: SourceTable, value: Buffer | null): string {
  return value === null ? '' : redactEvent(source, value.toString('utf8'));
}

/**
 * The value to dead-letter: the original bytes (null stays null), unless they hold personal
 * data: a source with PII columns, whose values must not be copied in clear anywhere, or a card
 * number in any field (the free-text rule, pii.ts maskCardRuns): then the redacted text.
 */
export function deadLetterValue(source: SourceTable, value: Buffer | null): Buffer | null {
  if (value === null) return null;
  if (source.columns.some((c) => c.pii)) return Buffer.from(quarantineRaw(source, value), 'utf8');
  const text = value.toString('utf8');
  const masked = maskCardRuns(text);
  return masked === text ? value : Buffer.from(masked, 'utf8');
}

/**
 * What decoding needs per destination, computed once (not per event): the source's validator,
 * its field names, and where each destination column's value comes from in the staged values.
 */
interface Decoder {
  readonly validator: RowValidator;
  /** The fast path's pattern (see fastPattern), or null when a rule has no pattern form. */
  readonly fast: RegExp | null;
  /**
   * The same pattern without captures, when every staged column has its SQL form (stagedSql):
   * an event it matches is staged by DuckDB (decodeEventText). Null: rows only.
   */
  readonly fastText: RegExp | null;
  readonly fields: ReadonlySet<string>;
  /** Per destination column: index into stagedValues, 'now' (updated_at) or -1 (null). */
  readonly plan: readonly (number | 'now' | 'rescued')[];
  readonly names: readonly string[];
  /** Drift of this destination's events, per field, for this process (status output, warnings). */
  readonly drift: DriftTally;
}

const decoders = new WeakMap<StreamDestination, Decoder>();

function decoderFor(dest: StreamDestination, source: SourceTable): Decoder {
  let d = decoders.get(dest);
  if (!d) {
    const staged = stagedColumns(source).map((c) => c.name);
    d = {
      validator: rowValidator(source),
      fast: fastPattern(source),
      fastText: stagedColumns(source).every((c) => stagedSql(c, 'x') !== null) ? fastPattern(source, false) : null,
      fields: new Set(source.columns.map((c) => c.name)),
      plan: dest.columns.map((c) => (c.name === 'updated_at' ? 'now' : c.name === RESCUED_DATA_COLUMN ? 'rescued' : staged.indexOf(c.name))),
      names: dest.columns.map((c) => c.name),
      drift: new DriftTally(source, contractOf(dest), dest.name),
    };
    decoders.set(dest, d);
  }
  return d;
}

/**
 * The fast path (the stream's form of the batch layer's bulk path, jobs/lib/bulk.ts): one
 * regular expression over the event's whole text, built from the same per-column patterns
 * (fieldPattern: the catalog's rules, as the ajv schema has them), matching exactly what the
 * producer writes for a valid row: `{"<col>":"<value>",...}` in catalog order, no whitespace,
 * a key column never null. A value may hold no quote, backslash or control character, so its
 * JSON literal is its text. An event it matches is one the exact path accepts with these very
 * values (the patterns admit only valid, trimmed, non-empty values); anything else (another
 * field order, an escape, a JSON number, a fault) takes the exact path, which alone decides a
 * quarantine reason. Null when a column's rule needs a check a pattern cannot make.
 */
function fastPattern(source: SourceTable, capture = true): RegExp | null {
  const key = new Set(source.key);
  const parts: string[] = [];
  for (const [i, c] of source.columns.entries()) {
    let p: ReturnType<typeof fieldPattern>;
    try {
      // The characters that end (or may not appear raw in) a JSON string, as the field's "delimiter".
      p = fieldPattern(c, '"\\\\\\x00-\\x1F');
    } catch {
      return null;
    }
    if (!p.checked) return null;
    // RE2's \x{hhhh} is ECMAScript's \u{hhhh} (with the u flag).
    const value = `"(${capture ? `?<c${i}>` : '?:'}${p.pattern.replace(/\\x\{([0-9A-Fa-f]+)\}/g, '\\u{$1}')})"`;
    parts.push(`${escapeRe(JSON.stringify(c.name))}:${key.has(c.name) ? value : `(?:null|${value})`}`);
  }
  try {
    return new RegExp(`^\\{${parts.join(',')}\\}$`, 'u');
  } catch {
    return null;
  }
}

/** Why an event is not a row of its source: its quarantine column, code and reason. */
export interface RejectedEvent {
  readonly ok: false;
  readonly column: string | null;
  readonly code: string;
  readonly reason: string;
}

/** An event decoded: accepted (as an `E`) or rejected with its reason. */
export type Decoded<E> = { readonly ok: true; readonly event: E } | RejectedEvent;

/** An accepted event as a destination row. */
export type DecodedEvent = Decoded<Row>;

/**
 * Parses and validates one event's value into a destination row (updated_at = `now`).
 * Staged values come from stagedValues (0/1 -> booleans, PII dropped or masked).
 */
export function decodeEvent(
  dest: StreamDestination,
  source: SourceTable,
  value: Buffer | null,
  now: Date,
): DecodedEvent {
  if (value === null) return { ok: false, column: null, code: 'bad_event', reason: 'event has no value (tombstone)' };
  const text = value.toString('utf8');
  const decoder = decoderFor(dest, source);
  const groups = decoder.fast?.exec(text)?.groups;
  if (groups) {
    const record: RawRecord = {};
    source.columns.forEach((c, i) => {
      record[c.name] = groups[`c${i}`] ?? null;
    });
    return { ok: true, event: destinationRow(decoder, stagedValues(source, record), now, null) };
  }
  return decodeEventExact(dest, source, value, now);
}

/** This process's drift per field of a stream destination's events (for the consumer's status). */
export const streamDrift = (dest: StreamDestination, source: SourceTable): ReturnType<DriftTally['list']> =>
  decoderFor(dest, source).drift.list();

/** The fast pattern of decodeEventText (null: every event takes the exact path); lines.ts tests whole slices with it. */
export const fastTextPattern = (dest: StreamDestination, source: SourceTable): RegExp | null => decoderFor(dest, source).fastText;

/** An accepted event as the DuckDB sink takes it: its own text, or a row (warehouse/duckdb/stream-write.ts). */
export type DecodedEventText = Decoded<string | Row>;

/**
 * decodeEvent for a sink that stages in SQL (DuckDB): an event the fast pattern accepts is
 * handed over as its own text, a record of the source that DuckDB parses and stages with the
 * catalog's SQL (stagedSql); the consumer tests it and builds nothing. Any other event takes
 * the exact path and becomes a row or a quarantine reason, as with decodeEvent.
 */
export function decodeEventText(
  dest: StreamDestination,
  source: SourceTable,
  value: Buffer | null,
  now: Date,
): DecodedEventText {
  const fast = value === null ? null : decoderFor(dest, source).fastText;
  if (fast) {
    const text = value!.toString('utf8');
    if (fast.test(text)) return { ok: true, event: text };
  }
  return decodeEventExact(dest, source, value, now);
}

/** decodeEvent without the fast path: JSON.parse, field checks and the ajv schema, per event. */
export function decodeEventExact(
  dest: StreamDestination,
  source: SourceTable,
  value: Buffer | null,
  now: Date,
): DecodedEvent {
  if (value === null) return { ok: false, column: null, code: 'bad_event', reason: 'event has no value (tombstone)' };
  let parsed: unknown;
  const text = value.toString('utf8');
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // Node quotes the input in its message: keep only the problem (the value may be anything).
    const why = (e as Error).message.replace(/"[^]*"/, '…').slice(0, 80);
    return { ok: false, column: null, code: 'bad_event', reason: `event is not JSON: ${printable(maskCardRuns(why))}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, column: null, code: 'bad_event', reason: 'event is not a JSON object' };
  }
  const decoder = decoderFor(dest, source);
  const contract = contractOf(dest);
  const obj = parsed as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !decoder.fields.has(k));
  if (unknown.length > 0 && contract === 'freeze') {
    return { ok: false, column: unknown[0], code: 'bad_event', reason: `event has unknown field(s): ${unknown.map((u) => JSON.stringify(maskCardRuns(u).slice(0, 40))).join(', ')}` };
  }
  const fields = eventFields(source, obj, text, contract !== 'freeze');
  if ('error' in fields) return { ok: false, ...fields.error };
  const record = normalizeRecord(source, fields.values);
  const errors = decoder.validator.validate(record);
  if (errors.length > 0) {
    return {
      ok: false,
      column: errors[0].column,
      code: errors[0].code,
      reason: errors.map((e) => e.reason).join('; '),
    };
  }
  // Drift, by the contract (freeze has returned above): counted per field, then rescued,
  // discarded, or the event quarantined. An unknown field sent as null carries no value.
  let rescued: string | null = null;
  const missing = source.columns.filter((c) => !(c.name in obj));
  if (unknown.length > 0 || missing.length > 0) {
    const added = unknown.map((k) => [k, eventText(obj[k], text, k)] as const);
    let dropped: RejectedEvent | null = null;
    for (const c of missing) {
      if (decoder.drift.see(c.name, 'missing', null, now) === 'quarantined') {
        dropped ??= { ok: false, column: c.name, code: 'schema_drift', reason: driftReason(c.name, 'missing', 'field') };
      }
    }
    for (const [k, v] of added) {
      if (v !== null && decoder.drift.see(k, 'added', v, now) === 'quarantined') {
        dropped ??= { ok: false, column: null, code: 'schema_drift', reason: driftReason(k, 'added', 'field') };
      }
    }
    if (dropped) return dropped;
    if (contract === 'rescue') rescued = rescuedJson(source, added);
  }
  return { ok: true, event: destinationRow(decoder, stagedValues(source, record), now, rescued) };
}

/** An unknown field's value as text, verbatim: a string as it is, a number its literal, anything else its JSON; null stays null. */
function eventText(v: unknown, text: string, name: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return typeof v === 'number' ? numberLiteral(text, name, v) : JSON.stringify(v);
}

function destinationRow(decoder: Decoder, staged: readonly (string | null)[], now: Date, rescued: string | null): Row {
  const row: Record<string, CellValue> = {};
  const { plan, names } = decoder;
  for (let i = 0; i < plan.length; i++) {
    const from = plan[i];
    row[names[i]] = from === 'now' ? now : from === 'rescued' ? rescued : from < 0 ? null : staged[from];
  }
  return row;
}
