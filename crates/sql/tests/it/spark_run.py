"""Runs queries on Spark SQL in local mode, in one session, over leads and events CSV files read
with every column as text, and writes each query's rows as CSV (floats as the shortest text that
reads back as the same double).

    python spark_run.py CASES

CASES is a directory of cases, one directory each, holding leads.csv, events.csv and query.sql.
The rows are written to rows.csv in the case's directory; a query that fails writes its error to
error.txt instead, and the other cases still run. A score column that is not a double, or a tier
(or `--explain`'s contributions) that is not a string, is an error too: the query types its
values, whatever the engine infers.
"""

import csv
import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql.types import DoubleType, StringType

# The settings the query is checked under (docs/warehouse.md, "Spark SQL"): ANSI mode, as Spark 4
# has it by default, and UTC as the session's time zone (the query reads no time zone, but a
# reader of the rows may). The rest only makes many small queries quick on one machine: one
# shuffle partition, no web UI, no adaptive execution (which plans each stage again) and no
# whole-stage code generation (compiling the query's long expressions to Java takes longer than
# running them on a few hundred rows).
SETTINGS = {
    "spark.sql.ansi.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "1g",
}


def read_table(spark, path):
    """A CSV file as a table of string columns named by its header. An empty cell is NULL and a
    quoted empty cell ("") is the empty string, as PostgreSQL's COPY reads them; quotes are
    escaped by doubling them, and a quoted cell may hold line breaks."""
    return spark.read.csv(
        path,
        header=True,
        inferSchema=False,
        multiLine=True,
        quote='"',
        escape='"',
        encoding="UTF-8",
        mode="FAILFAST",
        ignoreLeadingWhiteSpace=False,
        ignoreTrailingWhiteSpace=False,
    )


def run_case(spark, directory):
    for stale in ("rows.csv", "error.txt"):
        if os.path.exists(os.path.join(directory, stale)):
            os.remove(os.path.join(directory, stale))
    for table in ("leads", "events"):
        read_table(spark, os.path.join(directory, f"{table}.csv")).createOrReplaceTempView(table)
    with open(os.path.join(directory, "query.sql"), encoding="utf-8") as file:
        query = file.read()
    result = spark.sql(query)
    fields = result.schema.fields
    # `--explain`'s column comes last, as text.
    scored = fields[:-1] if fields[-1].name == "contributions" else fields
    if len(scored) < len(fields) and fields[-1].dataType != StringType():
        raise TypeError(f"column contributions is {fields[-1].dataType.simpleString()}, not string")
    for i, field in enumerate(scored[1:], start=1):
        expected = DoubleType() if i % 2 == 1 else StringType()
        if field.dataType != expected:
            raise TypeError(f"column {field.name} is {field.dataType.simpleString()}, not {expected.simpleString()}")
    rows = result.collect()
    with open(os.path.join(directory, "rows.csv"), "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([field.name for field in fields])
        for row in rows:
            writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])


def main():
    cases = sys.argv[1]
    # One core: the driver's planning is most of a case's time, and a second thread planning
    # another case only competes with it on a small machine.
    builder = SparkSession.builder.master("local[1]").appName("leadscore-sql-tests")
    for key, value in SETTINGS.items():
        builder = builder.config(key, value)
    started = time.monotonic()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    print(f"session: {time.monotonic() - started:.1f}s", file=sys.stderr)
    for name in sorted(os.listdir(cases)):
        directory = os.path.join(cases, name)
        if not os.path.isdir(directory):
            continue
        started = time.monotonic()
        try:
            run_case(spark, directory)
        except Exception as error:  # a failed query is reported for its case, and the rest run
            with open(os.path.join(directory, "error.txt"), "w", encoding="utf-8") as file:
                file.write(str(error))
        print(f"{name}: {time.monotonic() - started:.1f}s", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
