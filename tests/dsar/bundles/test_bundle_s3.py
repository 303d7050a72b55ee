"""Bundles in S3, against moto's server over real HTTP."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from datetime import timedelta

import pytest

from dsar.bundles import (
    BundleMeta,
    StagedObject,
    build_bundle,
    issue_link,
    open_download,
    open_store,
    purge_expired,
)
from dsar.bundles.reader import check_manifest
from dsar.bundles.retention import delete_bundle, purge_orphans
from dsar.bundles.s3store import S3BundleStore
from dsar.errors import InvalidInput


def test_bundle_s3_store_and_download(s3_bucket, moto_endpoint, datamap, key, secret, now,
                                      sample_items):
    client, bucket = s3_bucket
    store = open_store(f"s3://{bucket}/exports/eu", endpoint_url=moto_endpoint,
                       region_name="us-east-1")
    info = build_bundle(BundleMeta("req-s3"), datamap, lambda: sample_items(), store, key, now)
    assert info.location == f"s3://{bucket}/exports/eu/{info.bundle_id}.zip.dsar"
    head = client.head_object(Bucket=bucket, Key=f"exports/eu/{info.bundle_id}.zip.dsar")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentLength"] == info.stored_size
    record = client.head_object(Bucket=bucket, Key=f"exports/eu/{info.bundle_id}.json")
    assert record["ServerSideEncryption"] == "AES256"
    token = issue_link(info.bundle_id, info.expires_at, secret)
    for _ in range(2):
        body = b"".join(open_download(token, store=store, key=key, secret=secret, now=now).chunks)
        assert hashlib.sha256(body).hexdigest() == info.sha256
    assert check_manifest(zipfile.ZipFile(io.BytesIO(body))) == []


def test_bundle_s3_multipart_with_kms(s3_bucket, moto_endpoint, datamap, key, secret, now):
    client, bucket = s3_bucket
    store = S3BundleStore(bucket, "big", sse="aws:kms", kms_key_id="alias/dsar-bundles",
                          client=client, part_size=5 * 1024 * 1024)
    blob = os.urandom(11 * 1024 * 1024)  # incompressible: the zip needs three parts
    items = [StagedObject("media", "avatars", "video.bin", iter([blob[:7_000_000],
                                                                  blob[7_000_000:]]))]
    info = build_bundle(BundleMeta("req-big"), datamap, lambda: items, store, key, now)
    head = client.head_object(Bucket=bucket, Key=f"big/{info.bundle_id}.zip.dsar")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/dsar-bundles")
    assert head["ContentLength"] == info.stored_size > 11 * 1024 * 1024
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=store, key=key, secret=secret, now=now).chunks)
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.read("files/media/avatars/video.bin") == blob
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == []


def test_bundle_s3_failed_upload_is_aborted(s3_bucket, datamap, key, now):
    client, bucket = s3_bucket
    store = S3BundleStore(bucket, "", client=client, part_size=5 * 1024 * 1024)

    def chunks():
        yield os.urandom(6 * 1024 * 1024)
        raise RuntimeError("staging vanished")

    with pytest.raises(RuntimeError):
        store.write_stream("x.zip.dsar", chunks())
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert not store.exists("x.zip.dsar")


def test_bundle_s3_presigned_url_for_plain_bundle(s3_bucket, moto_endpoint, datamap, now,
                                                  sample_items):
    client, bucket = s3_bucket
    store = S3BundleStore(bucket, "plain", client=client)
    info = build_bundle(BundleMeta("req-p"), datamap, lambda: sample_items(), store, None, now)
    assert not info.encrypted and info.location.endswith(".zip")
    url = store.presigned_url(f"{info.bundle_id}.zip", info.expires_at, now,
                              filename="personal-data.zip")
    assert "X-Amz-Expires=" in url or "Expires=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    assert hashlib.sha256(body).hexdigest() == info.sha256
    with pytest.raises(InvalidInput):
        store.presigned_url(f"{info.bundle_id}.zip", now - timedelta(seconds=1), now)


def test_bundle_s3_purge_expired(s3_bucket, datamap, key, now):
    client, bucket = s3_bucket
    store = S3BundleStore(bucket, "p", client=client)
    info = build_bundle(BundleMeta("r", link_ttl=timedelta(days=1)), datamap, lambda: [],
                        store, key, now)
    assert purge_expired(store, now) == []
    assert purge_expired(store, now + timedelta(days=1)) == [info.bundle_id]
    assert client.list_objects_v2(Bucket=bucket, Prefix="p/").get("KeyCount") == 0


def test_bundle_s3_orphans_and_known_bundles(s3_bucket, datamap, key, now):
    """What the fleet's sweeps do on S3: a known bundle is deleted by id (blob, then sidecar),
    an unknown one once its sidecar is past the grace, a known one is left alone."""
    client, bucket = s3_bucket
    store = S3BundleStore(bucket, "q", client=client)
    kept, known_gone, orphan = (
        build_bundle(BundleMeta(r, bundle_id=f"b_{r}"), datamap, lambda: [], store, key, now)
        for r in ("kept", "known", "orphan"))
    delete_bundle(store, known_gone.bundle_id)
    delete_bundle(store, known_gone.bundle_id)  # again: nothing missing is an error
    known = {kept.bundle_id}.intersection
    assert purge_orphans(store, known, now + timedelta(minutes=5), timedelta(hours=1)) == []
    assert purge_orphans(store, known, now + timedelta(hours=2), timedelta(hours=1)) == [
        orphan.bundle_id]
    listed = client.list_objects_v2(Bucket=bucket, Prefix="q/").get("Contents", [])
    assert sorted(o["Key"] for o in listed) == [f"q/{kept.bundle_id}.json",
                                                 f"q/{kept.bundle_id}.zip.dsar"]


def test_bundle_s3_rejects_unknown_sse(s3_bucket):
    client, bucket = s3_bucket
    with pytest.raises(InvalidInput, match="not supported"):
        S3BundleStore(bucket, client=client, sse="none")
