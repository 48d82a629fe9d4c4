"""Parses queries with sqlglot, each in its dialect, and prints one line per query that does not
parse (nothing when all do).

    python sqlglot_parse.py DIALECT=QUERY.sql ...
"""

import sys

import sqlglot

for argument in sys.argv[1:]:
    dialect, path = argument.split("=", 1)
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        parsed = sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        if len([p for p in parsed if p is not None]) != 1:
            print(f"{dialect} {path}: not one statement")
    except Exception as error:  # sqlglot raises ParseError and TokenError
        print(f"{dialect} {path}: {str(error)[:400]}")
