-- Order lines priced from the option price list; the join is on the full (product, option)
-- key of products_has_options, so a line matches at most one price.
SELECT
    d.order_id,
    d.product_id,
    d.option_id,
    d.quantity,
    po.price,
    po.price * d.quantity AS raw_cost,
    -- Values of undeclared columns (schema contract rescue), every source's merged (render.ts).
    {{ merge_rescued(d, po) }} AS _rescued_data
FROM src_orders_has_products AS d
LEFT JOIN src_products_has_options AS po
    ON po.product_id = d.product_id AND po.option_id = d.option_id
