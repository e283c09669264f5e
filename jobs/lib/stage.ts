/**
 * Normalize + stage: every row of a source is validated against the catalog's schema, then
 * either appended to its staging table `src_<source>` (typed, PII dropped or masked) or to the
 * `quarantine` table with file, line, column and reason. Key duplicates are moved to the
 * quarantine afterwards, in SQL, so memory stays flat however large the file.
 */
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import type { SourceTable } from './catalog-types';
import { stagedColumns } from './catalog-check';
import { duckdbCreateStagingTable, QUARANTINE_COLUMNS_DDL, quoteIdent, stagingTableName } from './ddl';
import { delimiterName, type ExtractedRow, openSource } from './extract';
import { createProgress } from './progress';
import type { OrphanCheck, SourceQuality } from './quality';
import { maskCard, type ReasonCode, type RowError, rowValidator, stagedValues } from './schema';

export const QUARANTINE_TABLE = 'quarantine';

export interface StageContext {
  readonly connection: DuckDBConnection;
  readonly runId: string;
  readonly destination: string;
  readonly sourceDir: string;
}

export async function createQuarantineTable(c: DuckDBConnection): Promise<void> {
  await c.run(`CREATE TABLE ${QUARANTINE_TABLE} (${QUARANTINE_COLUMNS_DDL})`);
}

/** Mutable tallies while a source streams by; frozen into a SourceQuality at the end. */
class Tally {
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

  reason(code: ReasonCode, n = 1) {
    this.byReason.set(code, (this.byReason.get(code) ?? 0) + n);
  }
}

