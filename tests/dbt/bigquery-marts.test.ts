/**
 * The marts computed by BigQuery's SQL equal DuckDB's: the five batch jobs load the committed
 * fixture into DuckDB and into the executing BigQuery double (WAREHOUSE=bigquery), the same stream
 * rows (open, closed and status-less carts, a vendor link, a stream availability row) go into
 * both (DuckDB: the stream layer's own file, read by dbt through its snapshot); `dbt build`
 * runs on DuckDB, and the models dbt compiles for the bigquery target (offline) are executed on
 * the double in dependency order (`CREATE OR REPLACE TABLE <relation> AS <compiled SQL>`, run by
 * ZetaSQL's reference evaluator). Every mart is then compared row for row in the canonical form of
 * tests/bigquery/pipeline.test.ts: NULL as null, INT64 and NUMERIC as decimal strings without
 * trailing zeros, BOOL 'true'/'false', TIMESTAMP as microseconds since the epoch (UTC).
 */
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { streamDuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import { runDbtBuild } from '../../scripts/dbt-run';
import { BigQueryDouble, describeWithDouble, PROJECT, writeThrowawayKey } from '../bigquery/bigquery-double';
import { query } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import { compileOffline, tableName, warehouseSchemas, type Manifest } from './bigquery-analysis';
import { dbtEnv, describeWithDbt, execDuckDb } from './dbt-env';

// The real client and auth library, their HTTP layers loadable under jest (as in tests/bigquery).
jest.mock('teeny-request', () => require('../bigquery/teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('../bigquery/teeny-request-shim').gaxiosWithNativeFetch());

import { canonicalRow, duckCanonical, fromRestType } from '../bigquery/canonical';

jest.setTimeout(600_000);

const MARTS = ['user_revenue', 'product_cart_activity', 'vendor_availability'];

/** dbt's `project`.`dataset`.`table` as one quoted name, the form the double's catalog registers (BigQuery accepts both). */
const oneName = (sql: string): string => sql.replace(/`([^`.]+)`\.`([^`.]+)`\.`([^`.]+)`/g, '`$1.$2.$3`');

/** The same stream rows for both warehouses (SQL literals both read alike), for one product with two options. */
function streamRows(table: (name: string) => string, product: string, optA: string, optB: string): string[] {
  const ts = "TIMESTAMP '2026-01-01 10:00:00'";
  return [
    // cart 9001 open, 9002 closed, 9003 has no status yet (counts as open)
    `INSERT INTO ${table('fact_shoppingcarts')} (shopping_cart_id, status, updated_at) VALUES ('9001', true, ${ts}), ('9002', false, ${ts})`,
    `INSERT INTO ${table('fact_carts_has_products')} (shopping_cart_id, product_id, option_id, quantity, updated_at) VALUES
       ('9001', '${product}', '${optA}', 3, ${ts}), ('9002', '${product}', '${optA}', 5, ${ts}), ('9003', '${product}', '${optA}', 2, ${ts})`,
    `INSERT INTO ${table('fact_products_sold_vendor')} (vendor_id, product_id, updated_at) VALUES ('5000', '${product}', ${ts})`,
    `INSERT INTO ${table('vendor_product_availability')} (vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out, updated_at)
       VALUES ('5100', '${product}', '${optB}', 7, 7, 0, true, TIMESTAMP '2026-01-02 00:00:00')`,
  ];
}

describeWithDbt('dbt marts on BigQuery (the executing double) equal the DuckDB build', () => {
  describeWithDouble('on the store export fixture', () => {
    const { dir, env } = dbtEnv('dbt-bq-marts', { DBT_TARGET: 'bigquery', GCP_PROJECT_ID: PROJECT, DBT_DOCS: '0' });
    const streamFile = path.join(dir, 'stream.duckdb');
    const duckEnv = {
      ...env, DBT_TARGET: 'duckdb', DBT_TARGET_PATH: path.join(dir, 'duck-target'),
      STREAM_DUCKDB_PATH: streamFile, STREAM_SNAPSHOT_PATH: path.join(dir, 'stream-snapshot.duckdb'),
    };
    const saved = { ...process.env };
    let bq: BigQueryDouble;
    let manifest: Manifest;

    beforeAll(async () => {
      bq = await BigQueryDouble.start();
      env.GOOGLE_APPLICATION_CREDENTIALS = path.join(dir, 'key.json');
      writeThrowawayKey(env.GOOGLE_APPLICATION_CREDENTIALS, PROJECT, 'dbt');
      Object.assign(process.env, { GCP_PROJECT_ID: PROJECT, GOOGLE_APPLICATION_CREDENTIALS: env.GOOGLE_APPLICATION_CREDENTIALS, BIGQUERY_LOCATION: 'EU', BIGQUERY_MAX_RETRIES: '0' });
      delete process.env.BIGQUERY_DATASET;
      for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) {
        const toDuck = await runBatchJob(catalog, d.table, loadConfig({ ...process.env, WAREHOUSE: 'duckdb' }, { sourceDir: STORE_EXPORT, stateDir: path.join(dir, 'duck'), duckdbPath: env.DUCKDB_PATH! }));
        const toBq = await runBatchJob(catalog, d.table, loadConfig({ ...process.env, WAREHOUSE: 'bigquery' }, { sourceDir: STORE_EXPORT, stateDir: path.join(dir, 'bq') }));
        expect([toDuck.run.status, toBq.run.status]).toEqual(['success', 'success']);
      }
      const [[product, optA, optB]] = (await query(
        env.DUCKDB_PATH!,
        `SELECT product_id, min(option_id), max(option_id) FROM store.dim_products WHERE option_id IS NOT NULL
          GROUP BY product_id HAVING count(*) >= 2 ORDER BY product_id LIMIT 1`,
      )) as string[][];
      const stream = streamDuckDbWarehouse(streamFile, catalog);
      await stream.ensureSchema();
      await stream.close();
      await execDuckDb(streamFile, streamRows((t) => `store.${t}`, product, optA, optB));
      manifest = await compileOffline(env, () => undefined);
      // Tables the models read that the batch jobs do not create on BigQuery: empty, with their schema.
      for (const s of Object.values(manifest.sources)) {
        const fields = warehouseSchemas().get(s.config!.meta!.catalog_name!)!;
        const cols = fields.map((f) => `\`${f.name}\` ${f.type}`).join(', ');
        await bq.sql(`CREATE TABLE IF NOT EXISTS \`${tableName(s.relation_name)}\` (${cols})`);
      }
      for (const sql of streamRows((t) => `\`${PROJECT}.store.${t}\``, product, optA, optB)) await bq.sql(sql);
      await runDbtBuild({ env: duckEnv, log: () => undefined });
    });

    afterAll(async () => {
      await bq?.stop();
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    });

    test('every model runs on the double and every mart equals DuckDB row for row', async () => {
      const client = bq.client();
      for (const ds of ['store_staging', 'store_marts']) await client.createDataset(ds);
      const models = Object.values(manifest.nodes).filter((n) => n.resource_type === 'model');
      const done = new Set<string>();
      const run = async (id: string): Promise<void> => {
        if (done.has(id)) return;
        done.add(id);
        const node = manifest.nodes[id];
        for (const dep of node.depends_on.nodes) if (manifest.nodes[dep]?.resource_type === 'model') await run(dep);
        await bq.sql(`CREATE OR REPLACE TABLE \`${tableName(node.relation_name!)}\` AS ${oneName(node.compiled_code!)}`);
      };
      for (const m of models) await run(m.unique_id);
      expect(done.size).toBe(11);

      const compared: Record<string, number> = {};
      for (const mart of MARTS) {
        const [meta] = await client.dataset('store_marts').table(mart).getMetadata();
        const fields = (meta.schema.fields as { name: string; type: string }[]);
        const types = fields.map((f) => fromRestType(f.type));
        const duckRows = (await query(env.DUCKDB_PATH!, `SELECT ${fields.map((f) => duckCanonical(f.name, fromRestType(f.type))).join(', ')} FROM store_marts.${mart}`))
          .map((r) => canonicalRow(r, types)).sort();
        const bqRows = (await bq.sql(`SELECT * FROM \`${PROJECT}.store_marts.${mart}\``)).map((r) => canonicalRow(fields.map((f) => r[f.name]), types)).sort();
        expect({ mart, rows: bqRows }).toEqual({ mart, rows: duckRows });
        compared[mart] = bqRows.length;
      }
      // The fixture has delivered orders with users and product options; the stream rows give
      // vendor 5000's batch-computed rows for the product's options and vendor 5100's stream row.
      expect(compared.user_revenue).toBeGreaterThan(5);
      expect(compared.product_cart_activity).toBeGreaterThan(10);
      expect(compared.vendor_availability).toBeGreaterThanOrEqual(3);
      const sources = await bq.sql(`SELECT availability_source, count(*) AS n FROM \`${PROJECT}.store_marts.vendor_availability\` GROUP BY 1 ORDER BY 1`);
      expect(sources.map((r) => r.availability_source)).toEqual(['batch', 'stream']);
    });
  });
});
