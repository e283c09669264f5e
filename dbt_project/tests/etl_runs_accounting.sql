-- Every successful run accounts for each source row it read: loaded or quarantined.
select run_id, destination, rows_in, rows_loaded, rows_quarantined
from {{ source('store', '_etl_runs') }}
where status = 'success'
  and rows_in <> rows_loaded + rows_quarantined
