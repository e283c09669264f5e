-- Stream layer: product options held in OPEN carts (fact_shoppingcarts.status = true). A cart
-- whose status the stream has not delivered yet is not counted as open.
select
    items.shopping_cart_id,
    items.product_id,
    items.option_id,
    items.quantity,
    greatest(items.updated_at, carts.updated_at) as updated_at
from {{ stream_source('fact_carts_has_products') }} as items
inner join {{ stream_source('fact_shoppingcarts') }} as carts
    on carts.shopping_cart_id = items.shopping_cart_id
where carts.status
