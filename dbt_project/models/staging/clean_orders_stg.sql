-- Delivered orders only (fact_orders.is_delivered, source delivery_status = 1): the basis of
-- every revenue figure. Undelivered orders are not revenue yet.
select
    order_id,
    user_id,
    total_item,
    shipping_fee,
    tax,
    total_cost,
    order_date,
    delivery_date,
    tracking_number
from {{ source('store', 'fact_orders') }}
where is_delivered
