"""Parallel range reads: one large object read as byte ranges by a few threads, in order.

A single GET stream is limited by one connection (and, on AWS, by per-connection throughput);
reading ``range_size`` pieces on ``range_workers`` connections at once is how the AWS SDKs'
transfer managers reach the network's limit. The pieces are yielded in order, and at most
``range_workers`` of them are in flight or waiting, so memory stays bounded by
``range_workers * range_size`` whatever the object's size.

Every range after the first is requested with ``IfMatch`` = the ETag of the first response
(and the same ``VersionId``), so all pieces come from one version of the object: if a writer
replaces it midway the read fails with 412 instead of mixing two versions.
"""

from __future__ import annotations

import queue
import threading
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
                if len(window) >= workers:
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


def read_ahead(chunks: Iterator[bytes], depth: int) -> Iterator[bytes]:
    """``chunks`` read by a background thread up to ``depth`` pieces ahead of the consumer.

    The socket read releases the GIL, so the next piece arrives while this one is searched;
    an error in the reader is raised here, and closing this generator stops the reader.
    """
    pieces: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[bytes | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                pieces.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((None, None))
        except BaseException as exc:  # handed to the consumer
            put((None, exc))

    thread = threading.Thread(target=reader, name="s3-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = pieces.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        thread.join()
