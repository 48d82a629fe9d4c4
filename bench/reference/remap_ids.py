#!/usr/bin/env python3
"""Give the generator's data set (gen_events.py: lead ids 1..N in file order) other kinds of lead
ids, as real exports have them. Events keep their order, with mapped ids; every other column is
copied unchanged.

Usage: python remap_ids.py SRC_DIR DST_DIR --kind KIND [--seed S]

KIND (every kind but `seq` also shuffles the leads file):
  seq           the original ids 1..N in file order (the files are copied)
  int-shuffled  the integers 1..N in a random order (a database key, exported unsorted)
  hex16         random 16-hex-digit strings (`9f86d081884c7d65`)
  sfid18        Salesforce-style 18-character lead ids: `00Q` (the lead key prefix), a pod, a
                record number in base 62, then Salesforce's 3-character case-safe checksum
                (`00Q5g00000Ab3xZIAR`)
  email         unique e-mail addresses (`maria.garcia17@nimbuslabs.io`)
  uuid          random version-4 UUIDs (`0b7c54f2-3d7e-4d1c-9a7e-5f0e8e2b1c44`)

Vectorised with numpy and pyarrow so that L (1M leads, 20M events, 1 GB) takes seconds.
"""
import argparse
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

# The generator's name lists, so that the addresses read like its leads' e-mails.
from gen_events import FIRST, LAST

KINDS = ["seq", "int-shuffled", "hex16", "sfid18", "email", "uuid"]
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
CHECKSUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "acme.com", "globex.io", "initech.co.uk",
           "umbrellagroup.de", "hooli.com", "vandelay.net", "nimbuslabs.io", "vertexsystems.com", "summitbank.com",
           "harborhealth.org", "pioneer-retail.fr", "quantumtech.com.br", "brightmedia.in", "cloudworks.co.jp",
           "silveranalytics.nl", "urbanenergy.com"]


def rows_to_strings(chars):
    """A (n, k) uint8 array of ASCII codes -> a pyarrow string array of n k-character strings."""
    n, k = chars.shape
    flat = np.ascontiguousarray(chars).reshape(-1)
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(flat))


def unique_u64(rng, n, below=None):
    """n distinct random integers in [0, below) (or any 64-bit value)."""
    out = np.empty(0, dtype=np.uint64)
    while len(out) < n:
        more = (rng.integers(0, below, size=n - len(out) + 16, dtype=np.uint64) if below
                else rng.integers(0, 2**64, size=n - len(out) + 16, dtype=np.uint64, endpoint=False))
        out = np.concatenate([out, more])
        _, first = np.unique(out, return_index=True)
        out = out[np.sort(first)][:n]
    return out


