/**
 * The stream file's bookkeeping tables, created by DuckDbWarehouse.ensureSchema in a file with
 * stream tables: stored offsets, the outbox (and its parked messages), vendor availability, its
 * pending products and the products parked after a failed step. The stream layer writes them (stream/outbox.ts, stream/availability.ts);
 * their shape lives here, with the warehouse that creates them.
 */

export const AVAILABILITY_TABLE = 'vendor_product_availability';

export const AVAILABILITY_COLUMNS_DDL =
  'vendor_id VARCHAR NOT NULL, product_id VARCHAR NOT NULL, option_id VARCHAR NOT NULL, stock BIGINT NOT NULL, ' +
  'held_in_open_carts BIGINT NOT NULL, available BIGINT NOT NULL, sold_out BOOLEAN NOT NULL, ' +
  'updated_at TIMESTAMP NOT NULL, PRIMARY KEY (vendor_id, product_id, option_id)';

/** Outbox: events to publish after the transaction that produced them commits, in `seq` order. */
export const OUTBOX_COLUMNS_DDL =
  'id VARCHAR PRIMARY KEY, topic VARCHAR NOT NULL, msg_key VARCHAR, msg_value VARCHAR NOT NULL, ' +
  'headers VARCHAR, created_at TIMESTAMP NOT NULL, seq BIGINT';

/** Messages the broker refused for good, with the reason. */
export const OUTBOX_PARKED_DDL = `${OUTBOX_COLUMNS_DDL.replace(' PRIMARY KEY', '')}, reason VARCHAR NOT NULL, parked_at TIMESTAMP NOT NULL`;

/** Products whose availability must be recomputed (written with the batch, drained in bounded steps). */
export const AVAILABILITY_PENDING_DDL = 'product_id VARCHAR PRIMARY KEY';

/**
 * Products whose availability step failed on their own (e.g. held quantities that overflow):
 * left out of the drain with the reason, retried one at a time when touched again or at start.
 */
export const AVAILABILITY_PARKED_DDL = 'product_id VARCHAR PRIMARY KEY, reason VARCHAR NOT NULL, parked_at TIMESTAMP NOT NULL';

/** Bookkeeping tables the stream layer needs in each dataset. */
export const STREAM_BOOKKEEPING_DDL = (dataset: string): string[] => [
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_offsets (consumer_group VARCHAR NOT NULL, topic VARCHAR NOT NULL, ` +
    `partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMP NOT NULL, ` +
    `PRIMARY KEY (consumer_group, topic, partition))`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_outbox (${OUTBOX_COLUMNS_DDL})`,
  // Files made before the outbox had its publish order.
  `ALTER TABLE ${dataset}._stream_outbox ADD COLUMN IF NOT EXISTS seq BIGINT`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._stream_outbox_parked (${OUTBOX_PARKED_DDL})`,
  `CREATE TABLE IF NOT EXISTS ${dataset}.${AVAILABILITY_TABLE} (${AVAILABILITY_COLUMNS_DDL})`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._availability_pending (${AVAILABILITY_PENDING_DDL})`,
  `CREATE TABLE IF NOT EXISTS ${dataset}._availability_parked (${AVAILABILITY_PARKED_DDL})`,
];
