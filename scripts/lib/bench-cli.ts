/**
 * The batch benchmarks' command line (bench-batch.ts, bench-elt.ts): each measurement runs in a
 * child process of the same script (`--child KIND --table T --dir D --state S`, internal), which
 * prints it as one JSON line; the parent takes `--orders N` and `--dir DIR` and its own options.
 */
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
