/** Generated card numbers for the PII property tests: Luhn-valid digits, written any way. */

/** A small seeded PRNG (mulberry32, the generator's): the same cases on every run. */
export { mulberry32 } from '../../scripts/lib/generator-kit';

export const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

/** What may stand between two digit groups (issue 26.4): spaces, `/ . _ -`, no-break space, dashes. */
export const SEPARATORS = [' ', '/', '.', '_', '-', '\u00a0', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212'];

/** The check digit that makes `body` pass the Luhn test, computed digit by digit. */
export function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let k = 0; k < body.length; k++) {
    // From the right of the full number, the body's last digit is in an even position: doubled.
    let d = Number(body[body.length - 1 - k]);
    if (k % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

/**
 * A card of 12-19 digits (first digit 3-6), cut into groups of 1-6 digits, with one separator
 * repeated 1-3 times between each two groups.
 */
export function card(rnd: () => number): { groups: string[]; seps: string[] } {
  const length = 12 + Math.floor(rnd() * 8);
  let body = String(3 + Math.floor(rnd() * 4));
  while (body.length < length - 1) body += String(Math.floor(rnd() * 10));
  const digits = body + luhnCheckDigit(body);
  const groups: string[] = [];
  for (let i = 0; i < digits.length; ) {
    const n = 1 + Math.floor(rnd() * 6);
    groups.push(digits.slice(i, i + n));
    i += n;
  }
  const seps = groups.slice(1).map(() => pick(rnd, SEPARATORS).repeat(1 + Math.floor(rnd() * 3)));
  return { groups, seps };
}

export const glue = (groups: readonly string[], seps: readonly string[]): string =>
  groups.map((g, i) => (i === 0 ? g : seps[i - 1] + g)).join('');

/** The digits of a text, in order (what a leak would show once separators are dropped). */
export const digitsIn = (s: string): string => s.replace(/\D/g, '');
