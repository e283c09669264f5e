/**
 * Vendor availability for a sink whose warehouse is not DuckDB (BigQuery): a local state store.
 *
 * One consumer process keeps an in-memory DuckDB with the inputs of availability (the three
 * stream tables and `dim_products`) and the availability table, loaded from the warehouse when
 * it takes the role and then kept current with every event of the consumed topics. The rules are the DuckDB sink's
 * own, run unchanged on it (availability.ts: pending products, bounded drain steps, transition
 * events through the outbox); only their result goes to the warehouse: after the events are
 * published, the rows that changed are upserted in ONE MERGE per drain. So a commit costs the
 * warehouse no extra DML job, a drain costs one (at most about one per second under load), and
 * the latency of a transition is a local DuckDB step plus a publish.
 *
 * Order after a kill: events are published BEFORE their rows are merged, so a kill in between
 * leaves the warehouse's old rows; the next start loads them, recomputes every product and
 * publishes the transition again (at least once, as on DuckDB). A merge never runs while events
 * wait unpublished.
 *
 * With several consumer processes, one of them keeps the store: the availability role
 * (availability-role.ts) feeds it every partition of the consumed topics. It is loaded from ONE
 * snapshot of the warehouse (the tables and the group's stored offsets, read by one query), so
 * it resumes each partition where the rows it loaded end.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { LIST, VARCHAR, listValue } from '@duckdb/node-api';
import type { ColumnType, DestinationTable } from '../catalog-types';
import { DUCKDB_TYPES, quoteIdent } from '../ddl';
import { logger } from '../log';
import { sqlString } from '../sql/quote';
import { withTransaction } from '../sql/statements';
import { duckdbNdjsonSelect } from '../warehouse/bigquery/schema';
import { AVAILABILITY_TABLE } from '../warehouse/duckdb/stream-ddl';
import { applyStreamWritesDuckDb, type DuckStreamEvent } from '../warehouse/duckdb/stream-write';
import { DuckDbWarehouse } from '../warehouse/duckdb/warehouse';
import type { StreamOffset } from '../warehouse/types';
import { drainAvailability, markAvailabilityPending } from './availability';
import { availabilityTopic } from './config';
import { flushOutbox } from './outbox';
import type { SinkContext } from './sink';
import { firstFresh, sortEvents, type DecodedSlice } from './slices';

/** Longest the availability drain is put off while slices follow one another (as on DuckDB). */
const DRAIN_MAX_DELAY_MS = 1000;
/** The warehouse rows the store last merged (or loaded): what the warehouse holds. */
const SYNCED_TABLE = '_availability_synced';

const AVAILABILITY_COLUMNS: readonly { name: string; type: ColumnType }[] = [
  { name: 'vendor_id', type: 'STRING' }, { name: 'product_id', type: 'STRING' }, { name: 'option_id', type: 'STRING' },
  { name: 'stock', type: 'INT64' }, { name: 'held_in_open_carts', type: 'INT64' }, { name: 'available', type: 'INT64' },
  { name: 'sold_out', type: 'BOOL' }, { name: 'updated_at', type: 'TIMESTAMP' },
];

/** What the store needs of the warehouse. */
export interface AvailabilityWarehouse {
  datasetOf(dest: DestinationTable | string): string;
  /**
   * Every row of the tables as JSON text (INT64/NUMERIC as literal digits, TIMESTAMP ISO-8601
   * UTC) and the group's stored offsets, in one snapshot.
   */
  readSnapshotJson(
    dataset: string,
    tables: readonly string[],
    consumerGroup: string,
    topics: readonly string[],
  ): Promise<{ rows: Map<string, string[]>; offsets: StreamOffset[] }>;
  /** Upserts availability rows (JSON objects) by vendor, product and option. */
  mergeAvailability(dataset: string, rowsJson: readonly string[]): Promise<void>;
  readOffsets(consumerGroup: string, topics: readonly string[]): Promise<StreamOffset[]>;
}

const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

export class AvailabilityStore {
  private readonly local: DuckDbWarehouse;
  /** Next offset per partition already in the store: its own fence (it may lag the warehouse's). */
  private readonly stored = new Map<string, bigint>();
  private drainOwed = false;
  private drainedAt = 0;
  /** Slices and drains wait for load(): a sink used without start() (tests) keeps no availability. */
  private loaded = false;

  constructor(
    private readonly wh: AvailabilityWarehouse,
    private readonly ctx: SinkContext,
  ) {
    this.local = new DuckDbWarehouse({
      path: ':memory:',
      lockRetries: 0,
      catalog: ctx.catalog,
      hold: true,
      destinations: (d) => d.mode === 'stream' || d.name === `${d.dataset}.dim_products`,
    });
  }

  private get ds(): string {
    return quoteIdent(this.ctx.dataset);
  }

  /** Next offset per "topic:partition" already in the store. */
  get positions(): ReadonlyMap<string, bigint> {
    return this.stored;
  }

