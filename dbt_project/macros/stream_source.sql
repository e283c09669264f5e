{#
  Lambda architecture: the stream layer's tables (filled by the Kafka consumers) may be absent
  from a batch-only warehouse. `stream_source('t')` is `source('stream', 't')` when the relation
  exists, and otherwise an empty, typed relation built from the columns sources.yml declares
  for it, so the serving models still build and read "no stream data yet". On DuckDB the
  `stream` source is the stream layer's snapshot attached as database `stream` (profiles.yml).

  On BigQuery the check is skipped (the production dataset always has the stream tables, and
  `dbt compile` must not need a live connection): var `check_stream_tables` overrides.
#}
{% macro stream_source(table_name, source_name='stream') -%}
  {%- set src = source(source_name, table_name) -%}
  {%- if not execute or not var('check_stream_tables', target.type != 'bigquery') -%}
    {{- return(src) -}}
  {%- endif -%}
  {%- if relation_exists(src) -%}
    {{- return(src) -}}
  {%- endif -%}
  {{- log('stream table ' ~ src ~ ' is absent: reading it as empty', info=True) -}}
  {{- return(empty_relation_for_source(source_name, table_name)) -}}
{%- endmacro %}

{% macro relation_exists(rel) -%}
  {%- set found = adapter.get_relation(database=rel.database, schema=rel.schema, identifier=rel.identifier) -%}
  {{- return(found is not none) -}}
{%- endmacro %}

{# `(select cast(null as <type>) as <col>, ... where 1 = 0)` for a declared source table. #}
{% macro empty_relation_for_source(source_name, table_name) -%}
  {%- set node = graph.sources.values()
      | selectattr('source_name', 'equalto', source_name)
      | selectattr('name', 'equalto', table_name) | first -%}
  {%- set cols = [] -%}
  {%- for col in node.columns.values() -%}
    {%- do cols.append('cast(null as ' ~ warehouse_type(col.data_type) ~ ') as ' ~ adapter.quote(col.name)) -%}
  {%- endfor -%}
  {{- return('(select ' ~ cols | join(', ') ~ ' from (select 1 as _one) as _none where 1 = 0)') -}}
{%- endmacro %}

{# Catalog column types (BigQuery names) to the target's SQL types. #}
{% macro warehouse_type(catalog_type) -%}
  {%- set t = (catalog_type or 'STRING') | upper -%}
  {%- if t == 'STRING' -%}{{ return(dbt.type_string()) }}
  {%- elif t == 'INT64' -%}{{ return(dbt.type_bigint()) }}
  {%- elif t == 'NUMERIC' -%}{{ return(dbt.type_numeric()) }}
  {%- elif t == 'BOOL' -%}{{ return(dbt.type_boolean()) }}
  {%- elif t == 'DATE' -%}{{ return('date') }}
  {%- elif t == 'TIMESTAMP' -%}{{ return(dbt.type_timestamp()) }}
  {%- else -%}{{ exceptions.raise_compiler_error('unknown catalog type ' ~ catalog_type) }}
  {%- endif -%}
{%- endmacro %}
