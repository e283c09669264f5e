/**
 * npm run accept-field -- <table> <field> [column]: after the catalog declares the column, fills
 * it from `_rescued_data` for the rows already loaded in the DuckDB warehouse (the stream file
 * for a stream table, the batch file for a batch one) and removes the key from `_rescued_data`.
 * `--bigquery <project>` prints the BigQuery statement instead (run it with bq or the console).
 */
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../jobs/catalog';
import { findDestination } from '../jobs/lib/catalog-check';
import { acceptFieldBigQuery, acceptFieldDuckDb } from '../jobs/lib/accept-field';
import { loadConfig } from '../jobs/lib/config';
import { streamFiles } from '../jobs/lib/stream/config';

async function main(argv: string[]): Promise<number> {
  const bq = argv.indexOf('--bigquery');
  const project = bq >= 0 ? argv[bq + 1] : null;
  const [table, field, column] = argv.filter((_, i) => bq < 0 || (i !== bq && i !== bq + 1));
  if (!table || !field || (bq >= 0 && !project)) {
    process.stderr.write('usage: npm run accept-field -- <table> <field> [column] [--bigquery <project>]\n');
    return 64;
  }
  const dest = findDestination(catalog, table);
  if (project) {
    process.stdout.write(`${acceptFieldBigQuery(dest, project, field, column)};\n`);
    return 0;
  }
  const file = dest.mode === 'stream' ? streamFiles().duckdbPath : loadConfig().duckdbPath;
  if (!fs.existsSync(file)) throw new Error(`no warehouse file at ${file}`);
  const db = await DuckDBInstance.create(file);
  const c = await db.connect();
  try {
    const r = await c.run(acceptFieldDuckDb(dest, field, column));
    process.stdout.write(`${dest.name}: ${r.rowsChanged} rows got '${column ?? field}' from ${'_rescued_data'}\n`);
  } finally {
    c.closeSync();
    db.closeSync();
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`accept-field: ${e.message}\n`);
  process.exit(1);
});
