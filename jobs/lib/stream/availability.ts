/**
 * Real-time vendor availability: `store.vendor_product_availability`, one row per
 * (vendor, product, option), kept current inside the same DuckDB transaction as every stream
 * micro-batch that can change it, plus sold-out / back-in-stock events for the broadcast topic.
 *
 * The rule:
 *  - stock      = `store.dim_products.stock_quantity` of the (product, option): the batch layer's
 *                 load of products_has_options.quantity (NULL counts as 0). Options only: a
 *                 dim_products row without option_id has no stock of its own and no row here.
 *  - open cart  = a cart whose latest `store.fact_shoppingcarts.status` is true (source status 1);
 *                 a cart whose status event has not arrived yet counts as open (cart items are
 *                 held from the moment they are seen; a vendor sees sold-out early rather than
 *                 oversell). A closed cart (status 0) holds nothing.
 *  - held       = SUM(quantity) of that option in open carts (`store.fact_carts_has_products`).
 *  - available  = GREATEST(stock - held, 0); sold_out = stock - held <= 0.
 *  - a row exists for every product a vendor sells (`store.fact_products_sold_vendor`) x each
 *    option of it in dim_products.
 * A broadcast event is emitted when an existing row's sold_out flips (sold_out / back_in_stock)
 * and when a row first appears already sold out. Events go through the `_stream_outbox` table
 * (same transaction), so they are published at least once, after the commit.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { BOOLEAN, LIST, VARCHAR, listValue } from '@duckdb/node-api';
import { quoteIdent } from '../ddl';

export const AVAILABILITY_TABLE = 'vendor_product_availability';

export const AVAILABILITY_COLUMNS_DDL =
  'vendor_id VARCHAR NOT NULL, product_id VARCHAR NOT NULL, option_id VARCHAR NOT NULL, stock BIGINT NOT NULL, ' +
  'held_in_open_carts BIGINT NOT NULL, available BIGINT NOT NULL, sold_out BOOLEAN NOT NULL, ' +
  'updated_at TIMESTAMP NOT NULL, PRIMARY KEY (vendor_id, product_id, option_id)';

/** Outbox: events to publish after the transaction that produced them commits. */
export const OUTBOX_COLUMNS_DDL =
  'id VARCHAR PRIMARY KEY, topic VARCHAR NOT NULL, msg_key VARCHAR, msg_value VARCHAR NOT NULL, ' +
  'headers VARCHAR, created_at TIMESTAMP NOT NULL';

export interface AvailabilityEvent {
  readonly event: 'sold_out' | 'back_in_stock';
  readonly vendor_id: string;
  readonly product_id: string;
  readonly option_id: string;
  readonly stock: number;
  readonly held_in_open_carts: number;
  readonly available: number;
  readonly sold_out: boolean;
  readonly at: string;
}

/** What changed in a micro-batch: products and carts whose availability may have moved. */
export interface AvailabilityScope {
  readonly all?: boolean;
  readonly productIds?: readonly string[];
  readonly cartIds?: readonly string[];
}

const strList = (xs: readonly string[]) => listValue([...new Set(xs)]);

/** 'YYYY-MM-DD HH:MM:SS.mmm' in UTC, for TIMESTAMP columns. */
export const utcTimestamp = (d: Date): string => d.toISOString().replace('T', ' ').replace('Z', '');

/**
 * Recomputes the availability rows in `scope` (inside the caller's transaction), upserts the
 * changed ones and appends transition events to the outbox. Returns the number of events.
 */
