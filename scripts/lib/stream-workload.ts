/**
 * The stream benchmark's workload (bench-stream.ts): the events of the three topics, the
 * dim_products they refer to, and producing them at a paced rate. Deterministic: the same
 * arguments give the same events.
 */
import type { Message, Producer } from 'kafkajs';
import { topicFor, type StreamConfig } from '../../jobs/lib/stream/config';
import { sendPaced } from '../../jobs/lib/stream/producer';
import type { DuckDbWarehouse } from '../../jobs/lib/warehouse/duckdb/warehouse';

export type WorkloadTopic = 'carts_has_products' | 'shoppingcart' | 'product_sold_vendor';

/**
 * The workload: 70% cart items, 25% cart status changes, 5% vendor listings; deterministic.
 * Listed products are 1 mod 20 and a cart item's never is, unless `listedShare` (percent of the
 * cart items) puts the product of the latest listing in the cart: then the availability of
 * listed products moves with the carts, as in a shop where what is carted is what vendors sell.
 */
export function workload(n: number, products: number, offset = 0, listedShare = 0): { topic: WorkloadTopic; m: Message }[] {
  const out: { topic: WorkloadTopic; m: Message }[] = [];
  const productAt = (i: number) => 10000 + ((i * 7919) % products);
  for (let j = 0; j < n; j++) {
    const i = j + offset;
    const k = i % 20;
    const cart = String(1000000 + Math.floor(i / 4));
    if (k < 14) {
      // The latest listing's product (index 19 mod 20 before this one), for listedShare% of the items.
      const product = (i * 37) % 100 < listedShare ? productAt(Math.max(19, i - k - 1)) : productAt(i);
      const option = String(product * 10 + (i % optionsOf(product)));
      out.push({ topic: 'carts_has_products', m: { key: cart, value: JSON.stringify({ shopping_cart_id: cart, product_id: String(product), option_id: option, quantity: String(1 + (i % 3)) }) } });
    } else if (k < 19) {
      out.push({ topic: 'shoppingcart', m: { key: cart, value: JSON.stringify({ shopping_cart_id: cart, status: i % 3 === 0 ? '0' : '1' }) } });
    } else {
      const vendor = String(5000 + (i % 300));
      out.push({ topic: 'product_sold_vendor', m: { key: vendor, value: JSON.stringify({ vendor_id: vendor, product_id: String(productAt(i)) }) } });
    }
  }
  return out;
}
const optionsOf = (product: number) => 1 + (product % 4);

/** dim_products of `products` products with 1-4 options each and stock 0-50; returns the options. */
export async function seedProducts(wh: DuckDbWarehouse, products: number): Promise<number> {
  await wh.ensureSchema();
  return wh.withConnection(async (c) => {
    await c.run(`INSERT INTO store.dim_products (product_id, option_id, stock_quantity)
      SELECT (10000 + p)::VARCHAR, ((10000 + p) * 10 + o)::VARCHAR, ((p * 31 + o * 17) % 51)
      FROM range(${products}) t(p), range(4) u(o) WHERE o < 1 + ((10000 + p) % 4)`);
    return Number((await c.runAndReadAll('SELECT COUNT(*) AS n FROM store.dim_products')).getRowObjectsJS()[0].n);
  });
}

/** Produces `events` at `rate` events/s (null: as fast as it goes); returns the seconds it took. */
export async function produceWorkload(
  producer: Producer,
  cfg: StreamConfig,
  events: ReturnType<typeof workload>,
  rate: number | null,
): Promise<number> {
  const t0 = Date.now();
  const clock = { start: t0, sent: 0 };
  // Interleaved in slices so the three topics advance together at the paced rate.
  const slice = rate === null ? 5000 : Math.max(1, Math.floor(rate / 10));
  for (let i = 0; i < events.length; i += slice) {
    const part = events.slice(i, i + slice);
    for (const topic of ['product_sold_vendor', 'shoppingcart', 'carts_has_products'] as const) {
      const msgs = part.filter((e) => e.topic === topic).map((e) => e.m);
      if (msgs.length > 0) await sendPaced(producer, topicFor(cfg, topic), msgs, rate, clock);
    }
  }
  return (Date.now() - t0) / 1000;
}
