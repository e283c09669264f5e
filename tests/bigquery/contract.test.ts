/**
 * Contract tests of the BigQuery adapter on the executing double (bigquery-double.ts): the real
 * @google-cloud/bigquery client sends its real requests; tables, rows, DML, MERGE and transactions
 * are analyzed and executed by ZetaSQL. The proof is the TABLE CONTENTS read back from the double
 * after each adapter call, plus retries on injected faults and the analyzer's rejections.
 *
 * Values read back are BigQuery's REST form: INT64 and NUMERIC as decimal strings (NUMERIC without
 * trailing zeros), BOOL as 'true'/'false', DATE 'YYYY-MM-DD', TIMESTAMP as microseconds since the
 * epoch (UTC), NULL as null.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { catalog } from '../../jobs/catalog';
import type { BatchDestination, StreamDestination } from '../../jobs/lib/catalog-types';
import { duckdbCreateTable, QUARANTINE_COLUMNS_DDL } from '../../jobs/lib/ddl';
import { BigQueryPermanentError, BigQueryWarehouse, streamEventId } from '../../jobs/lib/warehouse/bigquery/warehouse';
import { mergeUpserts } from '../../jobs/lib/warehouse/bigquery/statements';
import { tableBatch, type RunRecord, type StagedBatch, type StreamWrite } from '../../jobs/lib/warehouse/types';
import { loadStreamConfig, topicFor } from '../../jobs/lib/stream/config';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { bigQuerySink } from '../../jobs/lib/stream/sink-bigquery';
import { BigQueryDouble, describeWithDouble, PROJECT } from './bigquery-double';

// The real client, with its HTTP layer loadable under jest (see teeny-request-shim.ts).
jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());

const FAST_RETRY = { retries: 3, baseDelayMs: 1, maxDelayMs: 5 };

const dest = (name: string) => catalog.destinations.find((d) => d.name === name)!;
const vendors = dest('store.dim_vendors') as BatchDestination;
const orders = dest('store.fact_orders') as BatchDestination;
const carts = dest('store.fact_shoppingcarts') as StreamDestination;
const fq = (t: string) => `\`${PROJECT}.store.${t}\``;
const micros = (iso: string) => String(Date.parse(iso) * 1000);

function run(destination: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    runId: 'run-1', destination, mode: 'batch',
    startedAt: new Date('2024-05-01T10:00:00Z'), endedAt: new Date('2024-05-01T10:00:05Z'),
    rowsIn: 4, rowsLoaded: 3, rowsQuarantined: 1, rowsOut: 3, status: 'success', error: null, report: '{"ok":true}',
    ...extra,
  };
}

describeWithDouble('BigQuery adapter on the executing double', () => {
  let bq: BigQueryDouble;
  let duck: DuckDBInstance;
  let conn: DuckDBConnection;

  beforeAll(async () => {
    bq = await BigQueryDouble.start();
  }, 120_000);
  afterAll(async () => {
    await bq?.stop();
  });

  beforeEach(async () => {
    await bq.reset();
    duck = await DuckDBInstance.create(':memory:');
    conn = await duck.connect();
  });

  afterEach(() => {
    conn.closeSync();
    duck.closeSync();
  });

  const warehouse = (retry = FAST_RETRY) =>
    new BigQueryWarehouse({ client: bq.client(), projectId: PROJECT, location: 'EU', catalog, retry, pollIntervalMs: 20 });

  /** Rows staged in scratch tables; the batch to load, given the run to record with them. */
  async function stage(d: BatchDestination, insertSql: string, quarantine: string[] = []): Promise<(r: RunRecord) => StagedBatch> {
    await conn.run(`DROP TABLE IF EXISTS result; DROP TABLE IF EXISTS quarantine`);
    await conn.run(duckdbCreateTable(d, 'result'));
    // The rows are written as the transform writes them: every column but the rescued data (NULL).
    const written = d.columns.filter((c) => c.name !== '_rescued_data').map((c) => `"${c.name}"`).join(', ');
    await conn.run(insertSql.replace(/^INSERT INTO result (?=VALUES|SELECT)/, `INSERT INTO result (${written}) `));
    await conn.run(`CREATE TABLE quarantine (${QUARANTINE_COLUMNS_DDL})`);
    for (const q of quarantine) await conn.run(`INSERT INTO quarantine VALUES ${q}`);
    return (r) => tableBatch(conn, 'result', 'quarantine', r);
  }

  const count = async (table: string, where = 'TRUE') => Number((await bq.sql(`SELECT COUNT(*) AS n FROM ${fq(table)} WHERE ${where}`))[0].n);

  describe('ensureSchema', () => {
    test('creates the dataset and every table with the catalog schema, as tables.get reads them back', async () => {
      await warehouse().ensureSchema();
      const client = bq.client();
      for (const d of catalog.destinations) {
        const [meta] = await client.dataset('store').table(d.table).getMetadata();
        expect(meta.description).toBe(d.description);
        expect(meta.schema.fields.map((f: any) => [f.name, f.type, f.mode])).toEqual(
          d.columns.map((c) => [c.name, c.type === 'INT64' ? 'INTEGER' : c.type === 'BOOL' ? 'BOOLEAN' : c.type, c.nullable ? 'NULLABLE' : 'REQUIRED']),
        );
        expect(meta.numRows).toBe('0');
      }
      const [runs] = await client.dataset('store').table('_etl_runs').getMetadata();
      expect(runs.schema.fields.map((f: any) => `${f.name}:${f.type}:${f.mode}`)).toEqual([
        'run_id:STRING:REQUIRED', 'destination:STRING:REQUIRED', 'mode:STRING:REQUIRED',
        'started_at:TIMESTAMP:REQUIRED', 'ended_at:TIMESTAMP:REQUIRED', 'rows_in:INTEGER:REQUIRED',
        'rows_loaded:INTEGER:REQUIRED', 'rows_quarantined:INTEGER:REQUIRED', 'rows_out:INTEGER:REQUIRED',
        'status:STRING:REQUIRED', 'error:STRING:NULLABLE', 'report:STRING:NULLABLE',
      ]);
      const [changelog] = await client.dataset('store').table('_changelog_fact_shoppingcarts').getMetadata();
      expect(changelog.schema.fields.map((f: any) => f.name)).toEqual(['_event_id', '_consumer_group', '_ingested_at', 'shopping_cart_id', 'status', 'updated_at', '_rescued_data']);
      expect(await count('_stream_offsets')).toBe(0);
    });

    test('running it twice is harmless (409 Already Exists from the double is ignored)', async () => {
      await warehouse().ensureSchema();
      await expect(warehouse().ensureSchema()).resolves.toBeUndefined();
      expect(bq.find('POST', /\/datasets$/)).toHaveLength(2);
    });

    test('BIGQUERY_DATASET overrides the catalog dataset', async () => {
      const wh = new BigQueryWarehouse({ client: bq.client(), projectId: PROJECT, location: 'EU', catalog, dataset: 'store_prod', retry: FAST_RETRY });
      await wh.ensureSchema();
      expect(await bq.sql(`SELECT COUNT(*) AS n FROM \`${PROJECT}.store_prod.dim_vendors\``)).toEqual([{ n: '0' }]);
      expect(await bq.sqlError(`SELECT 1 FROM ${fq('dim_vendors')}`)).toMatchObject({ reason: 'invalidQuery', message: expect.stringMatching(/^Table not found/) });
      expect(wh.location).toBe('bigquery://test-project/store_prod (EU)');
    });
  });

  describe('replaceTable (batch)', () => {
    const orderRows = `INSERT INTO result VALUES
        ('1001', '7', '************6084', 3, 10.5, 0.08, 130.2500, DATE '2024-04-30', NULL, 'Ann', '1 Main St', 'TRK1', true),
        ('1002', NULL, NULL, 12345678901, NULL, NULL, NULL, NULL, NULL, 'Bob "B"', NULL, NULL, false)`;
    const orderQuarantine = `('run-1', 'store.fact_orders', 'order', 'order.txt', 5, 'order_id', 'scientific_notation_id', 'damaged id', '2.5E+15\t3')`;

    test('the table holds exactly the staged rows, typed by the catalog schema; quarantine and run recorded', async () => {
      const staged = await stage(orders, orderRows, [orderQuarantine]);
      await warehouse().replaceTable(orders, staged(run('store.fact_orders')));

      expect(await bq.sql(`SELECT * FROM ${fq('fact_orders')} ORDER BY order_id`)).toEqual([
        {
          order_id: '1001', user_id: '7', credit_card_masked: '************6084', total_item: '3', shipping_fee: '10.5',
          tax: '0.08', total_cost: '130.25', order_date: '2024-04-30', delivery_date: null, ship_name: 'Ann',
          ship_address: '1 Main St', tracking_number: 'TRK1', is_delivered: 'true', _rescued_data: null,
        },
        {
          order_id: '1002', user_id: null, credit_card_masked: null, total_item: '12345678901', shipping_fee: null,
          tax: null, total_cost: null, order_date: null, delivery_date: null, ship_name: 'Bob "B"',
          ship_address: null, tracking_number: null, is_delivered: 'false', _rescued_data: null,
        },
      ]);
      expect(await bq.sql(`SELECT * FROM ${fq('_quarantine')}`)).toEqual([
        {
          run_id: 'run-1', destination: 'store.fact_orders', source: 'order', file: 'order.txt', line: '5',
          column_name: 'order_id', reason_code: 'scientific_notation_id', reason: 'damaged id', raw: '2.5E+15\t3',
        },
      ]);
      expect(await bq.sql(`SELECT * FROM ${fq('_etl_runs')}`)).toEqual([
        {
          run_id: 'run-1', destination: 'store.fact_orders', mode: 'batch',
          started_at: micros('2024-05-01T10:00:00Z'), ended_at: micros('2024-05-01T10:00:05Z'),
          rows_in: '4', rows_loaded: '3', rows_quarantined: '1', rows_out: '3', status: 'success', error: null, report: '{"ok":true}',
        },
      ]);
      // The load job itself: NDJSON, WRITE_TRUNCATE, the catalog schema.
      const load = bq.find('POST', /\/upload\//).map((u) => u.upload!.metadata.configuration.load).find((l) => l.destinationTable.tableId === 'fact_orders');
      expect(load).toMatchObject({ sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_TRUNCATE' });
    });

    test('a second run replaces the rows and that destination\'s quarantine rows, and adds one run', async () => {
      const wh = warehouse();
      await wh.replaceTable(orders, (await stage(orders, orderRows, [orderQuarantine]))(run('store.fact_orders')));
      await wh.replaceTable(vendors, (await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)", [
        `('run-v', 'store.dim_vendors', 'vendor', 'vendor.txt', 3, NULL, 'field_count', 'x', 'x')`,
      ]))(run('store.dim_vendors', { runId: 'run-v' })));
      const second = await stage(orders, "INSERT INTO result (order_id, ship_name, is_delivered) VALUES ('2001', 'Cy', NULL)");
      await wh.replaceTable(orders, second(run('store.fact_orders', { runId: 'run-2', rowsQuarantined: 0 })));

      expect(await bq.sql(`SELECT order_id, ship_name FROM ${fq('fact_orders')}`)).toEqual([{ order_id: '2001', ship_name: 'Cy' }]);
      expect(await bq.sql(`SELECT destination, run_id FROM ${fq('_quarantine')}`)).toEqual([{ destination: 'store.dim_vendors', run_id: 'run-v' }]);
      expect(await bq.sql(`SELECT run_id FROM ${fq('_etl_runs')} ORDER BY run_id`)).toEqual([{ run_id: 'run-1' }, { run_id: 'run-2' }, { run_id: 'run-v' }]);
    });

    test('a large result goes through one load job, never one request per row', async () => {
      const staged = await stage(vendors, "INSERT INTO result SELECT CAST(i AS VARCHAR), 'Vendor ' || i, NULL, 'v' || i || '@example.com' FROM range(1, 5001) t(i)");
      await warehouse().replaceTable(vendors, staged(run('store.dim_vendors')));
      expect(bq.find('POST', /\/upload\//)).toHaveLength(2);
      expect(bq.find('POST', /insertAll/)).toHaveLength(0);
      expect(await count('dim_vendors')).toBe(5000);
      expect(await bq.sql(`SELECT * FROM ${fq('dim_vendors')} WHERE vendor_id = '5000'`)).toEqual([
        { vendor_id: '5000', vendor_name: 'Vendor 5000', vendor_phone: null, vendor_email: 'v5000@example.com', _rescued_data: null },
      ]);
    });

    test('retries a load job that fails with a transient error (HTTP 503, then backendError) and ends with the rows once', async () => {
      const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
      const wh = warehouse();
      await wh.ensureSchema();
      bq.failNext('POST', /\/upload\/.*jobs/, 503, 'backendError', 'Service unavailable');
      bq.failNext('POST', /\/upload\/.*jobs/, 200, 'backendError', 'Error encountered during execution. Retrying may solve the problem.', 'job');
      await wh.replaceTable(vendors, staged(run('store.dim_vendors')));
      expect(bq.find('POST', /\/upload\//)).toHaveLength(4);
      expect(await bq.sql(`SELECT vendor_id, vendor_name FROM ${fq('dim_vendors')}`)).toEqual([{ vendor_id: '1', vendor_name: 'A' }]);
      expect(await count('_etl_runs')).toBe(1);
    });

    test('retries rateLimitExceeded (HTTP 403) on the bookkeeping transaction: the run is recorded once', async () => {
      const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
      const wh = warehouse();
      await wh.ensureSchema();
      bq.failNext('POST', /\/projects\/test-project\/jobs$/, 403, 'rateLimitExceeded', 'Exceeded rate limits: too many table update operations');
      await wh.replaceTable(vendors, staged(run('store.dim_vendors')));
      expect(bq.queries()).toHaveLength(2);
      expect(await count('_etl_runs')).toBe(1);
    });

    test('a permanent error (invalid) is not retried, says what failed, and changes nothing', async () => {
      const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
      const wh = warehouse();
      await wh.ensureSchema();
      bq.failNext('POST', /\/upload\/.*jobs/, 200, 'invalid', 'Error while reading data, error message: JSON parsing error in row starting at position 0', 'job');
      const err = await wh.replaceTable(vendors, staged(run('store.dim_vendors'))).catch((e) => e);
      expect(err).toBeInstanceOf(BigQueryPermanentError);
      expect(err.message).toMatch(/^BigQuery load job into store\._staging_quarantine_dim_vendors failed after 1 attempt: invalid: Error while reading data/);
      expect(err.reasons).toEqual(['invalid']);
      expect(await count('dim_vendors')).toBe(0);
      expect(await count('_etl_runs')).toBe(0);
    });

    test('gives up after the configured retries and reports the last error', async () => {
      const staged = await stage(vendors, "INSERT INTO result VALUES ('1', 'A', NULL, NULL)");
      const wh = warehouse({ retries: 2, baseDelayMs: 1, maxDelayMs: 2 });
      await wh.ensureSchema();
      for (let i = 0; i < 3; i++) bq.failNext('POST', /\/upload\/.*jobs/, 500, 'internalError', 'Internal error');
      const err = await wh.replaceTable(vendors, staged(run('store.dim_vendors'))).catch((e) => e);
      expect(err).toBeInstanceOf(BigQueryPermanentError);
      expect(err.message).toContain('(HTTP 500) after 3 attempts: internalError: Internal error');
    });

    test('a load job with a row that does not fit the schema ends in error, all or nothing', async () => {
      await warehouse().ensureSchema();
      const out = bq.client().dataset('store').table('dim_vendors').createWriteStream({
        sourceFormat: 'NEWLINE_DELIMITED_JSON', writeDisposition: 'WRITE_APPEND',
      } as never);
      const job = new Promise<unknown>((resolve, reject) => {
        out.on('complete', resolve);
        out.on('error', reject);
      });
      out.end('{"vendor_id":"1","vendor_name":"A"}\n{"vendor_id":null,"vendor_name":"B"}\n');
      // The client reports the job's errorResult as the stream's error.
      await expect(job).rejects.toMatchObject({
        errors: [{ reason: 'invalid', message: expect.stringContaining('First error in row 1: Missing required field: vendor_id.') }],
      });
      expect(await count('dim_vendors')).toBe(0);
    });

    test('recordRun inserts one _etl_runs row with typed values', async () => {
      await warehouse().recordRun(run('store.dim_users', { status: 'failed', error: 'source missing', rowsOut: 0, report: null }));
      expect(await bq.sql(`SELECT run_id, destination, status, error, rows_out, report, started_at FROM ${fq('_etl_runs')}`)).toEqual([
        { run_id: 'run-1', destination: 'store.dim_users', status: 'failed', error: 'source missing', rows_out: '0', report: null, started_at: micros('2024-05-01T10:00:00Z') },
      ]);
    });
  });

  describe('applyStreamBatch / readOffsets (stream)', () => {
    const write: StreamWrite = {
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
    const cartsNow = () => bq.sql(`SELECT shopping_cart_id, status, updated_at FROM ${fq('fact_shoppingcarts')} ORDER BY shopping_cart_id`);
    const offsetsNow = () => bq.sql(`SELECT consumer_group, topic, \`partition\`, next_offset FROM ${fq('_stream_offsets')} ORDER BY topic, \`partition\``);

    test('upserts by key (the later event wins), quarantines, stores offsets and appends the changelog', async () => {
      expect(await warehouse().applyStreamBatch(write)).toBe(true);
      expect(await cartsNow()).toEqual([
        { shopping_cart_id: '11', status: 'false', updated_at: micros('2024-05-01T10:00:02Z') },
        { shopping_cart_id: '12', status: 'false', updated_at: micros('2024-05-01T10:00:01Z') },
      ]);
      expect(await offsetsNow()).toEqual([
        { consumer_group: 'store-etl', topic: 'store_fact_shoppingcarts', partition: '0', next_offset: '43' },
        { consumer_group: 'store-etl', topic: 'store_fact_shoppingcarts', partition: '1', next_offset: '8' },
      ]);
      expect(await bq.sql(`SELECT line, column_name, reason_code, raw FROM ${fq('_quarantine')}`)).toEqual([
        { line: '42', column_name: 'status', reason_code: 'bad_boolean', raw: '{"shopping_cart_id":"13","status":"7"}' },
      ]);
      expect(await bq.sql(`SELECT _event_id, shopping_cart_id, status FROM ${fq('_changelog_fact_shoppingcarts')} ORDER BY _event_id`)).toEqual([
        { _event_id: 'store_fact_shoppingcarts-0-40', shopping_cart_id: '11', status: 'true' },
        { _event_id: 'store_fact_shoppingcarts-0-41', shopping_cart_id: '11', status: 'false' },
        { _event_id: 'store_fact_shoppingcarts-1-7', shopping_cart_id: '12', status: 'false' },
      ]);
    });

    test('a replayed batch is fenced (false) and changes nothing; insertIds de-duplicate the changelog', async () => {
      const wh = warehouse();
      await wh.applyStreamBatch(write);
      const before = { carts: await cartsNow(), offsets: await offsetsNow(), q: await count('_quarantine') };
      const replay = { ...write, upserts: write.upserts.map((u) => ({ ...u, status: true })) };
      expect(await wh.applyStreamBatch(replay)).toBe(false);
      expect(await cartsNow()).toEqual(before.carts);
      expect(await offsetsNow()).toEqual(before.offsets);
      expect(await count('_quarantine')).toBe(before.q);
      expect(await count('_changelog_fact_shoppingcarts')).toBe(3);
    });

    test('offsets only move forward, and a later batch applies on top', async () => {
      const wh = warehouse();
      await wh.applyStreamBatch(write);
      const next: StreamWrite = {
        ...write,
        upserts: [{ shopping_cart_id: '12', status: true, updated_at: new Date('2024-05-01T11:00:00Z') }],
        eventIds: [streamEventId('store_fact_shoppingcarts', 1, '8')],
        quarantine: [],
        offsets: [{ topic: 'store_fact_shoppingcarts', partition: 1, offset: '9' }],
      };
      expect(await wh.applyStreamBatch(next)).toBe(true);
      expect((await cartsNow()).map((r) => [r.shopping_cart_id, r.status])).toEqual([['11', 'false'], ['12', 'true']]);
      expect((await offsetsNow()).map((r) => r.next_offset)).toEqual(['43', '9']);
      expect(await wh.readOffsets('store-etl', ['store_fact_shoppingcarts'])).toEqual([
        { topic: 'store_fact_shoppingcarts', partition: 0, offset: '43' },
        { topic: 'store_fact_shoppingcarts', partition: 1, offset: '9' },
      ]);
      expect(await wh.readOffsets('other-group', ['store_fact_shoppingcarts'])).toEqual([]);
    });

    test('a retried insertAll (503, then a row timeout) succeeds and the rows land once', async () => {
      const wh = warehouse();
      await wh.ensureSchema();
      bq.failNext('POST', /insertAll$/, 503, 'backendError', 'The service is currently unavailable.');
      bq.failNext('POST', /insertAll$/, 500, 'timeout', 'Deadline exceeded');
      expect(await wh.applyStreamBatch(write)).toBe(true);
      const inserts = bq.find('POST', /insertAll$/).map((r) => (r.body as any).rows.map((x: any) => x.insertId));
      expect(inserts).toHaveLength(3);
      expect(inserts[2]).toEqual(inserts[0]);
      expect(await count('_changelog_fact_shoppingcarts')).toBe(3);
      expect(await count('fact_shoppingcarts')).toBe(2);
    });

    test('an invalid row is a permanent error: no retry, no transaction, offsets not stored', async () => {
      const wh = warehouse();
      await wh.ensureSchema();
      bq.failNext('POST', /insertAll$/, 400, 'invalid', 'no such field: colour.');
      const err = await wh.applyStreamBatch(write).catch((e) => e);
      expect(err).toBeInstanceOf(BigQueryPermanentError);
      expect(err.message).toBe('BigQuery insertAll into store._changelog_fact_shoppingcarts failed (HTTP 400) after 1 attempt: invalid: no such field: colour.');
      expect(await count('_stream_offsets')).toBe(0);
      expect(await count('fact_shoppingcarts')).toBe(0);
    });

    test('event ids must match the rows one to one', async () => {
      const err = await warehouse().applyStreamBatch({ ...write, eventIds: write.eventIds.slice(1) }).catch((e) => e);
      expect(err.message).toBe('stream batch for store.fact_shoppingcarts: 2 event ids for 3 rows');
      expect(bq.find('POST', /insertAll$/)).toHaveLength(0);
    });

    test('the consumer counts only applied events: a fenced batch adds nothing to its stats', async () => {
      const wh = warehouse();
      const cfg = loadStreamConfig({}, { topicPrefix: 'bq', group: 'store-etl' });
      const topic = topicFor(cfg, carts.sources[0]);
      // The group already went past offset 41 on partition 0 (another member applied it).
      await wh.applyStreamBatch({ ...write, upserts: [], eventIds: [], quarantine: [], offsets: [{ topic, partition: 0, offset: '100' }] });
      const messages = [
        { offset: '40', timestamp: '1714557600000', key: Buffer.from('11'), value: Buffer.from('{"shopping_cart_id":"11","status":"1"}') },
        { offset: '41', timestamp: '1714557600000', key: Buffer.from('12'), value: Buffer.from('{"shopping_cart_id":"12","status":"0"}') },
      ];
      const feed = (consumer: StreamConsumer, partition: number) =>
        (consumer as any).group.eachBatch({
          batch: { topic, partition, messages },
          resolveOffset: () => undefined, heartbeat: async () => undefined, isRunning: () => true, isStale: () => false,
        });
      const fenced = new StreamConsumer({ catalog, cfg, tables: [carts], sink: bigQuerySink(wh) });
      await feed(fenced, 0);
      expect(fenced.stats[carts.name]).toEqual({ rows: 0, quarantined: 0, batches: 0 });
      expect(await count('fact_shoppingcarts')).toBe(0);
      const applied = new StreamConsumer({ catalog, cfg, tables: [carts], sink: bigQuerySink(wh) });
      await feed(applied, 1);
      expect(applied.stats[carts.name]).toEqual({ rows: 2, quarantined: 0, batches: 1 });
      expect((await cartsNow()).map((r) => [r.shopping_cart_id, r.status])).toEqual([['11', 'true'], ['12', 'false']]);
    });
  });

  describe('the double fails what BigQuery would reject (mutation check)', () => {
    beforeEach(async () => {
      await warehouse().ensureSchema();
    });

    test('an unknown column fails with the analyzer\'s message, through the client too', async () => {
      expect(await bq.sqlError(`SELECT SUM(totl) FROM ${fq('fact_orders')}`)).toEqual({
        reason: 'invalidQuery', message: 'Unrecognized name: totl [at 1:12]',
      });
      const err = await bq.client().query({ query: `SELECT vendor_nme FROM ${fq('dim_vendors')}`, location: 'EU' }).catch((e) => e);
      expect(err.message).toContain('Unrecognized name: vendor_nme');
    });

    test('a type mismatch in a MERGE fails, and the table is unchanged', async () => {
      await warehouse().applyStreamBatch({
        destination: carts, consumerGroup: 'g', upserts: [{ shopping_cart_id: '1', status: true, updated_at: new Date('2024-05-01T00:00:00Z') }],
        eventIds: ['t-0-1'], quarantine: [], offsets: [],
      });
      // The adapter's MERGE with the status column typed STRING instead of BOOL.
      const bad = mergeUpserts(fq('fact_shoppingcarts'), { ...carts, columns: carts.columns.map((c) => (c.name === 'status' ? { ...c, type: 'STRING' as const } : c)) });
      const err = await bq.client().query({ query: bad, params: { rows: '[]' }, location: 'EU' }).catch((e) => e);
      expect(err.message).toMatch(/Value of type STRING cannot be assigned to (T\.)?status, which has type BOOL/);
      expect(await count('fact_shoppingcarts')).toBe(1);
    });

    test('a STRING compared to INT64 fails with the analyzer\'s message', async () => {
      expect(await bq.sqlError(`SELECT * FROM ${fq('_stream_offsets')} WHERE topic = 1`)).toEqual({
        reason: 'invalidQuery',
        message: expect.stringMatching(/^No matching signature for operator = for argument types: STRING, INT64/),
      });
    });

    test('a MERGE in which one target row matches two source rows fails, all or nothing', async () => {
      await bq.sql(`INSERT INTO ${fq('dim_vendors')} (vendor_id, vendor_name) VALUES ('1', 'A')`);
      const err = await bq.sqlError(
        `MERGE ${fq('dim_vendors')} T USING (SELECT '1' AS id, 'B' AS n UNION ALL SELECT '1', 'C') S ON T.vendor_id = S.id ` +
          'WHEN MATCHED THEN UPDATE SET vendor_name = S.n WHEN NOT MATCHED THEN INSERT (vendor_id, vendor_name) VALUES (S.id, S.n)',
      );
      expect(err?.message).toBe('UPDATE/MERGE must match at most one source row for each target row');
      expect(await bq.sql(`SELECT vendor_id, vendor_name FROM ${fq('dim_vendors')}`)).toEqual([{ vendor_id: '1', vendor_name: 'A' }]);
    });

    test('a failing statement inside a transaction undoes the whole transaction', async () => {
      const err = await bq.sqlError(
        `BEGIN TRANSACTION; INSERT INTO ${fq('dim_vendors')} (vendor_id, vendor_name) VALUES ('1', 'A'); ` +
          `INSERT INTO ${fq('dim_vendors')} (vendor_id, vendor_name) VALUES (NULL, 'B'); COMMIT TRANSACTION;`,
      );
      expect(err?.message).toBe('Required field vendor_id cannot be null');
      expect(await count('dim_vendors')).toBe(0);
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
