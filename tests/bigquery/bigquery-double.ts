/**
 * The executing BigQuery double: the real @google-cloud/bigquery client sends its real HTTP
 * requests (intercepted with nock, as in production they go to bigquery.googleapis.com), and the
 * answers come from state kept by our ZetaSQL engine (tools/zetasql-double): datasets, tables with
 * schemas and rows. Queries, DML, MERGE and multi-statement transactions are analyzed and executed
 * by GoogleSQL's own analyzer and reference evaluator; a statement BigQuery would reject fails its
 * job with the analyzer's message.
 *
 * Served: datasets.insert/get, tables.insert/get/delete, tabledata.insertAll (insertId
 * de-duplication), the multipart upload of a load job (NDJSON typed by the job's schema, or
 * PARQUET read by DuckDB into the same typed rows; WRITE_TRUNCATE / WRITE_APPEND, all-or-nothing),
 * tables.list, jobs.insert for queries, jobs.query, jobs.get,
 * jobs.getQueryResults (rows as f/v, TIMESTAMP as int64 microseconds as the client asks).
 * `failNext` injects faults (HTTP errors, a job ending in error) for the retry tests.
 *
 * The engine (a JVM, about 5 s to start) is started once per test file: `BigQueryDouble.start()`
 * in beforeAll, `reset()` between tests, `stop()` in afterAll.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import nock from 'nock';
import { OAuth2Client } from 'google-auth-library';
import { BigQuery } from '@google-cloud/bigquery';
import { DuckDBInstance } from '@duckdb/node-api';
import { processEnv, settingsOf } from '../../jobs/lib/config/settings';
import type { ColumnType } from '../../jobs/lib/catalog-types';
import { duckdbNdjsonSelect } from '../../jobs/lib/warehouse/bigquery/schema';
import { fromRestType } from './canonical';
import { BASE, serveDouble, type Reply } from './double-bridge';

export const PROJECT = 'test-project';
export { BASE };

/**
 * Writes a service-account key file that parses but opens no real project (a fresh RSA key, 0600):
 * the real client signs its token request with it, and the double (or, for dbt, nobody) answers.
 */
export function writeThrowawayKey(file: string, project = PROJECT, account = 'etl'): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  fs.writeFileSync(file, JSON.stringify({
    type: 'service_account', project_id: project, private_key_id: 'throwaway',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: `${account}@${project}.iam.gserviceaccount.com`, client_id: '1', token_uri: 'https://oauth2.googleapis.com/token',
  }), { mode: 0o600 });
  return file;
}

const HERE = path.resolve(__dirname, '..', '..');
/** The repository (also when this file runs compiled, from dist/tests/bigquery: scripts/bench-elt.ts). */
const ROOT = path.basename(HERE) === 'dist' ? path.dirname(HERE) : HERE;
const STATE = settingsOf(processEnv(), ROOT).path('ZETASQL_STATE_DIR');

/** Why the engine cannot start here (not built: `bash scripts/setup-zetasql.sh`), or null. */
export function engineUnavailableReason(): string | null {
  if (!fs.existsSync(path.join(STATE, 'build', 'classes', 'store', 'etl', 'zetasql', 'Main.class'))) {
    return `the ZetaSQL engine is not built in ${STATE} (run: bash scripts/setup-zetasql.sh)`;
  }
  return null;
}

/** describe() on the double: skipped with its reason when the engine is not built, failing under CI=true. */
export function describeWithDouble(name: string, fn: () => void): void {
  const reason = engineUnavailableReason();
  if (!reason) describe(name, fn);
  else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs the ZetaSQL engine', () => {
        throw new Error(`BigQuery tests cannot run in CI: ${reason}`);
      });
    });
  } else {
    // eslint-disable-next-line no-console
    console.warn(`SKIPPING BigQuery tests "${name}": ${reason}`);
    describe.skip(name, fn);
  }
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** For a multipart load upload: the job metadata and the uploaded data. */
  readonly upload?: {
    readonly metadata: Record<string, any>;
    readonly data: string;
    /** The uploaded data's bytes as sent (binary formats such as PARQUET: `data` is then empty). */
    readonly bytes: number;
    readonly binary?: Buffer;
  };
}

