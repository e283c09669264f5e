select
    vendor_id,
    vendor_name
from {{ source('store', 'dim_vendors') }}
