-- user_revenue neither loses nor invents money: its total equals the total_cost of all delivered
-- orders that have a user, straight from the batch fact table.
with mart as (
    select coalesce(sum(total_revenue), 0) as revenue from {{ ref('user_revenue') }}
),

facts as (
    select coalesce(sum(total_cost), 0) as revenue
    from {{ source('store', 'fact_orders') }}
    where is_delivered and user_id is not null
)

select mart.revenue as mart_revenue, facts.revenue as fact_revenue
from mart cross join facts
where mart.revenue <> facts.revenue
