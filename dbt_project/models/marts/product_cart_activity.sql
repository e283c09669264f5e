-- Lambda serving model: one row per product option of the batch catalogue (dim_products), with
-- batch sales (fact_order_details), live cart activity (stream: open carts) and its latest
-- availability. Availability comes from the stream layer's vendor_product_availability when it
-- has a row for the option (availability_source = 'stream'); otherwise it is computed from the
-- batch with the stream layer's rule: available = greatest(stock - units in open carts, 0),
-- sold_out = stock - units in open carts <= 0, null stock as 0 (availability_source = 'batch').
with options as (
    select * from {{ ref('product_options_stg') }}
),

sold as (
    select product_id, option_id, count(distinct order_id) as orders, sum(quantity) as units_sold
    from {{ ref('order_lines_stg') }}
    group by product_id, option_id
),

carts as (
    select
        product_id,
        option_id,
        count(distinct shopping_cart_id) as open_carts,
        sum(quantity) as units_in_open_carts,
        max(updated_at) as last_cart_activity_at
    from {{ ref('open_cart_items_stg') }}
    group by product_id, option_id
),

latest_availability as (
    select
        product_id,
        option_id,
        available,
        sold_out,
        updated_at,
        row_number() over (partition by product_id, option_id order by updated_at desc, vendor_id) as recency
    from {{ ref('availability_stg') }}
),

joined as (
    select
        options.product_id,
        options.option_id,
        options.product_name,
        options.option_name,
        options.category_name,
        options.price,
        options.stock_quantity,
        coalesce(sold.orders, 0) as orders,
        coalesce(sold.units_sold, 0) as units_sold,
        coalesce(carts.open_carts, 0) as open_carts,
        coalesce(carts.units_in_open_carts, 0) as units_in_open_carts,
        carts.last_cart_activity_at,
        latest.product_id is not null as has_stream_availability,
        latest.available as stream_available,
        latest.sold_out as stream_sold_out,
        latest.updated_at as availability_updated_at
    from options
    left join sold
        on sold.product_id = options.product_id
        and sold.option_id is not distinct from options.option_id
    left join carts
        on carts.product_id = options.product_id
        and carts.option_id is not distinct from options.option_id
    left join latest_availability as latest
        on latest.product_id = options.product_id
        and latest.option_id is not distinct from options.option_id
        and latest.recency = 1
)

select
    product_id,
    option_id,
    product_name,
    option_name,
    category_name,
    price,
    stock_quantity,
    orders,
    units_sold,
    open_carts,
    units_in_open_carts,
    last_cart_activity_at,
    case when has_stream_availability then stream_available
         else greatest(coalesce(stock_quantity, 0) - units_in_open_carts, 0) end as available,
    case when has_stream_availability then stream_sold_out
         else coalesce(stock_quantity, 0) - units_in_open_carts <= 0 end as sold_out,
    availability_updated_at,
    case when has_stream_availability then 'stream' else 'batch' end as availability_source
from joined
