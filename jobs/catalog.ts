/**
 * The catalog: every source file and every destination table of the store's warehouse.
 *
 * This is the single source of truth. Validation schemas (lib/schema.ts), warehouse DDL
 * (lib/ddl.ts), Airflow DAGs (scripts/make-dags.ts) and dbt sources are derived from it.
 * Adding a destination table = one entry in `destinations` + its transform in jobs/transforms/.
 */
import {
  type Catalog,
  type DestinationColumn,
  type DestinationTable,
  type SourceColumn,
  type SourceTable,
} from './lib/catalog-types';
import { assertCatalogConsistent, contractOf, withContract } from './lib/catalog-check';

/** Identifiers: digits, at most 20 (any unsigned 64-bit number; the store's longest has 10). */
const id = (name: string): SourceColumn => ({ name, type: 'id', rules: { maxLength: 20 } });
const str = (name: string): SourceColumn => ({ name, type: 'string' });
const int = (name: string, min: number, max: number): SourceColumn => ({ name, type: 'int', rules: { min, max } });
/** Units in one order or cart line (the store's largest is 23). */
const lineQuantity = (name: string) => int(name, 1, 999_999);
/** Money and rates: never negative, under a billion (the store's largest price is 900). */
const money = (name: string): SourceColumn => ({ name, type: 'decimal', rules: { min: 0, max: 999_999_999.9999 } });
/** Card numbers are PII: only their last four digits are ever written. */
const card = (name: string): SourceColumn => ({ name, type: 'card', pii: 'mask_last4' });

const col = (
  name: string,
  type: DestinationColumn['type'],
  description: string,
  nullable = true,
): DestinationColumn => ({ name, type, nullable, description });
const keyCol = (name: string, description: string): DestinationColumn =>
  col(name, 'STRING', description, false);

const sources: SourceTable[] = [
  {
    name: 'order',
    file: 'order.txt',
    delimiter: '\t',
    description: 'One row per order: totals, dates, shipping and delivery status.',
    columns: [
      id('order_id'), int('total_item', 1, 999_999_999), money('shipping_fee'), money('tax'), money('total_cost'),
      { name: 'order_date', type: 'date' }, { name: 'delivery_date', type: 'date' },
      str('ship_name'), str('ship_address'), str('tracking_number'),
      { name: 'delivery_status', type: 'bool01' },
    ],
    key: ['order_id'],
  },
  {
    name: 'orders_placed_user',
    file: 'orders_placed_user.txt',
    delimiter: '\t',
    description: 'Which user placed each order.',
    columns: [id('user_id'), id('order_id')],
    key: ['order_id'],
    foreignKeys: [{ columns: ['order_id'], references: { source: 'order', columns: ['order_id'] } }],
  },
  {
    name: 'orders_paid_creditcard',
    file: 'orders_paid_creditcard.txt',
    delimiter: ',',
    description: 'Which card paid each order (the only comma-separated source).',
    columns: [card('credit_card_number'), id('order_id')],
    key: ['order_id'],
    foreignKeys: [{ columns: ['order_id'], references: { source: 'order', columns: ['order_id'] } }],
  },
  {
    name: 'orders_has_products',
    file: 'orders_has_products.txt',
    delimiter: '\t',
    description: 'Order lines: product option and quantity.',
    columns: [id('order_id'), id('product_id'), id('option_id'), lineQuantity('quantity')],
    key: ['order_id', 'product_id', 'option_id'],
    foreignKeys: [
      {
        columns: ['product_id', 'option_id'],
        references: { source: 'products_has_options', columns: ['product_id', 'option_id'] },
      },
    ],
  },
  {
    name: 'products',
    file: 'products.txt',
    delimiter: '\t',
    description: 'Product names and descriptions.',
    columns: [id('product_id'), str('product_name'), str('descriptions')],
    key: ['product_id'],
  },
  {
    name: 'products_belong_category',
    file: 'products_belong_category.txt',
    delimiter: '\t',
    description: "Each product's category (one per product; repeats are quarantined).",
    columns: [id('product_id'), id('category_id')],
    key: ['product_id'],
    foreignKeys: [
      { columns: ['product_id'], references: { source: 'products', columns: ['product_id'] } },
      { columns: ['category_id'], references: { source: 'category', columns: ['category_id'] } },
    ],
  },
  {
    name: 'category',
    file: 'category.txt',
    delimiter: '\t',
    description: 'Category names.',
    columns: [id('category_id'), str('category_name')],
    key: ['category_id'],
  },
  {
    name: 'option',
    file: 'option.txt',
    delimiter: '\t',
    description: 'Product option names (a model, size or capacity).',
    columns: [id('option_id'), str('option_name')],
    key: ['option_id'],
  },
  {
    name: 'products_has_options',
    file: 'products_has_options.txt',
    delimiter: '\t',
    description: 'Options of each product with stock quantity, price, sale flag and specs.',
    columns: [
      id('product_id'), id('option_id'), int('quantity', 0, 999_999_999), money('price'),
      { name: 'on_sale', type: 'bool01' }, str('specs'),
    ],
    key: ['product_id', 'option_id'],
    foreignKeys: [
      { columns: ['product_id'], references: { source: 'products', columns: ['product_id'] } },
      { columns: ['option_id'], references: { source: 'option', columns: ['option_id'] } },
    ],
  },
  {
    name: 'user',
    file: 'user.txt',
    delimiter: '\t',
    description: 'Store users. The password column is PII: read, never staged.',
    columns: [
      id('user_id'), str('username'), { name: 'password', type: 'string', pii: 'drop' },
      str('full_name'), str('address'), str('email'), str('phone'),
    ],
    key: ['user_id'],
  },
  {
    name: 'user_has_creditcard',
    file: 'user_has_creditcard.txt',
    delimiter: '\t',
    description: "Each user's card (one per user; further cards are quarantined as duplicates).",
    columns: [id('user_id'), card('credit_card_number')],
    key: ['user_id'],
    foreignKeys: [{ columns: ['user_id'], references: { source: 'user', columns: ['user_id'] } }],
  },
  {
    name: 'vendor',
    file: 'vendor.txt',
    delimiter: '\t',
    description: 'Vendors selling on the store.',
    columns: [id('vendor_id'), str('vendor_name'), str('vendor_phone'), str('vendor_email')],
    key: ['vendor_id'],
  },
  {
    name: 'shoppingcart',
    file: 'shoppingcart.txt',
    delimiter: '\t',
    description: 'Shopping carts; status 1 = open (still shopping), 0 = closed.',
    columns: [id('shopping_cart_id'), { name: 'status', type: 'bool01' }],
    key: ['shopping_cart_id'],
  },
  {
    name: 'carts_has_products',
    file: 'carts_has_products.txt',
    delimiter: '\t',
    description: 'Product options held in each cart, with quantity.',
    columns: [id('shopping_cart_id'), id('product_id'), id('option_id'), lineQuantity('quantity')],
    key: ['shopping_cart_id', 'product_id', 'option_id'],
  },
  {
    name: 'product_sold_vendor',
    file: 'product_sold_vendor.txt',
    delimiter: '\t',
    description: 'Which vendor sells which product.',
    columns: [id('vendor_id'), id('product_id')],
    key: ['vendor_id', 'product_id'],
  },
];

