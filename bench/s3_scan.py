"""Benchmark: scanning shared JSONL files in S3 for one subject.

``python -m bench.s3_scan [--mb 1024] [--files 8] [--rounds 3]`` starts moto's S3 server on
127.0.0.1, uploads ``--mb`` MB of JSONL events split over ``--files`` objects, then in the
same run measures, over the same objects:

- ``boto3 read``: a plain ``get_object`` + ``iter_chunks`` read (the transfer ceiling);
- ``boto3 read + json.loads``: the same, splitting lines and parsing each (the parse ceiling);
- ``connector collect, full parse``: :meth:`S3Connector.collect` for one subject with the
  candidate search and range reads off (``prefilter=False, range_workers=1``: how it scanned
  before), into a sink that drops rows;
- ``connector collect``: the same with the defaults (candidate search, read-ahead thread);
- ``connector collect, 100 subjects' needles``: the candidate search with 100 email values
  (what a batched erasure searches for);
- ``candidate search in memory``: :func:`connectors.s3_scan.jsonl_candidates` over the first
  object's bytes already in memory, in 1 MiB chunks (for 1 and 100 values): the connector's
  CPU ceiling, without S3 or the socket; its MB/s is of that object's size.

Every method runs ``--rounds`` times, the methods interleaved, and the table gives the median
seconds and the median over rounds of each method's MB/s as a share of the plain read's in the
same round (the machine's load moves between rounds; a share compares runs seconds apart).
Throughput is from untraced runs; peak memory is one more run under ``tracemalloc`` (Python
allocations of this process; the moto server runs in its own process).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.s3server import DUMMY_ENV, MotoProcess, NullSink, client, open_s3, s3_system

BUCKET = "dsar-bench"
SUBJECT = {"email": frozenset({"subject@example.com"})}
SPEC = {"name": "events", "prefix": "events/", "format": "jsonl",
        "match": {"email": "user.email"}}


def write_events(path: Path, size: int, start: int, every: int = 100_000) -> int:
    """~200-byte JSONL events until ``size`` bytes; every ``every``-th is the subject's."""
    hits, written, i = 0, 0, start
    with path.open("wb") as out:
        while written < size:
            email = "subject@example.com" if i % every == 7 else f"user{i}@example.com"
            hits += email.startswith("subject")
            data = (json.dumps({"i": i, "user": {"email": email, "id": i % 977},
                                "event": "page_view", "path": f"/shop/item/{i % 5000}",
                                "agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101"})
                    + "\n").encode()
            out.write(data)
            written += len(data)
            i += 1
    return hits


def plain_read(s3: Any, keys: list[str]) -> int:
    total = 0
    for key in keys:
        for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(1 << 20):
            total += len(chunk)
    return total


def plain_parse(s3: Any, keys: list[str]) -> int:
    hits = 0
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        for line in body.iter_lines(1 << 20):
            if json.loads(line)["user"]["email"] == "subject@example.com":
                hits += 1
    return hits


def measure(fn: Callable[[], Any], traced: bool) -> tuple[float, int]:
    gc.collect()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    return seconds, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="MB of JSONL to scan (default 256)")
    parser.add_argument("--files", type=int, default=8, help="objects to split it over")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each method runs, interleaved (default 3)")
    args = parser.parse_args(argv)
    import os

    os.environ.update(DUMMY_ENV)
    server = MotoProcess()
    try:
        s3 = client(server.url)
        s3.create_bucket(Bucket=BUCKET)
        keys, hits = [], 0
        per_file = args.mb * 1_000_000 // args.files
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(args.files):
                path = Path(tmp) / f"part-{n:04d}.jsonl"
                hits += write_events(path, per_file, start=n * 10_000_000)
                key = f"events/{path.name}"
                s3.upload_file(str(path), BUCKET, key)
                keys.append(key)
                path.unlink()
        total = sum(o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
        print(f"uploaded {total / 1e6:.0f} MB in {len(keys)} objects to moto "
              f"({time.perf_counter() - t0:.0f} s); subject has {hits} records", flush=True)

        system = s3_system(BUCKET, shared=[SPEC])
        before = open_s3(server.url, system, prefilter=False, range_workers=1)
        connector = open_s3(server.url, system)
        many = {"email": SUBJECT["email"] | {f"other{n}@example.org" for n in range(99)}}

        def collect(conn: Any = connector, keys: Any = SUBJECT) -> None:
            ev = conn.collect(keys, NullSink()).evidence[0]
            assert ev.found == hits, (ev.found, hits)

        first = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()

        def search(values: Any) -> None:
            from connectors.s3_records import Matcher
            from connectors.s3_scan import Needles, jsonl_candidates

            matcher = Matcher(SPEC["match"], values, dotted=True)
            chunks = (first[i : i + (1 << 20)] for i in range(0, len(first), 1 << 20))
            for _seg in jsonl_candidates(chunks, Needles(matcher)):
                pass

        runs = [
            ("boto3 read (bytes only)", lambda: plain_read(s3, keys)),
            ("boto3 read + json.loads per line", lambda: plain_parse(s3, keys)),
            ("connector collect, full parse (before)", lambda: collect(before)),
            ("connector collect (one subject)", collect),
            ("connector collect, 100 subjects' needles", lambda: collect(connector, many)),
            ("candidate search in memory, 1 value", lambda: search(SUBJECT)),
            ("candidate search in memory, 100 values", lambda: search(many)),
        ]
        # Rounds interleave the methods, so each one's share of the plain read compares runs
        # seconds apart on a machine whose load moves; the table gives medians over rounds.
        times: dict[str, list[float]] = {name: [] for name, _ in runs}
        for round_ in range(1, args.rounds + 1):
            for name, fn in runs:
                seconds, _ = measure(fn, traced=False)
                times[name].append(seconds)
                print(f"  round {round_}: {name}: {seconds:.2f} s", flush=True)
        peaks = {name: measure(fn, traced=True)[1] for name, fn in runs}
    finally:
        server.stop()

    plain = times[runs[0][0]]
    print()
    print(f"median of {args.rounds} rounds; 'of plain read' is the median over rounds of the "
          "method's MB/s over the plain read's in the same round")
    print()
    print("| method | MB | seconds | MB/s | of plain read | peak memory (tracemalloc) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, _ in runs:
        size = len(first) if name.startswith("candidate search") else total
        seconds = statistics.median(times[name])
        share = statistics.median(
            (size / t) / (total / p) for p, t in zip(plain, times[name], strict=True))
        print(f"| {name} | {size / 1e6:.0f} | {seconds:.2f} | {size / 1e6 / seconds:.1f} "
              f"| {share:.0%} | {peaks[name] / 2**20:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
