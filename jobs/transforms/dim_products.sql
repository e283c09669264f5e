-- One row per product option. Category links are keyed by product (one category per product),
-- so only the option join fans out, which is the grain.
SELECT
    p.product_id,
    p.product_name,
    p.descriptions,
    pc.category_id,
    c.category_name,
    po.option_id,
    op.option_name,
    po.quantity AS stock_quantity,
    po.price,
    po.on_sale,
    po.specs,
    -- Values of undeclared columns (schema contract rescue), every source's merged (render.ts).
    {{ merge_rescued(p, pc, c, po, op) }} AS _rescued_data
FROM src_products AS p
LEFT JOIN src_products_belong_category AS pc ON pc.product_id = p.product_id
LEFT JOIN src_category AS c ON c.category_id = pc.category_id
LEFT JOIN src_products_has_options AS po ON po.product_id = p.product_id
LEFT JOIN src_option AS op ON op.option_id = po.option_id