interface Failure {
  readonly method: string;
  readonly path: RegExp;
  readonly status: number;
  readonly reason: string;
  readonly message: string;
  /** 'job': the request succeeds but the job ends with this error (jobs.get reports it). */
  readonly kind: 'http' | 'job';
}

interface EngineError {
  readonly reason: string;
  readonly message: string;
  readonly rowErrors?: string[];
}

interface QueryResult {
  readonly fields: { name: string; type: string; mode: string }[];
  readonly rows: { f: { v: unknown }[] }[];
  readonly numDmlAffectedRows: string;
}

interface JobState {
  readonly kind: 'load' | 'query';
  readonly meta: Record<string, any>;
  error?: { reason: string; message: string; location?: string };
  result?: QueryResult;
}

/** The JVM engine: one JSON request per line, replies matched by id. */
class Engine {
  private seq = 0;
  private readonly pending = new Map<number, (reply: any) => void>();
  private stderr = '';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams, lines: readline.Interface) {
    lines.on('line', (line) => {
      const reply = JSON.parse(line);
      const done = this.pending.get(reply.id);
      if (done) {
        this.pending.delete(reply.id);
        done(reply);
      }
    });
    proc.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    proc.on('exit', (code) => {
      for (const done of this.pending.values()) done({ ok: false, reason: 'internalError', message: `ZetaSQL engine exited (${code}): ${this.stderr}` });
      this.pending.clear();
    });
  }

  static async start(heap = '512m'): Promise<Engine> {
    const cp = [path.join(STATE, 'build', 'classes'), path.join(STATE, 'libs', '*')].join(path.delimiter);
    const proc = spawn('java', [`-Xmx${heap}`, '-cp', cp, 'store.etl.zetasql.Main', PROJECT], { stdio: 'pipe' });
    const lines = readline.createInterface({ input: proc.stdout });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const onExit = (code: number | null) => reject(new Error(`ZetaSQL engine exited (${code}) before it was ready: ${err.slice(-2000)}`));
      proc.once('exit', onExit);
      lines.once('line', (line) => {
        proc.off('exit', onExit);
        if (JSON.parse(line).ready) resolve();
        else reject(new Error(`ZetaSQL engine: unexpected first line ${line}`));
      });
    });
    return new Engine(proc, lines);
  }

  call(op: string, args: Record<string, unknown> = {}): Promise<any> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    await exited;
  }
}

/**
 * One double for a describe block: started before its tests, stopped after (`suite.bq` inside
 * the tests).
 */
export function doubleForSuite(): { readonly bq: BigQueryDouble } {
  const suite = {} as { bq: BigQueryDouble };
  beforeAll(async () => {
    suite.bq = await BigQueryDouble.start();
  }, 120_000);
  afterAll(async () => {
    await suite.bq?.stop();
  });
  return suite;
}

export class BigQueryDouble {
  readonly requests: RecordedRequest[] = [];
  private failures: Failure[] = [];
  private jobs = new Map<string, JobState>();
  /** insertIds seen per table: BigQuery's best-effort de-duplication of insertAll retries. */
  private insertIds = new Map<string, Set<string>>();
  private descriptions = new Map<string, string>();
  private seq = 0;
  private cut: { left: number; match: (r: RecordedRequest) => boolean; executeLast: boolean; reached: () => void } | null = null;
  /** Every request is refused (a consumer "killed" by cutOff). */
  private severed = false;

  private constructor(private readonly engine: Engine) {}

  /** Starts the engine (once per test file) and intercepts BigQuery's and Google's token endpoints. */
  static async start(opts: { readonly heap?: string } = {}): Promise<BigQueryDouble> {
    // heap: the JVM's -Xmx (default 512m), for benchmarks holding large tables.
    const double = new BigQueryDouble(await Engine.start(opts.heap));
    double.intercept();
    return double;
  }

  /** Forgets every dataset, table, job, recorded request and queued failure (between tests). */
  async reset(): Promise<void> {
    await this.engine.call('reset');
    this.requests.length = 0;
    this.failures = [];
    this.jobs.clear();
    this.insertIds.clear();
    this.descriptions.clear();
    this.revive();
  }

