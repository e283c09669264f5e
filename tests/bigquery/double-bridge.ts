/**
 * The double for a job in another process (elt-sigkill.test.ts kills a real one): the double
 * lives in the test process on nock, so the child intercepts its own BigQuery requests with nock
 * too, exactly as they come out of the real client, and hands each one over local HTTP to the
 * double's handler, which answers as it would in-process (recorded, cut off, failed alike).
 *
 *   test process:  server = await double.serve()                (serveDouble below)
 *   child:         node --require <hook> dist/jobs/<table>.js   (hook: bridgeToDouble(port))
 *
 * Kept free of the double's own imports: the child loads only nock and this file.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import nock from 'nock';

export const BASE = 'https://bigquery.googleapis.com';

/** One intercepted request as nock hands it over (a binary body as hex) and the answer. */
export interface Forwarded {
  readonly method: string;
  readonly uri: string;
  readonly body: unknown;
  readonly contentType?: string;
}
export type Reply = [number, unknown];

/** An HTTP server on 127.0.0.1 answering forwarded requests with `handle`. */
export async function serveDouble(handle: (f: Forwarded) => Promise<Reply>): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      handle(JSON.parse(Buffer.concat(parts).toString('utf8')) as Forwarded)
        .then((reply) => res.end(JSON.stringify(reply)))
        .catch((e) => res.end(JSON.stringify([500, { error: { code: 500, message: String(e) } }])));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function forward(port: number, f: Forwarded): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as Reply));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(f));
  });
}

/** In the child (a --require hook): BigQuery's requests go to the double at `port`; tokens are faked here. */
export function bridgeToDouble(port: number): void {
  nock.disableNetConnect();
  nock.enableNetConnect(`127.0.0.1:${port}`);
  for (const method of ['POST', 'GET', 'DELETE'] as const) {
    const scope = nock(BASE).persist();
    const route = method === 'POST' ? scope.post(/.*/) : method === 'GET' ? scope.get(/.*/) : scope.delete(/.*/);
    route.query(true).reply(async function (this: nock.ReplyFnContext, uri: string, body: nock.Body) {
      const contentType = this.req.headers['content-type'] as string | undefined;
      return (await forward(port, { method, uri, body, contentType })) as nock.ReplyFnResult;
    });
  }
  nock('https://oauth2.googleapis.com').persist().post('/token')
    .reply(200, { access_token: 'fake-sa-token', expires_in: 3600, token_type: 'Bearer' });
}
