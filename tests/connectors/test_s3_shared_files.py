"""Shared record files against moto's server over HTTP: scan, collect and rewrite."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from typing import Any

import pytest

from dsar.errors import ConnectorError
from tests.s3server import RecordingSink, aws_cli, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

SUBJECT = {"email": frozenset({"ann@example.com"}), "customer_id": frozenset({"4"})}


def shared(fmt: str, prefix: str = "events/", **extra: Any) -> dict[str, Any]:
    match = {"email": "user.email", "customer_id": "customer_id"}
    if fmt == "csv":
        match = {"email": "email", "customer_id": "customer_id"}
    return {"name": "events", "prefix": prefix, "format": fmt, "match": match, **extra}


JSONL = (
    b'{"customer_id": 1, "user": {"email": "bob@example.com"}, "n": 1}\n'
    b'{"customer_id": 4, "user": {"email": "x@example.com"}, "n": 2}\n'
    b"\n"
    b'{"customer_id": 9, "user": {"email": "ANN@example.com"}, "n": 3}\n'
    b'{"customer_id": 42,   "user": {"email": "carl@example.com"},  "n": 4}\n'
    b'{"customer_id": "4", "user": [{"email": "z"}], "n": 5}'
)
JSONL_KEPT = (
    b'{"customer_id": 1, "user": {"email": "bob@example.com"}, "n": 1}\n'
    b"\n"
    b'{"customer_id": 42,   "user": {"email": "carl@example.com"},  "n": 4}\n'
)


def cli_get(endpoint: str, bucket: str, key: str, tmp_path: Any) -> bytes:
    out = tmp_path / "cli-get.bin"
    aws_cli(endpoint, "s3api", "get-object", "--bucket", bucket, "--key", key, str(out))
    return out.read_bytes()


@pytest.mark.parametrize("page_size", [1, 1000])
def test_jsonl_collect_and_erase_keep_other_bytes(
    moto_endpoint: str, s3: Any, make_bucket: Any, tmp_path: Any, page_size: int
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL,
                  ContentType="application/x-ndjson", Metadata={"owner": "analytics"},
                  ServerSideEncryption="AES256", Tagging="team=data&keep=yes")
    s3.put_object(Bucket=bucket, Key="events/b.jsonl", Body=b'{"customer_id": 2}\n')
    s3.put_object(Bucket=bucket, Key="other/c.jsonl", Body=JSONL)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        page_size=page_size, batch_size=2)

    sink = RecordingSink()
    collected = connector.collect(SUBJECT, sink).evidence[0]
    assert [(r["object"], r["line"], r["record"]["n"]) for r in sink.rows["events"]] == [
        ("events/a.jsonl", 2, 2), ("events/a.jsonl", 4, 3), ("events/a.jsonl", 6, 5)]
    assert collected.found == collected.collected == 3 and sink.batches == 2
    assert collected.counts == {"objects_scanned": 2}

    erased = connector.erase(SUBJECT).evidence[0]
    assert erased.counts["records_redacted"] == 3 and erased.remaining == 0
    # the recount did not read again the file it wrote (a.jsonl) nor the one it found clean
    assert erased.counts["versions_checked_in_pass"] == 2
    assert cli_get(moto_endpoint, bucket, "events/a.jsonl", tmp_path) == JSONL_KEPT
    head = s3.head_object(Bucket=bucket, Key="events/a.jsonl")
    assert head["ContentType"] == "application/x-ndjson"
    assert head["Metadata"] == {"owner": "analytics"}
    assert head["ServerSideEncryption"] == "AES256"
    tags = s3.get_object_tagging(Bucket=bucket, Key="events/a.jsonl")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("keep", "yes"), ("team", "data")]
    assert s3.get_object(Bucket=bucket, Key="other/c.jsonl")["Body"].read() == JSONL

    again = connector.erase(SUBJECT).evidence[0]
    assert again.counts.pop("versions_checked_in_pass") == 2
    assert sum(again.counts.values()) == 0 and again.remaining == 0


@pytest.mark.parametrize("versioned", [False, True])
def test_recount_reads_again_a_file_changed_after_the_pass_checked_it(
    moto_endpoint: str, s3: Any, make_bucket: Any, versioned: bool
) -> None:
    bucket = make_bucket(versioned=versioned)
    clean = b'{"customer_id": 1, "user": {"email": "bob@example.com"}}\n'
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=clean)
    s3.put_object(Bucket=bucket, Key="events/z.jsonl", Body=JSONL)

    def writer(key: str) -> None:  # a.jsonl was read clean; now the subject is written to it
        s3.put_object(Bucket=bucket, Key="events/a.jsonl",
                      Body=clean + b'{"customer_id": 4, "n": 7}\n')

    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        before_write=writer)
    with pytest.raises(ConnectorError) as err:
        connector.erase(SUBJECT)
    assert err.value.code == "s3_erasure_incomplete" and err.value.transient
    assert s3.get_object(Bucket=bucket, Key="events/z.jsonl")["Body"].read() == JSONL_KEPT


def test_a_rewrite_that_still_holds_the_subject_is_not_uploaded(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    from connectors.s3_client import Version
    from connectors.s3_shared import matcher_for, rewrite_conditionally
    from dsar.datamap.schema import S3SharedSpec

    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]))
    spec = S3SharedSpec.model_validate(shared("jsonl"))
    head = s3.head_object(Bucket=bucket, Key="events/a.jsonl")

    def faulty_read(latest: Any, spool: Any) -> tuple[Any, list[int]]:
        spool.write(JSONL.replace(b'"n": 2', b'"n": 20'))  # drops nothing it claims to drop
        return head, [2]

    with pytest.raises(ConnectorError) as err:
        rewrite_conditionally(connector.bucket, spec, Version("events/a.jsonl", "null", True,
                              False), faulty_read, matcher_for(spec, SUBJECT))
    assert err.value.code == "s3_rewrite_check_failed" and "3 matching" in str(err.value)
    assert s3.get_object(Bucket=bucket, Key="events/a.jsonl")["Body"].read() == JSONL


def test_gzip_detected_by_magic_bytes(
    moto_endpoint: str, s3: Any, make_bucket: Any, tmp_path: Any
) -> None:
    bucket = make_bucket()
    # Two gzip members, no .gz suffix, no Content-Encoding: only the magic bytes tell.
    body = gzip.compress(JSONL[:130]) + gzip.compress(JSONL[130:])
    s3.put_object(Bucket=bucket, Key="events/part-0000", Body=body)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        chunk_size=16)
    assert connector.count(SUBJECT).evidence[0].found == 3
    assert connector.erase(SUBJECT).evidence[0].counts["records_redacted"] == 3
    raw = cli_get(moto_endpoint, bucket, "events/part-0000", tmp_path)
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == JSONL_KEPT


def test_csv_with_quoted_newlines(moto_endpoint: str, s3: Any, make_bucket: Any) -> None:
    bucket = make_bucket()
    body = (b"customer_id,email,note\r\n"
            b'1,bob@example.com,"two\r\nlines"\r\n'
            b'4,x@example.com,"said ""hi"""\r\n'
            b"5,Ann@Example.com,\r\n"
            b"6,dee@example.com,plain\r\n")
    s3.put_object(Bucket=bucket, Key="events/x.csv", Body=body, ContentType="text/csv")
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("csv")]))
    sink = RecordingSink()
    connector.collect(SUBJECT, sink)
    assert [r["record"]["note"] for r in sink.rows["events"]] == ['said "hi"', ""]
    assert [r["line"] for r in sink.rows["events"]] == [4, 5]
    connector.erase(SUBJECT)
    assert s3.get_object(Bucket=bucket, Key="events/x.csv")["Body"].read() == (
        b"customer_id,email,note\r\n"
        b'1,bob@example.com,"two\r\nlines"\r\n'
        b"6,dee@example.com,plain\r\n")