  /**
   * Loads the warehouse's tables (the stream tables, dim_products, availability) and the group's
   * offsets from one snapshot, then recomputes every product: transitions a kill left
   * unpublished go out, and their rows follow.
   */
  async load(): Promise<void> {
    const t0 = Date.now();
    await this.local.ensureSchema();
    const inputs = this.ctx.catalog.destinations.filter((d) => d.dataset === this.ctx.dataset && (d.mode === 'stream' || d.table === 'dim_products'));
    const tables = [...inputs.map((d) => ({ table: d.table, columns: d.columns })), { table: AVAILABILITY_TABLE, columns: AVAILABILITY_COLUMNS }];
    const snapshot = await this.wh.readSnapshotJson(
      this.wh.datasetOf(this.ctx.dataset),
      tables.map((t) => t.table),
      this.ctx.cfg.group,
      this.ctx.topics,
    );
    let rows = 0;
    await this.local.withConnection(async (c) => {
      for (const t of tables) rows += await this.copyIn(c, t.table, t.columns, snapshot.rows.get(t.table) ?? []);
      await c.run(`CREATE OR REPLACE TABLE ${this.ds}.${SYNCED_TABLE} AS SELECT * FROM ${this.ds}.${AVAILABILITY_TABLE}`);
      await withTransaction(c, (tx) => markAvailabilityPending(tx, this.ctx.dataset, { all: true }));
    });
    for (const o of snapshot.offsets) this.stored.set(tpKey(o.topic, o.partition), BigInt(o.offset));
    this.loaded = true;
    logger.info('stream: availability state store loaded', { rows, ms: Date.now() - t0 });
    await this.drain();
  }

  /** One table's rows (JSON text) into the store, typed by its columns. Returns the rows. */
  private async copyIn(c: DuckDBConnection, table: string, columns: readonly { name: string; type: ColumnType }[], lines: string[]): Promise<number> {
    if (lines.length === 0) return 0;
    const cols = columns.map((col) => `CAST(j->>${sqlString(col.name)} AS ${DUCKDB_TYPES[col.type]})`).join(', ');
    await c.run(
      `INSERT INTO ${this.ds}.${quoteIdent(table)} (${columns.map((col) => quoteIdent(col.name)).join(', ')})
       SELECT ${cols} FROM (SELECT CAST(unnest($1::VARCHAR[]) AS JSON) AS j)`,
      [listValue(lines)],
      [LIST(VARCHAR)],
    );
    return lines.length;
  }

  /**
   * A slice of the consumed topics (every partition, fed by the availability role) goes into
   * the store, fenced by the store's own offsets, with the products it may have moved marked pending.
   */
  async apply(runId: string, slice: DecodedSlice<DuckStreamEvent>): Promise<void> {
    if (!this.loaded) return;
    const k = tpKey(slice.topic, slice.partition);
    const first = firstFresh(slice.offsets, this.stored.get(k));
    if (first === slice.offsets.length) return;
    const b = sortEvents(runId, slice, first);
    await this.local.withConnection((c) =>
      applyStreamWritesDuckDb(
        c,
        // Quarantined events stay in the warehouse: availability never reads them.
        [{ destination: slice.dest, source: slice.source, consumerGroup: this.ctx.cfg.group, events: b.events, quarantine: [], offsets: b.offsets }],
        (tx, staged) => markAvailabilityPending(tx, this.ctx.dataset, { staged }),
      ),
    );
    this.stored.set(k, BigInt(b.offsets[0].offset));
  }

  /** After a slice: drain now, or (more slices queued) at most once per DRAIN_MAX_DELAY_MS. */
  async committed(more: boolean): Promise<void> {
    if (!more || Date.now() - this.drainedAt >= DRAIN_MAX_DELAY_MS) await this.drain();
    else this.drainOwed = true;
  }

  /** The drain commits under load put off. */
  async flush(): Promise<void> {
    if (this.drainOwed) await this.drain();
  }

  /**
   * Recomputes the pending products (DuckDB's rules, bounded steps, events to the outbox),
   * publishes the outbox, then merges the changed rows into the warehouse. Never throws: what
   * failed stays pending (unmerged rows, unpublished events) for the next drain.
   */
  async drain(): Promise<void> {
    if (!this.loaded) return;
    this.drainOwed = false;
    this.drainedAt = Date.now();
    const { cfg, producer, onCommit } = this.ctx;
    await this.local
      .withConnection(async (c) => {
        await drainAvailability(c, this.ctx.dataset, availabilityTopic(cfg), cfg.availabilityStepRows, (s) => {
          logger.debug('stream: availability step', s);
          onCommit?.({ kind: 'availability', ms: s.ms, events: s.events });
        });
        const r = await flushOutbox(c, this.ctx.dataset, producer);
        // Unpublished events: the warehouse keeps the old rows until they went out.
        if (r.pending) this.drainOwed = true;
        else await this.sync(c);
      })
      .catch((e) => {
        this.drainOwed = true;
        logger.error('stream: availability drain failed; retried after the next commit', { error: (e as Error).message });
      });
  }

  /** The rows that differ from what the warehouse holds, in one MERGE; then remembered as held. */
  private async sync(c: DuckDBConnection): Promise<void> {
    const changed = `(SELECT * FROM ${this.ds}.${AVAILABILITY_TABLE} EXCEPT SELECT * FROM ${this.ds}.${SYNCED_TABLE})`;
    await c.run(`CREATE OR REPLACE TEMP TABLE _avail_changed AS ${changed}`);
    const lines = (await c.runAndReadAll(duckdbNdjsonSelect(AVAILABILITY_COLUMNS, '_avail_changed'))).getRowsJS().map((r) => String(r[0]));
    if (lines.length > 0) {
      const t0 = Date.now();
      await this.wh.mergeAvailability(this.wh.datasetOf(this.ctx.dataset), lines);
      await withTransaction(c, async (tx) => {
        await tx.run(
          `DELETE FROM ${this.ds}.${SYNCED_TABLE} s USING _avail_changed n
           WHERE s.vendor_id = n.vendor_id AND s.product_id = n.product_id AND s.option_id = n.option_id`,
        );
        await tx.run(`INSERT INTO ${this.ds}.${SYNCED_TABLE} SELECT * FROM _avail_changed`);
      });
      logger.debug('stream: availability merged into the warehouse', { rows: lines.length, ms: Date.now() - t0 });
    }
    await c.run('DROP TABLE IF EXISTS _avail_changed');
  }

  async close(): Promise<void> {
    await this.local.close();
  }
}
