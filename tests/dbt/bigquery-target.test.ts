/**
 * The production target compiles: with the BigQuery profile and dummy credentials (a freshly
 * generated, unregistered service-account key; no network), `dbt parse` and
 * `dbt compile --no-introspect` render every model and test for BigQuery, the compiled SQL names
 * `project`.`dataset`.`table` with backticks, and sqlglot's BigQuery dialect parses all of it.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { runDbtBuild } from '../../scripts/dbt-run';
import { ROOT } from '../helpers/env';
import { DBT_VENV, dbtEnv, describeWithDbt } from './dbt-env';

jest.setTimeout(300_000);

describeWithDbt('dbt on the BigQuery target (dummy credentials)', () => {
  const { dir, env } = dbtEnv('dbt-bq', { DBT_TARGET: 'bigquery', GCP_PROJECT_ID: 'dummy-project', BIGQUERY_LOCATION: 'EU' });
  const target = env.DBT_TARGET_PATH!;
  const compiled = path.join(target, 'compiled', 'store_marts');
  const lines: string[] = [];

  beforeAll(async () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyfile = path.join(dir, 'dummy-sa.json');
    fs.writeFileSync(
      keyfile,
      JSON.stringify({
        type: 'service_account',
        project_id: 'dummy-project',
        private_key_id: 'dummy',
        private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
        client_email: 'dbt@dummy-project.iam.gserviceaccount.com',
        client_id: '0',
        token_uri: 'https://oauth2.googleapis.com/token',
      }),
    );
    env.GOOGLE_APPLICATION_CREDENTIALS = keyfile;
    const log = (l: string) => lines.push(l);
    await runDbtBuild({ env, log, args: ['parse'] });
    // No adapter cache, no introspective queries: compiling needs no BigQuery connection.
    await runDbtBuild({ env, log, args: ['--no-populate-cache', 'compile', '--no-introspect'] });
  });

  test('profiles.yml selects the bigquery target with the env settings', () => {
    const p = YAML.parse(fs.readFileSync(path.join(dir, 'dbt', 'profiles.yml'), 'utf8'));
    expect(p.store.target).toBe('bigquery');
    expect(p.store.outputs.bigquery).toMatchObject({
      type: 'bigquery',
      project: 'dummy-project',
      dataset: 'store',
      location: 'EU',
      keyfile: env.GOOGLE_APPLICATION_CREDENTIALS,
    });
    expect(lines.join('\n')).toMatch(/Registered adapter: bigquery=/);
  });

  test('the models compile to BigQuery SQL over the store dataset', () => {
    const revenue = fs.readFileSync(path.join(compiled, 'models', 'marts', 'user_revenue.sql'), 'utf8');
    expect(revenue).toContain('`dummy-project`.`store_staging`.`clean_orders_stg`');
    expect(revenue).toContain('`dummy-project`.`store_staging`.`user_stg`');
    const orders = fs.readFileSync(path.join(compiled, 'models', 'staging', 'clean_orders_stg.sql'), 'utf8');
    expect(orders).toContain('from `dummy-project`.`store`.`fact_orders`');
    expect(orders).toMatch(/where is_delivered/);
    // Stream tables are read directly on BigQuery (no existence check, no connection).
    const carts = fs.readFileSync(path.join(compiled, 'models', 'staging', 'open_cart_items_stg.sql'), 'utf8');
    expect(carts).toContain('`dummy-project`.`store`.`fact_carts_has_products`');
    const models = ['staging', 'marts'].flatMap((layer) =>
      fs.readdirSync(path.join(compiled, 'models', layer)).filter((f) => f.endsWith('.sql')),
    );
    expect(models.sort()).toEqual([
      'availability_stg.sql', 'clean_orders_stg.sql', 'open_cart_items_stg.sql', 'order_lines_stg.sql',
      'product_cart_activity.sql', 'product_options_stg.sql', 'user_revenue.sql', 'user_stg.sql',
      'vendor_availability.sql', 'vendor_products_stg.sql', 'vendors_stg.sql',
    ]);
  });

  test("sqlglot's BigQuery dialect parses every compiled model and test", () => {
    const r = spawnSync(path.join(DBT_VENV, 'bin', 'python'), [path.join(ROOT, 'tests', 'dbt', 'bigquery_sql_check.py'), compiled], {
      encoding: 'utf8',
    });
    expect(r.stdout).toMatch(/bigquery-sql-check: \d+ files, 0 failed/);
    const n = Number(/(\d+) files/.exec(r.stdout)![1]);
    expect(n).toBeGreaterThan(80); // 11 models + every data test
    expect(r.status).toBe(0);
  });
});
