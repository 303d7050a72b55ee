"""Delta Lake tables as shared collections (connectors.s3_delta, connectors.s3_tables) against
moto's S3 server over HTTP: one committed delete per batch, exact matching, a recount on the
new version, evidence that names the older versions, and expiry that removes their files."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.s3_delta import hours, predicate
from dsar.errors import ConnectorError
from tests.s3server import RecordingSink, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

DELTA = {"name": "events", "prefix": "delta/events/", "format": "delta",
         "match": {"email": "email", "customer_id": "customer_id"}}
SPELLINGS = ["p{}@example.com", "P{}@Example.COM", "p{}@EXAMPLE.com"]


def options(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true", "conditional_put": "etag"}


def rows(owners: list[int], spelling: list[int]) -> pa.Table:
    return pa.table({
        "email": [SPELLINGS[s].format(o) for o, s in zip(owners, spelling, strict=True)],
        "customer_id": pa.array([100 + o for o in owners], pa.int64()),
        "n": list(range(len(owners))),
    })


def keys(person: int) -> dict[str, frozenset[str]]:
    return {"email": frozenset({f"P{person}@example.com"})}


def make_table(endpoint: str, bucket: str, owners: list[int], spelling: list[int],
               commits: int = 2) -> str:
    uri = f"s3://{bucket}/delta/events"
    data = rows(owners, spelling)
    step = max(1, -(-len(owners) // commits))
    for start in range(0, len(owners), step):
        write_deltalake(uri, data.slice(start, step), storage_options=options(endpoint),
                        mode="append")
    return uri


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2)), min_size=1, max_size=30),
       members=st.sets(st.integers(0, 5), min_size=1, max_size=4))
def test_a_batch_deletes_exactly_the_members_rows_in_one_version(
        moto_endpoint: str, make_bucket: Any, data: list[tuple[int, int]],
        members: set[int]) -> None:
    owners, spelling = [o for o, _ in data], [s for _, s in data]
    bucket = make_bucket()
    uri = make_table(moto_endpoint, bucket, owners, spelling)
    before = DeltaTable(uri, storage_options=options(moto_endpoint)).version()
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    by_member = {str(m): keys(m) for m in sorted(members)}
    evidence = conn.erase_shared_batch(by_member)

    after = DeltaTable(uri, storage_options=options(moto_endpoint))
    left = after.to_pyarrow_table().to_pylist()
    assert sorted(r["n"] for r in left) == [n for n, o in enumerate(owners) if o not in members]
    hit = any(o in members for o in owners)
    assert after.version() == before + (1 if hit else 0)  # one delete for the whole batch
    hashes: set[str] = set()
    for member, (mine,) in evidence.items():
        mine_count = owners.count(int(member))
        assert mine.found == mine.deleted == mine_count and mine.remaining == 0
        assert mine.counts["table_version"] == after.version()
        assert not hashes & set(mine.item_hashes)
        hashes |= set(mine.item_hashes)
        assert len(mine.item_hashes) == mine_count
        if mine_count:
            assert mine.retained == mine_count
            assert "older versions" in (mine.retained_ground or "")
            assert "delta.deletedFileRetentionDuration" in (mine.retained_period or "")
        assert "example.com" not in json.dumps(mine.to_dict()).casefold()


def test_collect_count_and_a_second_erasure_change_nothing(moto_endpoint: str,
                                                           make_bucket: Any) -> None:
    bucket = make_bucket()
    owners = [1, 2, 1, 3, 1]
    uri = make_table(moto_endpoint, bucket, owners, [0, 0, 1, 0, 2])
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    sink = RecordingSink()
    (collected,) = conn.collect(keys(1), sink).evidence
    assert collected.found == collected.collected == 3
    assert sorted(r["record"]["n"] for r in sink.rows["events"]) == [0, 2, 4]
    assert all(r["object"].startswith("delta/events/") for r in sink.rows["events"])
    assert conn.count({"customer_id": frozenset({"102"})}).evidence[0].found == 1

    (erased,) = conn.erase(keys(1)).evidence
    assert erased.found == erased.deleted == 3 and erased.remaining == 0
    version = DeltaTable(uri, storage_options=options(moto_endpoint)).version()
    (again,) = conn.erase(keys(1)).evidence
    assert again.found == again.deleted == 0 and again.remaining == 0
    assert DeltaTable(uri, storage_options=options(moto_endpoint)).version() == version
    # time travel still shows the erased rows until the versions are expired
    old = DeltaTable(uri, storage_options=options(moto_endpoint), version=version - 1)
    assert old.to_pyarrow_table().num_rows == len(owners)


def _emails_in_data_files(s3: Any, bucket: str) -> set[str]:
    found: set[str] = set()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="delta/events/")
    for item in listed.get("Contents", []):
        if item["Key"].endswith(".parquet") and "/_delta_log/" not in item["Key"]:
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found.update(pq.read_table(io.BytesIO(body), columns=["email"])["email"].to_pylist())
    return found


def test_expire_removes_the_files_older_versions_kept(moto_endpoint: str, s3: Any,
                                                      make_bucket: Any) -> None:
    bucket = make_bucket()
    make_table(moto_endpoint, bucket, [1, 2, 3, 1], [0, 0, 0, 1])
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    conn.erase(keys(1))
    assert {"p1@example.com", "P1@Example.COM"} <= _emails_in_data_files(s3, bucket)

    kept = conn.expire("events", timedelta(days=7))  # the files are younger than a week
    assert kept.files_deleted == 0
    assert "p1@example.com" in _emails_in_data_files(s3, bucket)

    expired = conn.expire("events", timedelta(0))
    assert expired.files_deleted >= 1
    assert _emails_in_data_files(s3, bucket) == {"p2@example.com", "p3@example.com"}
    (count,) = conn.count(keys(2)).evidence
    assert count.found == 1


def test_bad_input_is_one_clear_error_and_changes_nothing(moto_endpoint: str, s3: Any,
                                                          make_bucket: Any) -> None:
    bucket = make_bucket()
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    with pytest.raises(ConnectorError) as err:
        conn.erase(keys(1))
    assert err.value.code == "s3_table_not_found" and "prefix" in err.value.fix
    with pytest.raises(ConnectorError) as err:
        conn.expire("nope", timedelta(0))
    assert "events" in err.value.fix
    nested = {**DELTA, "match": {"email": "user.email"}}
    with pytest.raises(ConnectorError) as err:
        open_s3(moto_endpoint, s3_system(bucket, shared=[nested])).erase(keys(1))
    assert "top-level" in err.value.fix
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@given(st.dictionaries(st.sampled_from(["email", "customer_id", 'we"ird']),
                       st.sets(st.one_of(st.text(max_size=8), st.integers()), min_size=1,
                               max_size=3), min_size=1))
def test_the_predicate_quotes_every_value(spellings: dict[str, set[Any]]) -> None:
    text = predicate(spellings)
    for column, values in spellings.items():
        assert '"{}" IN ('.format(column.replace('"', '""')) in text
        for value in values:
            literal = str(value) if isinstance(value, int) else \
                "'" + value.replace("'", "''") + "'"
            assert literal in text


def test_interval_hours() -> None:
    assert hours("interval 1 week") == 168
    assert hours("interval 30 days") == 720
    assert hours("interval 90 minutes") == 2
    with pytest.raises(ValueError):
        hours("a fortnight")


def test_retain_deletes_nothing_and_reports_the_ground(moto_endpoint: str,
                                                      make_bucket: Any) -> None:
    bucket = make_bucket()
    uri = make_table(moto_endpoint, bucket, [1, 2, 1], [0, 0, 1])
    kept = {**DELTA, "erasure": {"action": "retain", "retain": {
        "ground": "Art. 17(3)(b) tax records", "period": "10 years"}}}
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[kept]))
    (ev,) = conn.erase(keys(1)).evidence
    assert (ev.found, ev.deleted, ev.retained, ev.remaining) == (2, 0, 2, 0)
    assert ev.retained_ground == "Art. 17(3)(b) tax records"
    assert DeltaTable(uri, storage_options=options(moto_endpoint)).version() == 1


def test_a_list_column_is_refused_before_anything_changes(moto_endpoint: str,
                                                         make_bucket: Any) -> None:
    bucket = make_bucket()
    uri = f"s3://{bucket}/delta/events"
    write_deltalake(uri, pa.table({"email": [["p1@example.com", "x@example.com"]]}),
                    storage_options=options(moto_endpoint))
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    with pytest.raises(ConnectorError) as err:
        conn.erase(keys(1))
    assert not err.value.transient and "single values" in err.value.fix
    assert DeltaTable(uri, storage_options=options(moto_endpoint)).version() == 0


def test_a_concurrent_commit_is_a_transient_conflict_and_a_rerun_finishes(
        moto_endpoint: str, make_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import s3_delta

    bucket = make_bucket()
    uri = make_table(moto_endpoint, bucket, [1, 2, 3, 1], [0, 0, 0, 0], commits=1)
    real = s3_delta.DeltaLakeTable.delete

    def raced(self: Any, spellings: Any) -> int:
        # another writer removes person 2's row between our read and our commit
        DeltaTable(uri, storage_options=options(moto_endpoint)).delete("customer_id = 102")
        return real(self, spellings)

    monkeypatch.setattr(s3_delta.DeltaLakeTable, "delete", raced)
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    with pytest.raises(ConnectorError) as err:
        conn.erase(keys(1))
    assert err.value.transient and err.value.code == "s3_write_conflict"
    monkeypatch.setattr(s3_delta.DeltaLakeTable, "delete", real)
    (ev,) = conn.erase(keys(1)).evidence
    assert ev.deleted == 2 and ev.remaining == 0
    left = DeltaTable(uri, storage_options=options(moto_endpoint)).to_pyarrow_table()
    assert sorted(left["customer_id"].to_pylist()) == [103]


def test_a_partitioned_table_matches_partition_columns_and_others(moto_endpoint: str,
                                                                  make_bucket: Any) -> None:
    bucket = make_bucket()
    uri = f"s3://{bucket}/delta/events"
    write_deltalake(uri, rows([1, 2, 3, 1, 2], [0, 1, 0, 2, 0]), partition_by=["customer_id"],
                    storage_options=options(moto_endpoint))
    conn = open_s3(moto_endpoint, s3_system(bucket, shared=[DELTA]))
    evidence = conn.erase_shared_batch({"by-id": {"customer_id": frozenset({"101"})},
                                        "by-email": keys(2)})
    assert [evidence[m][0].deleted for m in ("by-id", "by-email")] == [2, 2]
    left = DeltaTable(uri, storage_options=options(moto_endpoint)).to_pyarrow_table()
    assert left["n"].to_pylist() == [2]
