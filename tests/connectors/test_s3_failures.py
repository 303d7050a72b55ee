"""Bad input and failing stores: every failure is a ConnectorError that says what to do."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dsar.errors import ConnectorError
from tests.s3server import FaultServer, RecordingSink, free_port, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

OBJECTS = [{"name": "uploads", "prefix": "uploads/{customer_id}/", "category": "c"}]
SHARED = [{"name": "events", "prefix": "events/", "format": "jsonl",
           "match": {"customer_id": "customer_id"}}]
SUBJECT = {"customer_id": frozenset({"4"})}


@pytest.fixture
def fault(moto_endpoint: str, request: Any) -> Iterator[FaultServer]:
    status, code, failures = request.param
    server = FaultServer(moto_endpoint, status, code, failures)
    yield server
    server.close()


@pytest.mark.parametrize("operation", ["collect", "erase", "count"])
def test_missing_bucket(moto_endpoint: str, operation: str) -> None:
    connector = open_s3(moto_endpoint, s3_system("no-such-bucket-dsar", objects=OBJECTS,
                                                 shared=SHARED))
    args = (SUBJECT, RecordingSink()) if operation == "collect" else (SUBJECT,)
    with pytest.raises(ConnectorError) as err:
        getattr(connector, operation)(*args)
    assert err.value.code == "s3_no_such_bucket" and not err.value.transient
    assert "no-such-bucket-dsar" in str(err.value) and err.value.fix
    assert err.value.system == "files" and err.value.collection == "uploads"


@pytest.mark.parametrize("fault", [(403, "AccessDenied", None)], indirect=True)
def test_access_denied(fault: FaultServer, make_bucket: Any) -> None:
    connector = open_s3(fault.url, s3_system(make_bucket(), objects=OBJECTS), max_attempts=3)
    with pytest.raises(ConnectorError) as err:
        connector.erase(SUBJECT)
    assert err.value.code == "s3_access_denied" and not err.value.transient
    assert "s3:DeleteObjectVersion" in (err.value.fix or "")
    assert fault.requests == 1  # a denial is not retried


@pytest.mark.parametrize("fault", [(503, "SlowDown", None)], indirect=True)
def test_throttling_retried_then_transient(fault: FaultServer, make_bucket: Any) -> None:
    connector = open_s3(fault.url, s3_system(make_bucket(), shared=SHARED), max_attempts=3)
    with pytest.raises(ConnectorError) as err:
        connector.count(SUBJECT)
    assert err.value.code == "s3_throttled" and err.value.transient
    assert err.value.retry_after and err.value.collection == "events"
    assert fault.requests == 3  # botocore retried with backoff before giving up


@pytest.mark.parametrize("fault", [(503, "SlowDown", 2)], indirect=True)
def test_throttling_that_passes_is_invisible(
    fault: FaultServer, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=b'{"customer_id": 4}\n')
    connector = open_s3(fault.url, s3_system(bucket, shared=SHARED), max_attempts=4)
    assert connector.count(SUBJECT).evidence[0].found == 1
    assert fault.requests >= 3


def test_unreachable_endpoint_is_transient(make_bucket: Any) -> None:
    connector = open_s3(f"http://127.0.0.1:{free_port()}", s3_system("b", objects=OBJECTS),
                        max_attempts=2, timeout=2)
    with pytest.raises(ConnectorError) as err:
        connector.count(SUBJECT)
    assert err.value.code == "s3_unreachable" and err.value.transient


@pytest.mark.parametrize("value", ["../4", "4/", "4/../5", "*", "4?", "4[0]", "a\x00b",
                                   "a\nb", "", " 4", "..", "a\u202eb"])
def test_unsafe_key_values_change_nothing(
    moto_endpoint: str, s3: Any, make_bucket: Any, value: str
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="uploads/4/a", Body=b"x")
    s3.put_object(Bucket=bucket, Key="uploads/5/a", Body=b"x")
    connector = open_s3(moto_endpoint, s3_system(bucket, objects=OBJECTS))
    with pytest.raises(ConnectorError) as err:
        connector.erase({"customer_id": frozenset({"4", value})})
    assert err.value.code == "s3_unsafe_key"
    assert len(value) < 3 or value not in str(err.value)  # personal data stays out
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["uploads/4/a", "uploads/5/a"]
