/**
 * Generates dbt_project/models/sources.yml from the catalog (jobs/catalog.ts), so dbt's view of
 * the `store` tables is derived from the single source of truth, never hand-edited.
 *
 *   npm run -s build && node dist/scripts/dbt-sources.js           # (re)write sources.yml
 *   npm run -s build && node dist/scripts/dbt-sources.js --check   # exit 1 when it is stale
 *
 * Each catalog destination becomes a source table with its description, key, mode and typed
 * columns. Non-nullable columns get `not_null`, and the key gets `unique` (one column) or the
 * project's `unique_key` test (several columns). Stream tables may be absent in a batch-only warehouse, so
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
import { ETL_RUNS_COLUMNS_DDL } from '../jobs/lib/ddl';
import { AVAILABILITY_COLUMNS_DDL, AVAILABILITY_TABLE } from '../jobs/lib/warehouse/duckdb/stream-ddl';
import { STREAM_DATABASE } from './dbt-profiles';

export const SOURCES_YML = path.join('dbt_project', 'models', 'sources.yml');

/** The profile's schema (DuckDB) / dataset (BigQuery) holds this dataset of the catalog. */
export const DEFAULT_DATASET = 'store';

/** The dbt source of a dataset's stream tables: `stream` for the store dataset. */
export const streamSourceName = (dataset: string): string => (dataset === DEFAULT_DATASET ? 'stream' : `${dataset}_stream`);

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

/** DuckDB DDL types back to the catalog's (BigQuery) names. */
const FROM_DUCKDB: Record<string, ColumnType> = {
  VARCHAR: 'STRING',
  BIGINT: 'INT64',
  INTEGER: 'INT64',
  BOOLEAN: 'BOOL',
  DATE: 'DATE',
  TIMESTAMP: 'TIMESTAMP',
  DECIMAL: 'NUMERIC',
};

/**
 * Columns of a `name TYPE [NOT NULL], ...` DDL list (constraints such as PRIMARY KEY skipped), so
 * the tables the pipeline creates outside the catalog are declared from the same DDL it runs.
 */
export function columnsFromDdl(ddl: string, descriptions: Readonly<Record<string, string>>): ExtraColumn[] {
  const parts = ddl.split(/,(?![^(]*\))/).map((p) => p.trim()).filter(Boolean);
  const cols: ExtraColumn[] = [];
  for (const part of parts) {
    if (/^(PRIMARY|UNIQUE|CHECK|FOREIGN)\b/i.test(part)) continue;
    const m = /^"?([A-Za-z_][A-Za-z0-9_]*)"?\s+([A-Za-z]+)(?:\([^)]*\))?(.*)$/.exec(part);
    if (!m) throw new Error(`cannot read column definition '${part}'`);
    const type = FROM_DUCKDB[m[2].toUpperCase()];
    if (!type) throw new Error(`unknown DuckDB type ${m[2]} of column ${m[1]}`);
    cols.push({
      name: m[1],
      type,
      nullable: !/NOT\s+NULL/i.test(m[3]),
      description: descriptions[m[1]] ?? m[1].replace(/_/g, ' ') + '.',
    });
  }
  return cols;
}

/** Tables outside `catalog.destinations` that dbt reads, declared from the pipeline's own DDL. */
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
    columns: columnsFromDdl(ETL_RUNS_COLUMNS_DDL, {
      run_id: 'Run identifier.',
      destination: "Destination table, e.g. 'store.fact_orders'.",
      mode: "'batch' or 'stream'.",
      started_at: 'Run start (UTC).',
      ended_at: 'Run end (UTC).',
      rows_in: 'Source rows read (blank lines excluded).',
      rows_loaded: 'Source rows that passed validation.',
      rows_quarantined: 'Source rows quarantined with a reason.',
      rows_out: 'Rows written to the destination table.',
      status: "'success' or 'failed'.",
      error: 'Error message of a failed run.',
      report: 'Data-quality report (JSON text).',
    }),
    acceptedValues: { mode: ['batch', 'stream'], status: ['success', 'failed'] },
  },
  {
    dataset: 'store',
    table: AVAILABILITY_TABLE,
    origin: 'stream-layer',
    mode: 'stream',
    description:
      'Per vendor and product option: stock, units held in open carts and units still available, ' +
      'maintained by the stream layer (jobs/lib/stream/availability.ts). May be absent in a ' +
      'batch-only warehouse.',
    key: ['vendor_id', 'product_id', 'option_id'],
    columns: columnsFromDdl(AVAILABILITY_COLUMNS_DDL, {
      vendor_id: 'Vendor identifier.',
      product_id: 'Product identifier.',
      option_id: 'Option identifier.',
      stock: 'Units in stock (dim_products.stock_quantity, null as 0).',
      held_in_open_carts: 'Units held in open carts.',
      available: 'greatest(stock - held_in_open_carts, 0).',
      sold_out: 'stock - held_in_open_carts <= 0.',
      updated_at: 'When the stream last wrote this row (UTC).',
    }),
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
  // Stream tables may be absent: only the table-level unique_key test, which tolerates that (their
  // key columns are NOT NULL in the pipeline's DDL anyway).
  if (allowMissing) return [];
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
  const sources = datasets.flatMap((dataset) => {
    const tables: { mode: 'batch' | 'stream'; table: Record<string, unknown> }[] = [];
    for (const d of cat.destinations.filter((x) => x.dataset === dataset)) {
      const allowMissing = d.mode === 'stream';
      tables.push({
        mode: d.mode,
        table: withTests(
          {
            name: d.table,
            description: d.description,
            config: { meta: { catalog_name: d.name, mode: d.mode, origin: 'catalog', key: [...d.key] } },
            columns: d.columns.map((col) =>
              withTests(
                { name: col.name, data_type: col.type, description: col.description },
                columnTests(col.name, col.nullable, d.key, allowMissing),
              ),
            ),
          },
          keyTests(d.key, allowMissing),
        ),
      });
    }
    for (const t of EXTRA_TABLES.filter((x) => x.dataset === dataset)) {
      if (cat.destinations.some((d) => d.dataset === t.dataset && d.table === t.table)) continue;
      const allowMissing = t.mode === 'stream';
      tables.push({
        mode: t.mode,
        table: withTests(
          {
            name: t.table,
            description: t.description,
            config: { meta: { catalog_name: `${t.dataset}.${t.table}`, mode: t.mode, origin: t.origin, key: [...t.key] } },
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
      });
    }
    // The profile's schema (DuckDB) / dataset (BigQuery, BIGQUERY_DATASET) is the store dataset.
    const schema = dataset === DEFAULT_DATASET ? '{{ target.schema }}' : dataset;
    return [
      {
        name: dataset,
        description:
          `Warehouse dataset \`${dataset}\`: the batch jobs' tables. ` +
          'Generated from jobs/catalog.ts by scripts/dbt-sources.ts.',
        schema,
        tables: tables.filter((t) => t.mode === 'batch').map((t) => t.table),
      },
      {
        name: streamSourceName(dataset),
        description:
          `Warehouse dataset \`${dataset}\`: the Kafka consumers' tables. On DuckDB they live in the stream ` +
          `layer's own file, read through its snapshot attached as \`${STREAM_DATABASE}\` (docs/stream.md); on ` +
          'BigQuery in the same dataset as the batch tables. Generated from jobs/catalog.ts by scripts/dbt-sources.ts.',
        database: `{{ '${STREAM_DATABASE}' if target.type == 'duckdb' else target.database }}`,
        schema,
        tables: tables.filter((t) => t.mode === 'stream').map((t) => t.table),
      },
    ];
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
