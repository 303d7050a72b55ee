"""Per-subject objects against moto's server over HTTP: versions, markers, uploads, Object Lock."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest

from dsar.errors import ConnectorError
from tests.s3server import RecordingSink, aws_cli, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

OBJECTS = [
    {"name": "avatars", "key": "avatars/{customer_id}.png", "category": "user.image"},
    {"name": "uploads", "prefix": "uploads/{customer_id}/", "category": "user.content"},
]
SUBJECT = {"customer_id": frozenset({"4"})}


def arrange(s3: Any, bucket: str) -> None:
    """Subject 4's avatar (3 versions, 1 marker), uploads; subject 42's lookalikes."""
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=bucket, Key="avatars/4.png", Body=body)
    s3.delete_object(Bucket=bucket, Key="avatars/4.png")
    s3.put_object(Bucket=bucket, Key="avatars/4.png", Body=b"v4", ContentType="image/png")
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"uploads/4/doc{i}.txt", Body=f"doc {i}".encode())
    s3.put_object(Bucket=bucket, Key="uploads/4/doc0.txt", Body=b"doc 0 again")
    for key in ("avatars/42.png", "avatars/4.png.bak", "uploads/42/doc.txt", "uploads/4"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"someone else")


def cli_versions(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    out = aws_cli(endpoint, "s3api", "list-object-versions", "--bucket", bucket,
                  "--prefix", prefix)
    return sorted(v["Key"] for v in out.get("Versions", []) + (out.get("DeleteMarkers") or []))


@pytest.mark.parametrize("page_size", [2, 1000])
def test_erase_removes_every_version_marker_and_upload(
    moto_endpoint: str, s3: Any, make_bucket: Any, page_size: int
) -> None:
    bucket = make_bucket(versioned=True)
    arrange(s3, bucket)
    for i in range(3):
        s3.create_multipart_upload(Bucket=bucket, Key=f"uploads/4/big{i}.bin")
    s3.create_multipart_upload(Bucket=bucket, Key="uploads/42/big.bin")
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS), page_size=page_size)

    before = {e.collection: e for e in connector.count(SUBJECT).evidence}
    assert before["avatars"].found == 1
    assert before["avatars"].counts == {"versions": 4, "delete_markers": 1,
                                        "uploads_in_progress": 0}
    assert before["uploads"].found == 5
    assert before["uploads"].counts["uploads_in_progress"] == 3

    result = {e.collection: e for e in connector.erase(SUBJECT).evidence}
    avatars, uploads = result["avatars"], result["uploads"]
    assert avatars.counts == {"versions_deleted": 4, "markers_removed": 1, "uploads_aborted": 0,
                              "records_redacted": 0, "objects_retained": 0}
    assert uploads.counts["versions_deleted"] == 6
    assert uploads.counts["uploads_aborted"] == 3
    assert avatars.remaining == uploads.remaining == 0
    assert len(avatars.item_hashes) == 5 and all(len(h) == 64 for h in avatars.item_hashes)

    # Checked independently, with the AWS CLI against the same endpoint.
    assert cli_versions(moto_endpoint, bucket) == [
        "avatars/4.png.bak", "avatars/42.png", "uploads/4", "uploads/42/doc.txt"]
    uploads_left = aws_cli(moto_endpoint, "s3api", "list-multipart-uploads", "--bucket", bucket)
    assert [u["Key"] for u in uploads_left.get("Uploads") or []] == ["uploads/42/big.bin"]

    again = connector.erase(SUBJECT).evidence
    assert all(sum(e.counts.values()) == 0 and e.remaining == 0 for e in again)


def test_erase_in_unversioned_bucket(moto_endpoint: str, s3: Any, make_bucket: Any) -> None:
    bucket = make_bucket()
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"uploads/4/f{i}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="uploads/42/f", Body=b"x")
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS), page_size=3)
    ev = {e.collection: e for e in connector.erase(SUBJECT).evidence}
    assert ev["uploads"].counts["versions_deleted"] == 4
    assert ev["uploads"].deleted == 4 and ev["uploads"].remaining == 0
    assert cli_versions(moto_endpoint, bucket) == ["uploads/42/f"]


def test_collect_streams_objects_with_digest(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket(versioned=True)
    arrange(s3, bucket)
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS),
                        page_size=2, chunk_size=3)
    sink = RecordingSink()
    ev = {e.collection: e for e in connector.collect(SUBJECT, sink).evidence}
    assert sorted(sink.objects) == ["avatars/4.png"] + [f"uploads/4/doc{i}.txt" for i in range(5)]
    meta, content = sink.objects["avatars/4.png"]
    assert content == b"v4" and meta["content_type"] == "image/png"
    assert ev["avatars"].digest == hashlib.sha256(b"v4").hexdigest()
    expected = b"".join(sink.objects[f"uploads/4/doc{i}.txt"][1] for i in range(5))
    assert ev["uploads"].digest == hashlib.sha256(expected).hexdigest()
    assert ev["uploads"].found == ev["uploads"].collected == 5
    assert len(set(ev["uploads"].item_hashes)) == 5


def test_values_from_other_systems_fill_templates(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    for cid in ("7", "8", "9"):
        s3.put_object(Bucket=bucket, Key=f"avatars/{cid}.png", Body=b"x")
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS))
    ev = connector.erase({"customer_id": frozenset({"7", "9"}), "email": frozenset({"a@b.c"})})
    assert ev.evidence[0].deleted == 2
    assert cli_versions(moto_endpoint, bucket) == ["avatars/8.png"]


def lock_bucket(s3: Any, make_bucket: Any) -> str:
    bucket = make_bucket(object_lock=True)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    s3.put_object(Bucket=bucket, Key="uploads/4/governed", Body=b"g",
                  ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=bucket, Key="uploads/4/complied", Body=b"c",
                  ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=bucket, Key="uploads/4/held", Body=b"h",
                  ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket=bucket, Key="uploads/4/expired", Body=b"e",
                  ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))
    s3.put_object(Bucket=bucket, Key="uploads/4/free", Body=b"f")
    return bucket


def test_object_lock_is_reported_retained_not_bypassed(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = lock_bucket(s3, make_bucket)
    import time

    time.sleep(2.5)  # let the short GOVERNANCE retention on 'expired' run out
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS[1:]))
    ev = connector.erase(SUBJECT).evidence[0]
    assert ev.counts["objects_retained"] == ev.retained == 3
    assert ev.counts["versions_deleted"] == 2  # 'expired' and 'free'
    assert ev.remaining == 0
    assert ev.retained_ground == (
        "S3 Object Lock: COMPLIANCE retention, GOVERNANCE retention, legal hold")
    assert ev.retained_period is not None and ev.retained_period.startswith("until 20")
    assert "legal hold" in ev.retained_period
    assert cli_versions(moto_endpoint, bucket) == [
        "uploads/4/complied", "uploads/4/governed", "uploads/4/held"]
    # The lock headers the connector reads are the object's own.
    head = aws_cli(moto_endpoint, "s3api", "head-object", "--bucket", bucket,
                   "--key", "uploads/4/complied")
    assert head["ObjectLockMode"] == "COMPLIANCE"

    again = connector.erase(SUBJECT).evidence[0]
    assert again.counts["versions_deleted"] == 0 and again.retained == 3


def test_lock_with_retain_action_deletes_nothing(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="uploads/4/invoice.pdf", Body=b"x")
    spec = {**OBJECTS[1], "erasure": {"action": "retain",
                                      "retain": {"ground": "Art. 17(3)(b)", "period": "10 years"}}}
    ev = open_s3(moto_endpoint, s3_system(bucket, objects=[spec])).erase(SUBJECT).evidence[0]
    assert (ev.found, ev.retained, ev.deleted, ev.remaining) == (1, 1, 0, 0)
    assert ev.retained_ground == "Art. 17(3)(b)"
    assert cli_versions(moto_endpoint, bucket) == ["uploads/4/invoice.pdf"]


def test_bad_template_is_refused(moto_endpoint: str, make_bucket: Any) -> None:
    spec = {"name": "uploads", "prefix": "uploads/{customer_id}", "category": "c"}
    with pytest.raises(ConnectorError) as err:
        open_s3(moto_endpoint, s3_system(make_bucket(), objects=[spec]))
    assert err.value.code == "s3_bad_template"
