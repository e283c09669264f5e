/**
 * The header check both staging strategies share (exact: csv-parse's first record; bulk: the
 * file's first line split on the delimiter): the names, trimmed, must be the catalog's columns,
 * in any order, each once. A mismatch is a SourceFileError naming the file, line and column.
 * The table's schema contract decides per file (docs/schema-contracts.md): under `freeze` an
 * added or missing column fails the file; under the other contracts added columns and missing
 * nullable (non-key) ones are drift, returned for the rows to handle. A missing key column
 * fails the file under every contract.
 */
import type { SchemaContract, SourceTable } from './catalog-types';
import { SourceFileError } from './errors';
import { shown } from './pii';

export interface HeaderInfo {
  readonly found: readonly string[];
  readonly padded: readonly string[];
  readonly bom: boolean;
  /** Header names the catalog does not declare (drift, in header order); none under freeze. */
  readonly added: readonly string[];
  /** Nullable catalog columns the header lacks (drift: loaded as NULL or per contract). */
  readonly missing: readonly string[];
}

const DELIMITER_NAMES: Record<string, string> = { '\t': 'tab', ',': 'comma' };
export const delimiterName = (d: string): string => DELIMITER_NAMES[d] ?? JSON.stringify(d);

export function checkHeader(
  source: SourceTable,
  file: string,
  fields: readonly string[],
  line: number,
  contract: SchemaContract = 'freeze',
): Omit<HeaderInfo, 'bom'> {
  const found = fields.map((h) => h.trim());
  const padded = fields.filter((h) => h.trim() !== h).map((h) => h.trim());
  const expected = source.columns.map((c) => c.name);
  // A "header" that is not one may be a data row: of a source with PII, show no unknown name.
  const hasPii = source.columns.some((c) => c.pii);
  const plain = (h: string) => expected.includes(h) || (!hasPii && /^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(h));
  const name = (h: string) => (plain(h) ? `'${h}'` : hasPii ? '(not shown: this source holds personal data)' : shown(h, 40));
  const col = (h: string) => (plain(h) ? h : null);
  const dupes = found.filter((h, i) => found.indexOf(h) !== i);
  if (dupes.length > 0) throw new SourceFileError(file, line, col(dupes[0]), `column ${name(dupes[0])} appears twice in the header`);
  const absent = expected.filter((c) => !found.includes(c));
  const added = found.filter((c) => !expected.includes(c));
  const strict = contract === 'freeze';
  // Key columns are never optional; under freeze no column is. The error names every absent one.
  const missing = strict || absent.some((c) => source.key.includes(c)) ? absent : [];
  const unexpected = strict ? added : [];
  if (missing.length > 0) {
    const other = source.delimiter === '\t' ? ',' : '\t';
    const hint =
      found.length === 1 && found[0].includes(other)
        ? ` (the header has one field: the file looks ${delimiterName(other)}-separated, but the catalog says ${delimiterName(source.delimiter)})`
        : ` (header: ${found.map(name).join(', ')})`;
    throw new SourceFileError(file, line, missing[0], `missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')}${hint}`);
  }
  if (unexpected.length > 0) {
    throw new SourceFileError(
      file,
      line,
      col(unexpected[0]),
      `unexpected column${unexpected.length > 1 ? 's' : ''} ${unexpected.map(name).join(', ')} not in the catalog (expected: ${expected.join(', ')})`,
    );
  }
  return strict ? { found, padded, added: [], missing: [] } : { found, padded, added, missing: absent };
}
