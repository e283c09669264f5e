/**
 * npm run drift: what schema drift the warehouse has seen, per table and field: rows, first and
 * last seen, an example value (masked like any value of its source when it was kept), and the
 * catalog entry that would accept the field. Read from the DuckDB warehouse files: the
 * `_rescued_data` of every table that rescues, and the drift counted in `_etl_runs` reports
 * (batch runs and consumer runs, whatever the contract).
 */
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../jobs/catalog';
import { catalogEntryFor } from '../jobs/lib/accept-field';
import { RESCUED_DATA_COLUMN } from '../jobs/lib/catalog-types';
import { loadConfig } from '../jobs/lib/config';
import { quoteIdent } from '../jobs/lib/ddl';
import type { FieldDrift } from '../jobs/lib/drift';
import { maskStrings } from '../jobs/lib/pii';
import { streamFiles } from '../jobs/lib/stream/config';

interface Seen { table: string; source: string; field: string; kind: string; rows: number; first: string | null; last: string | null; example: string | null; where: string }

async function readFile(file: string, mode: 'batch' | 'stream', out: Seen[]): Promise<void> {
  if (!fs.existsSync(file)) return;
  const db = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const c = await db.connect();
  const rows = async (sql: string) => (await c.runAndReadAll(sql)).getRowsJS();
  try {
    for (const d of catalog.destinations.filter((x) => x.mode === mode && x.columns.some((col) => col.name === RESCUED_DATA_COLUMN))) {
      const t = `${quoteIdent(d.dataset)}.${quoteIdent(d.table)}`;
      const exists = await rows(`SELECT count(*) FROM duckdb_columns() WHERE schema_name = '${d.dataset}' AND table_name = '${d.table}' AND column_name = '${RESCUED_DATA_COLUMN}'`);
      if (Number(exists[0][0]) === 0) continue;
      const ts = d.columns.some((col) => col.name === 'updated_at') ? 'updated_at::VARCHAR' : 'NULL';
      for (const [field, n, first, last, example] of await rows(
        `SELECT k, count(*)::BIGINT, min(_t), max(_t), any_value(json_extract_string(${RESCUED_DATA_COLUMN}, '$."' || k || '"'))
         FROM (SELECT unnest(json_keys(${RESCUED_DATA_COLUMN})) AS k, ${RESCUED_DATA_COLUMN}, ${ts} AS _t FROM ${t} WHERE ${RESCUED_DATA_COLUMN} IS NOT NULL)
         GROUP BY k ORDER BY k`)) {
        out.push({ table: d.name, source: d.sources.join(','), field: String(field), kind: 'added', rows: Number(n), first: first as string | null, last: last as string | null, example: example === null ? null : JSON.stringify(example), where: `rescued in ${d.name}` });
      }
    }
    const runs = await rows(`SELECT destination, started_at::VARCHAR, ended_at::VARCHAR, report FROM store._etl_runs WHERE report IS NOT NULL ORDER BY started_at`).catch(() => []);
    for (const [dest, started, ended, report] of runs) {
      const r = JSON.parse(String(report)) as { sources?: { schemaDrift?: { fields: FieldDrift[] } }[]; drift?: FieldDrift[] };
      const fields = [...(r.drift ?? []), ...(r.sources ?? []).flatMap((s) => s.schemaDrift?.fields ?? [])];
      for (const f of fields) {
        out.push({ table: String(dest), source: f.source, field: f.field, kind: f.kind, rows: f.rows, first: f.firstSeen ?? String(started), last: f.lastSeen ?? String(ended), example: f.example, where: `${f.action} (runs)` });
      }
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function main(): Promise<number> {
  const seen: Seen[] = [];
  await readFile(loadConfig().duckdbPath, 'batch', seen);
  await readFile(streamFiles().duckdbPath, 'stream', seen);
  // Same table, field and kind from several runs: one line, counts summed, first/last spanned.
  const merged = new Map<string, Seen>();
  for (const s of seen) {
    const k = `${s.table}\u0000${s.field}\u0000${s.kind}\u0000${s.where}`;
    const m = merged.get(k);
    if (!m) merged.set(k, { ...s });
    else {
      m.rows += s.rows;
      if (s.first && (!m.first || s.first < m.first)) m.first = s.first;
      if (s.last && (!m.last || s.last > m.last)) m.last = s.last;
      m.example ??= s.example;
    }
  }
  if (merged.size === 0) {
    process.stdout.write('no schema drift seen\n');
    return 0;
  }
  for (const s of maskStrings([...merged.values()])) {
    process.stdout.write(`${s.table}  ${s.kind} field ${JSON.stringify(s.field)} (source ${s.source}): ${s.rows} rows, ${s.where}; first ${s.first ?? '-'}, last ${s.last ?? '-'}; example ${s.example ?? '-'}\n`);
    if (s.kind === 'added') process.stdout.write(`${catalogEntryFor(s.source, s.field)}\n`);
  }
  return 0;
}

main().then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`drift: ${e.message}\n`);
  process.exit(1);
});
