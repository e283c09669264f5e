/**
 * The client's HTTP layer, teeny-request, loads node-fetch 3 (an ES module) with a dynamic
 * `import()`, which jest's CommonJS sandbox refuses unless node runs with
 * --experimental-vm-modules. This loads teeny-request's own compiled source unchanged except for
 * that one line, which is pointed at Node's built-in fetch through a small node-fetch-compatible
 * adapter (Node streams in and out). Everything above it - the BigQuery client, auth, multipart
 * uploads, retries - is the real library; nock intercepts the built-in fetch like any request.
 *
 * Used as: jest.mock('teeny-request', () => require('./teeny-request-shim').loadTeenyRequest());
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';

type AnyFn = (...args: any[]) => any;

async function readAll(s: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(parts).toString('utf8');
}

/** node-fetch's surface as teeny-request uses it: Node-stream bodies, json(), text(), headers. */
async function nodeFetchCompat(uri: string, options: Record<string, any> = {}): Promise<unknown> {
  const { agent: _agent, timeout: _timeout, compress: _compress, ...init } = options;
  if (init.body instanceof Readable || (init.body && typeof init.body.pipe === 'function')) {
    init.body = Readable.toWeb(init.body as Readable);
    init.duplex = 'half';
  }
  const res = await fetch(uri, init);
  const body = res.body ? Readable.fromWeb(res.body as any) : Readable.from([]);
  return {
    status: res.status,
    statusText: res.statusText,
    url: res.url || uri,
    headers: res.headers,
    body,
    text: () => readAll(body),
    json: async () => JSON.parse(await readAll(body)),
  };
}

export function loadTeenyRequest(): unknown {
  const dir = path.dirname(require.resolve('teeny-request/build/src/index.js'));
  const file = path.join(dir, 'index.js');
  const original = fs.readFileSync(file, 'utf8');
  const marker = "import('node-fetch').then(({ default: fetch }) => fetch(...args))";
  if (!original.includes(marker)) throw new Error(`teeny-request changed: '${marker}' not found in ${file}`);
  const source = original.replace(marker, '__nodeFetchCompat(...args)');
  const mod = { exports: {} as Record<string, unknown> };
  const req = (id: string) => require(id.startsWith('.') ? path.join(dir, id) : id);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const fn = new Function('exports', 'require', 'module', '__filename', '__dirname', '__nodeFetchCompat', source) as AnyFn;
  fn(mod.exports, req, mod, file, dir, nodeFetchCompat);
  return mod.exports;
}

/**
 * The same problem one layer down: gaxios (google-auth-library's HTTP client, used for the OAuth
 * token exchange of a key file) also loads node-fetch with `import()`. gaxios has an official
 * option for this, `fetchImplementation`: every instance gets Node's built-in fetch as default.
 *
 * Used as: jest.mock('gaxios', () => require('./teeny-request-shim').gaxiosWithNativeFetch());
 */
export function gaxiosWithNativeFetch(): unknown {
  const actual = jest.requireActual('gaxios');
  class Gaxios extends actual.Gaxios {
    constructor(defaults: Record<string, unknown> = {}) {
      super({ fetchImplementation: fetch, ...defaults });
    }
  }
  const instance = new Gaxios();
  return { ...actual, Gaxios, instance, request: (opts: unknown) => instance.request(opts) };
}
