/**
 * npm run accept-field -- <table> <field> [column]: after the catalog declares the column, fills
 * it from `_rescued_data` for the rows already loaded and removes the key from `_rescued_data`,
 * in the configured warehouse: DuckDB (the stream file for a stream table, the batch file for a
 * batch one) or, with WAREHOUSE=bigquery, BigQuery. The table gains the column first if it lacks it.
 */
import fs from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../jobs/catalog';
import { findDestination } from '../jobs/lib/catalog-check';
import { acceptFieldDuckDb, addAcceptedColumnDuckDb } from '../jobs/lib/accept-field';
import type { DestinationTable } from '../jobs/lib/catalog-types';
import { loadConfig } from '../jobs/lib/config';
import { streamFiles } from '../jobs/lib/stream/config';

async function acceptOnDuckDb(dest: DestinationTable, field: string, column?: string): Promise<number> {
  const file = dest.mode === 'stream' ? streamFiles().duckdbPath : loadConfig().duckdbPath;
  if (!fs.existsSync(file)) throw new Error(`no warehouse file at ${file}`);
  const db = await DuckDBInstance.create(file);
  const c = await db.connect();
  try {
    await c.run(addAcceptedColumnDuckDb(dest, column ?? field));
    return Number((await c.run(acceptFieldDuckDb(dest, field, column))).rowsChanged);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function acceptOnBigQuery(dest: DestinationTable, field: string, column?: string): Promise<number> {
  const { BigQueryWarehouse } = await import('../jobs/lib/warehouse/bigquery/warehouse');
  return BigQueryWarehouse.fromEnv(undefined, catalog).acceptField(dest, field, column);
}

async function main(argv: string[]): Promise<number> {
  const [table, field, column] = argv;
  if (!table || !field) {
    process.stderr.write('usage: npm run accept-field -- <table> <field> [column]   (WAREHOUSE=bigquery for BigQuery)\n');
    return 64;
  }
  const dest = findDestination(catalog, table);
  const { warehouse } = loadConfig();
  const rows = warehouse === 'bigquery' ? await acceptOnBigQuery(dest, field, column) : await acceptOnDuckDb(dest, field, column);
  process.stdout.write(`${dest.name} (${warehouse}): ${rows} rows got '${column ?? field}' from _rescued_data\n`);
  return 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`accept-field: ${e.message}\n`);
  process.exit(1);
});
