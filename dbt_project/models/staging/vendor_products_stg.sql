-- Stream layer: which vendor sells which product.
select
    vendor_id,
    product_id,
    updated_at
from {{ stream_source('fact_products_sold_vendor') }}
