/**
 * Generates dbt_project/models/sources.yml from the catalog (jobs/catalog.ts), so dbt's view of
 * the `store` tables is derived from the single source of truth, never hand-edited.
 *
 *   npm run -s build && node dist/scripts/dbt-sources.js           # (re)write sources.yml
 *   npm run -s build && node dist/scripts/dbt-sources.js --check   # exit 1 when it is stale
 *
 * Each catalog destination becomes a source table with its description, key, mode and typed
 * columns. Key columns get `not_null`, and the key gets `unique` (one column) or the project's
 * `unique_key` test (several columns). Stream tables may be absent in a batch-only warehouse, so
 * their key test tolerates a missing relation (models read them through `stream_source()`).
 * Besides the catalog's destinations, two tables written by the pipeline itself are declared:
 * `_etl_runs` (run bookkeeping, read by the reconciliation test) and, unless the catalog already
 * lists it, `vendor_product_availability` (kept current by the stream layer).
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { catalog as storeCatalog } from '../jobs/catalog';
import type { Catalog, ColumnType } from '../jobs/lib/catalog-types';

export const SOURCES_YML = path.join('dbt_project', 'models', 'sources.yml');

/** The profile's schema (DuckDB) / dataset (BigQuery) holds this dataset of the catalog. */
export const DEFAULT_DATASET = 'store';

interface ExtraColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
  readonly description: string;
}

interface ExtraTable {
  readonly dataset: string;
  readonly table: string;
  readonly origin: 'bookkeeping' | 'stream-layer';
  readonly mode: 'batch' | 'stream';
  readonly description: string;
  readonly key: readonly string[];
  readonly columns: readonly ExtraColumn[];
  readonly acceptedValues?: Readonly<Record<string, readonly string[]>>;
}

const c = (name: string, type: ColumnType, description: string, nullable = true): ExtraColumn => ({
  name,
  type,
  nullable,
  description,
});

/** Tables outside `catalog.destinations` that dbt reads. Columns mirror jobs/lib/ddl.ts. */
export const EXTRA_TABLES: readonly ExtraTable[] = [
  {
    dataset: 'store',
    table: '_etl_runs',
    origin: 'bookkeeping',
    mode: 'batch',
    description:
      'One row per job run: rows read, loaded, quarantined and written (rows_out). The reconciliation ' +
      'test compares the latest successful run of each batch input with the table it wrote.',
    key: ['run_id', 'destination'],
    columns: [
      c('run_id', 'STRING', 'Run identifier.', false),
      c('destination', 'STRING', "Destination table, e.g. 'store.fact_orders'.", false),
      c('mode', 'STRING', "'batch' or 'stream'.", false),
      c('started_at', 'TIMESTAMP', 'Run start (UTC).', false),
      c('ended_at', 'TIMESTAMP', 'Run end (UTC).', false),
      c('rows_in', 'INT64', 'Source rows read (blank lines excluded).', false),
      c('rows_loaded', 'INT64', 'Source rows that passed validation.', false),
      c('rows_quarantined', 'INT64', 'Source rows quarantined with a reason.', false),
      c('rows_out', 'INT64', 'Rows written to the destination table.', false),
      c('status', 'STRING', "'success' or 'failed'.", false),
      c('error', 'STRING', 'Error message of a failed run.'),
      c('report', 'STRING', 'Data-quality report (JSON text).'),
    ],
    acceptedValues: { mode: ['batch', 'stream'], status: ['success', 'failed'] },
  },
  {
    dataset: 'store',
    table: 'vendor_product_availability',
    origin: 'stream-layer',
    mode: 'stream',
    description:
      'Per vendor and product option: stock, units held in open carts and whether it can still be ' +
      'bought, maintained by the stream layer. May be absent in a batch-only warehouse.',
    key: ['vendor_id', 'product_id', 'option_id'],
    columns: [
      c('vendor_id', 'STRING', 'Vendor identifier.', false),
      c('product_id', 'STRING', 'Product identifier.', false),
      c('option_id', 'STRING', 'Option identifier.', false),
      c('stock', 'INT64', 'Units in stock.'),
      c('quantity_in_open_carts', 'INT64', 'Units held in open carts.'),
      c('available', 'INT64', 'Units that can still be bought (stock - quantity_in_open_carts).'),
      c('sold_out', 'BOOL', 'True when nothing is available.'),
      c('updated_at', 'TIMESTAMP', 'When the stream last wrote this row (UTC).', false),
    ],
  },
];