const updatedAt = col('updated_at', 'TIMESTAMP', 'When the stream last wrote this row (UTC).', false);

export const catalog: Catalog = assertCatalogConsistent({
  sources,
  // Retry delay 1 min: the jobs are short and idempotent, so a try lost with its worker reruns within 2 minutes (docs/production.md).
  dagDefaults: { schedule: '@daily', startDate: '2024-01-01', retries: 2, retryDelayMinutes: 1 },
  destinations: ([
    {
      name: 'store.fact_orders',
      dataset: 'store',
      table: 'fact_orders',
      mode: 'batch',
      transform: 'fact_orders',
      description: 'One row per order, with the user who placed it and the (masked) card that paid it.',
      sources: ['order', 'orders_placed_user', 'orders_paid_creditcard'],
      key: ['order_id'],
      columns: [
        keyCol('order_id', 'Order identifier.'),
        col('user_id', 'STRING', 'User who placed the order.'),
        col('credit_card_masked', 'STRING', 'Paying card, all but the last four digits masked.'),
        col('total_item', 'INT64', 'Number of items in the order.'),
        col('shipping_fee', 'NUMERIC', 'Shipping fee.'),
        col('tax', 'NUMERIC', 'Tax rate applied.'),
        col('total_cost', 'NUMERIC', 'Total cost of the order.'),
        col('order_date', 'DATE', 'Date the order was placed.'),
        col('delivery_date', 'DATE', 'Date the order was (or is to be) delivered.'),
        col('ship_name', 'STRING', 'Recipient name.'),
        col('ship_address', 'STRING', 'Shipping address.'),
        col('tracking_number', 'STRING', 'Carrier tracking number.'),
        col('is_delivered', 'BOOL', 'True when delivery_status was 1.'),
      ],
      dag: { schedule: '@hourly' },
    },
    {
      name: 'store.fact_order_details',
      dataset: 'store',
      table: 'fact_order_details',
      mode: 'batch',
      transform: 'fact_order_details',
      description: 'Order lines priced from the option price list: raw_cost = price x quantity.',
      sources: ['orders_has_products', 'products_has_options'],
      key: ['order_id', 'product_id', 'option_id'],
      derived: [
        {
          column: 'raw_cost',
          source: { source: 'orders_has_products', column: 'quantity' },
          via: { source: 'products_has_options', column: 'price' },
        },
      ],
      columns: [
        keyCol('order_id', 'Order identifier.'),
        keyCol('product_id', 'Product identifier.'),
        keyCol('option_id', 'Option identifier.'),
        col('quantity', 'INT64', 'Units ordered.'),
        col('price', 'NUMERIC', 'Unit price of the option.'),
        col('raw_cost', 'NUMERIC', 'price x quantity, before shipping and tax.'),
      ],
      dag: { schedule: '@hourly' },
    },
    {
      name: 'store.dim_products',
      dataset: 'store',
      table: 'dim_products',
      mode: 'batch',
      transform: 'dim_products',
      description: 'One row per product option, with category, stock quantity, price and specs.',
      sources: ['products', 'products_belong_category', 'category', 'products_has_options', 'option'],
      key: ['product_id', 'option_id'],
      columns: [
        keyCol('product_id', 'Product identifier.'),
        col('product_name', 'STRING', 'Product name.'),
        col('descriptions', 'STRING', 'Product description.'),
        col('category_id', 'STRING', 'Category identifier.'),
        col('category_name', 'STRING', 'Category name.'),
        col('option_id', 'STRING', 'Option identifier (null for a product without options).'),
        col('option_name', 'STRING', 'Option name.'),
        col('stock_quantity', 'INT64', 'Units in stock for this option.'),
        col('price', 'NUMERIC', 'Unit price of this option.'),
        col('on_sale', 'BOOL', 'Whether the option is on sale.'),
        col('specs', 'STRING', 'Technical specification of the option.'),
      ],
    },
    {
      name: 'store.dim_users',
      dataset: 'store',
      table: 'dim_users',
      mode: 'batch',
      transform: 'dim_users',
      description: 'Store users with their masked card. Passwords never reach the warehouse.',
      sources: ['user', 'user_has_creditcard'],
      key: ['user_id'],
      columns: [
        keyCol('user_id', 'User identifier.'),
        col('username', 'STRING', 'Login name.'),
        col('full_name', 'STRING', 'Full name.'),
        col('address', 'STRING', 'Postal address.'),
        col('email', 'STRING', 'E-mail address.'),
        col('phone', 'STRING', 'Phone number.'),
        col('credit_card_masked', 'STRING', 'Card on file, all but the last four digits masked.'),
      ],
    },
    {
      name: 'store.dim_vendors',
      dataset: 'store',
      table: 'dim_vendors',
      mode: 'batch',
      transform: 'dim_vendors',
      description: 'Vendors selling on the store.',
      sources: ['vendor'],
      key: ['vendor_id'],
      columns: [
        keyCol('vendor_id', 'Vendor identifier.'),
        col('vendor_name', 'STRING', 'Vendor name.'),
        col('vendor_phone', 'STRING', 'Vendor phone.'),
        col('vendor_email', 'STRING', 'Vendor e-mail.'),
      ],
    },
    {
      name: 'store.fact_carts_has_products',
      dataset: 'store',
      table: 'fact_carts_has_products',
      mode: 'stream',
      description: 'Product options currently held in carts, kept current from Kafka.',
      sources: ['carts_has_products'],
      key: ['shopping_cart_id', 'product_id', 'option_id'],
      columns: [
        keyCol('shopping_cart_id', 'Cart identifier.'),
        keyCol('product_id', 'Product identifier.'),
        keyCol('option_id', 'Option identifier.'),
        col('quantity', 'INT64', 'Units held in the cart.'),
        updatedAt,
      ],
    },
    {
      name: 'store.fact_shoppingcarts',
      dataset: 'store',
      table: 'fact_shoppingcarts',
      mode: 'stream',
      description: 'Shopping carts and whether they are open, kept current from Kafka.',
      sources: ['shoppingcart'],
      key: ['shopping_cart_id'],
      columns: [
        keyCol('shopping_cart_id', 'Cart identifier.'),
        col('status', 'BOOL', 'True while the cart is open (source status 1).'),
        updatedAt,
      ],
    },
    {
      name: 'store.fact_products_sold_vendor',
      dataset: 'store',
      table: 'fact_products_sold_vendor',
      mode: 'stream',
      description: 'Which vendor sells which product, kept current from Kafka.',
      sources: ['product_sold_vendor'],
      key: ['vendor_id', 'product_id'],
      columns: [
        keyCol('vendor_id', 'Vendor identifier.'),
        keyCol('product_id', 'Product identifier.'),
        updatedAt,
      ],
    },
  ] satisfies DestinationTable[]).map((d: DestinationTable) => withContract(d, contractOf(d))),
});
