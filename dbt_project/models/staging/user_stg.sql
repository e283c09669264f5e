-- Users as the marts name them (no contact details, no card).
select
    user_id,
    username,
    full_name
from {{ source('store', 'dim_users') }}
