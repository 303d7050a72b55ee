"""Benchmark: batched erasure of K people from a Delta Lake and an Iceberg table, against the
library's own delete.

``python -m bench.lake_tables [--rows 2000000] [--files 4] [--k 1,10,100]`` starts moto's S3
server on 127.0.0.1 and, for each format and each K, writes a fresh table of ``--rows`` rows
(email, customer id, event, payload; 100,000 people spread at random, so every data file holds
every K's people) in ``--files`` commits, then measures:

- ``dsar batch``: :meth:`S3Connector.erase_shared_batch` for K people at once: the key columns
  of every data file read and matched (case-insensitive email), one committed delete naming
  the matched spellings, the recount on the new version and the history;
- ``library delete``: the same rows deleted with the library alone, knowing the exact stored
  values (``DeltaTable.delete("email IN (…)")``, pyiceberg ``Table.delete(In(...))``): no
  matching, no recount. Its cost is the rewrite of the files that hold the rows.

Wall time and peak resident memory (``VmHWM`` after ``clear_refs``, the whole process) for
each; the last column is dsar's time over the library's for the same K. The Iceberg SQL
catalog is a SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.procstats import peak_rss_mib, reset_peak_rss
from connectors.base import ConnectorContext
from connectors.s3 import S3Connector, S3Settings
from tests.s3server import DUMMY_ENV, ENDPOINT_ENV, HASH_KEY, MotoProcess, client, s3_system

BUCKET = "dsar-lake-tables"
POPULATION = 100_000
CATALOG_ENV = "BENCH_ICEBERG_CATALOG"


def email(n: int) -> str:
    return f"user{n}@example.com"


def batch_table(rows: int, seed: int) -> Any:
    import pyarrow as pa

    rng = random.Random(seed)
    people = [rng.randrange(POPULATION) for _ in range(rows)]
    return pa.table({
        "email": [email(p) for p in people],
        "customer_id": pa.array(people, pa.int64()),
        "event": [rng.choice(("view", "cart", "buy", "search")) for _ in range(rows)],
        "payload": [f"{rng.getrandbits(96):024x}" for _ in range(rows)],
    })


def measure(fn: Callable[[], Any]) -> tuple[float, float | None]:
    reset_peak_rss()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, peak_rss_mib()


class Delta:
    name = "delta"

    def __init__(self, endpoint: str) -> None:
        self.options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true",
                        "AWS_REGION": "us-east-1", "conditional_put": "etag",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def make(self, prefix: str, parts: list[Any]) -> dict[str, Any]:
        from deltalake import write_deltalake

        for part in parts:
            write_deltalake(f"s3://{BUCKET}/{prefix}", part, storage_options=self.options,
                            mode="append")
        return {"name": "events", "prefix": f"{prefix}/", "format": "delta",
                "match": {"email": "email"}}

    def plain(self, prefix: str, gone: list[str]) -> None:
        from deltalake import DeltaTable

        table = DeltaTable(f"s3://{BUCKET}/{prefix}", storage_options=self.options)
        table.delete("email IN ({})".format(", ".join(f"'{e}'" for e in gone)))


class Iceberg:
    name = "iceberg"

    def __init__(self, endpoint: str, folder: str) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        self.url = f"sqlite:///{folder}/catalog.db"
        self.catalog = SqlCatalog("default", uri=self.url, **{
            "s3.endpoint": endpoint, "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing", "s3.region": "us-east-1"})
        self.catalog.create_namespace_if_not_exists("bench")

    def make(self, prefix: str, parts: list[Any]) -> dict[str, Any]:
        name = "bench." + prefix.replace("/", "_").replace("-", "_")
        table = self.catalog.create_table(name, schema=parts[0].schema,
                                          location=f"s3://{BUCKET}/{prefix}")
        for part in parts:
            table.append(part)
        return {"name": "events", "prefix": f"{prefix}/", "format": "iceberg", "table": name,
                "catalog_url_env": CATALOG_ENV, "match": {"email": "email"}}

    def plain(self, prefix: str, gone: list[str]) -> None:
        from pyiceberg.expressions import In

        name = "bench." + prefix.replace("/", "_").replace("-", "_")
        self.catalog.load_table(name).delete(In("email", set(gone)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per table")
    parser.add_argument("--files", type=int, default=4, help="commits (data files) per table")
    parser.add_argument("--k", default="1,10,100", help="people per erasure (default 1,10,100)")
    parser.add_argument("--formats", default="delta,iceberg", help="delta,iceberg")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.k.split(",")]
    os.environ.update(DUMMY_ENV)
    server = MotoProcess()
    folder = tempfile.mkdtemp(prefix="bench-lake-tables-")
    results = []
    try:
        client(server.url).create_bucket(Bucket=BUCKET)
        step = args.rows // args.files
        parts = [batch_table(step, seed=n) for n in range(args.files)]
        context = ConnectorContext(hash_key=HASH_KEY,
                                   environ={ENDPOINT_ENV: server.url,
                                            CATALOG_ENV: f"sqlite:///{folder}/catalog.db"})
        formats = {"delta": lambda: Delta(server.url),
                   "iceberg": lambda: Iceberg(server.url, folder)}
        for fmt in args.formats.split(","):
            lake = formats[fmt]()
            for k in ks:
                people = [(j * 7919 + 13) % POPULATION for j in range(k)]
                gone = [email(p) for p in people]
                plain_prefix = f"{fmt}-plain-{k}"
                lake.make(plain_prefix, parts)
                plain_s, plain_peak = measure(
                    lambda t=lake, g=gone, at=plain_prefix: t.plain(at, g))
                spec = lake.make(f"{fmt}-dsar-{k}", parts)
                connector = S3Connector(s3_system(BUCKET, shared=[spec]), context,
                                        S3Settings())
                members = {str(p): {"email": frozenset({email(p).upper()})} for p in people}
                evidence: dict[str, Any] = {}
                dsar_s, dsar_peak = measure(
                    lambda c=connector, m=members, out=evidence: out.update(
                        c.erase_shared_batch(m)))
                deleted = sum(ev[0].deleted for ev in evidence.values())
                results.append((fmt, k, deleted, dsar_s, plain_s, dsar_peak, plain_peak))
                print(f"{fmt} K={k}: dsar {dsar_s:.1f} s, library {plain_s:.1f} s "
                      f"({deleted} rows)", flush=True)
    finally:
        server.stop()
    print(f"\n{args.rows:,} rows per table in {args.files} data files, 100,000 people")
    print("| format | K | rows deleted | dsar batch s | library delete s | dsar / library "
          "| peak RSS dsar / library MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt, k, deleted, dsar_s, plain_s, dsar_peak, plain_peak in results:
        print(f"| {fmt} | {k} | {deleted} | {dsar_s:.1f} | {plain_s:.1f} | "
              f"{dsar_s / plain_s:.2f}x | {dsar_peak or 0:.0f} / {plain_peak or 0:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
