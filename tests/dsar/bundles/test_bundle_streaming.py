"""Streaming properties: memory stays flat, damage mid-download is detected, big listings are
summarised."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile

import pytest

from dsar.bundles import (
    BundleCorrupted,
    BundleMeta,
    RowsBatch,
    StagedObject,
    build_bundle,
    issue_link,
    open_download,
)
from dsar.bundles.reader import check_manifest


def _big_items(object_mb: int, rows: int):
    block = os.urandom(1024 * 1024)
    for start in range(0, rows, 500):
        yield RowsBatch("crm", "invoice",
                        [{"id": i, "text": "ü" * 50} for i in range(start, start + 500)])
    for n in range(2):
        yield StagedObject("media", "avatars", f"clip-{n}.bin",
                           (block for _ in range(object_mb // 2)))


def test_bundle_memory_is_flat(datamap, local_store, key, secret, now):
    """64 MB of objects and 5,000 rows go through with a Python heap peak far below that."""
    tracemalloc.start()
    try:
        info = build_bundle(BundleMeta("r"), datamap, lambda: _big_items(64, 5000),
                            local_store, key, now)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size > 64 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    token = issue_link(info.bundle_id, info.expires_at, secret)
    download = open_download(token, store=local_store, key=key, secret=secret, now=now)
    spooled = io.BytesIO()
    for chunk in download.chunks:
        spooled.write(chunk)
    assert check_manifest(zipfile.ZipFile(spooled)) == []


def test_bundle_damage_late_in_the_file_stops_the_download(datamap, local_store, key, secret,
                                                          now):
    info = build_bundle(BundleMeta("r"), datamap, lambda: _big_items(4, 10), local_store, key,
                        now)
    path = local_store.root / f"{info.bundle_id}.zip.dsar"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    token = issue_link(info.bundle_id, info.expires_at, secret)
    download = open_download(token, store=local_store, key=key, secret=secret, now=now)
    with pytest.raises(BundleCorrupted):
        for _ in download.chunks:
            pass


def test_bundle_many_objects_are_listed_up_to_a_limit(datamap, local_store, key, secret, now):
    items = [StagedObject("media", "avatars", f"a/{n}.txt", iter([b"x"])) for n in range(30)]
    meta = BundleMeta("r", listed_objects=5)
    info = build_bundle(meta, datamap, lambda: items, local_store, key, now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=local_store, key=key, secret=secret,
                                  now=now).chunks)
    archive = zipfile.ZipFile(io.BytesIO(body))
    page = archive.read("report.html").decode()
    assert "…and 25 more files" in page and "a/4.txt" in page and "a/5.txt" not in page
    assert len([n for n in archive.namelist() if n.startswith("files/")]) == 30


def test_bundle_download_close_releases_the_file(datamap, local_store, key, secret, now):
    info = build_bundle(BundleMeta("r"), datamap, lambda: _big_items(4, 10), local_store, key,
                        now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    download = open_download(token, store=local_store, key=key, secret=secret, now=now)
    next(download.chunks)
    download.close()
    assert all(getattr(s, "gi_frame", None) is None for s in download.sources)


def test_spool_memory_budget_holds_across_many_collections():
    """Forty collections of about half a MiB each: rows spill to disk once all of them together
    pass the budget, so memory does not grow with the number of collections; every row reads
    back."""
    from dsar.bundles.spool import MEMORY_ROWS, Spool

    tracemalloc.start()
    try:
        with Spool() as spool:
            for c in range(40):
                spool.add(RowsBatch("crm", f"table{c}",
                                    [{"id": i, "text": "x" * 500} for i in range(1000)]))
            peak = tracemalloc.get_traced_memory()[1]
            read = [sum(1 for _ in spool.row_lines(coll)) for coll in spool.collections.values()]
    finally:
        tracemalloc.stop()
    assert read == [1000] * 40
    assert peak < 8 * MEMORY_ROWS, f"peak {peak / 2**20:.1f} MiB"


def test_spool_keeps_small_data_in_memory_and_encrypts_what_it_spills(tmp_path, monkeypatch):
    """Under the budget nothing is written to disk; past it, mid-batch, every collection's
    rows move to files that hold no plaintext, and all rows read back in their order."""
    from dsar.bundles import spool as spool_module

    monkeypatch.setattr(spool_module, "MEMORY_ROWS", 4096)
    secret = "needle-4711@example.com"
    written: list = []
    real = spool_module.tempfile.TemporaryFile

    def recording(*args, **kwargs):
        handle = real(*args, **kwargs)
        written.append(handle)
        return handle

    monkeypatch.setattr(spool_module.tempfile, "TemporaryFile", recording)
    with spool_module.Spool(tmp_path) as spool:
        spool.add(RowsBatch("crm", "contacts", [{"id": 1, "email": secret}]))
        spool.add(RowsBatch("shop", "orders", [{"id": i, "note": secret} for i in range(5)]))
        assert written == [] and list(tmp_path.iterdir()) == []
        spool.add(RowsBatch("shop", "orders",
                            [{"id": i, "note": secret} for i in range(5, 200)]))
        spool.add(RowsBatch("crm", "contacts", [{"id": 2, "email": secret}]))
        assert len(written) == 2
        for handle in written:
            handle.seek(0)
            assert secret.encode() not in handle.read()
        by_name = {c.collection: c for c in spool.collections.values()}
        orders = [json.loads(line)["id"] for line in spool.row_lines(by_name["orders"])]
        contacts = [json.loads(line)["id"] for line in spool.row_lines(by_name["contacts"])]
    assert orders == list(range(200)) and contacts == [1, 2]
