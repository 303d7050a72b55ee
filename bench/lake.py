"""Benchmark: batched erasure of K people from a shared data lake, against one plain rewrite.

``python -m bench.lake [--mb 200] [--files 4] [--k 1,10,100]`` starts moto's S3 server on
127.0.0.1, uploads ``--mb`` MB of shared JSONL and ``--mb`` MB of Parquet (zstd, 128k-row
groups), each split over ``--files`` objects, with a population of 100,000 people (so each
person has a few records in every file). Then for each format and each K it restores the
pristine objects (server-side copies) and measures:

- ``dsar batch``: :meth:`S3Connector.erase_shared_batch` for K people at once: the candidate
  search over the union of their values, one rewrite of each file that holds any of them
  (each checked before its upload), then the per-person recount of every version the pass
  did not check itself (see ``connectors/s3_verified.py``). This is the whole of the fleet's
  pass: it saves what each file held just before changing it, from the same read
  (``workflows/batch_journal.py``), and runs no other scan;
- ``plain``: one rewrite pass without dsar (once per format, for the largest K: its cost
  does not depend on K): plain boto3 ``get_object``, ``json.loads`` per line (JSONL) or
  ``pyarrow`` read + ``is_in`` filter (Parquet), the kept rows written back with
  ``put_object``; no recount.

Wall time, bytes read (GET bodies, ranges included) and bytes written (PUT and part bodies)
come from each run's own boto3 client; peak memory is the process's peak resident set
(``VmHWM`` after ``clear_refs``) during the run, so it includes pyarrow's buffers. The
issue asks for 2 GB of each (``--mb 2048 --files 8``, about half an hour on a shared 2-core
machine); the default of 200 MB runs in a few minutes. The table's last column is each
run's time over the baseline pass of its format (with ``--paired``, over the baseline pass run
just before it, for a machine whose load drifts during the run).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.procstats import peak_rss_mib, reset_peak_rss
from tests.s3server import DUMMY_ENV, MotoProcess, client, open_s3, s3_system

BUCKET = "dsar-lake"
POPULATION = 100_000
SPECS = {
    "jsonl": {"name": "events", "prefix": "jsonl/", "format": "jsonl",
              "match": {"email": "user.email"}},
    "parquet": {"name": "events", "prefix": "parquet/", "format": "parquet",
                "match": {"email": "email"}},
}


def email(n: int) -> str:
    return f"user{n}@example.com"


HEX = bytes(b"0123456789abcdef"[b & 15] for b in range(256))
AGENT = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101"
LINE = ('{"i": %d, "user": {"email": "user%d@example.com", "id": %d}, "event": "page_view", '
        '"path": "/shop/item/%d", "agent": "' + AGENT + '"}\n')  # json.dumps's own spelling


def jsonl_file(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out, written = [], 0
    while written < size:
        lines = []
        for _ in range(10_000):
            i = rng.randrange(1 << 30)
            lines.append(LINE % (i, rng.randrange(POPULATION), i % 977, i % 5000))
        block = "".join(lines).encode()
        out.append(block)
        written += len(block)
    return b"".join(out)


def parquet_file(size: int, seed: int) -> bytes:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    buffer = io.BytesIO()
    schema = pa.schema([("email", pa.string()), ("id", pa.int64()), ("event", pa.string()),
                        ("payload", pa.string())]).with_metadata({"owner": "analytics"})
    n = 128_000
    with pq.ParquetWriter(buffer, schema, compression="zstd") as writer:
        while buffer.tell() < size:
            people = pc.cast(pc.floor(pc.multiply(
                pc.random(n, initializer=rng.randrange(1 << 62)), POPULATION)), pa.int64())
            emails = pc.binary_join_element_wise(
                "user", pc.cast(people, pa.string()), "@example.com", "")
            hexes = rng.randbytes(48 * n).translate(HEX)  # 48 hex digits a row, as before
            raw = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(48), n, [None, pa.py_buffer(hexes)])
            writer.write_table(pa.table({
                "email": emails,
                "id": pa.array(range(n), pa.int64()),
                "event": pa.array(["page_view"] * n),
                "payload": pc.cast(pc.cast(raw, pa.binary()), pa.string(), safe=False),
            }, schema=schema))
    return buffer.getvalue()


class Traffic:
    """Bytes read and written through one boto3 client (its event hooks)."""

    def __init__(self, s3: Any) -> None:
        self.read = self.written = 0
        s3.meta.events.register("after-call.s3.GetObject", self._got)
        for op in ("PutObject", "UploadPart"):
            s3.meta.events.register(f"before-parameter-build.s3.{op}", self._put)

    def _got(self, parsed: Any, **_: Any) -> None:
        self.read += int(parsed.get("ContentLength") or 0)

    def _put(self, params: Any, **_: Any) -> None:
        body = params.get("Body")
        if isinstance(body, bytes | bytearray):
            self.written += len(body)
        elif body is not None:
            at = body.tell()
            self.written += body.seek(0, 2) - at
            body.seek(at)


def plain_jsonl(s3: Any, keys: list[str], gone: set[str]) -> None:
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        dropped = 0
        with tempfile.SpooledTemporaryFile(max_size=2 << 20) as out:
            for line in body.iter_lines(1 << 20):
                if json.loads(line)["user"]["email"] in gone:
                    dropped += 1
                else:
                    out.write(line + b"\n")
            if dropped:
                out.seek(0)
                s3.put_object(Bucket=BUCKET, Key=key, Body=out)


def plain_parquet(s3: Any, keys: list[str], gone: set[str]) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for key in keys:
        data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        source = pq.ParquetFile(io.BytesIO(data))
        out = io.BytesIO()
        with pq.ParquetWriter(out, source.schema_arrow, compression="zstd") as writer:
            for index in range(source.metadata.num_row_groups):
                table = source.read_row_group(index)
                writer.write_table(table.filter(pc.invert(pc.is_in(
                    table["email"], value_set=pa.array(sorted(gone))))))
        s3.put_object(Bucket=BUCKET, Key=key, Body=out.getvalue())


def measure(fn: Callable[[], Any]) -> tuple[float, float | None]:
    reset_peak_rss()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, peak_rss_mib()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="MB of each format (default 200)")
    parser.add_argument("--files", type=int, default=4, help="objects per format (default 4)")
    parser.add_argument("--k", default="1,10,100", help="people per erasure (default 1,10,100)")
    parser.add_argument("--formats", default="jsonl,parquet", help="jsonl,parquet")
    parser.add_argument("--paired", action="store_true",
                        help="a baseline pass just before each K's run, the ratio against it "
                             "(for a machine whose load drifts; costs one pass per K)")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.k.split(",")]
    os.environ.update(DUMMY_ENV)
    server = MotoProcess()
    rows = []
    try:
        s3 = client(server.url)
        s3.create_bucket(Bucket=BUCKET)
        for fmt in args.formats.split(","):
            make = jsonl_file if fmt == "jsonl" else parquet_file
            t0 = time.perf_counter()
            keys = []
            for n in range(args.files):
                key = f"{fmt}/part-{n:04d}.{fmt}"
                s3.put_object(Bucket=BUCKET, Key=f"pristine/{key}",
                              Body=make(args.mb * 1_000_000 // args.files, seed=n))
                keys.append(key)
            total = sum(s3.head_object(Bucket=BUCKET, Key=f"pristine/{k}")["ContentLength"]
                        for k in keys)
            print(f"{fmt}: {total / 1e6:.0f} MB in {len(keys)} objects "
                  f"({time.perf_counter() - t0:.0f} s to make and upload)", flush=True)

            def restore(keys: list[str] = keys) -> None:
                for key in keys:
                    s3.copy_object(Bucket=BUCKET, Key=key,
                                   CopySource={"Bucket": BUCKET, "Key": f"pristine/{key}"})

            def plain_pass(k: int, keys: list[str] = keys, fmt: str = fmt,
                           total: int = total) -> float:
                restore()
                plain = client(server.url)
                plain_traffic = Traffic(plain)
                gone = {email((j * 7919 + 13) % POPULATION) for j in range(k)}
                run = plain_jsonl if fmt == "jsonl" else plain_parquet
                seconds, peak = measure(lambda: run(plain, keys, gone))
                rows.append((fmt, k, "plain boto3 + pyarrow/json", total, seconds,
                             plain_traffic, peak, None, 1.0))
                print(f"  baseline pass: {seconds:.1f} s, {plain_traffic.read / 1e6:.0f} MB "
                      f"read, {plain_traffic.written / 1e6:.0f} MB written, peak RSS {peak} MiB",
                      flush=True)
                return seconds

            baseline = 0.0 if args.paired else plain_pass(max(ks))
            for k in ks:
                if args.paired:
                    baseline = plain_pass(k)
                people = [(j * 7919 + 13) % POPULATION for j in range(k)]
                members = {str(p): {"email": frozenset({email(p)})} for p in people}
                restore()
                connector = open_s3(server.url, s3_system(BUCKET, shared=[SPECS[fmt]]))
                traffic = Traffic(connector.bucket.client)
                found: list[int] = []

                def dsar(c: Any = connector, m: Any = members, out: Any = found) -> None:
                    out.extend(ev[0].deleted for ev in c.erase_shared_batch(m).values())

                seconds, peak = measure(dsar)
                rows.append((fmt, k, "dsar batch", total, seconds, traffic, peak, sum(found),
                             seconds / baseline))
                print(f"  K={k}: dsar {seconds:.1f} s ({seconds / baseline:.2f}x), "
                      f"{traffic.read / 1e6:.0f} MB read, {traffic.written / 1e6:.0f} MB "
                      f"written, peak RSS {peak} MiB, {sum(found)} removed", flush=True)
    finally:
        server.stop()
    print()
    print("| format | K | method | MB | seconds | MB read | MB written | peak RSS | "
          "records removed | x baseline |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for fmt, k, name, total, seconds, traffic, peak, removed, ratio in rows:
        print(f"| {fmt} | {k} | {name} | {total / 1e6:.0f} | {seconds:.1f} | "
              f"{traffic.read / 1e6:.0f} | {traffic.written / 1e6:.0f} | "
              f"{'?' if peak is None else f'{peak:.0f} MiB'} | "
              f"{'' if removed is None else removed} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
