#!/usr/bin/env node
/**
 * The stream consumer: node <CONSUMER_NODE_FLAGS> dist/jobs/stream-consumer.js [--table NAME]...
 * [--until-caught-up]
 * Runs until SIGTERM/SIGINT (graceful: the batch in hand is finished, the group left).
 */
import { catalog } from './catalog';
import { ENV_HELP, main, parseCommandLine, reportError } from './lib/cli';
import { loadConfig } from './lib/config';
import { envHelp } from './lib/config/render';
import { logger } from './lib/log';
import { ensureBroker } from './lib/stream/broker';
import { CONSUMER_NODE_FLAGS, loadStreamConfig, resolveStreamTables, streamDestinations, topicFor } from './lib/stream/config';
import { createKafka, endOffsets } from './lib/stream/kafka';
import { StreamConsumer } from './lib/stream/consumer';
import { openStreamSink } from './lib/stream/open-sink';

const HELP = `Usage: node ${CONSUMER_NODE_FLAGS.join(' ')} dist/jobs/stream-consumer.js [--table NAME]... [--until-caught-up] [--help]
       npm run consume -- [options]

Consumes the stream topics into the warehouse, exactly once (rows and consumed offsets are
committed in one transaction; a restart resumes from the stored offsets). Tables (default: all):
${streamDestinations(catalog)
  .map((d) => `  ${d.name.padEnd(34)} topic $TOPIC_NAME_${d.sources[0]}`)
  .join('\n')}
Also keeps store.vendor_product_availability current and publishes sold-out / back-in-stock
events to $TOPIC_NAME_vendor_availability; poison events go to $TOPIC_NAME_dead_letter and the
quarantine (store._quarantine).

Options:
  --table NAME        consume only this table (repeatable; fact_shoppingcarts, store.fact_...,
                      or the source name shoppingcart)
  --until-caught-up   stop once every partition is consumed up to its end at start time
  --no-start-broker   do not start the local broker when it does not answer
  -h, --help          show this help

${envHelp(['stream'], 'Stream environment')}

${ENV_HELP}

DuckDB: this process holds $STREAM_DUCKDB_PATH open from start to stop. A second consumer on the
same file waits as a standby (one log line) and joins the group only when it holds the file, i.e.
after the first exited or died. Stock for availability is mirrored from $DUCKDB_PATH's
store.dim_products whenever that file changed.

A broker that does not answer at start is waited for (a log line per attempt, backoff up to 30 s).
If the process exits anyway (exit 1), its supervisor restarts it (compose: restart: unless-stopped);
a restart resumes from the offsets stored in the warehouse.

Exit codes: 0 ok (stopped by a signal or caught up), 1 unexpected error, 3 warehouse error, 64 usage.`;

async function run(argv = process.argv.slice(2)): Promise<number> {
  const values = parseCommandLine(
    argv,
    { table: { type: 'string', multiple: true }, 'until-caught-up': { type: 'boolean' }, 'no-start-broker': { type: 'boolean' } },
    HELP,
  );
  if (values === 'help') return 0;
  const tables = resolveStreamTables(catalog, values.table);
  const cfg = loadStreamConfig();
  if (!values['no-start-broker']) await ensureBroker(cfg.brokers.join(','));
  const etl = loadConfig();
  // DuckDB: the stream layer's own file, held by this process until it exits.
  const { sink, warehouse } = await openStreamSink(etl, cfg, catalog);
  const consumer = new StreamConsumer({ catalog, cfg, tables, sink });
  let signalled = false;
  const done = new Promise<void>((resolve) => {
    const onSignal = (sig: string) => {
      if (signalled) {
        logger.warn('stream: second signal, exiting now');
        process.exit(130);
      }
      signalled = true;
      logger.info('stream: stopping', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
  // A standby (another process holds the stream file) waits inside start(); a signal stops it.
  const started = consumer.start();
  const first = await Promise.race([started.then(() => 'started' as const), done.then(() => 'signal' as const)]);
  if (first === 'signal') {
    await consumer.stop();
    await started.catch(() => undefined);
    await warehouse.close();
    return 0;
  }
  if (values['until-caught-up']) {
    const ends = await endOffsets(createKafka(cfg), tables.map((d) => topicFor(cfg, d.sources[0])));
    await Promise.race([consumer.waitCaughtUp(ends, 24 * 3600 * 1000), done]);
  } else {
    await Promise.race([
      done,
      new Promise<void>((_, reject) => {
        const t = setInterval(() => {
          if (consumer.failure) {
            clearInterval(t);
            reject(consumer.failure);
          }
        }, 500);
        void done.then(() => clearInterval(t));
      }),
    ]);
  }
  await consumer.stop();
  await warehouse.close();
  const drift = consumer.drift();
  process.stdout.write(
    Object.entries(consumer.stats)
      .map(([t, s]) => `${t}: ${s.rows} rows, ${s.quarantined} quarantined, ${s.batches} batches` +
        (drift[t] ?? []).map((f) => `\n  drift ${f.kind} ${JSON.stringify(f.field)}: ${f.rows} events ${f.action}`).join(''))
      .join('\n') + '\n',
  );
  return 0;
}

main(() => run().catch((e) => reportError(e)).then((code) => {
  // kafkajs keeps timers alive for a moment after disconnect; leave promptly.
  setTimeout(() => process.exit(code), 50).unref();
  return code;
}));
