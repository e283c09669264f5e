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
 * (same transaction as the state change), so they are published after the commit.
 *
 * A stream micro-batch records which products it touched (`_availability_pending`) and
 * recomputes the first of them, up to a step's rows, in its own transaction; what is left runs
 * right after, in steps bounded by rows, so a vendor listing thousands of options never makes
 * one long transaction.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { LIST, VARCHAR, listValue } from '@duckdb/node-api';
import { quoteIdent } from '../ddl';
import { logger } from '../log';
import { maskCardRuns } from '../pii';
import { sqlString, utcTimestamp } from '../sql/quote';
import { withTransaction, type SqlRunner } from '../sql/statements';
import { AVAILABILITY_TABLE } from '../warehouse/duckdb/stream-ddl';
import type { StagedTables } from '../warehouse/duckdb/stream-write';

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

/**
 * What changed: every product (a repair at start), or a commit's staged rows per stream table
 * (warehouse/duckdb/stream-write.ts: temporary tables, one row per key): the products of its cart items and
 * vendor listings, and the products in the carts whose status it changed.
 */
export type AvailabilityScope = { readonly all: true } | { readonly staged: StagedTables };

/**
 * Records the products whose availability `scope` may have moved in `_availability_pending`
 * (inside the caller's transaction: the batch and its pending work commit together). One
 * statement, whatever the size of the scope.
 */
export async function markAvailabilityPending(c: SqlRunner, dataset: string, scope: AvailabilityScope): Promise<void> {
  const ds = quoteIdent(dataset);
  if ('all' in scope) {
    await c.run(
      `INSERT INTO ${ds}._availability_pending SELECT DISTINCT product_id FROM ${ds}.fact_products_sold_vendor
       WHERE product_id IS NOT NULL ON CONFLICT DO NOTHING`,
    );
    return;
  }
  const items = scope.staged.get('fact_carts_has_products');
  const listings = scope.staged.get('fact_products_sold_vendor');
  const carts = scope.staged.get('fact_shoppingcarts');
  const touched = [
    ...(items ? [`SELECT product_id FROM ${items}`] : []),
    ...(listings ? [`SELECT product_id FROM ${listings}`] : []),
    ...(carts ? [`SELECT product_id FROM ${ds}.fact_carts_has_products WHERE shopping_cart_id IN (SELECT shopping_cart_id FROM ${carts})`] : []),
  ];
  if (touched.length === 0) return;
  await c.run(
    `INSERT INTO ${ds}._availability_pending
     SELECT DISTINCT product_id FROM (${touched.join(' UNION ALL ')}) WHERE product_id IS NOT NULL
       -- Only products a vendor sells have availability rows (a later listing marks its own product).
       AND product_id IN (SELECT product_id FROM ${ds}.fact_products_sold_vendor)
     ON CONFLICT DO NOTHING`,
  );
}

/**
 * Drains `_availability_pending` in steps of at most `maxRows` availability rows (a product with
 * more options than that is one step of its own): each step recomputes its products, upserts the
 * changed rows, queues the transition events in the outbox and removes the products from the
 * pending table in ONE short transaction. A kill between steps leaves the rest pending: no change
 * is lost and, because each step compares with the stored state, no event is queued twice.
 *
 * Data never stops the drain: a step that fails is retried one product at a time, and a product
 * that fails alone is parked (`_availability_parked`, with the reason) while the rest move. A
 * parked product is left out of the steps; when touched again (or at start, where every product
 * is pending) it is retried alone: it leaves the parked table once its step succeeds.
 */
export async function drainAvailability(
  c: DuckDBConnection,
  dataset: string,
  broadcastTopic: string,
  maxRows: number,
  onStep?: (s: { products: number; events: number; ms: number }) => void,
): Promise<number> {
  const ds = quoteIdent(dataset);
  let events = 0;
  // Almost always none is parked: then the steps skip the parked table (a statement costs a few ms).
  let anyParked = Number((await c.runAndReadAll(`SELECT count(*) FROM ${ds}._availability_parked`)).getRows()[0][0]) > 0;
  const run = async (products: readonly string[]): Promise<void> => {
    const t0 = Date.now();
    const n = await availabilityStep(c, dataset, products, broadcastTopic, anyParked);
    events += n;
    onStep?.({ products: products.length, events: n, ms: Date.now() - t0 });
  };
  const alone = async (product: string): Promise<void> => {
    try {
      await run([product]);
    } catch (e) {
      await parkProduct(c, dataset, product, (e as Error).message);
      anyParked = true;
    }
  };
  for (;;) {
    // The next products in order until their availability rows reach maxRows (at least one product).
    const step = (await c.runAndReadAll(stepProductsSql(ds, maxRows, anyParked))).getRowObjectsJS().map((r) => String(r.product_id));
    if (step.length === 0) break;
    try {
      await run(step);
    } catch {
      // Which product failed is not known: each alone, the failing ones parked.
      for (const product of step) await alone(product);
    }
  }
  if (!anyParked) return events;
  // Parked products touched again: retried alone (a later event, or a fix, may have cured them).
  const parked = (
    await c.runAndReadAll(
      `SELECT product_id FROM ${ds}._availability_pending
       WHERE product_id IN (SELECT product_id FROM ${ds}._availability_parked) ORDER BY product_id`,
    )
  ).getRowObjectsJS().map((r) => String(r.product_id));
  for (const product of parked) await alone(product);
  return events;
}

