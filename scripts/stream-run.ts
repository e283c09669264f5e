/**
 * One replay of the stream layer, for `npm start`: makes sure the local broker runs, replays the
 * three stream files through Kafka at full speed, consumes until every produced event is
 * accounted for (a row or a quarantined event), then stops the consumer gracefully.
 */
import { catalog } from '../jobs/catalog';
import { loadConfig } from '../jobs/lib/config';
import { quoteIdent } from '../jobs/lib/ddl';
import { logger as defaultLogger, type Logger } from '../jobs/lib/log';
import { ensureBroker } from '../jobs/lib/stream/broker';
import { loadStreamConfig, sourceOf, streamDestinations, topicFor, type StreamConfig } from '../jobs/lib/stream/config';
import { createKafka, endOffsets } from '../jobs/lib/stream/kafka';
import { StreamConsumer } from '../jobs/lib/stream/consumer';
import { replaySources } from '../jobs/lib/stream/producer';
import { openStreamSink } from '../jobs/lib/stream/open-sink';

export interface StreamRunResult {
  /** Events applied as rows in this run, per stream destination (upserts: a repeated key is one row). */
  readonly perTable: Record<string, number>;
  /** Events quarantined (and sent to the dead-letter topic) in this run, per destination. */
  readonly quarantined: Record<string, number>;
  /** Rows in each stream table (and store.vendor_product_availability) after the run (DuckDB only). */
  readonly tableRows: Record<string, number>;
  /** Events sent by the producer / invalid rows it did not send. */
  readonly produced: number;
  readonly rejected: number;
  readonly seconds: number;
}

export async function runStreamOnce(opts: {
  sourceDir: string;
  log?: Logger;
  /** Overrides of the stream settings (topic prefix, group...) - tests use their own. */
  stream?: Partial<StreamConfig>;
  timeoutMs?: number;
}): Promise<StreamRunResult> {
  const log = opts.log ?? defaultLogger;
  const t0 = Date.now();
  const cfg = loadStreamConfig(undefined, opts.stream ?? {});
  await ensureBroker(cfg.brokers.join(','));
  const kafka = createKafka(cfg);
  const tables = streamDestinations(catalog);
  const order = ['product_sold_vendor', 'shoppingcart', 'carts_has_products'];
  const sources = tables.map((d) => sourceOf(catalog, d)).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  const etl = loadConfig();
  // DuckDB: the stream layer's own file, held from start to the end of this run (closed below,
  // so dbt can copy it afterwards).
  const { sink, warehouse, streamFile } = await openStreamSink(etl, cfg, catalog);
  const consumer = new StreamConsumer({ catalog, cfg, tables, sink, kafka });
  try {
    // Start consuming first (stored offsets = where the last run stopped), then replay.
    await consumer.start();
    const replay = await replaySources({ cfg, sourceDir: opts.sourceDir, sources, rate: null, kafka, progress: false });
    log.info('stream: replayed the stream files', { events: replay.sent, invalidRowsNotSent: replay.rejected });
    const ends = await endOffsets(kafka, sources.map((s) => topicFor(cfg, s.name)));
    await consumer.waitCaughtUp(ends, opts.timeoutMs ?? 600000);
    await consumer.stop();
    const perTable: Record<string, number> = {};
    const quarantined: Record<string, number> = {};
    for (const [t, s] of Object.entries(consumer.stats)) {
      perTable[t] = s.rows;
      quarantined[t] = s.quarantined;
    }
    const tableRows: Record<string, number> = {};
    if (streamFile) {
      await streamFile.withConnection(async (c) => {
        for (const name of [...tables.map((d) => d.name), 'store.vendor_product_availability']) {
          const [ds, t] = name.split('.');
          const r = await c.runAndReadAll(`SELECT COUNT(*) AS n FROM ${quoteIdent(ds)}.${quoteIdent(t)}`);
          tableRows[name] = Number(r.getRowObjectsJS()[0].n);
        }
      });
    }
    const accounted = Object.values(perTable).reduce((a, b) => a + b, 0) + Object.values(quarantined).reduce((a, b) => a + b, 0);
    log.info('stream: caught up', { produced: replay.sent, accounted, perTable, quarantined });
    return { perTable, quarantined, tableRows, produced: replay.sent, rejected: replay.rejected, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await consumer.stop();
    await warehouse.close();
  }
}