export async function refreshAvailability(
  c: DuckDBConnection,
  dataset: string,
  scope: AvailabilityScope,
  broadcastTopic: string,
  eventIdPrefix: string,
  now: Date,
): Promise<number> {
  const ds = quoteIdent(dataset);
  const carts = `${ds}.fact_carts_has_products`;
  const all = Boolean(scope.all);
  const products = scope.productIds ?? [];
  const cartIds = scope.cartIds ?? [];
  if (!all && products.length === 0 && cartIds.length === 0) return 0;
  await c.run(
    `CREATE OR REPLACE TEMP TABLE _avail_new AS
     WITH affected AS (
       SELECT DISTINCT product_id FROM (
         SELECT unnest($1::VARCHAR[]) AS product_id
         UNION ALL
         SELECT product_id FROM ${carts} WHERE shopping_cart_id IN (SELECT unnest($2::VARCHAR[]))
       )
     ),
     held AS (
       SELECT ci.product_id, ci.option_id, SUM(COALESCE(ci.quantity, 0)) AS held
       FROM ${carts} ci
       LEFT JOIN ${ds}.fact_shoppingcarts sc ON sc.shopping_cart_id = ci.shopping_cart_id
       WHERE COALESCE(sc.status, TRUE) AND ($3 OR ci.product_id IN (SELECT product_id FROM affected))
       GROUP BY ci.product_id, ci.option_id
     ),
     rows AS (
       SELECT v.vendor_id, p.product_id, p.option_id,
              CAST(COALESCE(p.stock_quantity, 0) AS BIGINT) AS stock,
              CAST(COALESCE(h.held, 0) AS BIGINT) AS held_in_open_carts
       FROM ${ds}.fact_products_sold_vendor v
       JOIN ${ds}.dim_products p ON p.product_id = v.product_id AND p.option_id IS NOT NULL
       LEFT JOIN held h ON h.product_id = p.product_id AND h.option_id = p.option_id
       WHERE $3 OR v.product_id IN (SELECT product_id FROM affected)
     )
     SELECT r.*, GREATEST(r.stock - r.held_in_open_carts, 0) AS available,
            (r.stock - r.held_in_open_carts) <= 0 AS sold_out,
            o.sold_out AS old_sold_out, o.vendor_id IS NULL AS is_new
     FROM rows r
     LEFT JOIN ${ds}.${AVAILABILITY_TABLE} o
       ON o.vendor_id = r.vendor_id AND o.product_id = r.product_id AND o.option_id = r.option_id
     WHERE o.vendor_id IS NULL OR o.stock <> r.stock OR o.held_in_open_carts <> r.held_in_open_carts`,
    [strList(products), strList(cartIds), all],
    [LIST(VARCHAR), LIST(VARCHAR), BOOLEAN],
  );
  const ts = utcTimestamp(now);
  await c.run(
    `INSERT INTO ${ds}.${AVAILABILITY_TABLE}
       SELECT vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out, $1::TIMESTAMP FROM _avail_new
     ON CONFLICT (vendor_id, product_id, option_id) DO UPDATE SET
       stock = excluded.stock, held_in_open_carts = excluded.held_in_open_carts, available = excluded.available,
       sold_out = excluded.sold_out, updated_at = excluded.updated_at`,
    [ts],
  );
  const flips = (
    await c.runAndReadAll(
      `SELECT vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out FROM _avail_new
       WHERE (is_new AND sold_out) OR (NOT is_new AND old_sold_out <> sold_out)
       ORDER BY vendor_id, product_id, option_id`,
    )
  ).getRowObjectsJS();
  let n = 0;
  for (const f of flips) {
    const ev: AvailabilityEvent = {
      event: f.sold_out ? 'sold_out' : 'back_in_stock',
      vendor_id: String(f.vendor_id),
      product_id: String(f.product_id),
      option_id: String(f.option_id),
      stock: Number(f.stock),
      held_in_open_carts: Number(f.held_in_open_carts),
      available: Number(f.available),
      sold_out: Boolean(f.sold_out),
      at: now.toISOString(),
    };
    await c.run(
      `INSERT INTO ${ds}._stream_outbox VALUES ($1, $2, $3, $4, NULL, $5::TIMESTAMP) ON CONFLICT (id) DO NOTHING`,
      [`${eventIdPrefix}:${ev.vendor_id}:${ev.product_id}:${ev.option_id}`, broadcastTopic, ev.vendor_id, JSON.stringify(ev), ts],
    );
    n++;
  }
  await c.run('DROP TABLE IF EXISTS _avail_new');
  return n;
}