type Test = string | Record<string, unknown>;

function keyTests(key: readonly string[], allowMissing: boolean): Test[] {
  if (key.length === 1 && !allowMissing) return [];
  return [{ unique_key: { arguments: { columns: [...key], allow_missing_relation: allowMissing } } }];
}

function columnTests(
  name: string,
  nullable: boolean,
  key: readonly string[],
  allowMissing: boolean,
  accepted?: readonly string[],
): Test[] {
  if (allowMissing) return []; // the table-level unique_key test also checks key columns for nulls
  const tests: Test[] = [];
  if (!nullable) tests.push('not_null');
  if (key.length === 1 && key[0] === name) tests.push('unique');
  if (accepted) tests.push({ accepted_values: { arguments: { values: [...accepted] } } });
  return tests;
}

function withTests<T extends Record<string, unknown>>(obj: T, tests: Test[]): T {
  return tests.length > 0 ? { ...obj, data_tests: tests } : obj;
}

/** The sources.yml document as a plain object (exported for the consistency test). */
export function buildSources(cat: Catalog = storeCatalog): Record<string, unknown> {
  const datasets = [...new Set([...cat.destinations.map((d) => d.dataset), ...EXTRA_TABLES.map((t) => t.dataset)])];
  const sources = datasets.map((dataset) => {
    const tables: Record<string, unknown>[] = [];
    for (const d of cat.destinations.filter((x) => x.dataset === dataset)) {
      const allowMissing = d.mode === 'stream';
      tables.push(
        withTests(
          {
            name: d.table,
            description: d.description,
            meta: { catalog_name: d.name, mode: d.mode, origin: 'catalog', key: [...d.key] },
            columns: d.columns.map((col) =>
              withTests(
                { name: col.name, data_type: col.type, description: col.description },
                columnTests(col.name, col.nullable, d.key, allowMissing),
              ),
            ),
          },
          keyTests(d.key, allowMissing),
        ),
      );
    }
    for (const t of EXTRA_TABLES.filter((x) => x.dataset === dataset)) {
      if (cat.destinations.some((d) => d.dataset === t.dataset && d.table === t.table)) continue;
      const allowMissing = t.mode === 'stream';
      tables.push(
        withTests(
          {
            name: t.table,
            description: t.description,
            meta: { catalog_name: `${t.dataset}.${t.table}`, mode: t.mode, origin: t.origin, key: [...t.key] },
            columns: t.columns.map((col) =>
              withTests(
                { name: col.name, data_type: col.type, description: col.description },
                columnTests(col.name, col.nullable, [], allowMissing, t.acceptedValues?.[col.name]),
              ),
            ),
          },
          // _etl_runs rows are per (run, destination); checked like a composite key.
          keyTests(t.key, allowMissing),
        ),
      );
    }
    return {
      name: dataset,
      description:
        `Warehouse dataset \`${dataset}\`, written by the batch jobs and the Kafka consumers. ` +
        'Generated from jobs/catalog.ts by scripts/dbt-sources.ts.',
      // The profile's schema (DuckDB) / dataset (BigQuery, BIGQUERY_DATASET) is the store dataset.
      schema: dataset === DEFAULT_DATASET ? '{{ target.schema }}' : dataset,
      tables,
    };
  });
  return { version: 2, sources };
}

export function renderSourcesYaml(cat: Catalog = storeCatalog): string {
  const header =
    '# GENERATED from jobs/catalog.ts by scripts/dbt-sources.ts - do not edit by hand.\n' +
    '# Regenerate: npm run -s build && node dist/scripts/dbt-sources.js (tests/dbt checks it is current).\n';
  return header + YAML.stringify(buildSources(cat), { lineWidth: 0 });
}

function main(argv: string[]): number {
  const root = path.resolve(__dirname, '..', '..');
  const file = path.join(root, SOURCES_YML);
  const want = renderSourcesYaml();
  const have = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  if (argv.includes('--check')) {
    if (have !== want) {
      console.error(`${SOURCES_YML} is out of date with jobs/catalog.ts: run node dist/scripts/dbt-sources.js`);
      return 1;
    }
    console.log(`${SOURCES_YML} matches the catalog`);
    return 0;
  }
  if (have !== want) fs.writeFileSync(file, want);
  console.log(`${have === want ? 'unchanged' : 'wrote'} ${SOURCES_YML}`);
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
