-- Reconciliation: every batch table the marts read holds exactly the rows that the latest
-- successful run of its job recorded in _etl_runs (rows_out). A table with no successful run
-- fails too. Returns the disagreeing tables.
{%- set inputs = ['fact_orders', 'fact_order_details', 'dim_users', 'dim_products', 'dim_vendors'] %}

with table_rows as (
    {%- for t in inputs %}
    select 'store.{{ t }}' as destination, count(*) as table_rows from {{ source('store', t) }}
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
),

runs as (
    select
        destination,
        rows_out,
        row_number() over (partition by destination order by ended_at desc, started_at desc) as recency
    from {{ source('store', '_etl_runs') }}
    where status = 'success' and mode = 'batch'
)

select table_rows.destination, table_rows.table_rows, runs.rows_out
from table_rows
left join runs
    on runs.destination = table_rows.destination
    and runs.recency = 1
where runs.rows_out is null or runs.rows_out <> table_rows.table_rows
