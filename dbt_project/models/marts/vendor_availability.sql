-- Vendor availability mart: per vendor and product option it sells, the stock, the units held in
-- open carts and what can still be bought. Vendor-product links come from the stream layer
-- (fact_products_sold_vendor); options, stock and names from the batch dimensions. Where the
-- stream layer maintains vendor_product_availability for the key, its latest row wins
-- (availability_source = 'stream'); otherwise it is computed with the stream layer's rule
-- (jobs/lib/stream/availability.ts): stock = dim_products.stock_quantity (null as 0),
-- available = greatest(stock - held_in_open_carts, 0), sold_out = stock - held <= 0.
with links as (
    select distinct vendor_id, product_id
    from {{ ref('vendor_products_stg') }}
),

batch_keys as (
    select links.vendor_id, options.product_id, options.option_id
    from links
    inner join {{ ref('product_options_stg') }} as options
        on options.product_id = links.product_id
    -- options only, as in the stream layer: a product without options has no stock of its own
    where options.option_id is not null
),

stream_rows as (
    select
        *,
        row_number() over (partition by vendor_id, product_id, option_id order by updated_at desc) as recency
    from {{ ref('availability_stg') }}
),

stream_latest as (
    select * from stream_rows where recency = 1
),

keys as (
    select vendor_id, product_id, option_id from batch_keys
    union distinct
    select vendor_id, product_id, option_id from stream_latest
),

carts as (
    select product_id, option_id, sum(quantity) as units_in_open_carts, max(updated_at) as updated_at
    from {{ ref('open_cart_items_stg') }}
    group by product_id, option_id
),

joined as (
    select
        keys.vendor_id,
        vendors.vendor_name,
        keys.product_id,
        options.product_name,
        keys.option_id,
        options.option_name,
        stream.vendor_id is not null as from_stream,
        stream.stock as stream_stock,
        stream.held_in_open_carts as stream_in_carts,
        stream.available as stream_available,
        stream.sold_out as stream_sold_out,
        stream.updated_at as stream_updated_at,
        coalesce(options.stock_quantity, 0) as batch_stock,
        coalesce(carts.units_in_open_carts, 0) as batch_in_carts,
        carts.updated_at as carts_updated_at
    from keys
    left join {{ ref('vendors_stg') }} as vendors
        on vendors.vendor_id = keys.vendor_id
    left join {{ ref('product_options_stg') }} as options
        on options.product_id = keys.product_id
        and options.option_id is not distinct from keys.option_id
    left join stream_latest as stream
        on stream.vendor_id = keys.vendor_id
        and stream.product_id = keys.product_id
        and stream.option_id is not distinct from keys.option_id
    left join carts
        on carts.product_id = keys.product_id
        and carts.option_id is not distinct from keys.option_id
)

select
    vendor_id,
    vendor_name,
    product_id,
    product_name,
    option_id,
    option_name,
    case when from_stream then stream_stock else batch_stock end as stock,
    case when from_stream then stream_in_carts else batch_in_carts end as held_in_open_carts,
    case when from_stream then stream_available else greatest(batch_stock - batch_in_carts, 0) end as available,
    case when from_stream then stream_sold_out else batch_stock - batch_in_carts <= 0 end as sold_out,
    case when from_stream then stream_updated_at else carts_updated_at end as updated_at,
    case when from_stream then 'stream' else 'batch' end as availability_source
from joined
