/**
 * A real batch job (extract, validate, stage, transform in DuckDB) loading into BigQuery through
 * WAREHOUSE=bigquery: openWarehouse -> BigQueryWarehouse.fromEnv with a service-account key file
 * (generated here, never committed), against the nock-scripted BigQuery of fake-bigquery.ts.
 */
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { FakeBigQuery, PROJECT } from './fake-bigquery';

// The real client and auth library, their HTTP layers loadable under jest (teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());

const SOURCE_DIR = path.resolve(__dirname, '..', '..', 'data_source');
let fake: FakeBigQuery;
let dir: string;
const saved = { ...process.env };

afterAll(() => FakeBigQuery.restoreHttp());

beforeEach(() => {
  fake = new FakeBigQuery();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bq-pipeline-'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = {
    type: 'service_account',
    project_id: PROJECT,
    private_key_id: 'test',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: `etl@${PROJECT}.iam.gserviceaccount.com`,
    client_id: '1',
    token_uri: 'https://oauth2.googleapis.com/token',
  };
  fs.writeFileSync(path.join(dir, 'key.json'), JSON.stringify(key));
  Object.assign(process.env, {
    WAREHOUSE: 'bigquery',
    GCP_PROJECT_ID: PROJECT,
    GOOGLE_APPLICATION_CREDENTIALS: path.join(dir, 'key.json'),
    BIGQUERY_LOCATION: 'EU',
    BIGQUERY_MAX_RETRIES: '0',
  });
  delete process.env.BIGQUERY_DATASET;
});

afterEach(() => {
  fake.done();
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('npm-run-style job: dim_vendors from data_source/ lands in BigQuery via one WRITE_TRUNCATE load', async () => {
  const config = loadConfig(process.env, { sourceDir: SOURCE_DIR, stateDir: path.join(dir, 'state') });
  expect(config.warehouse).toBe('bigquery');
  const result = await runBatchJob(catalog, 'dim_vendors', config);
  expect(result.run.status).toBe('success');

  // Authenticated with the key file: a JWT-bearer grant, then the token on every call.
  const grant = fake.requests.find((r) => r.path === 'oauth2:/token');
  expect(String(JSON.stringify(grant?.body))).toContain('jwt-bearer');

  const loads = fake.find('POST', /\/upload\//).map((u) => u.upload!);
  const main = loads.find((l) => l.metadata.configuration.load.destinationTable.tableId === 'dim_vendors')!;
  expect(main.metadata.configuration.load).toMatchObject({ writeDisposition: 'WRITE_TRUNCATE', sourceFormat: 'NEWLINE_DELIMITED_JSON' });
  expect(main.metadata.jobReference.location).toBe('EU');
  const rows = main.data.trim().split('\n').map((l) => JSON.parse(l));
  expect(rows).toHaveLength(result.run.rowsOut);
  expect(Object.keys(rows[0])).toEqual(['vendor_id', 'vendor_name', 'vendor_phone', 'vendor_email']);
  const quarantined = loads.find((l) => l.metadata.configuration.load.destinationTable.tableId === '_staging_quarantine_dim_vendors')!;
  expect(quarantined.data.trim() === '' ? 0 : quarantined.data.trim().split('\n').length).toBe(result.run.rowsQuarantined);

  const script = fake.queries().at(-1)!;
  expect(script).toContain('INSERT INTO `test-project.store._etl_runs`');
  const job = fake.find('POST', /\/projects\/test-project\/jobs$/).at(-1)!.body as any;
  const runId = job.configuration.query.queryParameters.find((p: any) => p.name === 'run_id').parameterValue.value;
  expect(runId).toBe(result.run.runId);
});

test('a warehouse that refuses the load fails the job with exit code 3 and a clear reason', async () => {
  fake.failNext('POST', /\/upload\/.*jobs/, 403, 'accessDenied', 'Access Denied: Table test-project:store._staging_quarantine_dim_vendors: Permission bigquery.tables.updateData denied');
  const config = loadConfig(process.env, { sourceDir: SOURCE_DIR, stateDir: path.join(dir, 'state') });
  const err = await runBatchJob(catalog, 'dim_vendors', config).catch((e) => e);
  expect(err.exitCode).toBe(3);
  expect(err.message).toMatch(/loading store\.dim_vendors into bigquery .*failed: BigQuery load job into store\._staging_quarantine_dim_vendors failed \(HTTP 403\) after 1 attempt: accessDenied: Access Denied/);
});
