/**
 * Stream events: one JSON object per source row, with the source file's column names and the
 * values as text (exactly as in the file), keyed by the entity id (the first key column), so
 * every event of one destination key lands in the same partition, in order.
 *
 * Decoding validates with the same ajv schema as the batch layer (lib/schema.ts); a poison
 * event (not JSON, not an object, schema failure) becomes a quarantine reason, never an error.
 */
import type { SourceTable, StreamDestination } from '../catalog-types';
import { stagedColumns } from '../catalog-check';
import { normalizeRecord, rowValidator, stagedValues, type RawRecord, type RowError } from '../schema';
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

export type DecodedEvent =
  | { readonly ok: true; readonly row: Row }
  | { readonly ok: false; readonly column: string | null; readonly code: string; readonly reason: string };

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
  let parsed: unknown;
  const text = value.toString('utf8');
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { ok: false, column: null, code: 'bad_event', reason: `event is not JSON: ${(e as Error).message}` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return { ok: false, column: null, code: 'bad_event', reason: 'event is not a JSON object' };
  }
  const unknown = Object.keys(parsed).filter((k) => !source.columns.some((c) => c.name === k));
  if (unknown.length > 0) {
    return { ok: false, column: unknown[0], code: 'bad_event', reason: `event has unknown field(s): ${unknown.join(', ')}` };
  }
  const record = normalizeRecord(source, parsed as Record<string, unknown>);
  const errors = rowValidator(source).validate(record);
  if (errors.length > 0) {
    return {
      ok: false,
      column: errors[0].column,
      code: errors[0].code,
      reason: errors.map((e) => e.reason).join('; '),
    };
  }
  const staged = stagedValues(source, record);
  const byName = new Map<string, string | null>(stagedColumns(source).map((c, i) => [c.name, staged[i]]));
  const row: Record<string, CellValue> = {};
  for (const c of dest.columns) {
    if (c.name === 'updated_at') row[c.name] = now;
    else row[c.name] = byName.get(c.name) ?? null;
  }
  return { ok: true, row };
}
