/**
 * Live test against a real BigQuery project. Runs only when GCP_PROJECT_ID and
 * GOOGLE_APPLICATION_CREDENTIALS (a service-account key with BigQuery Data Editor + Job User on
 * the project) are set; otherwise it is skipped and says why.
 *
 *   GCP_PROJECT_ID=my-project GOOGLE_APPLICATION_CREDENTIALS=./secrets/gcp-service-account.json \
 *     npx jest tests/bigquery/live.test.ts
 *
 * It creates its own dataset (store_etl_live_<timestamp>, location BIGQUERY_LOCATION or US),
 * replaces a batch table twice, applies a stream batch twice with the same event ids, checks what
 * BigQuery holds, and deletes the dataset again.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { DuckDBInstance } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import type { BatchDestination, StreamDestination } from '../../jobs/lib/catalog-types';
import { duckdbCreateTable, QUARANTINE_COLUMNS_DDL } from '../../jobs/lib/ddl';
import { BigQueryWarehouse, streamEventId } from '../../jobs/lib/warehouse/bigquery/warehouse';
import { tableBatch, type RunRecord } from '../../jobs/lib/warehouse/types';

// The real client and auth library, their HTTP layers loadable under jest (teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const projectId = process.env.GCP_PROJECT_ID?.trim();
const keyFile = process.env.GOOGLE_APPLICATION_CREDENTIALS?.trim();
const location = process.env.BIGQUERY_LOCATION?.trim() || 'US';
const missing = [!projectId && 'GCP_PROJECT_ID', !keyFile && 'GOOGLE_APPLICATION_CREDENTIALS'].filter(Boolean);

if (missing.length > 0) {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED: live BigQuery test - ${missing.join(' and ')} not set (see tests/bigquery/live.test.ts).`);
}
const live = missing.length > 0 ? describe.skip : describe;

live('BigQuery live', () => {
  const dataset = `store_etl_live_${Date.now()}`;
  const client = new BigQuery({ projectId, keyFilename: keyFile, location, autoRetry: false });
  const wh = new BigQueryWarehouse({ client, projectId: projectId!, location, catalog, dataset, pollIntervalMs: 1000 });
  const vendors = catalog.destinations.find((d) => d.table === 'dim_vendors') as BatchDestination;
  const carts = catalog.destinations.find((d) => d.table === 'fact_shoppingcarts') as StreamDestination;
  const count = async (sql: string): Promise<number> => {
    const [rows] = await client.query({ query: sql, location });
    return Number(rows[0].n);
  };
  const fq = (t: string) => `\`${projectId}.${dataset}.${t}\``;

  afterAll(async () => {
    await client.dataset(dataset).delete({ force: true }).catch(() => undefined);
  }, 120_000);

  test('ensureSchema, batch replace (twice), stream apply (twice with the same events), offsets', async () => {
    await wh.ensureSchema();
    const duck = await DuckDBInstance.create(':memory:');
    const c = await duck.connect();
    try {
      await c.run(duckdbCreateTable(vendors, 'result'));
      await c.run(`CREATE TABLE quarantine (${QUARANTINE_COLUMNS_DDL})`);
      await c.run("INSERT INTO result VALUES ('1', 'Acme', NULL, 'a@example.com'), ('2', 'Bolt', '555', NULL)");
      await c.run("INSERT INTO quarantine VALUES ('live-1', 'store.dim_vendors', 'vendor', 'vendor.txt', 4, 'vendor_id', 'bad_identifier', 'x', 'x')");
      const run = (id: string): RunRecord => ({
        runId: id, destination: 'store.dim_vendors', mode: 'batch', startedAt: new Date(), endedAt: new Date(),
        rowsIn: 3, rowsLoaded: 2, rowsQuarantined: 1, rowsOut: 2, status: 'success', error: null, report: null,
      });
      await wh.replaceTable(vendors, tableBatch(c, 'result', 'quarantine', run('live-1')));
      await wh.replaceTable(vendors, tableBatch(c, 'result', 'quarantine', run('live-2')));
      expect(await count(`SELECT COUNT(*) AS n FROM ${fq('dim_vendors')}`)).toBe(2);
      expect(await count(`SELECT COUNT(*) AS n FROM ${fq('_quarantine')} WHERE destination = 'store.dim_vendors'`)).toBe(1);
      expect(await count(`SELECT COUNT(*) AS n FROM ${fq('_etl_runs')}`)).toBe(2);
    } finally {
      c.closeSync();
      duck.closeSync();
    }

    const topic = 'store_shoppingcart';
    const write = {
      destination: carts,
      consumerGroup: 'live-test',
      upserts: [
        { shopping_cart_id: '1', status: true, updated_at: new Date() },
        { shopping_cart_id: '1', status: false, updated_at: new Date() },
      ],
      eventIds: [streamEventId(topic, 0, 10), streamEventId(topic, 0, 11)],
      quarantine: [],
      offsets: [{ topic, partition: 0, offset: '12' }],
    };
    await wh.applyStreamBatch(write);
    await wh.applyStreamBatch(write); // a retried batch: same ids, same result
    expect(await count(`SELECT COUNT(*) AS n FROM ${fq('fact_shoppingcarts')} WHERE status = FALSE`)).toBe(1);
    expect(await count(`SELECT COUNT(*) AS n FROM ${fq('fact_shoppingcarts')}`)).toBe(1);
    expect(await wh.readOffsets('live-test', [topic])).toEqual([{ topic, partition: 0, offset: '12' }]);
  }, 600_000);
});