/**
 * The next pending products in order until their availability rows reach `maxRows` (at least
 * one product); parked ones left out when `skipParked`.
 */
export function stepProductsSql(ds: string, maxRows: number, skipParked: boolean): string {
  const max = Math.floor(maxRows);
  // Options and vendors counted for the candidates only (correlated counts aggregated whole tables).
  return `WITH q AS (
      SELECT product_id FROM ${ds}._availability_pending
      ${skipParked ? `WHERE product_id NOT IN (SELECT product_id FROM ${ds}._availability_parked)` : ''}
      ORDER BY product_id LIMIT ${max}
    ), d AS (
      SELECT product_id, COUNT(*) AS n FROM ${ds}.dim_products
      WHERE option_id IS NOT NULL AND product_id IN (SELECT product_id FROM q) GROUP BY product_id
    ), v AS (
      SELECT product_id, COUNT(*) AS n FROM ${ds}.fact_products_sold_vendor
      WHERE product_id IN (SELECT product_id FROM q) GROUP BY product_id
    ), p AS (
      SELECT q.product_id, COALESCE(d.n, 0) * GREATEST(COALESCE(v.n, 0), 1) AS n
      FROM q LEFT JOIN d ON d.product_id = q.product_id LEFT JOIN v ON v.product_id = q.product_id
    ), c AS (SELECT product_id, n, SUM(n) OVER (ORDER BY product_id) - n AS before FROM p)
    SELECT product_id FROM c WHERE before + n <= ${max} OR before = 0 ORDER BY product_id`;
}

/** One step: recomputes `products`, queues their events, takes them off the pending and parked tables; one transaction. */
function availabilityStep(c: DuckDBConnection, dataset: string, products: readonly string[], broadcastTopic: string, anyParked: boolean): Promise<number> {
  const ds = quoteIdent(dataset);
  return withTransaction(c, async (tx) => {
    const queued = await refreshAvailability(c, dataset, products, broadcastTopic, new Date());
    for (const table of anyParked ? ['_availability_pending', '_availability_parked'] : ['_availability_pending']) {
      await tx.run(`DELETE FROM ${ds}.${table} WHERE list_contains($1::VARCHAR[], product_id)`, [listValue([...products])], [LIST(VARCHAR)]);
    }
    return queued;
  });
}

/**
 * Parks a product whose step failed alone: the reason recorded (card-like digit runs masked, as
 * in every reason), the product off the pending table, so the drain goes on without it.
 */
async function parkProduct(c: DuckDBConnection, dataset: string, product: string, error: string): Promise<void> {
  const ds = quoteIdent(dataset);
  const reason = maskCardRuns(error);
  await withTransaction(c, async (tx) => {
    await tx.run(
      `INSERT INTO ${ds}._availability_parked VALUES ($1, $2, $3::TIMESTAMP)
       ON CONFLICT (product_id) DO UPDATE SET reason = excluded.reason, parked_at = excluded.parked_at`,
      [product, reason, utcTimestamp(new Date())],
    );
    await tx.run(`DELETE FROM ${ds}._availability_pending WHERE product_id = $1`, [product]);
  });
  logger.warn('stream: availability of a product parked after its step failed; the others go on', { product_id: product, reason });
}

/** Recomputes `productIds` in the caller's transaction (refreshStatements); returns the events queued. */
export async function refreshAvailability(
  c: DuckDBConnection,
  dataset: string,
  productIds: readonly string[],
  broadcastTopic: string,
  now: Date,
): Promise<number> {
  if (productIds.length === 0) return 0;
  const [create, upsert, queue, drop] = refreshStatements(dataset, 'SELECT DISTINCT unnest($1::VARCHAR[]) AS product_id', broadcastTopic, now, randomUUID());
  await c.run(create, [listValue([...productIds])], [LIST(VARCHAR)]);
  await c.run(upsert);
  const r = await c.run(queue);
  await c.run(drop);
  return Number(r.rowsChanged);
}

