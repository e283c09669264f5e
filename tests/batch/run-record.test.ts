/**
 * `store._etl_runs` rows are written as SQL literals (cheaper than a prepared statement): any
 * text, quotes, backslashes, newlines and NUL included, must come back exactly as given.
 */
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { DuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';
import { query, tempDir } from '../helpers/env';

test('a run record keeps any text and number exactly', async () => {
  const file = path.join(tempDir('runrec'), 'warehouse.duckdb');
  const wh = new DuckDbWarehouse({ path: file, lockRetries: 0, catalog, destinations: (d) => d.mode === 'batch' });
  const error = `it's "bad"\\n\n\ttab \u0000 nul; DROP TABLE store._etl_runs; --`;
  const report = JSON.stringify({ note: "o'clock", nul: '\u0000' });
  await wh.recordRun({
    runId: "run-'1'",
    destination: 'store.dim_vendors',
    mode: 'batch',
    startedAt: new Date('2026-01-02T03:04:05.678Z'),
    endedAt: new Date('2026-01-02T03:04:06.001Z'),
    rowsIn: 9_007_199_254,
    rowsLoaded: 9_007_199_250,
    rowsQuarantined: 4,
    rowsOut: 0,
    status: 'failed',
    error,
    report,
  });
  await wh.recordRun({
    runId: 'run-2', destination: 'store.dim_vendors', mode: 'batch', startedAt: new Date(0), endedAt: new Date(0),
    rowsIn: 1, rowsLoaded: 1, rowsQuarantined: 0, rowsOut: 1, status: 'success', error: null, report: null,
  });
  const rows = await query(
    file,
    `SELECT run_id, mode, strftime(started_at, '%Y-%m-%d %H:%M:%S.%g'), rows_in::VARCHAR, rows_loaded::VARCHAR,
            rows_quarantined::VARCHAR, rows_out::VARCHAR, status, error, report FROM store._etl_runs ORDER BY run_id`,
  );
  expect(rows).toEqual([
    ["run-'1'", 'batch', '2026-01-02 03:04:05.678', '9007199254', '9007199250', '4', '0', 'failed', error, report],
    ['run-2', 'batch', '1970-01-01 00:00:00.000', '1', '1', '0', '1', 'success', null, null],
  ]);
});
