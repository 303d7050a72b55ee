"""Parallel range reads: one large object read as byte ranges by a few threads, in order.

A single GET stream is limited by one connection (and, on AWS, by per-connection throughput);
reading ``range_size`` pieces on ``range_workers`` connections at once is how the AWS SDKs'
transfer managers reach the network's limit. The pieces are yielded in order, and at most
``2 * range_workers`` of them are in flight or waiting, so memory stays bounded by
``2 * range_workers * range_size`` whatever the object's size.

Every range after the first is requested with ``IfMatch`` = the ETag of the first response
(and the same ``VersionId``), so all pieces come from one version of the object: if a writer
replaces it midway the read fails with 412 instead of mixing two versions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


def range_header(start: int, size: int, total: int) -> str:
    return f"bytes={start}-{min(start + size, total) - 1}"


def read_ranges(
    client: Any, params: dict[str, Any], first: dict[str, Any], total: int, *,
    range_size: int, workers: int,
) -> Iterator[bytes]:
    """The object's bytes from ``range_size`` on (the first range is ``first``'s body).

    ``params`` are the GET parameters (Bucket, Key, maybe VersionId); ``first`` the response
    to the first ranged GET, whose ETag pins the version.
    """
    yield first["Body"].read()
    pinned = {**params, "IfMatch": first["ETag"]}
    if first.get("VersionId") and first["VersionId"] != "null":
        pinned["VersionId"] = first["VersionId"]

    def fetch(start: int) -> bytes:
        body = client.get_object(**pinned, Range=range_header(start, range_size, total))["Body"]
        try:
            return body.read()
        finally:
            body.close()

    starts = iter(range(range_size, total, range_size))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-range") as pool:
        window: deque[Future[bytes]] = deque()
        try:
            for start in starts:
                window.append(pool.submit(fetch, start))
                if len(window) >= 2 * workers:
                    break
            while window:
                piece = window.popleft().result()
                for start in starts:
                    window.append(pool.submit(fetch, start))
                    break
                yield piece
        finally:
            for future in window:
                future.cancel()
