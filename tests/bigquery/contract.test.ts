/**
 * Contract tests of the BigQuery adapter: the real @google-cloud/bigquery client, talking HTTP to
 * a nock-scripted BigQuery (fake-bigquery.ts). Asserts the requests themselves: dataset and table
 * schemas from the catalog, the load job (NEWLINE_DELIMITED_JSON, WRITE_TRUNCATE, streamed rows),
 * insertIds per event, the transaction scripts, retries on transient errors and clear permanent
 * errors.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import type { BatchDestination, StreamDestination } from '../../jobs/lib/catalog-types';
import { duckdbCreateTable, QUARANTINE_COLUMNS_DDL } from '../../jobs/lib/ddl';
import { BigQueryPermanentError, BigQueryWarehouse, streamEventId } from '../../jobs/lib/warehouse/bigquery/warehouse';
import { tableBatch, type RunRecord, type StagedBatch } from '../../jobs/lib/warehouse/types';
import { loadStreamConfig, topicFor } from '../../jobs/lib/stream/config';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { bigQuerySink } from '../../jobs/lib/stream/sink-bigquery';
import { FakeBigQuery, PROJECT } from './fake-bigquery';

// The real client, with its HTTP layer loadable under jest (see teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());

const FAST_RETRY = { retries: 3, baseDelayMs: 1, maxDelayMs: 5 };

const dest = (name: string) => catalog.destinations.find((d) => d.name === name)!;
const vendors = dest('store.dim_vendors') as BatchDestination;
const orders = dest('store.fact_orders') as BatchDestination;
const carts = dest('store.fact_shoppingcarts') as StreamDestination;

function run(destination: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: 'run-1', destination, mode: 'batch',
    startedAt: new Date('2024-05-01T10:00:00Z'), endedAt: new Date('2024-05-01T10:00:05Z'),
    rowsIn: 4, rowsLoaded: 3, rowsQuarantined: 1, rowsOut: 3, status: 'success', error: null, report: '{"ok":true}',
    ...extra,
  };
}

let fake: FakeBigQuery;
let duck: DuckDBInstance;
let conn: DuckDBConnection;

afterAll(() => FakeBigQuery.restoreHttp());

beforeEach(async () => {
  fake = new FakeBigQuery();
  duck = await DuckDBInstance.create(':memory:');
  conn = await duck.connect();
});

afterEach(() => {
  fake.done();
  conn.closeSync();
  duck.closeSync();
});

const warehouse = (retry = FAST_RETRY) =>
  new BigQueryWarehouse({ client: fake.client(), projectId: PROJECT, location: 'EU', catalog, retry, pollIntervalMs: 20 });

/** Rows staged in scratch tables; the batch to load, given the run to record with them. */
async function stage(d: BatchDestination, insertSql: string, quarantine: string[] = []): Promise<(r: RunRecord) => StagedBatch> {
  await conn.run(duckdbCreateTable(d, 'result'));
  await conn.run(insertSql);
  await conn.run(`CREATE TABLE quarantine (${QUARANTINE_COLUMNS_DDL})`);
  for (const q of quarantine) await conn.run(`INSERT INTO quarantine VALUES ${q}`);
  return (r) => tableBatch(conn, 'result', 'quarantine', r);
}

