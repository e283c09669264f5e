/**
 * dbt's sources.yml and the catalog agree: the committed file is exactly what the generator
 * renders from jobs/catalog.ts, and (read back as YAML) every catalog destination is declared
 * with its columns, types, descriptions and key tests - so a catalog change without
 * regenerating sources.yml fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { catalog } from '../../jobs/catalog';
import { ETL_RUNS_COLUMNS_DDL } from '../../jobs/lib/ddl';
import { AVAILABILITY_COLUMNS_DDL } from '../../jobs/lib/warehouse/duckdb/stream-ddl';
import { columnsFromDdl, renderSourcesYaml, SOURCES_YML, streamSourceName } from '../../scripts/dbt-sources';
import { ROOT } from '../helpers/env';

interface YColumn {
  name: string;
  data_type: string;
  description: string;
  data_tests?: unknown[];
}
interface YTable {
  name: string;
  description: string;
  config: { meta: { catalog_name: string; mode: string; origin: string; key: string[] } };
  columns: YColumn[];
  data_tests?: unknown[];
}
interface YSource {
  name: string;
  schema: string;
  database?: string;
  tables: YTable[];
}

const committed = fs.readFileSync(path.join(ROOT, SOURCES_YML), 'utf8');
const doc = YAML.parse(committed) as { version: number; sources: YSource[] };

test('the committed sources.yml is exactly what scripts/dbt-sources.ts renders from the catalog', () => {
  expect(committed).toBe(renderSourcesYaml(catalog));
});

test('every catalog destination is a dbt source table with the same columns, types and key', () => {
  expect(doc.version).toBe(2);
  for (const d of catalog.destinations) {
    // Batch tables in the dataset's source, stream tables in its `stream` source (own file on DuckDB).
    const source = doc.sources.find((s) => s.name === (d.mode === 'stream' ? streamSourceName(d.dataset) : d.dataset));
    expect(source).toBeDefined();
    const t = source!.tables.find((x) => x.name === d.table);
    expect(t).toBeDefined();
    expect(t!.description).toBe(d.description);
    expect(t!.config.meta).toEqual({ catalog_name: d.name, mode: d.mode, origin: 'catalog', key: [...d.key] });
    expect(t!.columns.map((c) => [c.name, c.data_type, c.description])).toEqual(
      d.columns.map((c) => [c.name, c.type, c.description]),
    );
    // Key tests: unique (+ not_null) for a one-column batch key, unique_key otherwise.
    if (d.mode === 'batch' && d.key.length === 1) {
      const keyCol = t!.columns.find((c) => c.name === d.key[0])!;
      expect(keyCol.data_tests).toEqual(expect.arrayContaining(['not_null', 'unique']));
    } else {
      expect(t!.data_tests).toContainEqual({
        unique_key: { arguments: { columns: [...d.key], allow_missing_relation: d.mode === 'stream' } },
      });
    }
    // Non-nullable batch columns are tested not_null.
    if (d.mode === 'batch') {
      for (const c of d.columns.filter((x) => !x.nullable)) {
        expect(t!.columns.find((x) => x.name === c.name)!.data_tests).toContain('not_null');
      }
    }
  }
});

test('sources.yml declares nothing the catalog and the pipeline DDL do not know', () => {
  const store = doc.sources.find((s) => s.name === 'store')!;
  const stream = doc.sources.find((s) => s.name === 'stream')!;
  expect(doc.sources.map((s) => s.name)).toEqual(['store', 'stream']);
  // The store dataset is the profile's schema/dataset (store by default, BIGQUERY_DATASET in prod);
  // the stream tables are the attached snapshot's on DuckDB, the same project's on BigQuery.
  expect(store.schema).toBe('{{ target.schema }}');
  expect(stream.schema).toBe('{{ target.schema }}');
  expect(stream.database).toBe("{{ 'stream' if target.type == 'duckdb' else target.database }}");
  expect(store.database).toBeUndefined();
  const inStore = catalog.destinations.filter((d) => d.dataset === 'store');
  expect(store.tables.every((t) => t.config.meta.mode === 'batch')).toBe(true);
  expect(stream.tables.every((t) => t.config.meta.mode === 'stream')).toBe(true);
  const extras = [...store.tables, ...stream.tables].map((t) => t.name).filter((n) => !inStore.some((d) => d.table === n));
  expect(extras.sort()).toEqual(['_etl_runs', 'vendor_product_availability']);
  for (const t of [...store.tables, ...stream.tables].filter((x) => extras.includes(x.name))) {
    expect(['bookkeeping', 'stream-layer']).toContain(t.config.meta.origin);
  }
});

test('bookkeeping and stream-layer tables are declared from the pipeline DDL', () => {
  const store = doc.sources.find((s) => s.name === 'store')!;
  const runs = store.tables.find((t) => t.name === '_etl_runs')!;
  expect(runs.columns.map((c) => c.name)).toEqual([
    'run_id', 'destination', 'mode', 'started_at', 'ended_at', 'rows_in', 'rows_loaded',
    'rows_quarantined', 'rows_out', 'status', 'error', 'report',
  ]);
  expect(runs.columns.find((c) => c.name === 'rows_out')!.data_type).toBe('INT64');
  expect(runs.columns.find((c) => c.name === 'status')!.data_tests).toContainEqual({
    accepted_values: { arguments: { values: ['success', 'failed'] } },
  });
  const avail = doc.sources.find((s) => s.name === 'stream')!.tables.find((t) => t.name === 'vendor_product_availability')!;
  expect(avail.columns.map((c) => `${c.name}:${c.data_type}`)).toEqual(
    columnsFromDdl(AVAILABILITY_COLUMNS_DDL, {}).map((c) => `${c.name}:${c.type}`),
  );
  expect(avail.columns.map((c) => c.name)).toContain('held_in_open_carts');
  expect(columnsFromDdl(ETL_RUNS_COLUMNS_DDL, {}).every((c) => c.name !== 'PRIMARY')).toBe(true);
});

test('columnsFromDdl reads names, types and nullability, skipping constraints', () => {
  expect(
    columnsFromDdl('a VARCHAR NOT NULL, b DECIMAL(18,4), c BOOLEAN, d TIMESTAMP NOT NULL, PRIMARY KEY (a, d)', {
      a: 'The a.',
    }),
  ).toEqual([
    { name: 'a', type: 'STRING', nullable: false, description: 'The a.' },
    { name: 'b', type: 'NUMERIC', nullable: true, description: 'b.' },
    { name: 'c', type: 'BOOL', nullable: true, description: 'c.' },
    { name: 'd', type: 'TIMESTAMP', nullable: false, description: 'd.' },
  ]);
  expect(() => columnsFromDdl('a BLOB', {})).toThrow(/unknown DuckDB type BLOB/);
});