  /** Stops the engine and removes nock's interception altogether (later suites use real HTTP). */
  async stop(): Promise<void> {
    nock.cleanAll();
    nock.enableNetConnect();
    nock.restore();
    await this.engine.stop();
  }

  /** A client wired to the double: static token, no library retries (the adapter retries). */
  client(): BigQuery {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3600_000 });
    return new BigQuery({ projectId: PROJECT, authClient: auth, autoRetry: false, location: 'EU' } as never);
  }

  /**
   * A kill at a known point, for a consumer running in this process: the `n`-th request from now
   * that `match`es, and every request after it, is answered 503 (the process is gone: nothing it
   * sends reaches BigQuery any more). With `executeLast` that n-th request is executed first: the
   * consumer dies right after BigQuery committed, before it heard so. Resolves at that point.
   * `revive()` ends it (the restarted consumer).
   */
  cutOff(match: (r: RecordedRequest) => boolean, n: number, executeLast: boolean): Promise<void> {
    return new Promise((reached) => {
      this.cut = { left: n, match, executeLast, reached };
    });
  }

  revive(): void {
    this.cut = null;
    this.severed = false;
  }

  /**
   * The double for jobs in other processes (double-bridge.ts): a local HTTP port their
   * bridgeToDouble hook forwards to; `close()` it before stop().
   */
  serve(): Promise<{ port: number; close: () => Promise<void> }> {
    return serveDouble((f) => this.handle(f.method, f.uri, f.body as nock.Body, f.contentType));
  }

  failNext(method: string, path: RegExp, status: number, reason: string, message: string, kind: 'http' | 'job' = 'http'): this {
    this.failures.push({ method, path, status, reason, message, kind });
    return this;
  }

  /** Bytes of data uploaded by load jobs so far, per sourceFormat (what crossed the wire). */
  uploadedBytes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.requests) {
      const format = r.upload?.metadata?.configuration?.load?.sourceFormat;
      if (format) out[format] = (out[format] ?? 0) + r.upload!.bytes;
    }
    return out;
  }

  find(method: string, path: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  /** SQL of every query job, in order. */
  queries(): string[] {
    return this.find('POST', /\/projects\/[^/]+\/(jobs|queries)(\?|$)/)
      .map((r) => (r.body as any)?.configuration?.query?.query ?? (r.body as any)?.query)
      .filter(Boolean);
  }

  /**
   * Runs SQL on the engine directly (no HTTP, no fault injection) and returns the rows as
   * objects of REST values (strings, null; TIMESTAMP as microseconds): for reading state back.
   */
  async sql(query: string): Promise<Record<string, unknown>[]> {
    const r = await this.engine.call('query', { sql: query, params: [] });
    if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
    return (r as QueryResult).rows.map((row) => Object.fromEntries(r.fields.map((f: { name: string }, i: number) => [f.name, restValue(row.f[i].v)])));
  }

  /** Runs SQL on the engine and returns its error (reason and the analyzer's message), or null. */
  async sqlError(query: string): Promise<EngineError | null> {
    const r = await this.engine.call('query', { sql: query, params: [] });
    return r.ok ? null : { reason: r.reason, message: r.message };
  }

  private intercept(): void {
    nock.disableNetConnect();
    const self = this;
    for (const method of ['POST', 'GET', 'DELETE'] as const) {
      const scope = nock(BASE).persist();
      const route = method === 'POST' ? scope.post(/.*/) : method === 'GET' ? scope.get(/.*/) : scope.delete(/.*/);
      route.query(true).reply(async function (this: nock.ReplyFnContext, uri: string, body: nock.Body) {
        return (await self.handle(method, uri, body, this.req.headers['content-type'] as string | undefined)) as nock.ReplyFnResult;
      });
    }
    // Google's token endpoint, for clients built from a service-account key file (fromEnv):
    // the JWT grant is recorded and answered with a short-lived fake token.
    nock('https://oauth2.googleapis.com')
      .persist()
      .post('/token')
      .reply(function (_uri, body) {
        self.requests.push({ method: 'POST', path: 'oauth2:/token', body });
        return [200, { access_token: 'fake-sa-token', expires_in: 3600, token_type: 'Bearer' }];
      });
  }

  private takeFailure(method: string, path: string): Failure | undefined {
    const i = this.failures.findIndex((f) => f.method === method && f.path.test(path));
    return i < 0 ? undefined : this.failures.splice(i, 1)[0];
  }

  private async handle(method: string, uri: string, rawBody: nock.Body, contentType?: string): Promise<Reply> {
    const [path, query = ''] = uri.split('?');
    const search = new URLSearchParams(query);
    search.delete('prettyPrint');
    const recordedPath = search.toString() ? `${path}?${search}` : path;
    let body: any = rawBody;
    let upload: RecordedRequest['upload'];
    if (typeof rawBody === 'string' && contentType?.startsWith('multipart/related')) {
      // nock hands over a body that is not valid UTF-8 (a binary upload) as hex.
      const boundary = /boundary=([^;]+)/.exec(contentType)?.[1] ?? '';
      upload = rawBody.includes(`--${boundary}`) ? parseMultipart(rawBody, contentType) : parseBinaryMultipart(Buffer.from(rawBody, 'hex'), contentType);
      body = upload.metadata;
    } else if (typeof rawBody === 'string' && rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    const request: RecordedRequest = { method, path: recordedPath, body, upload };
    this.requests.push(request);

    const gone: Reply = [503, errorBody(503, 'backendError', 'BigQuery double: the client was cut off (a killed consumer)')];
    if (this.severed) return gone;
    if (this.cut?.match(request) && --this.cut.left === 0) {
      const { executeLast, reached } = this.cut;
      this.cut = null;
      if (executeLast) await this.handleNow(method, path, recordedPath, body, upload);
      this.severed = true;
      reached();
      return gone;
    }
    return this.handleNow(method, path, recordedPath, body, upload);
  }

  private async handleNow(method: string, path: string, recordedPath: string, body: any, upload: RecordedRequest['upload']): Promise<Reply> {
    const failure = this.takeFailure(method, recordedPath);
    if (failure?.kind === 'http') return [failure.status, errorBody(failure.status, failure.reason, failure.message)];

    let m: RegExpExecArray | null;
    // jobs.insert: a load job (multipart upload) or a query job
    if (method === 'POST' && /\/projects\/[^/]+\/jobs$/.test(path)) {
      const meta = (upload?.metadata ?? body) as Record<string, any>;
      const jobId: string = meta?.jobReference?.jobId ?? `job_${++this.seq}`;
      const job: JobState = { kind: meta?.configuration?.load ? 'load' : 'query', meta };
      if (failure?.kind === 'job') job.error = { reason: failure.reason, message: failure.message };
      else if (job.kind === 'load') await this.runLoad(job, upload?.data ?? '', upload?.binary);
      else await this.runQuery(job, meta.configuration.query);
      this.jobs.set(jobId, job);
      return [200, this.jobResource(jobId, job)];
    }
    // jobs.query: a query answered in the same request
    if (method === 'POST' && /\/projects\/[^/]+\/queries$/.test(path)) {
      const jobId = `job_${++this.seq}`;
      const job: JobState = { kind: 'query', meta: { configuration: { query: body } } };
      await this.runQuery(job, body);
      this.jobs.set(jobId, job);
      if (job.error) return [400, errorBody(400, job.error.reason, job.error.message)];
      return [200, this.queryResults(jobId, job)];
    }
    if (method === 'GET' && (m = /\/projects\/[^/]+\/jobs\/([^/]+)$/.exec(path))) {
      const job = this.jobs.get(m[1]);
      if (!job) return [404, errorBody(404, 'notFound', `Not found: Job ${PROJECT}:EU.${m[1]}`)];
      return [200, this.jobResource(m[1], job)];
    }
    if (method === 'GET' && (m = /\/projects\/[^/]+\/queries\/([^/]+)$/.exec(path))) {
      const job = this.jobs.get(m[1]);
      if (!job) return [404, errorBody(404, 'notFound', `Not found: Job ${PROJECT}:EU.${m[1]}`)];
      if (job.error) return [400, errorBody(400, job.error.reason, job.error.message)];
      return [200, this.queryResults(m[1], job)];
    }
    if (method === 'POST' && /\/projects\/[^/]+\/datasets$/.test(path)) {
      const r = await this.engine.call('createDataset', { dataset: body.datasetReference.datasetId });
      if (!r.ok) return engineError(r);
      return [200, { ...body, id: `${PROJECT}:${body.datasetReference.datasetId}` }];
    }
    if (method === 'GET' && (m = /\/projects\/[^/]+\/datasets\/([^/]+)$/.exec(path))) {
      const r = await this.engine.call('getDataset', { dataset: m[1] });
      if (!r.ok) return engineError(r);
      return [200, { datasetReference: { projectId: PROJECT, datasetId: m[1] }, id: `${PROJECT}:${m[1]}`, location: 'EU' }];
    }
    if (method === 'GET' && (m = /\/datasets\/([^/]+)\/tables$/.exec(path))) {
      const r = await this.engine.call('listTables', { dataset: m[1] });
      if (!r.ok) return engineError(r);
      return [200, {
        kind: 'bigquery#tableList', totalItems: r.tables.length,
        tables: (r.tables as string[]).map((t) => ({
          kind: 'bigquery#table', id: `${PROJECT}:${m![1]}.${t}`, tableReference: { projectId: PROJECT, datasetId: m![1], tableId: t }, type: 'TABLE',
        })),
      }];
    }
    if (method === 'POST' && (m = /\/datasets\/([^/]+)\/tables$/.exec(path))) {
      const table = body.tableReference.tableId;
      const r = await this.engine.call('createTable', { dataset: m[1], table, fields: body.schema?.fields ?? [] });
      if (!r.ok) return engineError(r);
      this.descriptions.set(`${m[1]}.${table}`, body.description);
      return [200, { ...body, id: `${PROJECT}:${m[1]}.${table}` }];
    }
    if ((m = /\/datasets\/([^/]+)\/tables\/([^/]+)$/.exec(path)) && (method === 'GET' || method === 'DELETE')) {
      const r = await this.engine.call(method === 'GET' ? 'getTable' : 'deleteTable', { dataset: m[1], table: m[2] });
      if (!r.ok) return engineError(r);
      if (method === 'DELETE') return [204, ''];
      return [200, {
        kind: 'bigquery#table', id: `${PROJECT}:${m[1]}.${m[2]}`, tableReference: { projectId: PROJECT, datasetId: m[1], tableId: m[2] },
        schema: { fields: r.fields }, numRows: r.numRows, description: this.descriptions.get(`${m[1]}.${m[2]}`),
      }];
    }
    if (method === 'POST' && (m = /\/datasets\/([^/]+)\/tables\/([^/]+)\/insertAll$/.exec(path))) {
      return this.insertAll(m[1], m[2], body);
    }
    return [404, errorBody(404, 'notFound', `BigQuery double: no route for ${method} ${path}`)];
  }

  private async runLoad(job: JobState, data: string, binary?: Buffer): Promise<void> {
    const cfg = job.meta.configuration.load;
    if (cfg.sourceFormat === 'PARQUET') {
      let rows: unknown[];
      try {
        rows = await parquetRows(binary ?? Buffer.alloc(0), cfg.schema?.fields ?? null);
      } catch (e) {
        job.error = { reason: 'invalid', message: `Error while reading data, error message: ${(e as Error).message.split('\n')[0]}` };
        return;
      }
      await this.loadRows(job, rows);
      return;
    }
    if (cfg.sourceFormat !== 'NEWLINE_DELIMITED_JSON') {
      job.error = { reason: 'invalid', message: `BigQuery double: sourceFormat ${cfg.sourceFormat} is not served` };
      return;
    }
    const rows: unknown[] = [];
    const lines = data.split('\n');
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === '') continue;
      try {
        rows.push(JSON.parse(lines[i]));
      } catch {
        job.error = { reason: 'invalid', message: `Error while reading data, error message: JSON parsing error in row starting at position ${i}` };
        return;
      }
    }
    await this.loadRows(job, rows);
  }

  /** Rows of BigQuery's JSON input form into the load job's table, typed by its schema. */
  private async loadRows(job: JobState, rows: unknown[]): Promise<void> {
    const cfg = job.meta.configuration.load;
    const r = await this.engine.call('load', {
      dataset: cfg.destinationTable.datasetId, table: cfg.destinationTable.tableId, fields: cfg.schema?.fields ?? null,
      write: cfg.writeDisposition ?? 'WRITE_APPEND', create: cfg.createDisposition ?? 'CREATE_IF_NEEDED', rows,
    });
    if (!r.ok) job.error = { reason: r.reason, message: r.message };
  }

  private async runQuery(job: JobState, q: Record<string, any>): Promise<void> {
    if (q.useLegacySql === true) {
      job.error = { reason: 'invalidQuery', message: 'BigQuery double: legacy SQL is not served' };
      return;
    }
    const r = await this.engine.call('query', { sql: q.query, params: q.queryParameters ?? [] });
    if (r.ok) job.result = r;
    else job.error = { reason: r.reason, message: r.message, location: 'query' };
  }

  private jobResource(jobId: string, job: JobState): Record<string, unknown> {
    const status = job.error ? { state: 'DONE', errorResult: job.error, errors: [job.error] } : { state: 'DONE' };
    return {
      ...job.meta, kind: 'bigquery#job', id: `${PROJECT}:EU.${jobId}`,
      jobReference: { projectId: PROJECT, jobId, location: 'EU' }, status,
      ...(job.kind === 'query' && job.result ? { statistics: { query: { numDmlAffectedRows: job.result.numDmlAffectedRows } } } : {}),
    };
  }

  private queryResults(jobId: string, job: JobState): Record<string, unknown> {
    const result = job.result ?? { fields: [], rows: [], numDmlAffectedRows: '0' };
    return {
      kind: 'bigquery#getQueryResultsResponse',
      jobReference: { projectId: PROJECT, jobId, location: 'EU' },
      jobComplete: true,
      schema: { fields: result.fields },
      totalRows: String(result.rows.length),
      rows: result.rows,
      numDmlAffectedRows: result.numDmlAffectedRows,
    };
  }

  /** insertAll: rows whose insertId was seen before are dropped; one bad row fails the request (no skipInvalidRows). */
  private async insertAll(dataset: string, table: string, body: any): Promise<Reply> {
    const seen = this.insertIds.get(`${dataset}.${table}`) ?? new Set<string>();
    const fresh = (body.rows as { insertId?: string; json: unknown }[]).filter((r) => !r.insertId || !seen.has(r.insertId));
    const r = await this.engine.call('load', { dataset, table, fields: null, write: 'WRITE_APPEND', create: 'CREATE_NEVER', rows: fresh.map((x) => x.json) });
    if (!r.ok && r.reason === 'notFound') return engineError(r);
    if (!r.ok) {
      const bad = new Map<number, string>((r.rowErrors as string[]).map((e) => [Number(e.slice(0, e.indexOf(':'))), e.slice(e.indexOf(':') + 1)]));
      const insertErrors = fresh.map((_, i) => ({
        index: body.rows.indexOf(fresh[i]),
        errors: bad.has(i) ? [{ reason: 'invalid', location: '', message: bad.get(i) }] : [{ reason: 'stopped', location: '', message: '' }],
      }));
      return [200, { kind: 'bigquery#tableDataInsertAllResponse', insertErrors }];
    }
    for (const x of fresh) if (x.insertId) seen.add(x.insertId);
    this.insertIds.set(`${dataset}.${table}`, seen);
    return [200, { kind: 'bigquery#tableDataInsertAllResponse' }];
  }
}

