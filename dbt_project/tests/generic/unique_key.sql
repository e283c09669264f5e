{#
  The key (one or several columns) identifies at most one row. Null keys group together, so a
  repeated (product_id, null) is caught too. With allow_missing_relation (stream tables, which a
  batch-only warehouse may lack) an absent relation passes.
#}
{% test unique_key(model, columns, allow_missing_relation=false) %}
{%- set cols = columns | join(', ') -%}
{%- if allow_missing_relation and execute and var('check_stream_tables', target.type != 'bigquery')
      and not relation_exists(model) -%}
select 1 as absent_relation from (select 1 as _one) as _none where 1 = 0
{%- else -%}
select {{ cols }}, count(*) as n_rows
from {{ model }}
group by {{ cols }}
having count(*) > 1
{%- endif %}
{% endtest %}
