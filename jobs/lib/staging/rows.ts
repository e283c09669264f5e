/**
 * The exact path's row code, which both staging strategies share: one extracted row is validated
 * by the catalog's ajv schema and rules (schema.ts), then appended to `src_<source>` (staged
 * form: PII dropped or masked) or to the quarantine with its line, first column and reasons.
 * The bulk strategy hands it every row it flags, so a quarantine row is always this code's.
 */
import type { DuckDBAppender } from '@duckdb/node-api';
import type { SourceTable } from '../catalog-types';
import type { ExtractedRow } from '../extract';
import { DriftTally, driftReason, rescuedJson, rescuedValue } from '../drift';
import { delimiterName, type HeaderInfo } from '../header';
import { piiColumns, redactRaw } from '../pii';
import type { SourceQuality } from '../quality';
import { type ReasonCode, type RowError, rowValidator, stagedValues } from '../schema';
import { appendQuarantine, type StageContext } from './quarantine';

/** Mutable tallies while a source streams by; frozen into a SourceQuality at the end. */
export class Tally {
  rowsRead = 0;
  rowsLoaded = 0;
  rowsQuarantined = 0;
  valuesTrimmed = 0;
  readonly byReason = new Map<ReasonCode, number>();
  readonly typeMismatches = new Map<string, number>();
  readonly nulls = new Map<string, number>();
  readonly fffdColumns = new Set<string>();
  fffdValues = 0;
  readonly sciSamples: string[] = [];
  sciCount = 0;
  /** Schema drift per field (set by the row stager when the header has any). */
  drift: DriftTally | null = null;

  reason(code: ReasonCode, n = 1) {
    this.byReason.set(code, (this.byReason.get(code) ?? 0) + n);
  }
}

/**
 * The exact path for one row: the catalog's ajv schema decides, and a rejected row goes to the
 * quarantine with its line, first column and every reason.
 */
