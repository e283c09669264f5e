/**
 * PII by column: the catalog marks PII columns with a policy (catalog-types `PiiPolicy`), and
 * this module is the one place that turns a PII value into what may be written. Pattern
 * masking (card-like digit runs) is only a second line of defence, for text whose fields cannot
 * be told apart (a row split on the wrong delimiter, a free-text message).
 *
 * Also here: `printable`, which escapes control bytes in anything shown to a person.
 */
import crypto from 'node:crypto';
import type { PiiPolicy, SourceColumn, SourceTable } from './catalog-types';

/** 12 or more digits with at most one space, hyphen or dot between two of them: a card written any usual way. */
const CARD_RUN = /\d(?:[ .-]?\d){11,}/g;
/**
 * For a row of a card source whose fields cannot be told apart: any 12+ digits separated by at
 * most three non-alphanumeric characters (the delimiter included), so a card cut by the wrong
 * delimiter (`6563,2088,9715,7777`) is masked too. Over-masks ids next to it, which is the point.
 */
const CARD_RUN_ANY_SEP = /\d(?:[^0-9A-Za-z]{0,3}\d){11,}/g;

/** Masks every digit but the last four, keeping separators: `6563 2088 9715 7777` -> `**** **** **** 7777`. */
export function maskDigits(s: string): string {
  let keep = 4;
  const chars = [...s];
  for (let i = chars.length - 1; i >= 0; i--) {
    if (chars[i] >= '0' && chars[i] <= '9') {
      if (keep > 0) keep--;
      else chars[i] = '*';
    }
  }
  return chars.join('');
}

/** Card digits without the separators people write between groups. */
export const cardDigits = (v: string): string => v.replace(/[ -]/g, '');

/** Masks a card number to its last four digits: 4564148144006084 -> ************6084. */
export const maskCard = (v: string): string => maskDigits(cardDigits(v));

export const hashValue = (v: string): string => crypto.createHash('sha256').update(v, 'utf8').digest('hex');

/** Masks card-like digit runs in free text (a reason, a message, a raw line). */
export const maskCardRuns = (s: string): string => s.replace(CARD_RUN, maskDigits);

export const piiColumns = (source: SourceTable): SourceColumn[] => source.columns.filter((c) => c.pii);

/** The staged value of a valid PII value (null when the policy drops the column). */
export function applyPolicy(policy: PiiPolicy, type: SourceColumn['type'], v: string): string | null {
  switch (policy) {
    case 'drop':
      return null;
    case 'mask_last4':
      return type === 'card' ? maskCard(v) : maskDigits(v);
    case 'hash':
      return hashValue(type === 'card' ? cardDigits(v) : v);
  }
}

/** What replaces a PII value, valid or not, in quarantine raw text. */
function redactValue(c: SourceColumn, v: string): string {
  if (v.trim() === '') return v;
  switch (c.pii) {
    case 'mask_last4': {
      // Keep the shape (length, separators, last four) for diagnosis; letters are not card data
      // but may be anything, so they go too.
      return maskDigits(v).replace(/[A-Za-z]/g, 'x');
    }
    case 'hash':
      return `[sha256:${hashValue(v.trim()).slice(0, 12)}]`;
    default:
      return '[redacted]';
  }
}

export const WITHHELD = '[withheld: the fields of this row cannot be told apart and the source holds personal data]';

/**
 * The quarantine keeps the raw row for diagnosis and replay, redacted by column: a PII field is
 * replaced by its policy's redaction. When the fields cannot be told apart (wrong delimiter,
 * wrong field count, a truncated excerpt), a source with card columns has every card-like run
 * masked whatever the separators, and a source with other PII (passwords) keeps nothing.
 */
export function redactRaw(source: SourceTable, header: readonly string[] | null, raw: string): string {
  const pii = piiColumns(source);
  if (pii.length === 0) return maskCardRuns(raw);
  const fields = raw.split(source.delimiter);
  if (header && fields.length === header.length) {
    const byName = new Map(pii.map((c) => [c.name, c]));
    return maskCardRuns(
      fields
        .map((f, i) => {
          const c = byName.get(header[i]);
          return c ? redactValue(c, f) : f;
        })
        .join(source.delimiter),
    );
  }
  if (pii.some((c) => c.type !== 'card' || c.pii !== 'mask_last4')) return WITHHELD;
  return maskCardRuns(raw).replace(CARD_RUN_ANY_SEP, maskDigits);
}

/**
 * A JSON event (one flat object per source row) redacted by column; text that is not such an
 * object is treated like a row whose fields cannot be told apart.
 */
export function redactEvent(source: SourceTable, text: string): string {
  const pii = piiColumns(source);
  if (pii.length === 0) return maskCardRuns(text);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    obj = null;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return pii.some((c) => c.type !== 'card' || c.pii !== 'mask_last4')
      ? WITHHELD
      : maskCardRuns(text).replace(CARD_RUN_ANY_SEP, maskDigits);
  }
  const out: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
  for (const c of pii) {
    const v = out[c.name];
    if (v !== undefined && v !== null) out[c.name] = redactValue(c, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return maskCardRuns(JSON.stringify(out));
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Escapes control bytes (and bidi overrides) so that printing text cannot drive a terminal. */
export const printable = (s: string): string =>
  s.replace(CONTROL, (ch) => NAMED[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A value as shown in a message: printable, card runs masked, at most `max` characters. */
export function shown(v: string, max = 60): string {
  // Mask before cutting: a cut card run would no longer look like a card.
  const m = maskCardRuns(v);
  const t = m.length > max ? `${m.slice(0, max)}…` : m;
  return `"${printable(t).replace(/"/g, '\\"')}"`;
}
