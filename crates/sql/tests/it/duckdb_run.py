"""Runs a query on DuckDB over a leads and an events CSV file loaded with every column as text,
and prints its rows as CSV (floats as the shortest text that reads back as the same double).

    python duckdb_run.py LEADS.csv EVENTS.csv QUERY.sql
"""

import csv
import sys

import duckdb

leads, events, query = sys.argv[1:4]
connection = duckdb.connect()
for table, path in (("leads", leads), ("events", events)):
    connection.execute(
        f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, header = true, all_varchar = true, auto_detect = true)",
        [path],
    )
with open(query, encoding="utf-8") as file:
    result = connection.execute(file.read())
writer = csv.writer(sys.stdout, lineterminator="\n")
writer.writerow([column[0] for column in result.description])
for row in result.fetchall():
    writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
