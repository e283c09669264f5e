/**
 * A scripted stand-in for the BigQuery REST API, made with nock: the real @google-cloud/bigquery
 * client talks to it over (intercepted) HTTP, and the test reads back every request it made.
 *
 * It answers what the adapter uses: datasets.insert, tables.insert, tabledata.insertAll, the
 * multipart upload of a load job, jobs.insert for queries, jobs.get and jobs.getQueryResults.
 * `failNext` queues error replies for requests matching a pattern (HTTP errors or a load job that
 * ends with an errorResult).
 */
import nock from 'nock';
import { OAuth2Client } from 'google-auth-library';
import { BigQuery } from '@google-cloud/bigquery';

export const PROJECT = 'test-project';
export const BASE = 'https://bigquery.googleapis.com';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** For a multipart load upload: the job metadata and the uploaded data. */
  readonly upload?: { readonly metadata: Record<string, any>; readonly data: string };
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

export interface QueryReply {
  readonly fields: { name: string; type: string }[];
  readonly rows: (string | null)[][];
}

export class FakeBigQuery {
  readonly requests: RecordedRequest[] = [];
  private failures: Failure[] = [];
  private jobs = new Map<string, { error?: { reason: string; message: string }; kind: 'load' | 'query'; sql?: string }>();
  private queryReplies: { match: RegExp; reply: QueryReply }[] = [];
  private seq = 0;

  constructor() {
    nock.disableNetConnect();
    const handler = (method: string) =>
      function (this: nock.ReplyFnContext, uri: string, body: nock.Body): nock.ReplyFnResult {
        return self.handle(method, uri, body, this.req.headers['content-type'] as string | undefined);
      };
    const self = this;
    nock(BASE).persist().post(/.*/).query(true).reply(handler('POST'));
    nock(BASE).persist().get(/.*/).query(true).reply(handler('GET'));
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

  /** A client wired to the fake: static token, no library retries (the adapter retries). */
  client(): BigQuery {
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3600_000 });
    return new BigQuery({ projectId: PROJECT, authClient: auth, autoRetry: false, location: 'EU' } as never);
  }

  failNext(method: string, path: RegExp, status: number, reason: string, message: string, kind: 'http' | 'job' = 'http'): this {
    this.failures.push({ method, path, status, reason, message, kind });
    return this;
  }

  replyToQuery(match: RegExp, reply: QueryReply): this {
    this.queryReplies.push({ match, reply });
    return this;
  }

  find(method: string, path: RegExp): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && path.test(r.path));
  }

  /** SQL of every query job, in order. */
  queries(): string[] {
    return this.find('POST', /\/projects\/[^/]+\/jobs(\?|$)/)
      .map((r) => (r.body as any)?.configuration?.query?.query as string)
      .filter(Boolean);
  }

  done(): void {
    nock.cleanAll();
    nock.enableNetConnect();
  }

  /**
   * Removes nock's interception of http and fetch altogether (call in afterAll): jest runs the
   * test files one after another in the same process, and later suites talk to real services.
   */
  static restoreHttp(): void {
    nock.cleanAll();
    nock.enableNetConnect();
    nock.restore();
  }

  private takeFailure(method: string, path: string): Failure | undefined {
    const i = this.failures.findIndex((f) => f.method === method && f.path.test(path));
    if (i < 0) return undefined;
    return this.failures.splice(i, 1)[0];
  }

  private handle(method: string, uri: string, rawBody: nock.Body, contentType?: string): nock.ReplyFnResult {
    const path = uri.replace(/\?prettyPrint=false$/, '').replace(/[?&]prettyPrint=false/, '');
    let body: unknown = rawBody;
    let upload: RecordedRequest['upload'];
    if (typeof rawBody === 'string' && contentType?.startsWith('multipart/related')) {
      upload = parseMultipart(rawBody, contentType);
      body = upload.metadata;
    } else if (typeof rawBody === 'string' && rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = rawBody;
      }
    }
    this.requests.push({ method, path, body, upload });

    const failure = this.takeFailure(method, path);
    if (failure?.kind === 'http') {
      return [failure.status, errorBody(failure.status, failure.reason, failure.message)];
    }

    // jobs.insert (upload or query)
    if (method === 'POST' && /\/projects\/[^/]+\/jobs(\?|$)/.test(path)) {
      const meta = (upload?.metadata ?? body) as Record<string, any>;
      const jobId = meta?.jobReference?.jobId ?? `job_${++this.seq}`;
      const kind = meta?.configuration?.load ? 'load' : 'query';
      const error = failure?.kind === 'job' ? { reason: failure.reason, message: failure.message } : undefined;
      this.jobs.set(jobId, { kind, error, sql: meta?.configuration?.query?.query });
      return [200, { ...meta, jobReference: { projectId: PROJECT, jobId, location: 'EU' }, status: { state: 'RUNNING' } }];
    }
    // jobs.get
    let m = /\/projects\/[^/]+\/jobs\/([^/?]+)/.exec(path);
    if (method === 'GET' && m) {
      const job = this.jobs.get(m[1]);
      const status = job?.error
        ? { state: 'DONE', errorResult: job.error, errors: [job.error] }
        : { state: 'DONE' };
      return [200, { jobReference: { projectId: PROJECT, jobId: m[1], location: 'EU' }, status }];
    }
    // jobs.getQueryResults
    m = /\/projects\/[^/]+\/queries\/([^/?]+)/.exec(path);
    if (method === 'GET' && m) {
      const job = this.jobs.get(m[1]);
      if (job?.error) return [400, errorBody(400, job.error.reason, job.error.message)];
      const reply = this.queryReplies.find((q) => q.match.test(job?.sql ?? ''))?.reply ?? { fields: [], rows: [] };
      return [
        200,
        {
          kind: 'bigquery#getQueryResultsResponse',
          jobReference: { projectId: PROJECT, jobId: m[1], location: 'EU' },
          jobComplete: true,
          schema: { fields: reply.fields },
          totalRows: String(reply.rows.length),
          rows: reply.rows.map((r) => ({ f: r.map((v) => ({ v })) })),
        },
      ];
    }
    if (method === 'POST' && /\/datasets$/.test(path)) {
      return [200, { ...(body as object), id: `${PROJECT}:${(body as any).datasetReference.datasetId}` }];
    }
    if (method === 'POST' && /\/datasets\/[^/]+\/tables$/.test(path)) {
      return [200, body as object];
    }
    if (method === 'POST' && /\/insertAll$/.test(path)) {
      return [200, { kind: 'bigquery#tableDataInsertAllResponse' }];
    }
    return [404, errorBody(404, 'notFound', `fake BigQuery: no route for ${method} ${path}`)];
  }
}

function errorBody(code: number, reason: string, message: string) {
  return { error: { code, message, errors: [{ reason, message, domain: 'global' }], status: reason } };
}

function parseMultipart(raw: string, contentType: string): { metadata: Record<string, any>; data: string } {
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
  return { metadata: JSON.parse(bodies[0]), data: bodies[1] ?? '' };
}