describe('ensureSchema', () => {
  test('creates the dataset in the configured location and every table with the catalog schema', async () => {
    await warehouse().ensureSchema();

    const ds = fake.find('POST', /\/projects\/test-project\/datasets$/);
    expect(ds.map((r) => r.body)).toEqual([{ location: 'EU', datasetReference: { datasetId: 'store' } }]);

    const tables = fake.find('POST', /\/datasets\/store\/tables$/).map((r) => r.body as any);
    const byName = new Map(tables.map((t) => [t.tableReference.tableId, t]));
    for (const d of catalog.destinations) {
      const t = byName.get(d.table);
      expect(t).toBeDefined();
      expect(t.description).toBe(d.description);
      expect(t.schema.fields).toEqual(
        d.columns.map((c) => ({ name: c.name, type: c.type, mode: c.nullable ? 'NULLABLE' : 'REQUIRED', description: c.description })),
      );
    }
    // Bookkeeping tables mirror the DuckDB ones; stream tables get a changelog.
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['_etl_runs', '_quarantine', '_stream_offsets', '_changelog_fact_shoppingcarts']));
    expect(byName.get('_etl_runs').schema.fields.map((f: any) => `${f.name}:${f.type}:${f.mode}`)).toEqual([
      'run_id:STRING:REQUIRED', 'destination:STRING:REQUIRED', 'mode:STRING:REQUIRED',
      'started_at:TIMESTAMP:REQUIRED', 'ended_at:TIMESTAMP:REQUIRED', 'rows_in:INT64:REQUIRED',
      'rows_loaded:INT64:REQUIRED', 'rows_quarantined:INT64:REQUIRED', 'rows_out:INT64:REQUIRED',
      'status:STRING:REQUIRED', 'error:STRING:NULLABLE', 'report:STRING:NULLABLE',
    ]);
    expect(byName.get('_changelog_fact_shoppingcarts').schema.fields.map((f: any) => f.name)).toEqual([
      '_event_id', '_consumer_group', '_ingested_at', 'shopping_cart_id', 'status', 'updated_at',
    ]);
    expect(tables).toHaveLength(3 + catalog.destinations.length + catalog.destinations.filter((d) => d.mode === 'stream').length);
  });

  test('an existing dataset or table (409) is not an error', async () => {
    fake.failNext('POST', /\/datasets$/, 409, 'duplicate', 'Already Exists: Dataset test-project:store');
    fake.failNext('POST', /\/tables$/, 409, 'duplicate', 'Already Exists: Table test-project:store._etl_runs');
    await expect(warehouse().ensureSchema()).resolves.toBeUndefined();
  });

  test('BIGQUERY_DATASET overrides the catalog dataset', async () => {
    const wh = new BigQueryWarehouse({ client: fake.client(), projectId: PROJECT, location: 'EU', catalog, dataset: 'store_prod', retry: FAST_RETRY });
    await wh.ensureSchema();
    expect(fake.find('POST', /\/datasets$/)[0].body).toEqual({ location: 'EU', datasetReference: { datasetId: 'store_prod' } });
    expect(fake.find('POST', /\/datasets\/store\/tables$/)).toHaveLength(0);
    expect(wh.location).toBe('bigquery://test-project/store_prod (EU)');
  });
});