export async function stageSource(ctx: StageContext, source: SourceTable): Promise<SourceQuality> {
  const c = ctx.connection;
  const reader = await openSource(source, ctx.sourceDir);
  await c.run(duckdbCreateStagingTable(source));
  const rows = await c.createAppender(stagingTableName(source));
  const quarantine = await c.createAppender(QUARANTINE_TABLE);
  const validator = rowValidator(source);
  const tally = new Tally();
  const progress = createProgress(`${source.file}`, reader.sizeBytes);

  const reject = (line: number, err: RowError, raw: string) => {
    appendQuarantine(quarantine, ctx, source, reader.file, line, err.column, err.code, err.reason, redactRaw(source, reader.header.found, raw));
    tally.rowsQuarantined++;
    tally.reason(err.code);
  };

  const stageRow = (row: ExtractedRow) => {
    tally.rowsRead++;
    if (row.kind === 'malformed') {
      reject(row.line, {
        column: null,
        code: 'field_count',
        reason: `expected ${reader.header.found.length} fields separated by ${delimiterName(source.delimiter)}, found ${row.fieldCount}`,
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
      const errors = validator.validate(row.record);
      if (errors.length === 0) {
        rows.appendBigInt(BigInt(row.line));
        for (const v of stagedValues(source, row.record)) {
          if (v === null) rows.appendNull();
          else rows.appendVarchar(v);
        }
        rows.endRow();
        tally.rowsLoaded++;
      } else {
        for (const e of errors) {
          if (e.column && e.code !== 'missing_key') {
            tally.typeMismatches.set(e.column, (tally.typeMismatches.get(e.column) ?? 0) + 1);
          }
          if (e.code === 'scientific_notation_id') {
            tally.sciCount++;
            if (tally.sciSamples.length < 5) tally.sciSamples.push(String(row.record[e.column ?? ''] ?? ''));
          }
        }
        // One quarantine row per rejected source row keeps the accounting exact; the first
        // error names the column, the reason lists them all.
        const [first] = errors;
        reject(row.line, { ...first, reason: errors.map((e) => e.reason).join('; ') }, row.raw);
      }
    }
  };

  try {
    for await (const batch of reader.batches()) {
      for (const row of batch) stageRow(row);
      progress.update(reader.counters.bytesRead, tally.rowsRead);
    }
    progress.update(reader.sizeBytes, tally.rowsRead);
  } finally {
    progress.stop();
    rows.closeSync();
    quarantine.closeSync();
  }

  const duplicates = await quarantineDuplicateKeys(ctx, source, reader.file);
  tally.rowsLoaded -= duplicates.count;
  tally.rowsQuarantined += duplicates.count;
  if (duplicates.count) tally.reason('duplicate_key', duplicates.count);

  return {
    source: source.name,
    file: source.file,
    delimiter: delimiterName(source.delimiter),
    bom: reader.header.bom,
    crlfLines: reader.counters.crlfLines,
    header: { columns: reader.header.found, paddedNames: reader.header.padded },
    shape: { rows: tally.rowsRead, columns: reader.header.found.length },
    rowsRead: tally.rowsRead,
    rowsLoaded: tally.rowsLoaded,
    rowsQuarantined: tally.rowsQuarantined,
    blankLines: reader.counters.blankLines,
    quarantinedByReason: Object.fromEntries(tally.byReason),
    typeMismatches: Object.fromEntries(tally.typeMismatches),
    nullsPerColumn: Object.fromEntries(source.columns.map((col) => [col.name, tally.nulls.get(col.name) ?? 0])),
    valuesTrimmed: tally.valuesTrimmed,
    invalidUtf8: { values: tally.fffdValues, columns: [...tally.fffdColumns] },
    scientificNotationIds: { count: tally.sciCount, samples: tally.sciSamples },
    duplicateKeys: duplicates,
    orphanForeignKeys: [],
  };
}

const CARD_LIKE = /\d{12,19}/g;
const hasDroppedPii = (source: SourceTable) => source.columns.some((c) => c.pii === 'drop');

/**
 * The quarantine keeps the raw row for replay, but PII must not reach the warehouse through it:
 * card-like digit runs are masked, and rows of a source with a dropped column (passwords) keep
 * only their non-PII fields when the fields can be told apart, else nothing.
 */
export function redactRaw(source: SourceTable, header: readonly string[], raw: string): string {
  let out = raw;
  if (hasDroppedPii(source)) {
    const dropped = new Set(source.columns.filter((c) => c.pii === 'drop').map((c) => c.name));
    const fields = raw.split(source.delimiter);
    if (fields.length !== header.length) return '[withheld: malformed row of a source with personal data]';
    out = fields.map((f, i) => (dropped.has(header[i]) ? '[redacted]' : f)).join(source.delimiter);
  }
  return out.replace(CARD_LIKE, (d) => maskCard(d));
}

function appendQuarantine(
  a: DuckDBAppender,
  ctx: StageContext,
  source: SourceTable,
  file: string,
  line: number,
  column: string | null,
  code: string,
  reason: string,
  raw: string,
): void {
  a.appendVarchar(ctx.runId);
  a.appendVarchar(ctx.destination);
  a.appendVarchar(source.name);
  a.appendVarchar(file);
  a.appendBigInt(BigInt(line));
  if (column === null) a.appendNull();
  else a.appendVarchar(column);
  a.appendVarchar(code);
  a.appendVarchar(reason);
  a.appendVarchar(raw);
  a.endRow();
}

/** Keeps the first row of each key (lowest line) and moves later ones to the quarantine. */
async function quarantineDuplicateKeys(
  ctx: StageContext,
  source: SourceTable,
  file: string,
): Promise<{ count: number; samples: string[] }> {
  const c = ctx.connection;
  const table = stagingTableName(source);
  const keys = source.key.map(quoteIdent).join(', ');
  const keyText = source.key.map((k) => `'${k}=' || ${quoteIdent(k)}`).join(` || ', ' || `);
  const cols = stagedColumns(source).map((col) => `${quoteIdent(col.name)} := ${quoteIdent(col.name)}`).join(', ');
  await c.run(
    `INSERT INTO ${QUARANTINE_TABLE}
     SELECT $1, $2, $3, $4, _line, $5, 'duplicate_key',
            'duplicate key (' || ${keyText} || '): first seen on line ' || _first,
            CAST(to_json(struct_pack(${cols})) AS VARCHAR)
     FROM (SELECT *, row_number() OVER w AS _rn, min(_line) OVER w AS _first
           FROM ${table} WINDOW w AS (PARTITION BY ${keys} ORDER BY _line))
     WHERE _rn > 1`,
    [ctx.runId, ctx.destination, source.name, file, source.key.join(',')],
  );
  await c.run(
    `DELETE FROM ${table} WHERE _line IN
       (SELECT line FROM ${QUARANTINE_TABLE} WHERE source = $1 AND reason_code = 'duplicate_key')`,
    [source.name],
  );
  const r = await c.runAndReadAll(
    `SELECT count(*)::INTEGER, list(reason ORDER BY line)[1:5] FROM ${QUARANTINE_TABLE}
     WHERE source = $1 AND reason_code = 'duplicate_key'`,
    [source.name],
  );
  const [count, samples] = r.getRowsJS()[0] as [number, string[] | null];
  return { count, samples: samples ?? [] };
}

/** Counts rows whose foreign key has no match in the referenced source (both staged). */
export async function checkForeignKeys(
  c: DuckDBConnection,
  source: SourceTable,
  staged: ReadonlySet<string>,
): Promise<OrphanCheck[]> {
  const out: OrphanCheck[] = [];
  for (const fk of source.foreignKeys ?? []) {
    if (!staged.has(fk.references.source)) continue;
    const on = fk.columns
      .map((col, i) => `r.${quoteIdent(fk.references.columns[i])} = s.${quoteIdent(col)}`)
      .join(' AND ');
    const notNull = fk.columns.map((col) => `s.${quoteIdent(col)} IS NOT NULL`).join(' AND ');
    const shown = fk.columns.map((col) => `s.${quoteIdent(col)}`).join(` || '/' || `);
    const r = await c.runAndReadAll(
      `SELECT count(*)::INTEGER, list(DISTINCT ${shown} ORDER BY ${shown})[1:5]
       FROM ${stagingTableName(source)} s
       WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${stagingTableName(fk.references.source)} r WHERE ${on})`,
    );
    const [count, samples] = r.getRowsJS()[0] as [number, string[] | null];
    out.push({
      columns: fk.columns,
      references: `${fk.references.source}(${fk.references.columns.join(',')})`,
      count,
      samples: samples ?? [],
    });
  }
  return out;
}
