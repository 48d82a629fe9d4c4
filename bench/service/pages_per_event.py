#!/usr/bin/env python3
"""Which tables and indexes a run of ingestion wrote, in 4 KiB pages per event.

Usage: python3 pages_per_event.py BEFORE.db AFTER.db EVENTS

Compares two copies of a leadscore database page by page (AFTER is checkpointed first, so that
every page the run wrote is in the file) and names the b-tree each changed page belongs to
(SQLite's dbstat table). Each changed page counts once, however often the run rewrote it: with
a run short enough that few pages are written twice, this is the number of random pages each
event costs, which the WAL writes at commit and the checkpoint writes again. Used with
`crates/server/examples/ingest_writer.rs` (`KEEP=1` for AFTER, `FROM=` a kept BEFORE).
"""
import collections
import sqlite3
import sys

before, after, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
connection = sqlite3.connect(after)
connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
page_size = connection.execute("PRAGMA page_size").fetchone()[0]
owner = dict((pageno, name) for name, pageno in connection.execute("SELECT name, pageno FROM dbstat"))
connection.close()
changed = collections.Counter()
with open(before, "rb") as a, open(after, "rb") as b:
    page = 1
    while True:
        old, new = a.read(page_size), b.read(page_size)
        if not new:
            break
        if old != new:
            changed[owner.get(page, "(free list or header)")] += 1
        page += 1
total = sum(changed.values())
print(f"{total} pages changed for {events} events: {total / events:.2f} per event ({total * page_size / events / 1024:.1f} KiB)")
for name, n in changed.most_common(20):
    print(f"  {name:32s} {n:9d} pages  {n / events:6.3f} per event")
