"""Parses every SQL file dbt compiled for the BigQuery target with sqlglot's BigQuery dialect.

    .venv-dbt/bin/python tests/dbt/bigquery_sql_check.py <target-path>/compiled

dbt compile only renders Jinja; this catches SQL the BigQuery dialect cannot parse (without a
BigQuery connection). Prints one line per file that fails and a summary; exit 1 on any failure.
"""
import pathlib
import sys

import sqlglot
from sqlglot.errors import ErrorLevel


def main(root: str) -> int:
    files = sorted(pathlib.Path(root).rglob("*.sql"))
    failed = 0
    for f in files:
        try:
            statements = sqlglot.parse(f.read_text(), read="bigquery", error_level=ErrorLevel.RAISE)
            if not any(s is not None for s in statements):
                raise ValueError("no statement")
        except Exception as e:  # noqa: BLE001 - report every kind of parse failure
            failed += 1
            print(f"FAIL {f}: {str(e).splitlines()[0][:300]}")
    print(f"bigquery-sql-check: {len(files)} files, {failed} failed")
    return 1 if failed or not files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
