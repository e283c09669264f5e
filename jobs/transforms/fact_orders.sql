-- One row per order. Link tables are keyed by order_id (repeats quarantined), so the joins
-- cannot multiply orders.
SELECT
    o.order_id,
    pu.user_id,
    pc.credit_card_number AS credit_card_masked,
    o.total_item,
    o.shipping_fee,
    o.tax,
    o.total_cost,
    o.order_date,
    o.delivery_date,
    o.ship_name,
    o.ship_address,
    o.tracking_number,
    o.delivery_status AS is_delivered,
    -- Values of undeclared columns (schema contract rescue), every source's merged (render.ts).
    {{ merge_rescued(o, pu, pc) }} AS _rescued_data
FROM src_order AS o
LEFT JOIN src_orders_placed_user AS pu ON pu.order_id = o.order_id
LEFT JOIN src_orders_paid_creditcard AS pc ON pc.order_id = o.order_id
