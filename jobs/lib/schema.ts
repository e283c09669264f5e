/**
 * JSON Schemas (for ajv) derived from the catalog, and a row validator that turns ajv's errors
 * into reasons a person can act on ("'2.56324E+15' was damaged into scientific notation").
 *
 * Rows arrive as trimmed strings (empty -> null) from files or Kafka events alike, so every
 * column is validated as a string with a pattern: nothing is coerced silently.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { SourceColumn, SourceTable, SourceType } from './catalog-types';
import { applyPolicy, cardDigits, shown } from './pii';

export type RawRecord = Record<string, string | null>;

export type ReasonCode =
  | 'field_count'
  | 'missing_key'
  | 'scientific_notation_id'
  | 'bad_identifier'
  | 'bad_card_number'
  | 'not_an_integer'
  | 'not_a_number'
  | 'bad_boolean'
  | 'bad_date'
  | 'duplicate_key'
  | 'out_of_range' //          a business rule (quantity >= 1, money >= 0)
  | 'derived_out_of_range' //  price x quantity would not fit its destination type
  | 'record_too_long' //       longer than MAX_RECORD_BYTES: cut, never held in memory
  | 'missing_field' //         an event without one of the source's fields
  | 'schema_drift' //          a field added or missing, quarantined by the contract discard_row
  | 'bad_event';

export interface RowError {
  readonly column: string | null;
  readonly code: ReasonCode;
  readonly reason: string;
}

/**
 * Value patterns by type: compiled by ajv here and, the same strings, by DuckDB in bulk.ts (both
 * ECMAScript and RE2 read them alike: ASCII classes, anchors, bounded repeats).
 */
export const RULE_PATTERNS: Partial<Record<SourceType, string>> = {
  id: '^[0-9]+$',
  // People write cards in groups: one space or hyphen between digits is allowed (and removed).
  card: '^[0-9](?:[ -]?[0-9]){11,18}$',
  int: '^-?[0-9]{1,18}$',
  // DECIMAL(18,4): reject what would be rounded rather than round it silently.
  decimal: '^-?[0-9]{1,14}(\\.[0-9]{1,4})?$',
};

function columnSchema(c: SourceColumn, isKey: boolean): Record<string, unknown> {
  const s: Record<string, unknown> = { type: isKey ? 'string' : ['string', 'null'] };
  const pattern = RULE_PATTERNS[c.type];
  if (pattern) s.pattern = pattern;
  if (c.type === 'bool01') s.enum = isKey ? ['0', '1'] : ['0', '1', null];
  if (c.type === 'date') s.format = 'date';
  return s;
}

/** The JSON Schema of one source row (all columns present; key columns non-null). */
export function jsonSchemaForSource(source: SourceTable): Record<string, unknown> {
  const key = new Set(source.key);
  return {
    $id: `store/source/${source.name}`,
    title: `${source.file} row`,
    description: source.description,
    type: 'object',
    additionalProperties: false,
    required: source.columns.map((c) => c.name),
    properties: Object.fromEntries(source.columns.map((c) => [c.name, columnSchema(c, key.has(c.name))])),
  };
}

const SCIENTIFIC = /^[-+]?[0-9](\.[0-9]+)?[eE][-+]?[0-9]+$/;

/** Why a PII value is invalid, without the value: "card number has 20 digits". */
function describePii(col: SourceColumn, value: string): RowError {
  const column = col.name;
  if (col.type !== 'card') return { column, code: 'bad_event', reason: `value in '${column}' is invalid (not shown: personal data)` };
  if (SCIENTIFIC.test(value)) {
    return { column, code: 'scientific_notation_id', reason: `card number in '${column}' was damaged into scientific notation (by a spreadsheet); its digits are lost` };
  }
  const digits = cardDigits(value);
  const reason = /^[0-9]+$/.test(digits)
    ? /[ -]{2}|^[ -]|[ -]$/.test(value)
      ? `card number in '${column}' has misplaced separators`
      : `card number in '${column}' has ${digits.length} digits (12-19 expected)`
    : `card number in '${column}' has characters other than digits, spaces and hyphens`;
  return { column, code: 'bad_card_number', reason };
}

function describe(col: SourceColumn | undefined, value: unknown, err: ErrorObject): RowError {
  const column = col?.name ?? null;
  if (value === null || value === undefined) {
    return { column, code: 'missing_key', reason: `key column '${column}' is empty` };
  }
  if (col?.pii) return describePii(col, String(value));
  const shownValue = shown(String(value));
  switch (col?.type) {
    case 'id':
    case 'card':
      if (typeof value === 'string' && SCIENTIFIC.test(value)) {
        return {
          column,
          code: 'scientific_notation_id',
          reason: `identifier ${shownValue} in '${column}' was damaged into scientific notation (by a spreadsheet); its digits are lost`,
        };
      }
      return col.type === 'id'
        ? { column, code: 'bad_identifier', reason: `${shownValue} in '${column}' is not an identifier (digits only)` }
        : { column, code: 'bad_card_number', reason: `${shownValue} in '${column}' is not a card number (12-19 digits)` };
    case 'int':
      return { column, code: 'not_an_integer', reason: `${shownValue} in '${column}' is not a whole number` };
    case 'decimal':
      return {
        column,
        code: 'not_a_number',
        reason: `${shownValue} in '${column}' is not a number (at most 14 digits before and 4 after the point)`,
      };
    case 'bool01':
      return { column, code: 'bad_boolean', reason: `${shownValue} in '${column}' is not 0 or 1` };
    case 'date':
      return { column, code: 'bad_date', reason: `${shownValue} in '${column}' is not a valid date (YYYY-MM-DD)` };
    default:
      return { column, code: 'bad_event', reason: `'${column ?? '(row)'}' ${err.message ?? 'is invalid'}` };
  }
}

