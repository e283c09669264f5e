/**
 * The data-quality report of a run: what the old pandas pipeline printed, as structured data.
 * Written as a JSON artifact (.state/reports/) and stored with the run in `_etl_runs.report`;
 * `formatJobSummary` renders the readable console version.
 */
import type { FieldDrift } from './drift';
import { printable } from './pii';
import type { ReasonCode } from './schema';

export interface SourceQuality {
  readonly source: string;
  readonly file: string;
  readonly delimiter: string;
  readonly bom: boolean;
  readonly crlfLines: number;
  readonly header: { readonly columns: readonly string[]; readonly paddedNames: readonly string[] };
  /** Shape: data rows read (blank lines excluded) x header columns. */
  readonly shape: { readonly rows: number; readonly columns: number };
  readonly rowsRead: number;
  readonly rowsLoaded: number;
  readonly rowsQuarantined: number;
  readonly blankLines: number;
  readonly quarantinedByReason: Partial<Record<ReasonCode, number>>;
  /** Values that failed their column's type, per column. */
  readonly typeMismatches: Record<string, number>;
  /** Empty values per column, over rows with the right field count. */
  readonly nullsPerColumn: Record<string, number>;
  readonly valuesTrimmed: number;
  /** Values holding U+FFFD: invalid UTF-8 in the file, or a replacement char already in it. */
  readonly invalidUtf8: { readonly values: number; readonly columns: readonly string[] };
  readonly scientificNotationIds: { readonly count: number; readonly samples: readonly string[] };
  readonly duplicateKeys: { readonly count: number; readonly samples: readonly string[] };
  readonly orphanForeignKeys: readonly OrphanCheck[];
  /**
   * Schema drift of the file (docs/schema-contracts.md): header columns the catalog does not
   * declare, nullable ones it lacks, and per field the rows it occurred in and what the
   * contract did with them.
   */
  readonly schemaDrift: {
    readonly added: readonly string[];
    readonly missing: readonly string[];
    readonly fields: readonly FieldDrift[];
  };
}

export interface OrphanCheck {
  readonly columns: readonly string[];
  readonly references: string;
  readonly count: number;
  readonly samples: readonly string[];
}

export interface QuarantineSample {
  readonly source: string;
  readonly line: number | null;
  readonly column: string | null;
  readonly reason: string;
}

export interface JobReport {
  readonly runId: string;
  readonly destination: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly sources: readonly SourceQuality[];
  readonly destinationRows: number;
  /** rows read = rows loaded + rows quarantined, for every source. */
  readonly accountingBalanced: boolean;
  readonly quarantineSamples: readonly QuarantineSample[];
}

export function reasonTotals(reports: readonly JobReport[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const r of reports) {
    for (const s of r.sources) {
      for (const [code, n] of Object.entries(s.quarantinedByReason)) {
        totals.set(code, (totals.get(code) ?? 0) + (n ?? 0));
      }
    }
  }
  return totals;
}

const pad = (s: string | number, n: number, right = false) =>
  right ? String(s).padStart(n) : String(s).padEnd(n);

/** A readable per-source summary of one job's report. */
export function formatJobSummary(r: JobReport): string {
  const lines = [`${r.destination}: ${r.destinationRows} rows written (run ${r.runId})`];
  lines.push(
    `  ${pad('source', 26)}${pad('read', 9, true)}${pad('loaded', 9, true)}${pad('quarant.', 10, true)}  notes`,
  );
  for (const s of r.sources) {
    const notes: string[] = [];
    for (const [code, n] of Object.entries(s.quarantinedByReason)) notes.push(`${code}=${n}`);
    if (s.blankLines) notes.push(`blank lines=${s.blankLines}`);
    if (s.header.paddedNames.length) notes.push(`padded header: ${s.header.paddedNames.join(',')}`);
    if (s.valuesTrimmed) notes.push(`trimmed values=${s.valuesTrimmed}`);
    if (s.invalidUtf8.values) notes.push(`U+FFFD in ${s.invalidUtf8.values} values (${s.invalidUtf8.columns.join(',')})`);
    for (const o of s.orphanForeignKeys) if (o.count) notes.push(`orphan ${o.columns.join('+')}->${o.references}=${o.count}`);
    for (const f of s.schemaDrift.fields) notes.push(`drift ${f.kind} ${printable(JSON.stringify(f.field))}: ${f.rows} ${f.action}`);
    if (s.bom) notes.push('BOM');
    if (s.crlfLines) notes.push(`CRLF lines=${s.crlfLines}`);
    lines.push(
      `  ${pad(s.source, 26)}${pad(s.rowsRead, 9, true)}${pad(s.rowsLoaded, 9, true)}${pad(s.rowsQuarantined, 10, true)}  ${notes.join('; ')}`,
    );
  }
  for (const q of r.quarantineSamples.slice(0, 5)) {
    // Reasons never hold PII values (schema.ts); printable() keeps control bytes off the terminal.
    lines.push(`  quarantined ${q.source}:${q.line ?? '-'}${q.column ? ` [${q.column}]` : ''} ${printable(q.reason)}`);
  }
  if (!r.accountingBalanced) lines.push('  !! accounting does not balance: rows read != loaded + quarantined');
  return lines.join('\n');
}
