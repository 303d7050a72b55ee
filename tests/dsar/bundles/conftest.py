"""Fixtures for the bundle tests: a data map, sample rows of every value type, keys, stores,
and moto's S3 server over real HTTP (started here; a failure to start fails the tests)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from dsar.bundles import LocalBundleStore, RowsBatch, StagedObject
from dsar.datamap.schema import DataMap

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

DATAMAP = {
    "controller": {
        "name": "Acme Books Ltd",
        "contact": "privacy@acme.example",
        "dpo": "dpo@acme.example",
        "supervisory_authority": "Commission nationale de l'informatique et des libertés",
        "supervisory_authority_url": "https://www.cnil.fr/en/complaints",
    },
    "systems": [
        {
            "name": "crm",
            "kind": "sql",
            "label": "Customer database",
            "url_env": "CRM_URL",
            "info": {
                "purposes": ["Running your account", "Billing"],
                "legal_basis": "Art. 6(1)(b) GDPR – contract",
                "recipients": ["Payment processor Stripe"],
                "retention": "6 years after the last order",
                "source": "You, when you signed up",
            },
            "tables": [
                {
                    "name": "customer",
                    "label": "Your customer profile",
                    "columns": {
                        "email": {"category": "user.contact.email"},
                        "phone": {"category": "contact.phone_number"},
                        "first_name": {"category": "user.name.first"},
                        "shoe_size": {"category": "user.fashion.shoe_size"},
                    },
                },
                {
                    "name": "invoice",
                    "info": {"legal_basis": "Art. 6(1)(c) legal obligation",
                             "retention": "10 years"},
                    "columns": {"total": {"category": "user.financial", "label": "Amount",
                                          "format": "money", "currency": "EUR"}},
                },
            ],
        },
        {
            "name": "media",
            "kind": "s3",
            "bucket": "media",
            "info": {"purposes": ["Showing your avatar"], "legal_basis": "Art. 6(1)(a) consent"},
            "objects": [
                {"name": "avatars", "prefix": "avatars/{customer_id}/",
                 "category": "user.content.media", "label": "Profile pictures"}
            ],
        },
    ],
}


@pytest.fixture(scope="session")
def datamap() -> DataMap:
    return DataMap.model_validate(DATAMAP)


@pytest.fixture
def now() -> dt.datetime:
    return NOW


@pytest.fixture
def key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def secret() -> bytes:
    return b"link-secret-for-tests-0123456789"


def customer_rows() -> list[dict[str, Any]]:
    """Rows with unicode, None, empty strings, numbers, dates and other typed values."""
    return [
        {
            "id": 1,
            "email": "zoë.ångström@example.org",
            "phone": None,
            "first_name": 'Zoë "Z" O\'Brien, Jr.\nline two',
            "balance": Decimal("1234.50"),
            "ratio": 0.1,
            "big": 2**63 + 7,
            "active": True,
            "born": dt.date(1990, 2, 28),
            "created_at": dt.datetime(2023, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC),
            "local_time": dt.time(23, 59, 1),
            "token": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "raw": b"\x00\xffbinary",
            "prefs": {"lang": "fr", "tags": ["a", "ü"]},
            "note": "",
            "shoe_size": 42,
        },
        {
            "id": 2,
            "email": "日本語@example.jp",
            "phone": "+33 6 12 34 56 78",
            "first_name": "",
            "balance": None,
            "ratio": -1.5e-300,
            "big": -1,
            "active": False,
            "born": None,
            "created_at": dt.datetime(2024, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))),
            "local_time": None,
            "token": None,
            "raw": b"",
            "prefs": None,
            "note": "emoji 🎉, comma",
            "shoe_size": None,
        },
    ]


def invoice_rows(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "total": Decimal(i) / 4, "paid": i % 2 == 0} for i in range(count)]


def sample_items(invoices: int = 45, avatar: bytes = b"\x89PNG fake") -> list[Any]:
    """Interleaved batches and objects, including names that try to escape the zip."""
    rows = customer_rows()
    inv = invoice_rows(invoices)
    return [
        RowsBatch("crm", "customer", rows[:1]),
        RowsBatch("crm", "invoice", inv[: invoices // 2]),
        StagedObject("media", "avatars", "avatars/42/me.png", iter([avatar]),
                     {"content-type": "image/png"}),
        RowsBatch("crm", "customer", rows[1:]),
        StagedObject("media", "avatars", "../../../etc/passwd", iter([b"not really"])),
        StagedObject("media", "avatars", "/abs/path.txt", iter([b"abs"])),
        StagedObject("media", "avatars", "C:\\Windows\\evil.bat", iter([b"win"])),
        StagedObject("media", "avatars", "a/./b/../..", iter([b"dots"])),
        RowsBatch("crm", "invoice", inv[invoices // 2 :]),
    ]


@pytest.fixture(name="customer_rows")
def customer_rows_fixture() -> list[dict[str, Any]]:
    return customer_rows()


@pytest.fixture(name="invoice_rows")
def invoice_rows_fixture() -> Any:
    return invoice_rows


@pytest.fixture(name="sample_items")
def sample_items_fixture() -> Any:
    """A function: ``sample_items(invoices=45, avatar=b"...")`` -> fresh list of items."""
    return sample_items


@pytest.fixture
def local_store(tmp_path: Path) -> LocalBundleStore:
    return LocalBundleStore(tmp_path / "bundles")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server over real HTTP on a free port."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> tuple[Any, str]:
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"bundles-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket
