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
    -- Values of undeclared columns (schema contract rescue), every source's merged
    -- (the usual row has none: NULL without building JSON).
    CASE WHEN p._rescued_data IS NULL AND pc._rescued_data IS NULL AND c._rescued_data IS NULL AND po._rescued_data IS NULL AND op._rescued_data IS NULL THEN NULL
        ELSE nullif(json_merge_patch(coalesce(p._rescued_data, '{}'), coalesce(pc._rescued_data, '{}'), coalesce(c._rescued_data, '{}'), coalesce(po._rescued_data, '{}'), coalesce(op._rescued_data, '{}'))::VARCHAR, '{}') END AS _rescued_data
FROM src_products AS p
LEFT JOIN src_products_belong_category AS pc ON pc.product_id = p.product_id
LEFT JOIN src_category AS c ON c.category_id = pc.category_id
LEFT JOIN src_products_has_options AS po ON po.product_id = p.product_id
LEFT JOIN src_option AS op ON op.option_id = po.option_id
