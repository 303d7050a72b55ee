"""A 64 MB shared file is collected and rewritten in flat memory (tracemalloc peak).

Flat means bounded by the connector's buffers, whatever the file's size: the chunks read
ahead, the block being searched and its lower-cased copy, the spool's memory part, the upload's
buffers.
"""

from __future__ import annotations

import gc
import hashlib
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.s3server import NullSink, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

T = TypeVar("T")
SIZE = 64 * 1024 * 1024
SUBJECT = {"email": frozenset({"subject@example.com"})}
SPEC = {"name": "events", "prefix": "events/", "format": "jsonl", "match": {"email": "user.email"}}


def write_events(path: Path, size: int, every: int = 50_000) -> int:
    """JSONL of ~200-byte events; every ``every``-th belongs to the subject. Returns their count."""
    hits = 0
    with path.open("wb") as out:
        written, i = 0, 0
        while written < size:
            email = "subject@example.com" if i % every == 7 else f"user{i}@example.com"
            hits += email.startswith("subject")
            line = json.dumps({"i": i, "user": {"email": email, "id": i % 977},
                               "event": "page_view", "path": f"/shop/item/{i % 5000}",
                               "agent": "Mozilla/5.0 (X11; Linux x86_64)" * 2}) + "\n"
            data = line.encode()
            out.write(data)
            written += len(data)
            i += 1
    return hits


def peak_of(fn: Callable[[], T]) -> tuple[T, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_collect_and_erase_stay_flat(
    moto_endpoint: str, s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    bucket = make_bucket()
    source = tmp_path / "events.jsonl"
    hits = write_events(source, SIZE)
    s3.upload_file(str(source), bucket, "events/big.jsonl")
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[SPEC]))
    s = connector.bucket.settings
    bound = (s.read_ahead + 8) * s.chunk_size + s.spool_memory
    assert bound < SIZE / 4  # the file is far larger than the buffers
    connector.count({"email": frozenset({"nobody@example.com"})})  # warm the client up

    sink = NullSink()
    result, collect_peak = peak_of(lambda: connector.collect(SUBJECT, sink))
    assert result.evidence[0].found == sink.rows == hits
    assert collect_peak < bound, f"collect peaked at {collect_peak / 2**20:.1f} MiB"

    result, erase_peak = peak_of(lambda: connector.erase(SUBJECT))
    ev = result.evidence[0]
    assert ev.counts["records_redacted"] == hits and ev.remaining == 0
    assert erase_peak < bound, f"erase peaked at {erase_peak / 2**20:.1f} MiB"

    # Every other line is untouched: compare digests of the expected and the stored file.
    expected = hashlib.sha256()
    with source.open("rb") as f:
        for line in f:
            if b"subject@example.com" not in line:
                expected.update(line)
    stored = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key="events/big.jsonl")["Body"].iter_chunks(1 << 20):
        stored.update(chunk)
    assert stored.hexdigest() == expected.hexdigest()
