/**
 * PII by column: the catalog marks PII columns with a policy (catalog-types `PiiPolicy`), and
 * this module is the one place that turns a PII value into what may be written. The card rule
 * for free text (maskCardRuns: Luhn-checked digit groups, any separators) covers everything
 * else: text whose fields cannot be told apart, reasons, reports, logs, dead letters.
 *
 * Also here: `printable`, which escapes control bytes in anything shown to a person.
 */
import crypto from 'node:crypto';
import type { PiiPolicy, SourceColumn, SourceTable } from './catalog-types';

/**
 * Characters people (or damage) put between the digit groups of a card number: spaces (the
 * no-break, unicode and zero-width ones included), `/`, `.`, `_`, `-` and the unicode dashes
 * and minus signs. A run of them, of any length, joins two digit groups. Tabs and line breaks
 * are not among them: they separate fields and lines, whose digits must not join.
 */
const SEPARATOR = /[ \u00a0\u1680\u2000-\u200d\u2060\u202f\u205f\u3000\ufeff/._\-\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]/;
/**
 * An escape a serializer (JSON, `printable`) wrote for a character: a separator when the
 * character is one, and never glue (the `t` of `\t` is not a letter next to the digits).
 */
const ESCAPE = /^\\(?:u[0-9a-fA-F]{4}|[tnrfbv0])/;
const ESCAPE_BEFORE = /\\(?:u[0-9a-fA-F]{4}|[tnrfbv0])$/;
const isDigit = (ch: string | undefined): boolean => ch !== undefined && ch >= '0' && ch <= '9';
const isAlnum = (ch: string | undefined): boolean => ch !== undefined && /[\p{L}\p{N}]/u.test(ch);

/** Shortest and longest card numbers (ISO/IEC 7812). */
const CARD_MIN = 12;
const CARD_MAX = 19;

/** Digit groups of one run: `[start, end)` offsets in the text, separators between them. */
type Group = readonly [number, number];

/** Length of the escape at `i`, 0 when there is none. */
const escapeAt = (s: string, i: number): number => (s[i] === '\\' ? (ESCAPE.exec(s.slice(i, i + 6))?.[0].length ?? 0) : 0);

/** Length of the separator (a character or its escape) at `i`, 0 when there is none. */
function separatorAt(s: string, i: number): number {
  const n = escapeAt(s, i);
  if (n === 6) return SEPARATOR.test(String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16))) ? 6 : 0;
  if (n > 0) return 0;
  return i < s.length && SEPARATOR.test(s[i]) ? 1 : 0;
}

/** Whether `s` holds at least 12 digits (a loop: a regular expression would backtrack on long text). */
function hasTwelveDigits(s: string): boolean {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++n >= CARD_MIN) return true;
  }
  return false;
}

/**
 * Every maximal run of digit groups joined by separators, with whether it is glued to a letter
 * or digit on either side (`T101530-123499` in a run id, digits inside a hash or a UUID).
 * `anyNonAlnum` (column policy, see redactRaw) also joins groups across any other
 * non-alphanumeric character, at most three in a row, so a delimiter does not break a run.
 */
function* digitRuns(s: string, anyNonAlnum: boolean): Generator<{ groups: Group[]; glued: boolean }> {
  // Yielded one at a time, not collected: a line of 100,000 one-digit fields has as many runs.
  let i = 0;
  while (i < s.length) {
    if (!isDigit(s[i])) {
      // An escape is skipped whole: the digits of `\u2007` are not data.
      i += Math.max(1, escapeAt(s, i));
      continue;
    }
    const glued = isAlnum(s[i - 1]) && !ESCAPE_BEFORE.test(s.slice(Math.max(0, i - 6), i));
    const groups: Group[] = [];
    for (;;) {
      const start = i;
      while (isDigit(s[i])) i++;
      groups.push([start, i]);
      // The gap: separators of any length; under the policy also up to 3 other non-alphanumerics.
      let j = i;
      let others = 0;
      for (;;) {
        const n = separatorAt(s, j);
        if (n > 0) j += n;
        else if (anyNonAlnum && j < s.length && !isAlnum(s[j]) && others < 3) {
          others++;
          j++;
        } else break;
      }
      if (j > i && isDigit(s[j])) i = j;
      else break;
    }
    yield { groups, glued: glued || isAlnum(s[i]) };
  }
}

/** The Luhn check digit test that every issued card number passes. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let k = 0; k < digits.length; k++) {
    let d = digits.charCodeAt(digits.length - 1 - k) - 48;
    if (k % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** Replaces every digit of `groups` but the last four with `*` in `chars`. */
function maskGroups(chars: string[], groups: readonly Group[]): void {
  let keep = 4;
  for (let g = groups.length - 1; g >= 0; g--) {
    for (let k = groups[g][1] - 1; k >= groups[g][0]; k--) {
      if (keep > 0) keep--;
      else chars[k] = '*';
    }
  }
}