export function rowStager(
  ctx: StageContext,
  source: SourceTable,
  file: string,
  header: Pick<HeaderInfo, 'found' | 'added' | 'missing'>,
  rows: DuckDBAppender,
  quarantine: DuckDBAppender,
  tally: Tally,
): (row: ExtractedRow) => void {
  const headerFound = header.found;
  const contract = ctx.contract ?? 'freeze';
  // Drift is decided per file by the header (header.ts): columns added, nullable ones missing.
  const drifted = header.added.length > 0 || header.missing.length > 0;
  const drift = drifted ? (tally.drift ??= new DriftTally(source, contract, ctx.destination)) : null;
  /** Counts the row's drift; the first drift that quarantines it (discard_row), if any. */
  const driftOf = (row: Extract<ExtractedRow, { kind: 'record' }>): RowError | null => {
    let quarantined: RowError | null = null;
    for (const name of header.missing) {
      if (drift!.see(name, 'missing', null) === 'quarantined') {
        quarantined ??= { column: name, code: 'schema_drift', reason: driftReason(name, 'missing', 'column') };
      }
    }
    for (const [name, v] of row.added ?? []) {
      if (v !== null && drift!.see(name, 'added', v) === 'quarantined') {
        quarantined ??= { column: null, code: 'schema_drift', reason: driftReason(name, 'added', 'column') };
      }
    }
    return quarantined;
  };
  // Compiled on the first row that needs it: the bulk path often hands over none, and a
  // compile costs ~30 ms (a tenth of a small job).
  let validator: ReturnType<typeof rowValidator> | undefined;
  // Values of added columns are masked like any value of the source (rescuedValue) before the
  // column policy redacts the rest: drift is never a way around masking.
  const addedAt = piiColumns(source).length > 0 ? header.added.map((name) => headerFound.indexOf(name)) : [];
  const redacted = (raw: string): string => {
    const fields = addedAt.length > 0 && !(source.delimiter === ',' && raw.includes('"')) ? raw.split(source.delimiter) : null;
    if (fields?.length === headerFound.length) {
      for (const i of addedAt) if (fields[i].trim() !== '') fields[i] = rescuedValue(source, fields[i]);
      return redactRaw(source, headerFound, fields.join(source.delimiter));
    }
    return redactRaw(source, headerFound, raw);
  };
  const reject = (line: number, err: RowError, raw: string, isRedacted = false) => {
    appendQuarantine(quarantine, ctx, source, file, line, err.column, err.code, err.reason,
      isRedacted ? raw : redacted(raw));
    tally.rowsQuarantined++;
    tally.reason(err.code);
  };

  return (row: ExtractedRow) => {
    tally.rowsRead++;
    if (row.kind === 'too_long') {
      // Only an excerpt was ever held; its fields cannot be told apart (it is cut).
      const excerpt = redactRaw(source, null, row.excerpt);
      reject(row.line, {
        column: null,
        code: 'record_too_long',
        reason: `record is longer than the limit of ${row.limit} bytes (MAX_RECORD_BYTES): ${row.length} bytes; only its first ${row.excerpt.length} characters are kept in raw`,
      }, excerpt, true);
    } else if (row.kind === 'malformed') {
      reject(row.line, {
        column: null,
        code: 'field_count',
        reason: `expected ${headerFound.length} fields separated by ${delimiterName(source.delimiter)}, found ${row.fieldCount}`,
      }, row.raw);
    } else {
      tally.valuesTrimmed += row.trimmed;
      for (const col of source.columns) {
        const v = row.record[col.name];
        if (v === null) tally.nulls.set(col.name, (tally.nulls.get(col.name) ?? 0) + 1);
        else if (v.includes('\uFFFD')) {
          tally.fffdValues++;
          tally.fffdColumns.add(col.name);
        }
      }
      const errors = (validator ??= rowValidator(source)).validate(row.record);
      // A row's type errors come first (quarantined as without drift); then its drift by contract.
      const dropped = errors.length === 0 && drift ? driftOf(row) : null;
      if (dropped) reject(row.line, dropped, row.raw);
      else if (errors.length === 0) {
        rows.appendBigInt(BigInt(row.line));
        for (const v of stagedValues(source, row.record)) {
          if (v === null) rows.appendNull();
          else rows.appendVarchar(v);
        }
        const rescued = contract === 'rescue' && row.added ? rescuedJson(source, row.added) : null;
        if (rescued === null) rows.appendNull();
        else rows.appendVarchar(rescued);
        rows.endRow();
        tally.rowsLoaded++;
      } else {
        for (const e of errors) {
          if (e.column && e.code !== 'missing_key') {
            tally.typeMismatches.set(e.column, (tally.typeMismatches.get(e.column) ?? 0) + 1);
          }
          if (e.code === 'scientific_notation_id') {
            tally.sciCount++;
            // A damaged card is still (part of) a card: counted, never sampled.
            const pii = source.columns.find((col) => col.name === e.column)?.pii;
            if (!pii && tally.sciSamples.length < 5) tally.sciSamples.push(String(row.record[e.column ?? ''] ?? ''));
          }
        }
        // One quarantine row per rejected source row keeps the accounting exact; the first
        // error names the column, the reason lists them all.
        const [first] = errors;
        reject(row.line, { ...first, reason: errors.map((e) => e.reason).join('; ') }, row.raw);
      }
    }
  };
}

/**
 * Freezes the tallies into the source's report (key duplicates, foreign keys and derived rules
 * are the checks' business: checks.ts adds them).
 */
export function sourceQuality(
  source: SourceTable,
  header: HeaderInfo,
  counters: { readonly blankLines: number; readonly crlfLines: number },
  tally: Tally,
): SourceQuality {
  return {
    source: source.name,
    file: source.file,
    delimiter: delimiterName(source.delimiter),
    bom: header.bom,
    crlfLines: counters.crlfLines,
    header: { columns: header.found, paddedNames: header.padded },
    shape: { rows: tally.rowsRead, columns: header.found.length },
    rowsRead: tally.rowsRead,
    rowsLoaded: tally.rowsLoaded,
    rowsQuarantined: tally.rowsQuarantined,
    blankLines: counters.blankLines,
    quarantinedByReason: Object.fromEntries(tally.byReason),
    typeMismatches: Object.fromEntries(tally.typeMismatches),
    nullsPerColumn: Object.fromEntries(source.columns.map((col) => [col.name, tally.nulls.get(col.name) ?? 0])),
    valuesTrimmed: tally.valuesTrimmed,
    invalidUtf8: { values: tally.fffdValues, columns: [...tally.fffdColumns] },
    scientificNotationIds: { count: tally.sciCount, samples: tally.sciSamples },
    duplicateKeys: { count: 0, samples: [] },
    orphanForeignKeys: [],
    schemaDrift: { added: header.added, missing: header.missing, fields: tally.drift?.list(false) ?? [] },
  };
}
