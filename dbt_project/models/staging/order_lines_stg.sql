-- Order lines priced from the option price list (batch).
select
    order_id,
    product_id,
    option_id,
    quantity,
    price,
    raw_cost
from {{ source('store', 'fact_order_details') }}
