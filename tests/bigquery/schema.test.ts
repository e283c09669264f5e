/** Catalog -> BigQuery schema, the NDJSON DuckDB renders for load jobs, and the MERGE of stream rows. */
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import { destinationSchema, duckdbNdjsonSelect, ETL_RUNS_SCHEMA, QUARANTINE_SCHEMA } from '../../jobs/lib/warehouse/bigquery/schema';
import { mergeUpserts } from '../../jobs/lib/warehouse/bigquery/statements';
import { ETL_RUNS_COLUMNS_DDL, QUARANTINE_COLUMNS_DDL } from '../../jobs/lib/ddl';

test('every catalog column maps to a BigQuery field of the same name, type and nullability', () => {
  for (const d of catalog.destinations) {
    expect(destinationSchema(d).fields.map((f) => [f.name, f.type, f.mode])).toEqual(
      d.columns.map((c) => [c.name, c.type, c.nullable ? 'NULLABLE' : 'REQUIRED']),
    );
  }
});

const duckColumns = (ddl: string) =>
  ddl.split(', ').map((c) => {
    const [name, , ...rest] = c.split(' ');
    return [name, rest.join(' ').includes('NOT NULL') ? 'REQUIRED' : 'NULLABLE'];
  });

test('the BigQuery _quarantine and _etl_runs mirror the DuckDB ones column for column', () => {
  expect(QUARANTINE_SCHEMA.fields.map((f) => [f.name, f.mode])).toEqual(duckColumns(QUARANTINE_COLUMNS_DDL));
  expect(ETL_RUNS_SCHEMA.fields.map((f) => [f.name, f.mode])).toEqual(duckColumns(ETL_RUNS_COLUMNS_DDL));
});

test('DuckDB renders exact NDJSON: big integers and decimals as strings, timestamps, escapes, nulls', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run('CREATE TABLE t (a TIMESTAMP, b DATE, n DECIMAL(18,4), k BIGINT, s VARCHAR, f BOOLEAN)');
    await c.run(`INSERT INTO t VALUES (TIMESTAMP '2024-05-01 10:00:00.123456', DATE '2024-01-02', -1.5, 9007199254740993, 'x"y' || chr(10), NULL)`);
    const sql = duckdbNdjsonSelect(
      [
        { name: 'a', type: 'TIMESTAMP' }, { name: 'b', type: 'DATE' }, { name: 'n', type: 'NUMERIC' },
        { name: 'k', type: 'INT64' }, { name: 's', type: 'STRING' }, { name: 'f', type: 'BOOL' },
      ],
      't',
    );
    const line = String((await c.runAndReadAll(sql)).getRows()[0][0]);
    expect(line).toBe('{"a":"2024-05-01 10:00:00.123456","b":"2024-01-02","n":"-1.5000","k":"9007199254740993","s":"x\\"y\\n","f":null}');
  } finally {
    c.closeSync();
    db.closeSync();
  }
});

test('MERGE of a stream table matches on the whole catalog key and types every column', () => {
  const d = catalog.destinations.find((x) => x.table === 'fact_carts_has_products')!;
  const sql = mergeUpserts('`p.store.fact_carts_has_products`', d);
  expect(sql).toContain('ON T.`shopping_cart_id` = S.`shopping_cart_id` AND T.`product_id` = S.`product_id` AND T.`option_id` = S.`option_id`');
  expect(sql).toContain("CAST(JSON_VALUE(r, '$.quantity') AS INT64) AS `quantity`");
  expect(sql).toContain("CAST(JSON_VALUE(r, '$.updated_at') AS TIMESTAMP) AS `updated_at`");
  expect(sql).toContain('WHEN MATCHED THEN UPDATE SET `quantity` = S.`quantity`, `updated_at` = S.`updated_at`');
  // A table whose columns are all key columns has nothing to update.
  const psv = catalog.destinations.find((x) => x.table === 'fact_products_sold_vendor')!;
  expect(mergeUpserts('`t`', psv)).toContain('WHEN MATCHED THEN UPDATE SET `updated_at` = S.`updated_at`');
});
