#!/usr/bin/env node
/**
 * Replays the stream source files through Kafka: npm run produce -- [--rate N|unlimited]
 * [--table NAME]... [--source-dir DIR]. See --help.
 */
import { catalog } from '../jobs/catalog';
import { ENV_HELP, main, parseCommandLine } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { UsageError } from '../jobs/lib/errors';
import { ensureBroker } from '../jobs/lib/stream/broker';
import { loadStreamConfig, resolveStreamTables, sourceOf } from '../jobs/lib/stream/config';
import { replaySources } from '../jobs/lib/stream/producer';

export const DEFAULT_RATE = 20;

const HELP = `Usage: npm run produce -- [--rate N|unlimited] [--table NAME]... [--source-dir DIR] [--help]

Replays carts_has_products.txt, shoppingcart.txt and product_sold_vendor.txt as JSON events
(one per valid row, validated against the catalog schema; invalid rows are reported, not sent)
to $TOPIC_NAME_<source>, keyed by the entity id (the first key column).

Options:
  --rate N|unlimited  events per second over all files (default: ${DEFAULT_RATE}, a live shop's pace)
  --table NAME        only this stream table or source (repeatable; default: all three)
  --source-dir DIR    read source files from DIR (overrides ETL_SOURCE_DIR)
  --no-start-broker   do not start the local broker when it does not answer
  -h, --help          show this help

Stream environment: BOOTSTRAP_SERVER (localhost:9092), TOPIC_NAME (store), STREAM_PARTITIONS (3)
${ENV_HELP}`;

async function run(argv = process.argv.slice(2)): Promise<number> {
  const values = parseCommandLine(
    argv,
    {
      rate: { type: 'string' },
      table: { type: 'string', multiple: true },
      'source-dir': { type: 'string' },
      'no-start-broker': { type: 'boolean' },
    },
    HELP,
  );
  if (values === 'help') return 0;
  const rateText = values.rate ?? String(DEFAULT_RATE);
  const rate = rateText === 'unlimited' || rateText === '0' ? null : Number(rateText);
  if (rate !== null && !(rate > 0)) throw new UsageError(`--rate must be a positive number or 'unlimited', got '${rateText}'`);
  const tables = resolveStreamTables(catalog, values.table);
  const cfg = loadStreamConfig();
  if (!values['no-start-broker']) await ensureBroker(cfg.brokers.join(','));
  const sourceDir = loadConfig(undefined, values['source-dir'] ? { sourceDir: values['source-dir'] } : {}).sourceDir;
  // Carts reference vendors' products and carts: send the vendor mapping and carts first.
  const order = ['product_sold_vendor', 'shoppingcart', 'carts_has_products'];
  const sources = tables.map((d) => sourceOf(catalog, d)).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const r = await replaySources({ cfg, sourceDir, sources, rate });
  for (const [name, s] of Object.entries(r.perSource)) {
    process.stdout.write(`${name}: ${s.sent} events -> ${s.topic}${s.rejected ? `, ${s.rejected} invalid rows not sent` : ''}\n`);
  }
  process.stdout.write(`${r.sent} events in ${r.seconds.toFixed(1)} s (${Math.round(r.sent / Math.max(r.seconds, 0.001))} events/s)\n`);
  return 0;
}

main(() => run().then((code) => {
  setTimeout(() => process.exit(code), 50).unref();
  return code;
}));
