-- Revenue per user = sum of fact_orders.total_cost over the user's DELIVERED orders (the order
-- total as billed: items + shipping + tax). Users with no delivered order have no row; delivered
-- orders not linked to a user are left out (see the reconciliation test user_revenue_reconciles).
with delivered as (
    select user_id, total_cost
    from {{ ref('clean_orders_stg') }}
    where user_id is not null
)

select
    delivered.user_id,
    users.full_name,
    sum(delivered.total_cost) as total_revenue
from delivered
left join {{ ref('user_stg') }} as users
    on users.user_id = delivered.user_id
group by delivered.user_id, users.full_name
