"""Building a bundle end to end into a local folder, then reading it back as the person would."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from dsar.bundles import (
    BundleMeta,
    LocalBundleStore,
    RowsBatch,
    StagedObject,
    build_bundle,
    issue_link,
    open_download,
    open_store,
    purge_expired,
)
from dsar.bundles.reader import check_manifest, collection, csv_rows, json_rows, load_data
from dsar.errors import InvalidInput


def _download(store, info, key, secret, now) -> bytes:
    token = issue_link(info.bundle_id, info.expires_at, secret)
    return b"".join(open_download(token, store=store, key=key, secret=secret, now=now).chunks)


@pytest.fixture
def built(datamap, local_store, key, secret, now, sample_items):
    meta = BundleMeta(request_id="req-123", timezone="Europe/Paris", preview_rows=10)
    info = build_bundle(meta, datamap, lambda: sample_items(), local_store, key, now)
    data = _download(local_store, info, key, secret, now)
    return info, zipfile.ZipFile(io.BytesIO(data)), data


def test_bundle_digest_and_info(built, local_store, now):
    info, _, data = built
    assert hashlib.sha256(data).hexdigest() == info.sha256
    assert len(data) == info.size
    assert info.location.startswith("file://") and info.location.endswith(".zip.dsar")
    assert info.created_at == now and info.created_at.tzinfo is not None
    assert str(info.created_at.tzinfo) == "Europe/Paris"
    stored = Path(info.location.removeprefix("file://")).read_bytes()
    assert len(stored) == info.stored_size
    assert b"PK" not in stored[:64] and b"zo\xc3\xab" not in stored  # encrypted at rest


def test_bundle_members(built):
    _, archive, _ = built
    names = archive.namelist()
    assert names[0] == "report.html" and names[1] == "data.json" and names[-1] == "manifest.json"
    assert "csv/crm/customer.csv" in names and "csv/crm/invoice.csv" in names
    assert "files/media/avatars/avatars/42/me.png" in names


def test_bundle_zip_slip_names_neutralised(built):
    _, archive, _ = built
    for name in archive.namelist():
        assert not name.startswith(("/", "\\")) and ":" not in name
        assert ".." not in name.split("/") and "\\" not in name
    files = [n for n in archive.namelist() if n.startswith("files/")]
    assert "files/media/avatars/etc/passwd" in files
    assert "files/media/avatars/abs/path.txt" in files
    assert "files/media/avatars/C_/Windows/evil.bat" in files
    assert "files/media/avatars/a/b" in files
    assert len(files) == len(set(files)) == 5


def test_bundle_data_json_round_trip(built, customer_rows, invoice_rows):
    _, archive, _ = built
    data = load_data(archive)
    assert data["format"] == "dsar-export/1"
    assert data["request"] == {"id": "req-123", "kind": "access"}
    assert json_rows(collection(data, "crm", "customer")) == customer_rows
    assert json_rows(collection(data, "crm", "invoice")) == invoice_rows(45)
    customer = collection(data, "crm", "customer")
    assert customer["types"]["created_at"] == "datetime" and customer["types"]["raw"] == "bytes"
    assert customer["row_count"] == 2 and customer["csv"] == "csv/crm/customer.csv"
    assert customer["info"]["retention"] == "6 years after the last order"
    assert {c["label"] for c in customer["categories"]} >= {"Email address", "First name"}
    avatars = collection(data, "media", "avatars")
    assert avatars["objects"][0]["name"] == "avatars/42/me.png"
    assert avatars["objects"][0]["metadata"] == {"content-type": "image/png"}


def test_bundle_csv_round_trip(built, customer_rows, invoice_rows):
    _, archive, _ = built
    data = load_data(archive)
    customer = collection(data, "crm", "customer")
    columns, rows = csv_rows(archive, customer)
    assert columns == list(customer_rows[0])
    assert rows == customer_rows
    assert csv_rows(archive, collection(data, "crm", "invoice"))[1] == invoice_rows(45)
    raw = archive.read("csv/crm/customer.csv").decode("utf-8")
    assert raw.startswith('"id","email"') and "\r\n" in raw


def test_bundle_csv_union_of_columns_in_first_seen_order(datamap, local_store, key, secret, now):
    items = [RowsBatch("crm", "customer", [{"b": 1, "a": 2}]),
             RowsBatch("crm", "customer", [{"c": "x", "a": None}, {"b": 3}])]
    info = build_bundle(BundleMeta("r"), datamap, lambda: items, local_store, key, now)
    archive = zipfile.ZipFile(io.BytesIO(_download(local_store, info, key, secret, now)))
    coll = collection(load_data(archive), "crm", "customer")
    columns, rows = csv_rows(archive, coll)
    assert columns == ["b", "a", "c"]
    assert rows == [{"b": 1, "a": 2, "c": None}, {"b": None, "a": None, "c": "x"},
                    {"b": 3, "a": None, "c": None}]


def test_bundle_manifest_matches_files(built):
    _, archive, _ = built
    assert check_manifest(archive) == []
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["request_id"] == "req-123" and manifest["created_at"].endswith("+02:00")
    entry = next(e for e in manifest["files"] if e["path"] == "files/media/avatars/etc/passwd")
    assert entry["sha256"] == hashlib.sha256(b"not really").hexdigest() and entry["size"] == 10


def test_bundle_report_is_self_contained(built):
    _, archive, _ = built
    page = archive.read("report.html").decode()
    for external in ("<script", "<link", "src=", "@import", "url(", "<img", "<iframe"):
        assert external not in page
    assert "Content-Security-Policy" in page and 'lang="en"' in page
    assert "2024-05-01 14:00 CEST (UTC+02:00)" in page and "2024-05-31 14:00 CEST" in page
    assert "first 10 of" in page and "csv/crm/invoice.csv" in page  # large table summarised
    assert "zoë.ångström@example.org" in page
    assert "&lt;" not in page.split("<body>")[0]


def test_bundle_rebuild_with_same_id_replaces_it(datamap, local_store, key, now, sample_items):
    meta = BundleMeta("r", bundle_id="req-r-bundle")
    first = build_bundle(meta, datamap, lambda: sample_items(), local_store, key, now)
    second = build_bundle(meta, datamap, lambda: sample_items(), local_store, key, now)
    assert first.location == second.location
    assert sorted(local_store.names()) == ["req-r-bundle.json", "req-r-bundle.zip.dsar"]


def test_bundle_empty_subject(datamap, local_store, key, secret, now):
    info = build_bundle(BundleMeta("r"), datamap, lambda: [], local_store, key, now)
    archive = zipfile.ZipFile(io.BytesIO(_download(local_store, info, key, secret, now)))
    assert archive.namelist() == ["report.html", "data.json", "data.schema.json",
                                  "manifest.json"]
    assert load_data(archive)["collections"] == []
    assert "We found no personal data" in archive.read("report.html").decode()


def test_bundle_spool_is_removed(datamap, local_store, key, now, tmp_path, sample_items):
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    build_bundle(BundleMeta("r"), datamap, lambda: sample_items(), local_store, key, now,
                 spool_dir=spool_dir)
    assert list(spool_dir.iterdir()) == []


def test_bundle_spool_removed_when_items_fail(
    datamap, local_store, key, now, tmp_path, customer_rows
):
    def broken():
        yield RowsBatch("crm", "customer", customer_rows)
        yield StagedObject("media", "avatars", "x", iter([b"1", RuntimeError]))  # type: ignore

    with pytest.raises(TypeError):
        build_bundle(BundleMeta("r"), datamap, broken, local_store, key, now,
                     spool_dir=tmp_path)
    assert [p for p in tmp_path.iterdir() if p.name != "bundles"] == []
    assert list(local_store.names()) == []


def test_bundle_purge_expired(datamap, local_store, key, now):
    from datetime import timedelta

    short = build_bundle(BundleMeta("a", link_ttl=timedelta(days=1)), datamap, lambda: [],
                         local_store, key, now)
    long = build_bundle(BundleMeta("b", link_ttl=timedelta(days=30)), datamap, lambda: [],
                        local_store, key, now)
    local_store.write_stream("orphan.zip.dsar", [b"left behind"])
    assert purge_expired(local_store, now) == ["orphan"]
    assert sorted(purge_expired(local_store, now + timedelta(days=2))) == [short.bundle_id]
    assert sorted(local_store.names()) == [f"{long.bundle_id}.json", f"{long.bundle_id}.zip.dsar"]
    assert purge_expired(local_store, now + timedelta(days=31)) == [long.bundle_id]
    assert list(local_store.names()) == []


def test_bundle_open_store_urls(tmp_path):
    assert isinstance(open_store(str(tmp_path / "a")), LocalBundleStore)
    store = open_store((tmp_path / "b").as_uri())
    assert isinstance(store, LocalBundleStore) and store.root == tmp_path / "b"
    with pytest.raises(InvalidInput, match="unsupported scheme"):
        open_store("ftp://host/x")
    with pytest.raises(InvalidInput):
        open_store("file://otherhost/x")


def test_bundle_local_needs_a_key(datamap, local_store, now):
    with pytest.raises(InvalidInput, match="must be encrypted by us"):
        build_bundle(BundleMeta("r"), datamap, lambda: [], local_store, None, now)
    with pytest.raises(InvalidInput, match="32 bytes"):
        build_bundle(BundleMeta("r"), datamap, lambda: [], local_store, b"short", now)


def test_bundle_only_the_pending_record_skips_the_disk_flush(
        datamap, local_store, key, now, sample_items, monkeypatch):
    """The blob and the completed record are forced to disk before the build returns; the
    record written while the blob is being made is not (its loss in a crash is harmless)."""
    import dsar.bundles.store as store_module

    flushed: list[int] = []
    monkeypatch.setattr(store_module.os, "fsync", lambda fd: flushed.append(fd))
    writes: list[tuple[str, bool]] = []
    real = local_store.write_stream

    def recording(name, chunks, *, durable=True):
        writes.append((name.split(".", 1)[1], durable))
        return real(name, chunks, durable=durable)

    monkeypatch.setattr(local_store, "write_stream", recording)
    build_bundle(BundleMeta("r1"), datamap, sample_items, local_store, key, now)
    assert writes == [("json", False), ("zip.dsar", True), ("json", True)]
    assert len(flushed) == 2
