/**
 * The catalog's column rules compiled for engines other than ajv: one RE2 pattern per field
 * (DuckDB's regexp_full_match in bulk staging; ECMAScript for the stream's fast decode), a SQL
 * range check where a pattern cannot hold the rule, and the SQL of a value's staged form (PII
 * policy, flags). Every value a pattern accepts is one the ajv validator (schema.ts) accepts with
 * the same staged value; the converse need not hold (a flagged value takes the exact path).
 * Below both the batch staging and the stream layer, so neither imports the other.
 */
import type { SourceColumn, SourceTable } from './catalog-types';
import { stagedColumns } from './catalog-check';
import { RULE_PATTERNS, scaled4 } from './schema';

/** What JavaScript's trim removes (WhiteSpace and LineTerminator), as an RE2 class body. */
const TRIM_WS = ' \\t\\n\\x0B\\f\\r\\x{00A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';

/** The leap years of 1000-9999: multiples of 4 but not of 100, and multiples of 400. */
const LEAP_YEAR = '(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)';
/**
 * A real calendar day of the years 1000-9999 as YYYY-MM-DD (days 1-28 of every month, the 29th
 * and 30th of all but February, the 31st of the long months, and February 29th of a leap year):
 * what ajv-formats' `date` accepts and DuckDB's DATE gives back unchanged (other years take the
 * exact path).
 */
export const DATE_PATTERN = `(?:[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)|${LEAP_YEAR}-02-29)`;

const unanchored = (pattern: string) => `(?:${pattern.replace(/^\^/, '').replace(/\$$/, '')})`;

/**
 * How many digits before the point a value (with up to `fraction` digits after it) may have and
 * still be at most `max` whatever its digits (10^d - 10^-fraction <= max), capped at `cap`.
 */
function digitsUnder(max: number | undefined, cap: number, fraction: number): number {
  if (max === undefined) return cap;
  const limit = scaled4(String(max));
  let d = 0;
  // In ten-thousandths: the largest value of d + 1 digits is 10^(d+1+4) - 10^(4-fraction).
  while (d < cap && 10n ** BigInt(d + 5) - 10n ** BigInt(4 - fraction) <= limit) d++;
  return d;
}

/**
 * The RE2 pattern a raw (untrimmed, non-empty) field must fully match for the exact path to
 * take it as it is and accept it: no edge whitespace to trim (such a row is flagged, and the
 * exact path trims it), then the type's pattern (RULE_PATTERNS, the ajv schema's), narrowed to
 * the column's rules where a pattern can say them (a minimum of 0 or 1, a maximum by its digit
 * count, an identifier's length). `checked` false: the rules need their SQL check too
 * (rangeOkSql). Every match must be a value the exact path accepts; the converse need not hold.
 */
export function fieldPattern(c: SourceColumn, delimiter: string): { readonly pattern: string; readonly checked: boolean } {
  const { min, max, maxLength } = c.rules ?? {};
  const rule = RULE_PATTERNS[c.type];
  const noRange = min === undefined && max === undefined;
  switch (c.type) {
    case 'bool01':
      return { pattern: '[01]', checked: noRange };
    case 'date':
      return { pattern: DATE_PATTERN, checked: noRange };
    case 'string': {
      const d = delimiter === '\t' ? '\\t' : delimiter;
      return { pattern: `(?:[^${TRIM_WS}](?:[^${d}]*[^${TRIM_WS}])?)`, checked: noRange };
    }
    case 'id':
      if (maxLength !== undefined) return { pattern: `(?:[0-9]{1,${maxLength}})`, checked: true };
      break;
    case 'int': {
      // No sign, and for a minimum of 1 no leading zero either (18 digits at most: INT64).
      const d = digitsUnder(max, 18, 0);
      if (min === 0 && d > 0) return { pattern: `(?:[0-9]{1,${d}})`, checked: true };
      if (min === 1 && d > 0) return { pattern: `(?:[1-9][0-9]{0,${Math.min(d, 17) - 1}})`, checked: true };
      break;
    }
    case 'decimal': {
      const d = digitsUnder(max, 14, 4);
      if (min === 0 && d > 0) return { pattern: `(?:[0-9]{1,${d}}(?:\\.[0-9]{1,4})?)`, checked: true };
      break;
    }
    default:
      break;
  }
  if (!rule) throw new Error(`no pattern for type ${c.type}`);
  return { pattern: unanchored(rule), checked: noRange && maxLength === undefined };
}

/**
 * SQL that is true when a valid value `v` (raw text) also meets its column's rules, compared
 * exactly as checkRules compares (as DECIMAL(38,4)); no check can raise (NULL fails the row).
 */
export function rangeOkSql(c: SourceColumn, v: string): string {
  const { min, max, maxLength } = c.rules ?? {};
  const n = `try_cast(${v} AS DECIMAL(38,4))`;
  const parts: string[] = [];
  if (min !== undefined) parts.push(`${n} >= CAST('${String(min)}' AS DECIMAL(38,4))`);
  if (max !== undefined) parts.push(`${n} <= CAST('${String(max)}' AS DECIMAL(38,4))`);
  if (maxLength !== undefined) parts.push(`length(${v}) <= ${maxLength}`);
  return parts.length === 0 ? 'true' : parts.join(' AND ');
}

/**
 * The staged value of a valid trimmed value, as `stagedValues` computes it (bulk staging's rows,
 * and the stream's events the fast pattern accepted).
 */
export function stagedSql(c: SourceColumn, t: string): string | null {
  // Most cards have no separator: replace() costs twice the rest of the mask (measured).
  const digits = `CASE WHEN contains(${t}, ' ') OR contains(${t}, '-') THEN replace(replace(${t}, ' ', ''), '-', '') ELSE ${t} END`;
  switch (c.pii) {
    case 'mask_last4':
      return c.type === 'card' ? `repeat('*', length(${digits}) - 4) || right(${digits}, 4)` : null;
    case 'hash':
      return `sha256(${c.type === 'card' ? digits : t})`;
    case undefined:
      return c.type === 'bool01' ? `(${t} = '1')` : t;
    default:
      return null;
  }
}

/** Whether every staged column of a source has its SQL form (else it takes the exact path). */
export const stagedInSql = (source: SourceTable): boolean => stagedColumns(source).every((c) => stagedSql(c, 'x') !== null);
