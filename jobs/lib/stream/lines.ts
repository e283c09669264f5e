/**
 * decodeEventText for a whole slice at once (the DuckDB sink's decodeLines): when the fast
 * pattern accepts every event, the slice's events are their texts joined by newlines, made with
 * one copy of the bytes and one string, with no string or result object per event (a tenth of the
 * consumer's CPU at full speed, in decoding and in garbage collection: docs/benchmarks.md).
 *
 * It accepts exactly what decodeEventText accepts event by event: each value is tested with the
 * same pattern, where it starts, and must match to its own end. Anything else (a tombstone, a
 * byte outside ASCII, a newline in a value, one event the pattern refuses) returns null, and the
 * slice is decoded event by event, where the exact path alone gives a reason.
 */
import { isAscii } from 'node:buffer';
import type { SourceTable, StreamDestination } from '../catalog-types';
import { fastTextPattern } from './events';

const NEWLINE = 0x0a;

/** Per fast pattern: its sticky form, tested at an event's start within the slice's text. */
const sticky = new WeakMap<RegExp, RegExp>();

function stickyFor(fast: RegExp): RegExp {
  let re = sticky.get(fast);
  if (!re) {
    // `^...$` around the record becomes: here, up to the end of the line.
    const body = fast.source.replace(/^\^/, '').replace(/\$$/, '');
    re = new RegExp(`${body}(?=\\n|$)`, `${fast.flags}y`);
    sticky.set(fast, re);
  }
  return re;
}

/** The slice's values as lines when the fast pattern accepts every one of them; otherwise null. */
export function decodeLines(dest: StreamDestination, source: SourceTable, values: readonly (Buffer | null)[]): string | null {
  const fast = fastTextPattern(dest, source);
  if (!fast || values.length === 0) return null;
  let bytes = values.length - 1;
  for (const v of values) {
    if (v === null || v.includes(NEWLINE)) return null;
    bytes += v.length;
  }
  const buf = Buffer.allocUnsafe(bytes);
  const starts = new Int32Array(values.length);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) buf[at++] = NEWLINE;
    starts[i] = at;
    at += values[i]!.copy(buf, at);
  }
  // ASCII: one byte a character, so a value's byte range is its range in the text.
  if (!isAscii(buf)) return null;
  const text = buf.toString('latin1', 0, bytes);
  const re = stickyFor(fast);
  for (let i = 0; i < values.length; i++) {
    re.lastIndex = starts[i];
    if (!re.test(text) || re.lastIndex !== starts[i] + values[i]!.length) return null;
  }
  return text;
}