/**
 * The statements of a recomputation (refreshAvailability) of the products `affected` selects
 * (one product_id column), values as literals: the new rows, their upsert, the transitions into
 * the outbox (set-based; the id is unique per event: `stepId` is random, and the transaction that
 * computes a transition is the only one that ever queues it), the scratch table dropped.
 */
export function refreshStatements(dataset: string, affected: string, broadcastTopic: string, now: Date, stepId: string): [string, string, string, string] {
  const ds = quoteIdent(dataset);
  const carts = `${ds}.fact_carts_has_products`;
  const ts = `${sqlString(utcTimestamp(now))}::TIMESTAMP`;
  // `held`: the touched products' cart items first, then only their carts' status; joining the
  // whole cart-status table cost 1.2-1.6x more (ad-hoc script: 17.6 -> 14.8 ms at 140,000 cart
  // items, 126 -> 78 ms at 1,000,000; docs/benchmarks.md). It still scans the item table.
  return [
    `CREATE OR REPLACE TEMP TABLE _avail_new AS
     WITH affected AS (${affected}),
     items AS MATERIALIZED (
       SELECT shopping_cart_id, product_id, option_id, quantity FROM ${carts}
       WHERE product_id IN (SELECT product_id FROM affected)
     ),
     held AS (
       SELECT ci.product_id, ci.option_id, SUM(COALESCE(ci.quantity, 0)) AS held
       FROM items ci
       LEFT JOIN (SELECT shopping_cart_id, status FROM ${ds}.fact_shoppingcarts
                  WHERE shopping_cart_id IN (SELECT shopping_cart_id FROM items)) sc ON sc.shopping_cart_id = ci.shopping_cart_id
       WHERE COALESCE(sc.status, TRUE)
       GROUP BY ci.product_id, ci.option_id
     ),
     rows AS (
       SELECT v.vendor_id, p.product_id, p.option_id,
              CAST(COALESCE(p.stock_quantity, 0) AS BIGINT) AS stock,
              CAST(COALESCE(h.held, 0) AS BIGINT) AS held_in_open_carts
       FROM ${ds}.fact_products_sold_vendor v
       JOIN ${ds}.dim_products p ON p.product_id = v.product_id AND p.option_id IS NOT NULL
       LEFT JOIN held h ON h.product_id = p.product_id AND h.option_id = p.option_id
       WHERE v.product_id IN (SELECT product_id FROM affected)
     )
     SELECT r.*, GREATEST(r.stock - r.held_in_open_carts, 0) AS available,
            (r.stock - r.held_in_open_carts) <= 0 AS sold_out,
            o.sold_out AS old_sold_out, o.vendor_id IS NULL AS is_new
     FROM rows r
     LEFT JOIN ${ds}.${AVAILABILITY_TABLE} o
       ON o.vendor_id = r.vendor_id AND o.product_id = r.product_id AND o.option_id = r.option_id
     WHERE o.vendor_id IS NULL OR o.stock <> r.stock OR o.held_in_open_carts <> r.held_in_open_carts`,
    `INSERT INTO ${ds}.${AVAILABILITY_TABLE}
       SELECT vendor_id, product_id, option_id, stock, held_in_open_carts, available, sold_out, ${ts} FROM _avail_new
     ON CONFLICT (vendor_id, product_id, option_id) DO UPDATE SET
       stock = excluded.stock, held_in_open_carts = excluded.held_in_open_carts, available = excluded.available,
       sold_out = excluded.sold_out, updated_at = excluded.updated_at`,
    `INSERT INTO ${ds}._stream_outbox (id, topic, msg_key, msg_value, headers, created_at, seq)
     SELECT 'avail:' || ${sqlString(stepId)} || ':' || vendor_id || ':' || product_id || ':' || option_id, ${sqlString(broadcastTopic)}, vendor_id,
            json_object('event', CASE WHEN sold_out THEN 'sold_out' ELSE 'back_in_stock' END,
                        'vendor_id', vendor_id, 'product_id', product_id, 'option_id', option_id,
                        'stock', stock, 'held_in_open_carts', held_in_open_carts, 'available', available,
                        'sold_out', sold_out, 'at', ${sqlString(now.toISOString())})::VARCHAR,
            NULL, ${ts},
            (SELECT COALESCE(MAX(seq), 0) FROM ${ds}._stream_outbox) + row_number() OVER (ORDER BY vendor_id, product_id, option_id)
     FROM _avail_new
     WHERE (is_new AND sold_out) OR (NOT is_new AND old_sold_out <> sold_out)`,
    'DROP TABLE IF EXISTS _avail_new',
  ];
}
