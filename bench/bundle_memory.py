"""Memory and throughput of building a bundle, beside plain stream-zip of the same data.

    python -m bench.bundle_memory --mb 1024 [--out DIR] [--no-tracemalloc]

A synthetic subject with about ``--mb`` MB of data (30 % rows in three tables, 70 % objects of
incompressible bytes) is built into a bundle in a local folder with :func:`build_bundle`
(spool, zip, data.json + CSV, AES-GCM, store). The baseline zips the same rows (as JSON lines)
and objects with stream-zip alone (ZIP_64, the bundle's deflate level) into a file. Each phase
runs in its own child process so peak RSS (``ru_maxrss``) and the tracemalloc peak belong to
that phase.
Throughput is of the input payload (row JSON bytes + object bytes) per wall-clock second, from
a run without tracemalloc; the tracemalloc peak comes from a second, traced run of the phase.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

ROW_SHARE = 0.3
OBJECT_SIZE = 8 * 1024 * 1024
BATCH = 1000
TABLES = ("customer", "order", "event")
CHUNK = 1024 * 1024


def _pool(table: int, size: int = 997) -> list[dict[str, Any]]:
    """Varied base rows (unicode text, dates, decimals, booleans, nulls), made once."""
    rng = random.Random(table)
    base = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    words = ["Zoë", "Łukasz", "日本", "café", "naïve", "Ørsted", "plain", "text", "München"]
    return [
        {
            "name": " ".join(rng.choices(words, k=3)),
            "created_at": base + dt.timedelta(seconds=rng.randrange(10**8)),
            "amount": Decimal(rng.randrange(10**6)) / 100,
            "active": rng.random() < 0.5,
            "note": " ".join(rng.choices(words, k=20)) if rng.random() < 0.9 else None,
        }
        for _ in range(size)
    ]


def _rows(table: int, count: int) -> Iterator[list[dict[str, Any]]]:
    """``count`` rows in batches; cheap to make so the measurement is of the pipeline."""
    pool = _pool(table)
    for start in range(0, count, BATCH):
        yield [
            {"id": i, "email": f"person{i}@example.org", **pool[i % len(pool)]}
            for i in range(start, min(count, start + BATCH))
        ]


def _row_bytes() -> int:
    sample = next(_rows(0, 200))
    return sum(len(json.dumps(r, default=str)) + 1 for r in sample) // len(sample)


def _object_chunks(index: int, size: int) -> Iterator[bytes]:
    rng = random.Random(10_000 + index)
    for offset in range(0, size, CHUNK):
        yield rng.randbytes(min(CHUNK, size - offset))


def plan(mb: int) -> tuple[int, int]:
    """(rows per table, number of objects) for about ``mb`` MB of payload."""
    total = mb * 1024 * 1024
    rows = int(total * ROW_SHARE / _row_bytes() / len(TABLES))
    objects = max(1, round(total * (1 - ROW_SHARE) / OBJECT_SIZE))
    return rows, objects


def run_dsar(mb: int, out: Path) -> dict[str, Any]:
    from dsar.bundles import BundleMeta, RowsBatch, StagedObject, build_bundle, open_store
    from dsar.datamap.schema import DataMap

    rows, objects = plan(mb)
    payload = 0

    def items() -> Iterator[Any]:
        nonlocal payload
        for t, table in enumerate(TABLES):
            for batch in _rows(t, rows):
                payload += sum(len(json.dumps(r, default=str)) + 1 for r in batch)
                yield RowsBatch("shop", table, batch)
        for i in range(objects):
            payload += OBJECT_SIZE
            chunks = _object_chunks(i, OBJECT_SIZE)
            yield StagedObject("media", "uploads", f"upload-{i}.bin", chunks)

    datamap = DataMap.model_validate({"controller": {"name": "Bench Ltd"}, "systems": [
        {"name": "shop", "kind": "sql", "url_env": "SHOP_URL",
         "tables": [{"name": t} for t in TABLES]},
        {"name": "media", "kind": "s3", "bucket": "media",
         "objects": [{"name": "uploads", "prefix": "u/{id}/", "category": "content.media"}]},
    ]})
    store = open_store(str(out / "store"))
    (out / "spool").mkdir(exist_ok=True)
    info = build_bundle(BundleMeta("bench"), datamap, items, store, os.urandom(32),
                        dt.datetime.now(dt.UTC), spool_dir=out / "spool")
    return {"payload": payload, "output": info.stored_size, "zip": info.size}


def run_baseline(mb: int, out: Path) -> dict[str, Any]:
    from stream_zip import ZIP_64, stream_zip

    from dsar.bundles.zip_stream import COMPRESS_LEVEL

    rows, objects = plan(mb)
    payload = 0
    when = dt.datetime.now(dt.UTC)

    def lines(table: int) -> Iterator[bytes]:
        nonlocal payload
        for batch in _rows(table, rows):
            data = "".join(json.dumps(r, default=str) + "\n" for r in batch).encode()
            payload += len(data)
            yield data

    def objs(i: int) -> Iterator[bytes]:
        nonlocal payload
        for chunk in _object_chunks(i, OBJECT_SIZE):
            payload += len(chunk)
            yield chunk

    def members() -> Iterator[Any]:
        for t, table in enumerate(TABLES):
            yield f"{table}.jsonl", when, 0o100644, ZIP_64, lines(t)
        for i in range(objects):
            yield f"files/upload-{i}.bin", when, 0o100644, ZIP_64, objs(i)

    size = 0
    with open(out / "baseline.zip", "wb") as handle:
        for chunk in stream_zip(members(), get_compressobj=lambda: zlib.compressobj(
                wbits=-zlib.MAX_WBITS, level=COMPRESS_LEVEL)):
            handle.write(chunk)
            size += len(chunk)
    return {"payload": payload, "output": size, "zip": size}


def child(phase: str, mb: int, out: Path, trace: bool) -> None:
    """Run one phase and print its figures as one JSON line."""
    if phase == "dsar":
        import dsar.bundles  # noqa: F401 - imports are not the pipeline's memory
    else:
        import stream_zip  # noqa: F401
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    result = (run_dsar if phase == "dsar" else run_baseline)(mb, out)
    result["seconds"] = time.perf_counter() - start
    result["traced_peak"] = tracemalloc.get_traced_memory()[1] if trace else None
    result["rss_before_kb"] = rss_before
    result["rss_peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


def _measure(phase: str, mb: int, work: Path, trace: bool) -> dict[str, Any]:
    """One phase in a fresh child process (so ru_maxrss is that phase's own peak)."""
    folder = work / f"{phase}-{'traced' if trace else 'timed'}"
    folder.mkdir()
    cmd = [sys.executable, "-m", "bench.bundle_memory", "--phase", phase, "--mb", str(mb),
           "--out", str(folder)]
    if not trace:
        cmd.append("--no-tracemalloc")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=1024, help="payload size in MB (default 1024)")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--no-tracemalloc", action="store_true",
                        help="skip the second, traced run of each phase")
    parser.add_argument("--phase", choices=["dsar", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    trace = not args.no_tracemalloc
    if args.phase:
        child(args.phase, args.mb, args.out, trace)
        return
    with tempfile.TemporaryDirectory(prefix="dsar-bench-", dir=args.out) as work:
        rows, objects = plan(args.mb)
        print(f"synthetic subject: {rows:,} rows x {len(TABLES)} tables + "
              f"{objects} objects of {_mib(OBJECT_SIZE)}  (~{args.mb} MB)")
        results: dict[str, dict[str, Any]] = {}
        for phase in ("baseline", "dsar"):
            results[phase] = _measure(phase, args.mb, Path(work), trace=False)
            if trace:  # a second run: tracemalloc slows allocation-heavy code several-fold
                traced = _measure(phase, args.mb, Path(work), trace=True)
                results[phase]["traced_peak"] = traced["traced_peak"]
        print(f"{'':10} {'payload':>12} {'output':>12} {'seconds':>8} {'MB/s':>8} "
              f"{'peak RSS':>12} {'after import':>12} {'tracemalloc peak':>17}")
        for phase, r in results.items():
            rate = r["payload"] / 1e6 / r["seconds"]
            traced = _mib(r["traced_peak"]) if r["traced_peak"] is not None else "off"
            print(f"{phase:10} {_mib(r['payload']):>12} {_mib(r['output']):>12} "
                  f"{r['seconds']:8.1f} {rate:8.1f} {_mib(r['rss_peak_kb'] * 1024):>12} "
                  f"{_mib(r['rss_before_kb'] * 1024):>12} {traced:>17}")


if __name__ == "__main__":
    main()