describe('replaceTable (batch)', () => {
  test('streams the staged rows as NDJSON into a WRITE_TRUNCATE load job with the catalog schema', async () => {
    const staged = await stage(
      orders,
      `INSERT INTO result VALUES
        ('1001', '7', '************6084', 3, 10.5, 0.08, 130.2500, DATE '2024-04-30', NULL, 'Ann', '1 Main St', 'TRK1', true),
        ('1002', NULL, NULL, 12345678901, NULL, NULL, NULL, NULL, NULL, 'Bob "B"', NULL, NULL, false)`,
      [`('run-1', 'store.fact_orders', 'order', 'order.txt', 5, 'order_id', 'scientific_notation_id', 'damaged id', '2.5E+15\t3')`],
    );
    await warehouse().replaceTable(orders, staged(run('store.fact_orders')));

    const uploads = fake.find('POST', /\/upload\/bigquery\/v2\/projects\/test-project\/jobs/);
    expect(uploads.map((u) => u.path)).toEqual([
      '/upload/bigquery/v2/projects/test-project/jobs?uploadType=multipart',
      '/upload/bigquery/v2/projects/test-project/jobs?uploadType=multipart',
    ]);
    const [qLoad, load] = uploads.map((u) => u.upload!);

    // The destination load: the atomic replace.
    const cfg = load.metadata.configuration.load;
    expect(cfg.destinationTable).toEqual({ projectId: PROJECT, datasetId: 'store', tableId: 'fact_orders' });
    expect(cfg.sourceFormat).toBe('NEWLINE_DELIMITED_JSON');
    expect(cfg.writeDisposition).toBe('WRITE_TRUNCATE');
    expect(cfg.createDisposition).toBe('CREATE_IF_NEEDED');
    expect(cfg.schema.fields).toEqual(
      orders.columns.map((c) => ({ name: c.name, type: c.type, mode: c.nullable ? 'NULLABLE' : 'REQUIRED', description: c.description })),
    );
    expect(load.metadata.jobReference).toMatchObject({ projectId: PROJECT, location: 'EU' });
    expect(load.metadata.jobReference.jobId).toMatch(/^store_etl_fact_orders_/);
    const lines = load.data.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      {
        order_id: '1001', user_id: '7', credit_card_masked: '************6084', total_item: '3', shipping_fee: '10.5000',
        tax: '0.0800', total_cost: '130.2500', order_date: '2024-04-30', delivery_date: null, ship_name: 'Ann',
        ship_address: '1 Main St', tracking_number: 'TRK1', is_delivered: true,
      },
      {
        order_id: '1002', user_id: null, credit_card_masked: null, total_item: '12345678901', shipping_fee: null,
        tax: null, total_cost: null, order_date: null, delivery_date: null, ship_name: 'Bob "B"',
        ship_address: null, tracking_number: null, is_delivered: false,
      },
    ]);

    // The quarantine rows go to a staging table first, also WRITE_TRUNCATE.
    expect(qLoad.metadata.configuration.load).toMatchObject({
      destinationTable: { datasetId: 'store', tableId: '_staging_quarantine_fact_orders' },
      sourceFormat: 'NEWLINE_DELIMITED_JSON',
      writeDisposition: 'WRITE_TRUNCATE',
    });
    expect(JSON.parse(qLoad.data.trim())).toEqual({
      run_id: 'run-1', destination: 'store.fact_orders', source: 'order', file: 'order.txt', line: '5',
      column_name: 'order_id', reason_code: 'scientific_notation_id', reason: 'damaged id', raw: '2.5E+15\t3',
    });

    // Then one transaction: this destination's quarantine rows replaced, the run recorded.
    const script = fake.queries().at(-1)!;
    expect(script).toMatch(/^BEGIN TRANSACTION;/);
    expect(script).toContain('DELETE FROM `test-project.store._quarantine` WHERE destination = @destination;');
    expect(script).toContain('FROM `test-project.store._staging_quarantine_fact_orders`;');
    expect(script).toContain('INSERT INTO `test-project.store._etl_runs`');
    expect(script).toMatch(/COMMIT TRANSACTION;$/);
    const job = fake.find('POST', /\/projects\/test-project\/jobs$/).at(-1)!.body as any;
    const params = Object.fromEntries(
      job.configuration.query.queryParameters.map((p: any) => [p.name, [p.parameterType.type, p.parameterValue.value]]),
    );
    expect(params).toMatchObject({
      destination: ['STRING', 'store.fact_orders'],
      run_id: ['STRING', 'run-1'],
      rows_in: ['INT64', '4'],
      rows_quarantined: ['INT64', '1'],
      status: ['STRING', 'success'],
      report: ['STRING', '{"ok":true}'],
    });
    expect(params.started_at).toEqual(['TIMESTAMP', '2024-05-01T10:00:00.000Z']);
    expect(params.error[0]).toBe('STRING');
    expect(job.jobReference.location).toBe('EU');
  });

  test('streams a large result in chunks through one load job, never one request per row', async () => {
    const staged = await stage(
      vendors,
      "INSERT INTO result SELECT CAST(i AS VARCHAR), 'Vendor ' || i, NULL, 'v' || i || '@example.com' FROM range(1, 5001) t(i)",
    );
    await warehouse().replaceTable(vendors, staged(run('store.dim_vendors')));
    const uploads = fake.find('POST', /\/upload\//);
    expect(uploads).toHaveLength(2);
    const data = uploads[1].upload!.data.trim().split('\n');
    expect(data).toHaveLength(5000);
    expect(JSON.parse(data[4999])).toEqual({ vendor_id: '5000', vendor_name: 'Vendor 5000', vendor_phone: null, vendor_email: 'v5000@example.com' });
    expect(fake.find('POST', /insertAll/)).toHaveLength(0);
  });

  test('retries a load job that fails with a transient error (HTTP 503, then backendError) and succeeds', async () => {
    const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
    const wh = warehouse();
    await wh.ensureSchema();
    fake.failNext('POST', /\/upload\/.*jobs/, 503, 'backendError', 'Service unavailable');
    fake.failNext('POST', /\/upload\/.*jobs/, 200, 'backendError', 'Error encountered during execution. Retrying may solve the problem.', 'job');
    await wh.replaceTable(vendors, staged(run('store.dim_vendors')));
    const uploads = fake.find('POST', /\/upload\//);
    // quarantine staging: 503 then ok; destination load: job error then ok
    expect(uploads).toHaveLength(4);
    expect(uploads.every((u) => u.upload!.metadata.configuration.load.writeDisposition === 'WRITE_TRUNCATE')).toBe(true);
    expect(fake.queries().at(-1)).toMatch(/COMMIT TRANSACTION;$/);
  });

  test('retries rateLimitExceeded (HTTP 403) on the bookkeeping transaction', async () => {
    const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
    const wh = warehouse();
    await wh.ensureSchema();
    fake.failNext('POST', /\/projects\/test-project\/jobs$/, 403, 'rateLimitExceeded', 'Exceeded rate limits: too many table update operations');
    await wh.replaceTable(vendors, staged(run('store.dim_vendors')));
    const scripts = fake.queries();
    expect(scripts).toHaveLength(2);
    expect(scripts[0]).toBe(scripts[1]);
  });

  test('a permanent error (invalid) is not retried and says what failed', async () => {
    const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
    const wh = warehouse();
    await wh.ensureSchema();
    fake.failNext('POST', /\/upload\/.*jobs/, 200, 'invalid', 'Error while reading data, error message: JSON parsing error in row starting at position 0', 'job');
    const err = await wh.replaceTable(vendors, staged(run('store.dim_vendors'))).catch((e) => e);
    expect(err).toBeInstanceOf(BigQueryPermanentError);
    expect(err.message).toMatch(/^BigQuery load job into store\._staging_quarantine_dim_vendors failed after 1 attempt: invalid: Error while reading data/);
    expect(err.reasons).toEqual(['invalid']);
    expect(fake.find('POST', /\/upload\//)).toHaveLength(1);
    expect(fake.queries()).toHaveLength(0); // nothing recorded, nothing replaced
  });

  test('gives up after the configured retries and reports the last error', async () => {
    const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
    const wh = warehouse({ retries: 2, baseDelayMs: 1, maxDelayMs: 2 });
    await wh.ensureSchema();
    for (let i = 0; i < 3; i++) fake.failNext('POST', /\/upload\/.*jobs/, 500, 'internalError', 'Internal error');
    const err = await wh.replaceTable(vendors, staged(run('store.dim_vendors'))).catch((e) => e);
    expect(err).toBeInstanceOf(BigQueryPermanentError);
    expect(err.message).toContain('(HTTP 500) after 3 attempts: internalError: Internal error');
  });

  test('recordRun inserts one _etl_runs row with typed parameters', async () => {
    const wh = warehouse();
    await wh.recordRun(run('store.dim_users', { status: 'failed', error: 'source missing', rowsOut: 0, report: null }));
    const sql = fake.queries().at(-1)!;
    expect(sql).toMatch(/^INSERT INTO `test-project\.store\._etl_runs` \(run_id, destination, mode, started_at/);
    const job = fake.find('POST', /\/projects\/test-project\/jobs$/).at(-1)!.body as any;
    const p = Object.fromEntries(job.configuration.query.queryParameters.map((x: any) => [x.name, x]));
    expect(p.status.parameterValue.value).toBe('failed');
    expect(p.error.parameterValue.value).toBe('source missing');
    expect(p.report.parameterType.type).toBe('STRING');
    expect(p.rows_out).toEqual({ name: 'rows_out', parameterType: { type: 'INT64' }, parameterValue: { value: '0' } });
  });
});

describe('applyStreamBatch / readOffsets (stream)', () => {
  const write = {
    destination: carts,
    consumerGroup: 'store-etl',
    upserts: [
      { shopping_cart_id: '11', status: true, updated_at: new Date('2024-05-01T10:00:00Z') },
      { shopping_cart_id: '12', status: false, updated_at: new Date('2024-05-01T10:00:01Z') },
      { shopping_cart_id: '11', status: false, updated_at: new Date('2024-05-01T10:00:02Z') },
    ],
    eventIds: [streamEventId('store_fact_shoppingcarts', 0, '40'), streamEventId('store_fact_shoppingcarts', 1, '7'), streamEventId('store_fact_shoppingcarts', 0, '41')],
    quarantine: [
      {
        runId: 'stream', destination: 'store.fact_shoppingcarts', source: 'shoppingcart', file: 'store_fact_shoppingcarts',
        line: 42, column: 'status', reasonCode: 'bad_boolean', reason: '"7" is not 0 or 1', raw: '{"shopping_cart_id":"13","status":"7"}',
      },
    ],
    offsets: [
      { topic: 'store_fact_shoppingcarts', partition: 0, offset: '43' },
      { topic: 'store_fact_shoppingcarts', partition: 1, offset: '8' },
    ],
  };

  test('appends each event with insertId topic-partition-offset, then merges rows and offsets in one transaction', async () => {
    await warehouse().applyStreamBatch(write);
    const inserts = fake.find('POST', /\/tabledata\/insertAll$|\/insertAll$/);
    expect(inserts.map((r) => r.path)).toEqual(['/bigquery/v2/projects/test-project/datasets/store/tables/_changelog_fact_shoppingcarts/insertAll']);
    const body = inserts[0].body as any;
    expect(body.rows.map((r: any) => r.insertId)).toEqual(['store_fact_shoppingcarts-0-40', 'store_fact_shoppingcarts-1-7', 'store_fact_shoppingcarts-0-41']);
    expect(body.rows[0].json).toMatchObject({
      _event_id: 'store_fact_shoppingcarts-0-40', _consumer_group: 'store-etl',
      shopping_cart_id: '11', status: true, updated_at: '2024-05-01T10:00:00.000Z',
    });

    const script = fake.queries().at(-1)!;
    expect(script.split('\n').slice(0, 2)).toEqual(['DECLARE stale BOOL DEFAULT FALSE;', 'BEGIN TRANSACTION;']);
    expect(script).toContain('MERGE `test-project.store.fact_shoppingcarts` T USING');
    expect(script).toContain('ROW_NUMBER() OVER (PARTITION BY `shopping_cart_id` ORDER BY _pos DESC) AS _rn');
    expect(script).toContain(') WHERE _rn = 1');
    expect(script).toContain('ON T.`shopping_cart_id` = S.`shopping_cart_id`');
    expect(script).toContain('MERGE `test-project.store._quarantine` T');
    expect(script).toContain('MERGE `test-project.store._stream_offsets` T');
    expect(script).toMatch(/COMMIT TRANSACTION;\nSELECT NOT stale AS applied;$/);
    const job = fake.find('POST', /\/projects\/test-project\/jobs$/).at(-1)!.body as any;
    const p = Object.fromEntries(job.configuration.query.queryParameters.map((x: any) => [x.name, x.parameterValue.value]));
    expect(JSON.parse(p.rows)).toEqual(write.upserts.map((r) => ({ ...r, updated_at: r.updated_at.toISOString() })));
    expect(JSON.parse(p.offsets)).toEqual(write.offsets);
    expect(JSON.parse(p.quarantine)[0]).toMatchObject({ line: 42, reason_code: 'bad_boolean' });
    expect(p.consumer_group).toBe('store-etl');
  });

  test('the stored offsets only move forward: a batch the group already went past changes nothing', async () => {
    await warehouse().applyStreamBatch(write);
    const script = fake.queries().at(-1)!;
    const at = (needle: string) => {
      const i = script.indexOf(needle);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    // The fence is read inside the transaction, before any write, from the stored offsets of this group.
    const fence = at('SET stale = EXISTS (SELECT 1 FROM `test-project.store._stream_offsets` T');
    expect(fence).toBeGreaterThan(at('BEGIN TRANSACTION;'));
    expect(script).toContain("WHERE T.consumer_group = @consumer_group AND T.next_offset >= CAST(JSON_VALUE(o, '$.offset') AS INT64));");
    // Every write is conditional on it, and the offset MERGE never lowers a stored offset.
    expect(at('MERGE `test-project.store.fact_shoppingcarts` T')).toBeGreaterThan(fence);
    expect(script).toContain(') WHERE _rn = 1 AND NOT stale');
    expect(script).toContain('FROM UNNEST(JSON_QUERY_ARRAY(@quarantine)) AS q WHERE NOT stale) S');
    expect(script).toContain('WHEN MATCHED AND S.next_offset > T.next_offset THEN UPDATE SET next_offset = S.next_offset');
    expect(script).not.toMatch(/WHEN MATCHED THEN UPDATE SET next_offset/);
  });

  test('a retried insertAll (503, then a row timeout) resends the same insertIds', async () => {
    const wh = warehouse();
    await wh.ensureSchema();
    fake.failNext('POST', /insertAll$/, 503, 'backendError', 'The service is currently unavailable.');
    fake.failNext('POST', /insertAll$/, 500, 'timeout', 'Deadline exceeded');
    await wh.applyStreamBatch(write);
    const inserts = fake.find('POST', /insertAll$/).map((r) => (r.body as any).rows.map((x: any) => x.insertId));
    expect(inserts).toHaveLength(3);
    expect(inserts[1]).toEqual(inserts[0]);
    expect(inserts[2]).toEqual(inserts[0]);
    expect(fake.queries().at(-1)).toMatch(/COMMIT TRANSACTION;\nSELECT NOT stale AS applied;$/);
  });

  test('an invalid row is a permanent error: no retry, no transaction, offsets not advanced', async () => {
    const wh = warehouse();
    await wh.ensureSchema();
    fake.failNext('POST', /insertAll$/, 400, 'invalid', 'no such field: colour.');
    const err = await wh.applyStreamBatch(write).catch((e) => e);
    expect(err).toBeInstanceOf(BigQueryPermanentError);
    expect(err.message).toBe('BigQuery insertAll into store._changelog_fact_shoppingcarts failed (HTTP 400) after 1 attempt: invalid: no such field: colour.');
    expect(fake.find('POST', /insertAll$/)).toHaveLength(1);
    expect(fake.queries().some((q) => q.includes('_stream_offsets'))).toBe(false);
  });

  test('event ids must match the rows one to one', async () => {
    const err = await warehouse()
      .applyStreamBatch({ ...write, eventIds: write.eventIds.slice(1) })
      .catch((e) => e);
    expect(err.message).toBe('stream batch for store.fact_shoppingcarts: 2 event ids for 3 rows');
    expect(fake.find('POST', /insertAll$/)).toHaveLength(0);
  });

  test('applyStreamBatch tells a fenced batch (false) from an applied one (true)', async () => {
    const wh = warehouse();
    await wh.ensureSchema();
    fake.replyToQuery(/SELECT NOT stale AS applied/, { fields: [{ name: 'applied', type: 'BOOLEAN' }], rows: [['false']] });
    expect(await wh.applyStreamBatch(write)).toBe(false);
    fake.done();
    fake = new FakeBigQuery();
    const wh2 = warehouse();
    await wh2.ensureSchema();
    fake.replyToQuery(/SELECT NOT stale AS applied/, { fields: [{ name: 'applied', type: 'BOOLEAN' }], rows: [['true']] });
    expect(await wh2.applyStreamBatch(write)).toBe(true);
  });

  test('the consumer counts only applied events: a fenced batch adds nothing to its stats', async () => {
    const wh = warehouse();
    await wh.ensureSchema();
    const cfg = loadStreamConfig({}, { topicPrefix: 'bq', group: 'store-etl' });
    const consumer = new StreamConsumer({ cfg, tables: [carts], sink: bigQuerySink(wh) });
    const topic = topicFor(cfg, carts.sources[0]);
    const messages = [
      { offset: '40', timestamp: '1714557600000', key: Buffer.from('11'), value: Buffer.from('{"shopping_cart_id":"11","status":"1"}') },
      { offset: '41', timestamp: '1714557600000', key: Buffer.from('12'), value: Buffer.from('{"shopping_cart_id":"12","status":"0"}') },
    ];
    const feed = (msgs: typeof messages, partition: number) =>
      (consumer as any).group.eachBatch({
        batch: { topic, partition, messages: msgs },
        resolveOffset: () => undefined,
        heartbeat: async () => undefined,
        isRunning: () => true,
        isStale: () => false,
      });
    // Partition 0: another member already went past it (the script says stale): not counted.
    fake.replyToQuery(/SELECT NOT stale AS applied/, { fields: [{ name: 'applied', type: 'BOOLEAN' }], rows: [['false']] });
    await feed(messages, 0);
    expect(consumer.stats[carts.name]).toEqual({ rows: 0, quarantined: 0, batches: 0 });
    expect(fake.queries().filter((q) => q.includes('MERGE'))).toHaveLength(1);
    // Partition 1, applied: its two events counted once.
    fake.done();
    fake = new FakeBigQuery();
    const consumer2 = new StreamConsumer({ cfg, tables: [carts], sink: bigQuerySink(warehouse()) });
    fake.replyToQuery(/SELECT NOT stale AS applied/, { fields: [{ name: 'applied', type: 'BOOLEAN' }], rows: [['true']] });
    await (consumer2 as any).group.eachBatch({
      batch: { topic, partition: 1, messages },
      resolveOffset: () => undefined,
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
    });
    expect(consumer2.stats[carts.name]).toEqual({ rows: 2, quarantined: 0, batches: 1 });
  });

  test('readOffsets reads the stored offsets of the group', async () => {
    fake.replyToQuery(/_stream_offsets/, {
      fields: [{ name: 'topic', type: 'STRING' }, { name: 'partition', type: 'INTEGER' }, { name: 'next_offset', type: 'INTEGER' }],
      rows: [['store_fact_shoppingcarts', '0', '43'], ['store_fact_shoppingcarts', '1', '8']],
    });
    const offsets = await warehouse().readOffsets('store-etl', ['store_fact_shoppingcarts']);
    expect(offsets).toEqual(write.offsets);
    const job = fake.find('POST', /\/projects\/test-project\/jobs$/).at(-1)!.body as any;
    expect(job.configuration.query.query).toContain('WHERE consumer_group = @consumer_group AND topic IN UNNEST(@topics)');
    const topics = job.configuration.query.queryParameters.find((x: any) => x.name === 'topics');
    expect(topics).toEqual({
      name: 'topics',
      parameterType: { type: 'ARRAY', arrayType: { type: 'STRING' } },
      parameterValue: { arrayValues: [{ value: 'store_fact_shoppingcarts' }] },
    });
  });
});

describe('fromEnv', () => {
  test('needs GCP_PROJECT_ID and says so', () => {
    expect(() => BigQueryWarehouse.fromEnv({}, catalog)).toThrow(/GCP_PROJECT_ID/);
  });
  test('reads project, dataset, location and retries', () => {
    const wh = BigQueryWarehouse.fromEnv(
      { GCP_PROJECT_ID: 'acme-prod', BIGQUERY_DATASET: 'shop', BIGQUERY_LOCATION: 'europe-west1', BIGQUERY_MAX_RETRIES: '2' },
      catalog,
    );
    expect(wh.kind).toBe('bigquery');
    expect(wh.location).toBe('bigquery://acme-prod/shop (europe-west1)');
  });
});
