/**
 * `airflow dags test dbt_dag` with the local runner (ETL_RUNNER=local) runs scripts/dbt-build.sh
 * on a warehouse the batch pipeline loaded from tests/fixtures/store-export/: the DAG run
 * succeeds, the marts are in the warehouse (user_revenue has one row per user with a delivered
 * order, counted from the fixture files) and the docs site was generated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { query, runNode, tempDir } from '../helpers/env';
import { expectedUserRevenue, readAll, STORE_EXPORT } from '../helpers/store-export';
import { airflowEnv, describeWith, migratedAirflowHome, missingAirflow, output, runIn, timed, VENV_BIN } from '../airflow/airflow-env';
import { missingDbt } from './dbt-env';

describeWith([missingAirflow(), missingDbt()], 'airflow dags test dbt_dag (local runner)', () => {
  jest.setTimeout(300_000);

  test('runs dbt build and docs generate on the warehouse', async () => {
    const state = tempDir('dbt-dag-state');
    const load = runNode('scripts/start.js', ['--skip-stream', '--skip-dbt'], {
      ETL_SOURCE_DIR: STORE_EXPORT,
      ETL_STATE_DIR: state,
    });
    expect(load.status).toBe(0);

    const home = timed('airflow db migrate', () => migratedAirflowHome('dbt'));
    const env = airflowEnv(home, {
      ETL_RUNNER: 'local',
      ETL_STATE_DIR: state,
      DBT_TARGET_PATH: path.join(state, 'dbt-target'),
      DBT_LOG_PATH: path.join(state, 'dbt-logs'),
    });
    const r = timed('airflow dags test dbt_dag (local)', () =>
      runIn(env, path.join(VENV_BIN, 'airflow'), ['dags', 'test', 'dbt_dag']),
    );
    const log = `${r.stdout}${r.stderr}`;
    expect({ status: r.status, out: r.status === 0 ? '' : output(r) }).toEqual({ status: 0, out: '' });
    expect(log).toMatch(/DagRun Finished: dag_id=dbt_dag.*state=success/);
    expect(log).toMatch(/Done\. PASS=\d+ WARN=1 ERROR=0/);

    const db = path.join(state, 'warehouse.duckdb');
    expect(await query(db, 'SELECT count(*)::INTEGER FROM store_marts.user_revenue')).toEqual([[expectedUserRevenue(readAll(STORE_EXPORT)).size]]);
    expect(fs.existsSync(path.join(state, 'dbt-target', 'static_index.html'))).toBe(true);
  });
});
