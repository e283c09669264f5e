-- Stream layer: product options held in OPEN carts. Same rule as the stream layer's
-- availability (jobs/lib/stream/availability.ts): a cart is open unless its latest status in
-- fact_shoppingcarts is false (closed); a cart whose status event has not arrived yet counts as
-- open, so items are held from the moment they are seen.
select
    items.shopping_cart_id,
    items.product_id,
    items.option_id,
    items.quantity,
    coalesce(greatest(items.updated_at, carts.updated_at), items.updated_at) as updated_at
from {{ stream_source('fact_carts_has_products') }} as items
left join {{ stream_source('fact_shoppingcarts') }} as carts
    on carts.shopping_cart_id = items.shopping_cart_id
where coalesce(carts.status, true)