/** A REST cell value as plain JS: arrays of {v} unwrapped, records as arrays of values. */
function restValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => restValue((x as { v: unknown }).v));
  if (v && typeof v === 'object' && 'f' in (v as object)) return (v as { f: { v: unknown }[] }).f.map((x) => restValue(x.v));
  return v ?? null;
}

function engineError(r: EngineError): Reply {
  const status = r.reason === 'notFound' ? 404 : r.reason === 'duplicate' ? 409 : 400;
  return [status, errorBody(status, r.reason, r.message)];
}

function errorBody(code: number, reason: string, message: string) {
  return { error: { code, message, errors: [{ reason, message, domain: 'global' }], status: reason } };
}

/** PARQUET's types as BigQuery types them when a load job gives no schema. */
const PARQUET_TYPES: [RegExp, ColumnType][] = [
  [/^(BIGINT|INTEGER|SMALLINT|TINYINT|HUGEINT|UBIGINT|UINTEGER)$/, 'INT64'], [/^DECIMAL/, 'NUMERIC'], [/^BOOLEAN$/, 'BOOL'],
  [/^DATE$/, 'DATE'], [/^TIMESTAMP/, 'TIMESTAMP'], [/^VARCHAR$/, 'STRING'],
];

/**
 * A PARQUET upload as rows of BigQuery's JSON input form: DuckDB reads the file and renders each
 * row as the NDJSON path would (numbers as exact decimal strings), typed by the job's schema
 * (or the file's own types), so both formats go through the same typing in the engine.
 */