@pytest.mark.parametrize("drop", [(0,), (2,), (0, 1, 2), (1,)])
def test_json_array_elements_removed_cleanly(
    moto_endpoint: str, s3: Any, make_bucket: Any, drop: tuple[int, ...]
) -> None:
    bucket = make_bucket()
    items = [{"customer_id": 4 if i in drop else 10 + i, "n": i} for i in range(3)]
    body = json.dumps(items, indent=2).encode()
    s3.put_object(Bucket=bucket, Key="events/all.json", Body=body)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("json")]))
    ev = connector.erase(SUBJECT).evidence[0]
    assert ev.counts["records_redacted"] == len(drop)
    new = s3.get_object(Bucket=bucket, Key="events/all.json")["Body"].read()
    kept = [item for i, item in enumerate(items) if i not in drop]
    assert json.loads(new) == kept
    if kept:
        assert new.replace(b" ", b"").replace(b"\n", b"") == json.dumps(kept).replace(
            " ", "").encode()
        for item in kept:  # every kept element is byte-identical to the original text
            assert json.dumps(item, indent=2).replace("\n", "\n  ").encode() in new


def test_concurrent_writer_forces_a_reread(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL)
    appended = b'\n{"customer_id": 77, "n": 6}\n'
    calls: list[str] = []

    def concurrent_writer(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:  # between our read and our write, someone appends a line
            s3.put_object(Bucket=bucket, Key=key, Body=JSONL + appended)

    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        before_write=concurrent_writer)
    ev = connector.erase(SUBJECT).evidence[0]
    assert calls == ["events/a.jsonl", "events/a.jsonl"]
    assert ev.counts["records_redacted"] == 3
    body = s3.get_object(Bucket=bucket, Key="events/a.jsonl")["Body"].read()
    assert body == JSONL_KEPT + b'{"customer_id": 77, "n": 6}\n'


