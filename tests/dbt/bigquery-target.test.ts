/**
 * The production target, checked by BigQuery's own SQL front end: with the BigQuery profile and a
 * dummy key (no network, no credentials), `dbt compile --no-introspect` renders every model and
 * data test for BigQuery, and GoogleSQL's analyzer (ZetaSQL, the engine of the executing BigQuery
 * double) accepts each against the warehouse's BigQuery schemas: sources as the BigQuery adapter
 * creates them, models in dependency order. A mutated copy of the project (an unknown column, a
 * STRING compared with an INT64) is rejected with the analyzer's messages.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describeWithDouble, writeThrowawayKey } from '../bigquery/bigquery-double';
import { ROOT } from '../helpers/env';
import {
  analyzeProject,
  compileInline,
  compileOffline,
  rejections,
  restType,
  warehouseSchemas,
  type Manifest,
  type NodeCheck,
} from './bigquery-analysis';
import { dbtEnv, describeWithDbt } from './dbt-env';
import { ZetaSqlAnalyzer } from './zetasql-analyzer';

jest.setTimeout(400_000);

const PROJECT = 'dummy-project';

describeWithDbt('dbt on the BigQuery target (dummy credentials)', () => {
  describeWithDouble('analyzed by ZetaSQL', () => {
    const { dir, env } = dbtEnv('dbt-bq', { DBT_TARGET: 'bigquery', GCP_PROJECT_ID: PROJECT, BIGQUERY_LOCATION: 'EU' });
    const lines: string[] = [];
    let manifest: Manifest;
    let analyzer: ZetaSqlAnalyzer;
    let checks: NodeCheck[];

    beforeAll(async () => {
      env.GOOGLE_APPLICATION_CREDENTIALS = path.join(dir, 'dummy-sa.json');
      writeThrowawayKey(env.GOOGLE_APPLICATION_CREDENTIALS, PROJECT, 'dbt');
      const started = ZetaSqlAnalyzer.start(PROJECT); // the JVM starts while dbt compiles
      manifest = await compileOffline(env, (l) => lines.push(l));
      analyzer = await started;
      checks = await analyzeProject(manifest, analyzer);
    });

    afterAll(async () => {
      await analyzer?.stop();
    });

    test('profiles.yml selects the bigquery target with the env settings', () => {
      const p = YAML.parse(fs.readFileSync(path.join(dir, 'dbt', 'profiles.yml'), 'utf8'));
      expect(p.store.target).toBe('bigquery');
      expect(p.store.outputs.bigquery).toMatchObject({
        type: 'bigquery',
        project: PROJECT,
        dataset: 'store',
        location: 'EU',
        keyfile: env.GOOGLE_APPLICATION_CREDENTIALS,
      });
      expect(lines.join('\n')).toMatch(/Registered adapter: bigquery=/);
    });

    test('the models read the store dataset and write the layer datasets', () => {
      const node = (name: string) => manifest.nodes[`model.store_marts.${name}`];
      expect(node('user_revenue').relation_name).toBe('`dummy-project`.`store_marts`.`user_revenue`');
      expect(node('user_revenue').compiled_code).toContain('`dummy-project`.`store_staging`.`clean_orders_stg`');
      expect(node('clean_orders_stg').compiled_code).toContain('from `dummy-project`.`store`.`fact_orders`');
      // Stream tables are read directly on BigQuery (no existence check, no connection).
      expect(node('open_cart_items_stg').compiled_code).toContain('`dummy-project`.`store`.`fact_carts_has_products`');
    });

    test('every model is accepted by the analyzer, with the column types BigQuery gives it', () => {
      expect(rejections(checks)).toEqual([]);
      const models = checks.filter((c) => c.kind === 'model');
      expect(models.map((c) => c.id.replace('model.store_marts.', '')).sort()).toEqual([
        'availability_stg', 'clean_orders_stg', 'open_cart_items_stg', 'order_lines_stg', 'product_cart_activity',
        'product_options_stg', 'user_revenue', 'user_stg', 'vendor_availability', 'vendor_products_stg', 'vendors_stg',
      ]);
      const schema = (name: string) =>
        Object.fromEntries(checks.find((c) => c.id === `model.store_marts.${name}`)!.fields!.map((f) => [f.name, f.type]));
      // From the catalog's column types and the models' expressions (SUM of NUMERIC is NUMERIC,
      // a comparison is BOOL), in BigQuery's REST names.
      expect(schema('user_revenue')).toEqual({ user_id: 'STRING', full_name: 'STRING', total_revenue: 'NUMERIC' });
      expect(schema('clean_orders_stg')).toEqual({
        order_id: 'STRING', user_id: 'STRING', total_item: 'INTEGER', shipping_fee: 'NUMERIC', tax: 'NUMERIC',
        total_cost: 'NUMERIC', order_date: 'DATE', delivery_date: 'DATE', tracking_number: 'STRING',
      });
      expect(schema('vendor_availability')).toEqual({
        vendor_id: 'STRING', vendor_name: 'STRING', product_id: 'STRING', product_name: 'STRING', option_id: 'STRING',
        option_name: 'STRING', stock: 'INTEGER', held_in_open_carts: 'INTEGER', available: 'INTEGER', sold_out: 'BOOLEAN',
        updated_at: 'TIMESTAMP', availability_source: 'STRING',
      });
      expect(schema('product_cart_activity')).toMatchObject({
        orders: 'INTEGER', units_sold: 'INTEGER', open_carts: 'INTEGER', units_in_open_carts: 'INTEGER',
        last_cart_activity_at: 'TIMESTAMP', available: 'INTEGER', sold_out: 'BOOLEAN', availability_source: 'STRING',
      });
    });

    test('every data test is accepted by the analyzer', () => {
      const tests = checks.filter((c) => c.kind === 'test');
      const declared = Object.values(manifest.nodes).filter((n) => n.resource_type === 'test');
      expect(tests).toHaveLength(declared.length);
      expect(tests.length).toBeGreaterThanOrEqual(76); // every schema test of sources and models + the 4 singular ones
      expect(tests.filter((c) => c.error).map((c) => `${c.id}: ${c.error}`)).toEqual([]);
    });

    test("stream_source's other branch, the empty relation typed from sources.yml, has each stream table's BigQuery schema", async () => {
      // On DuckDB an absent stream table reads as this empty relation (the DuckDB suites build
      // it); on BigQuery the models read the table itself (analyzed above) unless the var
      // check_stream_tables asks for the existence check: this is the SQL that path renders.
      const stream = Object.values(manifest.sources).filter((s) => s.source_name === 'stream');
      expect(stream.map((s) => s.name).sort()).toEqual([
        'fact_carts_has_products', 'fact_products_sold_vendor', 'fact_shoppingcarts', 'vendor_product_availability',
      ]);
      const marker = '-- next statement --';
      const jinja = stream.map((s) => `select * from {{ empty_relation_for_source('stream', '${s.name}') }}`).join(`\n${marker}\n`);
      const statements = (await compileInline(env, jinja)).split(marker);
      expect(statements).toHaveLength(stream.length);
      const schemas = warehouseSchemas();
      for (const [i, s] of stream.entries()) {
        const r = await analyzer.analyze(statements[i]);
        expect({ table: s.name, ...r }).toEqual({
          table: s.name,
          ok: true,
          fields: schemas.get(s.config!.meta!.catalog_name!)!.map((f) => ({ name: f.name, type: restType(f.type), mode: 'NULLABLE' })),
        });
      }
    });

    test('a mutated copy of the project fails the analysis with the analyzer messages', async () => {
      const copy = path.join(dir, 'mutated-project');
      fs.cpSync(path.join(ROOT, 'dbt_project'), copy, {
        recursive: true,
        filter: (src) => !['target', 'logs', 'dbt_packages'].includes(path.basename(src)),
      });
      const marts = path.join(copy, 'models', 'marts');
      fs.writeFileSync(path.join(marts, 'mutant_unknown_column.sql'), "select user_id, totl_cost from {{ ref('clean_orders_stg') }}\n");
      fs.writeFileSync(
        path.join(marts, 'mutant_string_vs_int64.sql'),
        "select order_id from {{ source('store', 'fact_orders') }} where order_id = total_item\n",
      );
      // A model downstream of a rejected one cannot be analyzed either: its input is unknown.
      fs.writeFileSync(path.join(marts, 'mutant_downstream.sql'), "select * from {{ ref('mutant_unknown_column') }}\n");
      const mutatedEnv = { ...env, DBT_TARGET_PATH: path.join(dir, 'mutated-target'), DBT_LOG_PATH: path.join(dir, 'mutated-logs') };
      const mutated = await compileOffline(mutatedEnv, () => undefined, ['--project-dir', copy, '--select', '+mutant_downstream +mutant_string_vs_int64']);
      const found = Object.fromEntries(
        (await analyzeProject(mutated, analyzer)).filter((c) => c.error).map((c) => [c.id.replace('model.store_marts.', ''), c.error]),
      );
      expect(Object.keys(found).sort()).toEqual(['mutant_downstream', 'mutant_string_vs_int64', 'mutant_unknown_column']);
      expect(found.mutant_unknown_column).toMatch(/^Unrecognized name: totl_cost/);
      expect(found.mutant_string_vs_int64).toMatch(/^No matching signature for operator = for argument types: STRING, INT64/);
      expect(found.mutant_downstream).toMatch(/Table not found: `?dummy-project`?\.`?store_marts`?\.`?mutant_unknown_column/);
    });
  });
});