export interface RowValidator {
  readonly source: SourceTable;
  /** Returns [] when the row is valid. */
  validate(row: RawRecord): RowError[];
}

const ajv = new Ajv({ allErrors: true, strict: true });
addFormats(ajv, ['date']);
const compiled = new Map<string, ValidateFunction>();

export function rowValidator(source: SourceTable): RowValidator {
  let fn = compiled.get(source.name);
  if (!fn) {
    fn = ajv.compile(jsonSchemaForSource(source));
    compiled.set(source.name, fn);
  }
  const validateFn = fn;
  const byName = new Map(source.columns.map((c) => [c.name, c]));
  return {
    source,
    validate(row) {
      if (validateFn(row)) return checkRules(source, row);
      const seen = new Set<string>();
      const out: RowError[] = [];
      for (const err of validateFn.errors ?? []) {
        // enum/type/pattern for one value can all fire: report each column once.
        const name = err.instancePath.slice(1) || (err.params as { missingProperty?: string; additionalProperty?: string }).missingProperty || (err.params as { additionalProperty?: string }).additionalProperty || '';
        if (seen.has(name)) continue;
        seen.add(name);
        out.push(describe(byName.get(name), row[name], err));
      }
      // Rules of the columns that are well typed, so a row lists all its problems at once.
      return out.concat(checkRules(source, row).filter((e) => !seen.has(e.column ?? '')));
    },
  };
}

/**
 * A number's text as an exact integer of ten-thousandths (DECIMAL(18,4)'s scale): '-1.5' ->
 * -15000n. Only for text the type's pattern accepted, or a catalog bound (String(n)).
 */
export function scaled4(v: string): bigint {
  const [int, frac = ''] = v.replace(/^\+/, '').split('.');
  return BigInt(int + frac.padEnd(4, '0').slice(0, 4));
}

/**
 * Business rules of the catalog (`rules`: min, max, maxLength) over the well-typed values of a
 * row, compared exactly (18 digits are past a double's precision).
 */
function checkRules(source: SourceTable, row: RawRecord): RowError[] {
  const out: RowError[] = [];
  for (const c of source.columns) {
    const rules = c.rules;
    const v = row[c.name];
    const pattern = RULE_PATTERNS[c.type];
    if (!rules || v === null || v === undefined || !pattern || !new RegExp(pattern).test(v)) continue;
    if (rules.maxLength !== undefined && v.length > rules.maxLength) {
      // The value itself is not shown: it may be a megabyte of digits.
      out.push({ column: c.name, code: 'out_of_range', reason: `identifier in '${c.name}' has ${v.length} characters, more than the maximum ${rules.maxLength}` });
      continue;
    }
    const exact = scaled4;
    if (rules.min !== undefined && exact(v) < exact(String(rules.min))) {
      out.push({ column: c.name, code: 'out_of_range', reason: `${c.name} ${shown(v)} is below the minimum ${rules.min}` });
    } else if (rules.max !== undefined && exact(v) > exact(String(rules.max))) {
      out.push({ column: c.name, code: 'out_of_range', reason: `${c.name} ${shown(v)} is above the maximum ${rules.max}` });
    }
  }
  return out;
}

/**
 * Turns a validated row into the values staged for it: PII dropped or masked, 0/1 flags as
 * booleans. Returned in the order of the staging table's columns.
 */
export function stagedValues(source: SourceTable, row: RawRecord): (string | null)[] {
  const out: (string | null)[] = [];
  for (const c of source.columns) {
    if (c.pii === 'drop') continue;
    const v = row[c.name] ?? null;
    if (v === null) out.push(null);
    else if (c.pii) out.push(applyPolicy(c.pii, c.type, v));
    else if (c.type === 'bool01') out.push(v === '1' ? 'true' : 'false');
    else out.push(v);
  }
  return out;
}

/** Normalises a parsed event or record to trimmed strings, empty -> null. */
export function normalizeRecord(source: SourceTable, obj: Record<string, unknown>): RawRecord {
  const out: RawRecord = {};
  for (const c of source.columns) {
    const v = obj[c.name];
    if (v === null || v === undefined) out[c.name] = null;
    else {
      const s = (typeof v === 'string' ? v : String(v)).trim();
      out[c.name] = s === '' ? null : s;
    }
  }
  return out;
}