def hex_digits(values, digits):
    """uint64 values -> (n, digits) ASCII hex, most significant digit first."""
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return HEX[((values[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]


def hex16(rng, n):
    return rows_to_strings(hex_digits(unique_u64(rng, n), 16))


def uuid4(rng, n):
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2], nibbles[:, 1::2] = raw >> 4, raw & 15
    chars = HEX[nibbles]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    out = np.hstack([chars[:, :8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash,
                     chars[:, 20:]])
    # 122 random bits: a collision among a few million is not going to happen, but check.
    assert len(np.unique(out.view(f"S{out.shape[1]}"))) == n
    return rows_to_strings(out)


def salesforce_checksum(id15):
    """Salesforce's case-safe suffix: for each 5-character chunk, a bit per upper-case letter
    (first character = lowest bit), the 5-bit value picking from A-Z0-5."""
    upper = (id15 >= ord("A")) & (id15 <= ord("Z"))
    weights = 1 << np.arange(5)
    chunks = upper.reshape(len(id15), 3, 5).astype(np.int64) @ weights
    return CHECKSUM[chunks]


def sfid18(rng, n):
    # `00Q` (Lead) + a 2-character pod + `0` + a 9-character base-62 record number: ids of one org
    # share their first characters, as real ones do, and differ in the last few.
    pods = np.array([list(b"5g"), list(b"Dn"), list(b"4W"), list(b"8c")], dtype=np.uint8)
    record = unique_u64(rng, n, below=62**6)
    digits = np.empty((n, 9), dtype=np.uint8)
    rest = record.copy()
    for i in range(8, -1, -1):
        digits[:, i] = BASE62[(rest % np.uint64(62)).astype(np.intp)]
        rest //= np.uint64(62)
    prefix = np.tile(np.frombuffer(b"00Q", dtype=np.uint8), (n, 1))
    zero = np.full((n, 1), ord("0"), dtype=np.uint8)
    id15 = np.hstack([prefix, pods[rng.integers(0, len(pods), n)], zero, digits])
    return rows_to_strings(np.hstack([id15, salesforce_checksum(id15)]))


def emails(rng, n):
    first = np.array(FIRST, dtype=object)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST, dtype=object)[rng.integers(0, len(LAST), n)]
    sep = np.array([".", "_", ""], dtype=object)[rng.choice(3, size=n, p=[0.7, 0.1, 0.2])]
    domain = np.array(DOMAINS, dtype=object)[rng.integers(0, len(DOMAINS), n)]
    local = first + sep + last
    # first.last@domain repeats: number the repeats as people do (maria.garcia17@...)
    base = pa.array(local + "@" + domain)
    dup_rank = np.zeros(n, dtype=np.int64)
    order = np.argsort(np.asarray(base.to_pandas(), dtype=object), kind="stable")
    keys = np.asarray(base.take(pa.array(order)).to_pandas(), dtype=object)
    starts = np.r_[True, keys[1:] != keys[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    dup_rank[order] = np.arange(n) - group_start
    numbered = np.where(dup_rank > 0, dup_rank.astype(str), "").astype(object)
    out = local + numbered + "@" + domain
    assert len(set(out)) == n
    return pa.array(out, type=pa.string())


def read_all_text(path):
    # Every column as text, so that what is copied is written back exactly as read (the
    # generator's headers hold no quotes or commas).
    with open(path, newline="") as f:
        header = f.readline().rstrip("\n").split(",")
    convert = pacsv.ConvertOptions(strings_can_be_null=False, quoted_strings_can_be_null=False,
                                   column_types={name: pa.string() for name in header})
    return pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=64 << 20), convert_options=convert)


def csv_cells(column):
    """Text cells as a CSV writer writes them: quoted only when they hold a separator, a quote or
    a line break (as the generator's pandas writes them, so that copied columns stay byte-equal)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    needs = pc.match_substring_regex(column, '[,"\r\n]')
    if not pc.any(needs).as_py():
        return column
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, column)


def write(table, path):
    """Writes `table` as CSV with its header, without the quotes around every text that pyarrow's
    own writer puts."""
    with open(path, "wb") as out:
        out.write((",".join(table.column_names) + "\n").encode())
        step = 1 << 20
        for start in range(0, table.num_rows, step):
            part = table.slice(start, step)
            cells = [csv_cells(part.column(i)) for i in range(part.num_columns)]
            lines = pc.binary_join_element_wise(*cells, ",")
            lines = pc.binary_join_element_wise(lines, "", "\n")
            out.write(lines_bytes(lines))


def lines_bytes(lines):
    """The bytes of a string array's values, end to end (each already ends with a newline)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offsets, data = lines.buffers()
    first, last = np.frombuffer(offsets, dtype=np.int32)[[lines.offset, lines.offset + len(lines)]]
    return memoryview(data)[first:last]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--kind", required=True, choices=KINDS)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.dst, exist_ok=True)
    if a.kind == "seq":
        for name in ("leads.csv", "events.csv"):
            shutil.copyfile(os.path.join(a.src, name), os.path.join(a.dst, name))
        return
    rng = np.random.Generator(np.random.PCG64(a.seed))
    leads = read_all_text(os.path.join(a.src, "leads.csv"))
    n = leads.num_rows
    new_ids = {
        "int-shuffled": lambda: pa.array((rng.permutation(n) + 1).astype(str), type=pa.string()),
        "hex16": lambda: hex16(rng, n),
        "sfid18": lambda: sfid18(rng, n),
        "email": lambda: emails(rng, n),
        "uuid": lambda: uuid4(rng, n),
    }[a.kind]()
    old_ids = leads.column("lead_id").combine_chunks()
    column = leads.schema.get_field_index("lead_id")
    shuffle = pa.array(rng.permutation(n))
    write(leads.set_column(column, "lead_id", new_ids).take(shuffle), os.path.join(a.dst, "leads.csv"))

    events = read_all_text(os.path.join(a.src, "events.csv"))
    lead = events.column("lead_id")
    at = pc.index_in(lead, value_set=old_ids)
    # Events of leads the leads file does not have keep their id.
    mapped = pc.if_else(pc.is_null(at), lead, pc.take(new_ids, pc.fill_null(at, 0)))
    column = events.schema.get_field_index("lead_id")
    write(events.set_column(column, "lead_id", mapped), os.path.join(a.dst, "events.csv"))
    print(f"{a.kind}: remapped {n:,} leads and {events.num_rows:,} events into {a.dst}")


if __name__ == "__main__":
    main()