const digitCount = (s: string, groups: readonly Group[]): number => groups.reduce((n, [a, b]) => n + (b - a), 0);

/**
 * Masks card numbers in free text (a reason, a message, a raw line, a report, a log line), on
 * the text as found: a card is 12-19 digits, in groups joined by separators (see SEPARATOR),
 * that pass the Luhn check and are not glued to a letter or digit. Within a longer run (an id
 * next to a card), every span of whole groups of 12-19 digits is tried. Everything but the last
 * four digits of such a span becomes `*`, separators kept. Identifiers, paths, run ids, hashes
 * and timestamps are printed exactly: their digits are glued to letters or fail the check.
 */
export function maskCardRuns(s: string): string {
  if (!hasTwelveDigits(s)) return s;
  let chars: string[] | null = null;
  for (const { groups, glued } of digitRuns(s, false)) {
    if (glued || digitCount(s, groups) < CARD_MIN) continue;
    for (let a = 0; a < groups.length; a++) {
      let n = 0;
      for (let b = a; b < groups.length; b++) {
        n += groups[b][1] - groups[b][0];
        if (n > CARD_MAX) break;
        if (n < CARD_MIN) continue;
        const span = groups.slice(a, b + 1);
        if (luhnValid(span.map(([x, y]) => s.slice(x, y)).join(''))) maskGroups((chars ??= s.split('')), span);
      }
    }
  }
  return chars ? chars.join('') : s;
}

/** A copy of a JSON-like value (a report, a log record) with maskCardRuns applied to every string in it. */
export function maskStrings<T>(v: T): T {
  if (typeof v === 'string') return maskCardRuns(v) as T;
  if (Array.isArray(v)) return v.map(maskStrings) as T;
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [maskCardRuns(k), maskStrings(x)])) as T;
  }
  return v;
}

/**
 * Column policy for text of a card source whose fields cannot be told apart: every run of 12 or
 * more digits is masked but its last four, whatever separates them (a delimiter, quotes; the
 * Luhn check aside), so a card cut by the wrong delimiter (`6563,2088,9715,7777`) is masked
 * too. Over-masks ids next to it, which is the point.
 */
export function maskAllDigitRuns(text: string): string {
  // Cards first: an id next to a card recognised as one stays readable.
  const s = maskCardRuns(text);
  if (!hasTwelveDigits(s)) return s;
  const chars = s.split('');
  for (const { groups } of digitRuns(s, true)) if (digitCount(s, groups) >= CARD_MIN) maskGroups(chars, groups);
  return chars.join('');
}

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

/** Text of a PII source whose fields cannot be told apart: masked by the card policy, or withheld. */
function redactUnsplit(pii: readonly SourceColumn[], text: string): string {
  return pii.some((c) => c.type !== 'card' || c.pii !== 'mask_last4') ? WITHHELD : maskAllDigitRuns(text);
}

/**
 * The fields of `raw` as the parser found them, or null when a plain split on the delimiter
 * could disagree with it: a wrong field count, or a quote in a comma-separated line (its
 * parser honours quotes, extract.ts; a quoted field may hold the delimiter).
 */
function fieldsAsParsed(source: SourceTable, header: readonly string[] | null, raw: string): string[] | null {
  if (!header || (source.delimiter === ',' && raw.includes('"'))) return null;
  const fields = raw.split(source.delimiter);
  return fields.length === header.length ? fields : null;
}

/**
 * The quarantine keeps the raw row for diagnosis and replay, redacted by column: a PII field is
 * replaced by its policy's redaction, the other fields have card numbers masked (maskCardRuns).
 * When the fields cannot be told apart (wrong delimiter, wrong field count, a quote, a truncated
 * excerpt), a source with card columns has every run of 12+ digits masked whatever separates
 * them, and a source with other PII (passwords) keeps nothing.
 */
export function redactRaw(source: SourceTable, header: readonly string[] | null, raw: string): string {
  const pii = piiColumns(source);
  if (pii.length === 0) return maskCardRuns(raw);
  const fields = fieldsAsParsed(source, header, raw);
  if (fields === null) return redactUnsplit(pii, raw);
  const byName = new Map(pii.map((c) => [c.name, c]));
  return fields
    .map((f, i) => {
      const c = byName.get(header![i]);
      return c ? redactValue(c, f) : maskCardRuns(f);
    })
    .join(source.delimiter);
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
    return redactUnsplit(pii, text);
  }
  const out: Record<string, unknown> = { ...(obj as Record<string, unknown>) };
  for (const c of pii) {
    const v = out[c.name];
    if (v !== undefined && v !== null) out[c.name] = redactValue(c, typeof v === 'string' ? v : JSON.stringify(v));
  }
  // A field the source does not have may be a misspelt password: its value is not kept.
  if (pii.some((c) => c.type !== 'card')) {
    const known = new Set(source.columns.map((c) => c.name));
    for (const k of Object.keys(out)) if (!known.has(k)) out[k] = '[redacted]';
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
