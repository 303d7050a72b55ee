"""Iceberg tables as shared collections (connectors.s3_iceberg) against moto's S3 server over
HTTP, with pyiceberg's SQL catalog on SQLite and on PostgreSQL: one delete per batch, the older
snapshots named in the evidence, expiry that removes the files only they referenced, and a
table elsewhere refused."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from connectors.base import ConnectorContext
from connectors.s3 import S3Connector, S3Settings
from dsar.errors import ConnectorError
from tests.s3server import ENDPOINT_ENV, HASH_KEY, s3_system

pytest_plugins = ["tests.s3server"]

CATALOG_ENV = "DSAR_TEST_ICEBERG_CATALOG"


def spec(prefix: str = "ice/shop/events/", table: str = "shop.events") -> dict[str, Any]:
    return {"name": "events", "prefix": prefix, "format": "iceberg", "table": table,
            "catalog": "test", "catalog_url_env": CATALOG_ENV,
            "match": {"email": "email", "customer_id": "cid"}}


def make_table(endpoint: str, bucket: str, url: str, batches: list[list[tuple[str, int]]]
               ) -> Any:
    catalog = SqlCatalog("test", uri=url, **{
        "s3.endpoint": endpoint, "s3.access-key-id": "testing",
        "s3.secret-access-key": "testing", "s3.region": "us-east-1"})
    catalog.create_namespace_if_not_exists("shop")
    schema = pa.schema([("email", pa.string()), ("cid", pa.int64()), ("n", pa.int64())])
    table = catalog.create_table("shop.events", schema=schema,
                                 location=f"s3://{bucket}/ice/shop/events")
    n = 0
    for rows in batches:
        table.append(pa.table({"email": [e for e, _ in rows], "cid": [c for _, c in rows],
                               "n": list(range(n, n + len(rows)))}, schema=schema))
        n += len(rows)
    return catalog


def connector(endpoint: str, bucket: str, url: str, **shared: Any) -> S3Connector:
    context = ConnectorContext(hash_key=HASH_KEY,
                               environ={ENDPOINT_ENV: endpoint, CATALOG_ENV: url})
    return S3Connector(s3_system(bucket, shared=[spec(**shared)]), context, S3Settings())


def data_emails(s3: Any, bucket: str) -> set[str]:
    found: set[str] = set()
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="ice/").get("Contents", []):
        if item["Key"].endswith(".parquet"):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found.update(pq.read_table(io.BytesIO(body), columns=["email"])["email"].to_pylist())
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The SQL catalog's database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_batch_delete_evidence_and_expiry(moto_endpoint: str, s3: Any, make_bucket: Any,
                                          catalog_url: str) -> None:
    bucket = make_bucket()
    url = catalog_url
    catalog = make_table(moto_endpoint, bucket, url, [
        [("ann@example.com", 1), ("bob@example.com", 2)],
        [("ANN@Example.com", 3), ("cy@example.com", 4), ("dee@example.com", 5)]])
    conn = connector(moto_endpoint, bucket, url)
    evidence = conn.erase_shared_batch({
        "a": {"email": frozenset({"ann@example.com"})},
        "b": {"customer_id": frozenset({"2"}), "email": frozenset({"bob@example.com"})},
        "z": {"email": frozenset({"nobody@example.com"})}})
    table = catalog.load_table("shop.events")
    assert sorted(r["n"] for r in table.scan().to_arrow().to_pylist()) == [3, 4]
    assert len(table.snapshots()) == 3  # two appends, one delete for the whole batch
    (a,), (b,), (z,) = evidence["a"], evidence["b"], evidence["z"]
    assert (a.found, a.deleted, a.remaining) == (2, 2, 0)
    assert (b.found, b.deleted, b.remaining) == (1, 1, 0)
    assert (z.found, z.retained) == (0, 0)
    assert not set(a.item_hashes) & set(b.item_hashes)
    older = [s.snapshot_id for s in table.snapshots()[:2]]
    assert a.retained == 2 and all(str(i) in (a.retained_ground or "") for i in older)
    assert "history.expire.max-snapshot-age-ms" in (a.retained_period or "")
    assert a.counts["older_versions"] == 2
    assert "ann@example.com" in data_emails(s3, bucket)  # the old snapshots' files

    assert conn.expire("events", timedelta(days=1)).versions == []
    expired = conn.expire("events", timedelta(0))
    assert sorted(expired.versions) == sorted(older) and expired.files_deleted >= 2
    assert data_emails(s3, bucket) == {"cy@example.com", "dee@example.com"}
    table = catalog.load_table("shop.events")
    assert len(table.snapshots()) == 1 and table.scan().to_arrow().num_rows == 2
    (count,) = conn.count({"email": frozenset({"CY@example.com"})}).evidence
    assert count.found == 1 and count.counts["older_versions"] == 0


def test_a_table_outside_the_prefix_or_unknown_is_refused(moto_endpoint: str, s3: Any,
                                                         make_bucket: Any, tmp_path: Path
                                                         ) -> None:
    bucket = make_bucket()
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = make_table(moto_endpoint, bucket, url, [[("ann@example.com", 1)]])
    keys = {"email": frozenset({"ann@example.com"})}
    with pytest.raises(ConnectorError) as err:
        connector(moto_endpoint, bucket, url, prefix="elsewhere/").erase(keys)
    assert "lives at" in err.value.problem and err.value.code == "s3_table_not_found"
    with pytest.raises(ConnectorError) as err:
        connector(moto_endpoint, bucket, url, table="shop.nope").erase(keys)
    assert "'table'" in err.value.fix
    assert catalog.load_table("shop.events").scan().to_arrow().num_rows == 1


def test_a_partitioned_table_is_erased_partition_by_partition(
        moto_endpoint: str, s3: Any, make_bucket: Any, tmp_path: Path) -> None:
    """Identity-partitioned on ``country``: only the files of partitions holding the subject are
    rewritten, the others stay in the new snapshot as they were; a key that is the partition
    column itself drops whole files."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    bucket, url = make_bucket(), f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = SqlCatalog("test", uri=url, **{
        "s3.endpoint": moto_endpoint, "s3.access-key-id": "testing",
        "s3.secret-access-key": "testing", "s3.region": "us-east-1"})
    catalog.create_namespace_if_not_exists("shop")
    schema = Schema(NestedField(1, "email", StringType()), NestedField(2, "cid", LongType()),
                    NestedField(3, "country", StringType()))
    table = catalog.create_table(
        "shop.events", schema=schema, location=f"s3://{bucket}/ice/shop/events",
        partition_spec=PartitionSpec(PartitionField(3, 1000, IdentityTransform(), "country")))
    rows = [("ann@example.com", 1, "de"), ("bob@example.com", 2, "de"),
            ("ANN@example.com", 3, "fr"), ("cy@example.com", 4, "fr"),
            ("dee@example.com", 5, "it"), ("eve@example.com", 6, "es")]
    table.append(pa.table({"email": [r[0] for r in rows], "cid": [r[1] for r in rows],
                           "country": [r[2] for r in rows]},
                          schema=table.schema().as_arrow()))

    def files() -> dict[str, str]:
        current = catalog.load_table("shop.events")
        return {t.file.partition[0]: t.file.file_path for t in current.scan().plan_files()}

    before = files()
    assert set(before) == {"de", "fr", "it", "es"}
    conn = S3Connector(s3_system(bucket, shared=[{
        **spec(), "match": {"email": "email", "customer_id": "cid", "country": "country"}}]),
        ConnectorContext(hash_key=HASH_KEY,
                         environ={ENDPOINT_ENV: moto_endpoint, CATALOG_ENV: url}), S3Settings())
    (ann,) = conn.erase({"email": frozenset({"ann@example.com"})}).evidence
    assert (ann.found, ann.deleted, ann.remaining) == (2, 2, 0)
    assert ann.counts["data_files_checked_in_pass"] == 2  # it, es: not read again to recount
    after = files()
    assert after["it"] == before["it"] and after["es"] == before["es"]  # not rewritten
    assert after["de"] != before["de"] and after["fr"] != before["fr"]
    (italy,) = conn.erase({"country": frozenset({"it"})}).evidence  # the partition itself
    assert (italy.found, italy.deleted, italy.remaining) == (1, 1, 0)
    assert "it" not in files()
    left = catalog.load_table("shop.events").scan().to_arrow().to_pylist()
    assert sorted(r["cid"] for r in left) == [2, 4, 6]
