/**
 * The batch benchmarks' command line (bench-batch.ts, bench-elt.ts): each measurement runs in a
 * child process of the same script (`--child KIND --table T --dir D --state S`, internal), which
 * prints it as one JSON line; the parent takes `--orders N` and `--dir DIR` and its own options.
 */
import { spawnSync } from 'node:child_process';
import { main, parseCommandLine, reportError } from '../../jobs/lib/cli';
import { UsageError } from '../../jobs/lib/errors';

type StringOptions = Record<string, { type: 'string' }>;
type Values<O extends StringOptions> = { readonly [K in keyof O | 'orders' | 'dir' | 'child' | 'table' | 'state']?: string };

/** `name`'s value as a whole number >= 1, `fallback` when not given. */
export function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1`);
  return n;
}

export function runBenchCli<const O extends StringOptions>(
  options: O,
  help: string,
  /** One measurement in this (child) process; printed as a JSON line. */
  child: (v: Values<O>) => Promise<unknown>,
  /** The benchmark itself, for `--orders` (default 1,000,000). */
  parent: (orders: number, v: Values<O>) => Promise<void>,
): void {
  main(async () => {
    try {
      const v = parseCommandLine(
        process.argv.slice(2),
        { orders: { type: 'string' }, dir: { type: 'string' }, child: { type: 'string' }, table: { type: 'string' }, state: { type: 'string' }, ...options },
        help,
      );
      if (v === 'help') return 0;
      const values = v as Values<O>;
      if (values.child !== undefined) {
        process.stdout.write(JSON.stringify(await child(values)) + '\n');
        return 0;
      }
      await parent(wholeNumber(values.orders, 'orders', 1_000_000), values);
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}

/**
 * The parent's side of `--child`: runs `script` once more as a child measuring `kind` of `table`
 * (logs quiet, as JSON; `env` on top of this process's) and returns the JSON line it printed last.
 */
export function runChild<T>(script: string, kind: string, table: string, dataDir: string, stateDir: string, env: Record<string, string> = {}): T {
  const r = spawnSync(process.execPath, [script, '--child', kind, '--table', table, '--dir', dataDir, '--state', stateDir], {
    encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...env },
  });
  if (r.status !== 0) throw new Error(`${kind} ${table} failed (exit ${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}
