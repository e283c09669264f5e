/**
 * `airflow dags test fact_orders_dag` with the local runner (ETL_RUNNER=local) loads
 * store.fact_orders into a DuckDB warehouse: the row count equals a direct run of the job CLI
 * on the same sources, and the run is recorded in store._etl_runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { count, query, runNode, tempDir } from '../helpers/env';
import { STORE_EXPORT } from '../helpers/store-export';
import {
  airflowEnv,
  describeWith,
  migratedAirflowHome,
  missingAirflow,
  output,
  runIn,
  timed,
  VENV_BIN,
} from './airflow-env';

describeWith([missingAirflow()], 'airflow dags test fact_orders_dag (local runner)', () => {
  jest.setTimeout(240_000);

  test('loads store.fact_orders into DuckDB', async () => {
    expect(fs.existsSync(STORE_EXPORT)).toBe(true);
    const ref = tempDir('ref-state');
    const direct = runNode('jobs/fact_orders.js', [], { ETL_SOURCE_DIR: STORE_EXPORT, ETL_STATE_DIR: ref });
    expect(direct.status).toBe(0);
    const expected = await count(path.join(ref, 'warehouse.duckdb'), 'store.fact_orders');
    expect(expected).toBeGreaterThan(0);

    const home = timed('airflow db migrate', () => migratedAirflowHome('local'));
    const state = tempDir('airflow-local-state');
    const env = airflowEnv(home, {
      ETL_RUNNER: 'local',
      ETL_SOURCE_DIR: STORE_EXPORT,
      ETL_STATE_DIR: state,
    });
    const r = timed('airflow dags test (local)', () =>
      runIn(env, path.join(VENV_BIN, 'airflow'), ['dags', 'test', 'fact_orders_dag']),
    );
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/DagRun Finished: dag_id=fact_orders_dag.*state=success/);

    const db = path.join(state, 'warehouse.duckdb');
    expect(fs.existsSync(db)).toBe(true);
    const rows = await count(db, 'store.fact_orders');
    expect({ rows, log: rows === expected ? '' : output(r) }).toEqual({ rows: expected, log: '' });
    const runs = await query(db, "SELECT destination, status, rows_out FROM store._etl_runs");
    expect(runs).toEqual([['store.fact_orders', 'success', expect.anything()]]);
    expect(Number(runs[0][2])).toBe(expected);
  });
});