def test_writer_that_never_stops_is_a_transient_error(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL)

    writes: list[int] = []

    def busy_writer(key: str) -> None:
        writes.append(1)
        s3.put_object(Bucket=bucket, Key=key, Body=JSONL + b"\n" * len(writes))

    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        before_write=busy_writer, write_attempts=3)
    with pytest.raises(ConnectorError) as err:
        connector.erase(SUBJECT)
    assert err.value.code == "s3_write_conflict" and err.value.transient
    assert len(writes) == 3


@pytest.mark.parametrize("prefilter", [True, False])
def test_malformed_line_changes_nothing(
    moto_endpoint: str, s3: Any, make_bucket: Any, prefilter: bool
) -> None:
    bucket = make_bucket()
    bad = JSONL_KEPT + b'{"customer_id": 4}\n{"customer_id": 4, oops}\n'
    s3.put_object(Bucket=bucket, Key="events/bad.jsonl", Body=bad)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                        prefilter=prefilter)
    with pytest.raises(ConnectorError) as err:
        connector.erase(SUBJECT)
    assert err.value.code == "s3_malformed_record"
    assert "events/bad.jsonl" in str(err.value) and "line 5" in str(err.value)
    assert s3.get_object(Bucket=bucket, Key="events/bad.jsonl")["Body"].read() == bad
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 1


def test_malformed_line_without_the_subject_is_kept_by_the_prefilter(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    """A line that cannot hold the subject's values is not parsed: kept byte for byte."""
    bucket = make_bucket()
    other = b'{"customer_id": oops}\n'
    s3.put_object(Bucket=bucket, Key="events/bad.jsonl", Body=JSONL_KEPT + other + JSONL)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]))
    assert connector.erase(SUBJECT).evidence[0].deleted == 3
    body = s3.get_object(Bucket=bucket, Key="events/bad.jsonl")["Body"].read()
    assert body == JSONL_KEPT + other + JSONL_KEPT
    strict = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]),
                     prefilter=False)
    with pytest.raises(ConnectorError) as err:
        strict.count(SUBJECT)
    assert err.value.code == "s3_malformed_record" and "line 4" in str(err.value)


def test_versioned_bucket_old_versions_go_locked_ones_stay(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket(object_lock=True)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL[:65] + b"\n")  # bob only
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL)  # holds ann (old version)
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=JSONL + b"\n")  # current
    s3.put_object(Bucket=bucket, Key="events/locked.jsonl", Body=JSONL,
                  ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[shared("jsonl")]))
    assert connector.count(SUBJECT).evidence[0].counts["noncurrent_records"] == 3

    ev = connector.erase(SUBJECT).evidence[0]
    assert ev.counts["records_redacted"] == 6  # current a.jsonl and current locked.jsonl
    assert ev.counts["versions_deleted"] == 2  # a.jsonl: the version read, the older one
    assert ev.counts["objects_retained"] == 1  # locked.jsonl's original version
    assert ev.retained_ground == "S3 Object Lock: COMPLIANCE retention"
    assert ev.remaining == 0
    out = aws_cli(moto_endpoint, "s3api", "list-object-versions", "--bucket", bucket)
    versions = sorted((v["Key"], v["IsLatest"]) for v in out["Versions"])
    assert versions == [("events/a.jsonl", False), ("events/a.jsonl", True),
                        ("events/locked.jsonl", False), ("events/locked.jsonl", True)]
    again = connector.erase(SUBJECT).evidence[0]
    assert again.counts["records_redacted"] == again.counts["versions_deleted"] == 0
    assert again.retained == 1
