-- One row per product option with its batch stock and price (option_id is null for a product
-- without options).
select
    product_id,
    option_id,
    product_name,
    option_name,
    category_name,
    stock_quantity,
    price,
    on_sale
from {{ source('store', 'dim_products') }}