async function parquetRows(bytes: Buffer, fields: { name: string; type: string }[] | null): Promise<unknown[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bq-double-parquet-'));
  const file = path.join(dir, 'upload.parquet');
  fs.writeFileSync(file, bytes);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    const from = `read_parquet('${file.replace(/'/g, "''")}')`;
    const described = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`)).getRowsJS().map(([n, t]) => [String(n), String(t)] as const);
    const columns = fields
      ? fields.map((f) => ({ name: f.name, type: fromRestType(f.type) }))
      : described.map(([name, t]) => {
          const type = PARQUET_TYPES.find(([re]) => re.test(t))?.[1];
          if (!type) throw new Error(`PARQUET column ${name} of type ${t} is not served by the double`);
          return { name, type };
        });
    const present = new Set(described.map(([n]) => n));
    const missing = columns.filter((col) => !present.has(col.name));
    // A schema column the file lacks is NULL, as BigQuery loads it (REQUIRED ones then fail in the engine).
    const sub = `(SELECT *${missing.map((col) => `, NULL AS "${col.name}"`).join('')} FROM ${from})`;
    const lines = (await c.runAndReadAll(duckdbNdjsonSelect(columns, sub))).getRowsJS();
    return lines.map(([line]) => JSON.parse(String(line)));
  } finally {
    c.closeSync();
    db.closeSync();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A multipart upload whose data part is binary: metadata (JSON) and the data's bytes. */
function parseBinaryMultipart(raw: Buffer, contentType: string): NonNullable<RecordedRequest['upload']> {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1] ?? '';
  // latin1 maps bytes 1:1 to characters, so offsets in the text are offsets in the buffer.
  const text = raw.toString('latin1');
  const parts = text.split(`--${boundary}`).filter((p) => p.trim() !== '' && p.trim() !== '--');
  const bodyOf = (p: string) => p.replace(/^\r?\n/, '').slice(p.replace(/^\r?\n/, '').search(/\r?\n\r?\n/)).replace(/^\r?\n\r?\n/, '').replace(/\r?\n$/, '');
  const metadata = JSON.parse(Buffer.from(bodyOf(parts[0]), 'latin1').toString('utf8'));
  const binary = Buffer.from(bodyOf(parts[1] ?? ''), 'latin1');
  return { metadata, data: '', bytes: binary.length, binary };
}

function parseMultipart(raw: string, contentType: string): NonNullable<RecordedRequest["upload"]> {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1] ?? '';
  const parts = raw
    .split(`--${boundary}`)
    .map((p) => p.replace(/^\r?\n/, ''))
    .filter((p) => p.trim() !== '' && p.trim() !== '--');
  const bodies = parts.map((p) => {
    const sep = p.search(/\r?\n\r?\n/);
    const after = p.slice(sep).replace(/^\r?\n\r?\n/, '');
    return after.replace(/\r?\n$/, '');
  });
  return { metadata: JSON.parse(bodies[0]), data: bodies[1] ?? '', bytes: Buffer.byteLength(bodies[1] ?? '') };
}
