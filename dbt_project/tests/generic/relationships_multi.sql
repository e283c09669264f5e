{#
  Composite foreign key: every row of `model` whose `columns` are all non-null has a row in `to`
  with equal `to_columns` (dbt's built-in relationships test takes a single column).
#}
{% test relationships_multi(model, columns, to, to_columns) %}
select {% for c in columns %}child.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
from {{ model }} as child
left join {{ to }} as parent
  on {% for c in columns %}child.{{ c }} = parent.{{ to_columns[loop.index0] }}{% if not loop.last %} and {% endif %}{% endfor %}
where {% for c in columns %}child.{{ c }} is not null and {% endfor %}parent.{{ to_columns[0] }} is null
{% endtest %}
