-- Stream layer: availability per vendor and product option as the stream last wrote it
-- (absent in a batch-only warehouse: then empty).
select
    vendor_id,
    product_id,
    option_id,
    stock,
    held_in_open_carts,
    available,
    sold_out,
    updated_at
from {{ stream_source('vendor_product_availability') }}
