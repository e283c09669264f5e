/**
 * Schema drift, seen and never buried: the one place that decides what a table's contract does
 * with a field its source does not declare (added) or a declared nullable one that is absent
 * (missing), counts it per field, keeps rescued values (masked by the source's PII policy), and
 * warns once per field name per process (a batch job is one run; the consumer one process).
 * Batch staging (staging/rows.ts) and stream decoding (stream/events.ts) both use it.
 */
import type { SchemaContract, SourceTable } from './catalog-types';
import { logger } from './log';
import { maskAllDigitRuns, maskCardRuns, piiColumns, shown } from './pii';

export type DriftKind = 'added' | 'missing';

/** What became of the rows a drift occurred in, by contract. */
export type DriftAction = 'rescued' | 'discarded' | 'quarantined' | 'loaded_null' | 'rejected';

/** One drifted field of one source, as the report, `_etl_runs` and the consumer's status show it. */
export interface FieldDrift {
  readonly source: string;
  readonly field: string;
  readonly kind: DriftKind;
  readonly action: DriftAction;
  /** Rows (events) the drift occurred in: an added field with a value, a missing field. */
  readonly rows: number;
  /** The first value seen of an added field, masked like any value of the source; null for missing. */
  readonly example: string | null;
  /** When it was first and last seen (the consumer; a batch run's report has the run's times). */
  readonly firstSeen?: string;
  readonly lastSeen?: string;
}

/** What the contract does with a row in which a drift occurred. */
export function driftAction(contract: SchemaContract, kind: DriftKind): DriftAction {
  switch (contract) {
    case 'freeze':
      return 'rejected';
    case 'discard_row':
      return 'quarantined';
    case 'discard_value':
      return kind === 'added' ? 'discarded' : 'loaded_null';
    case 'rescue':
      return kind === 'added' ? 'rescued' : 'loaded_null';
  }
}

/**
 * A value of an undeclared field as it may be kept (rescued, sampled): masked like any value of
 * its source. A source with a non-card PII column (a password) keeps none (the field may be a
 * misspelt or renamed password); a source with card columns has every run of 12+ digits masked
 * but its last four (it may be a renamed card column); any other value has card numbers masked
 * (the free-text rule).
 */
export function rescuedValue(source: SourceTable, value: string): string {
  const pii = piiColumns(source);
  if (pii.some((c) => c.type !== 'card')) return '[redacted]';
  if (pii.length > 0) return maskAllDigitRuns(value);
  return maskCardRuns(value);
}

/** The `_rescued_data` JSON text of a row's added values (null values are not kept), or null. */
export function rescuedJson(source: SourceTable, added: readonly (readonly [string, string | null])[]): string | null {
  let out: Record<string, string> | null = null;
  for (const [name, v] of added) {
    if (v === null) continue;
    (out ??= {})[maskCardRuns(name)] = rescuedValue(source, v);
  }
  return out === null ? null : JSON.stringify(out);
}

/** The reason a row is quarantined for under discard_row (the value is not repeated). */
export function driftReason(field: string, kind: DriftKind, what: 'column' | 'field'): string {
  const name = JSON.stringify(maskCardRuns(field).slice(0, 40));
  return kind === 'added'
    ? `${what} ${name} is not in the catalog (schema contract discard_row)`
    : `${what} ${name} is missing (schema contract discard_row)`;
}

const warned = new Set<string>();

/** Per-field drift counts of one source (a batch file, or a consumer's destination). */
export class DriftTally {
  private readonly fields = new Map<string, { kind: DriftKind; action: DriftAction; rows: number; example: string | null; first: Date; last: Date }>();

  constructor(
    private readonly source: SourceTable,
    private readonly contract: SchemaContract,
    /** Where the warning says it happened (a destination, a file). */
    private readonly where: string,
  ) {}

  /** Counts one row in which `field` drifted; `value` (added fields) is masked before it is kept. */
  see(field: string, kind: DriftKind, value: string | null, now = new Date()): DriftAction {
    const key = `${kind}:${field}`;
    let f = this.fields.get(key);
    const action = driftAction(this.contract, kind);
    if (!f) {
      f = { kind, action, rows: 0, example: null, first: now, last: now };
      this.fields.set(key, f);
      warnOnce(this.source.name, field, kind, action, this.contract, this.where);
    }
    f.rows++;
    f.last = now;
    if (f.example === null && value !== null && kind === 'added') f.example = shown(rescuedValue(this.source, value), 60);
    return action;
  }

  get size(): number {
    return this.fields.size;
  }

  list(withTimes = true): FieldDrift[] {
    return [...this.fields.entries()].map(([key, f]) => ({
      source: this.source.name,
      field: key.slice(key.indexOf(':') + 1),
      kind: f.kind,
      action: f.action,
      rows: f.rows,
      example: f.example,
      ...(withTimes ? { firstSeen: f.first.toISOString(), lastSeen: f.last.toISOString() } : {}),
    }));
  }
}

/** One warning per field name and kind per process: drift is seen, and the log is not flooded. */
function warnOnce(source: string, field: string, kind: DriftKind, action: DriftAction, contract: SchemaContract, where: string): void {
  const key = `${where}\u0000${source}\u0000${kind}\u0000${field}`;
  if (warned.has(key)) return;
  warned.add(key);
  logger.warn(kind === 'added' ? 'schema drift: a field not in the catalog' : 'schema drift: a nullable field is missing', {
    table: where,
    source,
    field: maskCardRuns(field).slice(0, 80),
    contract,
    action,
    hint: 'npm run drift lists what was seen and the catalog entry that would accept it',
  });
}

/** For tests: forget which fields were warned about. */
export function resetDriftWarnings(): void {
  warned.clear();
}
