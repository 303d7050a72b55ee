"""One pass for many people (connectors.s3_batch) against moto's server: JSONL and Parquet,
each member's evidence its own, the same files as erasing them one by one."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.s3server import open_s3, s3_system

pytest_plugins = ["tests.s3server"]

JSONL = {"name": "events", "prefix": "events/", "format": "jsonl",
         "match": {"email": "user.email", "customer_id": "customer_id"}}
PARQUET = {"name": "events", "prefix": "lake/", "format": "parquet",
           "match": {"email": "email", "customer_id": "customer_id"}}


def keys(email: str, customer_id: int | None = None) -> dict[str, frozenset[str]]:
    out = {"email": frozenset({email})}
    if customer_id is not None:
        out["customer_id"] = frozenset({str(customer_id)})
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(owners=st.lists(st.integers(0, 5), min_size=1, max_size=40),
       members=st.sets(st.integers(0, 5), min_size=1, max_size=4))
def test_jsonl_batch_equals_erasing_one_by_one(moto_endpoint: str, s3: Any, make_bucket: Any,
                                               owners: list[int], members: set[int]) -> None:
    body = b"".join(b'{"user": {"email": "p%d@example.com"}, "customer_id": %d, "n": %d}\n'
                    % (o, 100 + o, n) for n, o in enumerate(owners))
    batch_bucket, single_bucket = make_bucket(), make_bucket()
    for bucket in (batch_bucket, single_bucket):
        s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=body)
    batch = open_s3(moto_endpoint, s3_system(batch_bucket, shared=[JSONL]))
    single = open_s3(moto_endpoint, s3_system(single_bucket, shared=[JSONL]))
    by_member = {str(m): keys(f"P{m}@example.com") for m in sorted(members)}
    evidence = batch.erase_shared_batch(by_member)
    for member, member_keys in by_member.items():
        alone = single.erase(member_keys).evidence[0]
        (mine,) = evidence[member]
        assert mine.found == mine.deleted == alone.found == owners.count(int(member))
        assert mine.remaining == 0
    assert s3.get_object(Bucket=batch_bucket, Key="events/a.jsonl")["Body"].read() == \
        s3.get_object(Bucket=single_bucket, Key="events/a.jsonl")["Body"].read()


def test_a_record_of_two_members_counts_for_both_and_hashes_stay_apart(
        moto_endpoint: str, s3: Any, make_bucket: Any) -> None:
    bucket = make_bucket(versioned=True)
    s3.put_object(Bucket=bucket, Key="events/a.jsonl", Body=(
        b'{"user": {"email": "ann@example.com"}, "customer_id": 7}\n'
        b'{"user": {"email": "bob@example.com"}, "customer_id": 7}\n'
        b'{"user": {"email": "cy@example.com"}, "customer_id": 1}\n'))
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[JSONL]))
    found = connector.count_shared_batch({"1": keys("ann@example.com"),
                                          "2": keys("bob@example.com", 7)})
    assert (found["1"][0].found, found["2"][0].found) == (1, 2)
    erased = connector.erase_shared_batch({"1": keys("ann@example.com"),
                                           "2": keys("bob@example.com", 7)})
    (ann,), (bob,) = erased["1"], erased["2"]
    assert (ann.deleted, bob.deleted) == (1, 2)
    assert set(ann.item_hashes) < set(bob.item_hashes)  # line 1 is both of theirs
    assert ann.counts["versions_deleted"] == bob.counts["versions_deleted"] == 1
    assert ann.counts["versions_checked_in_pass"] == 1  # the version the batch wrote
    assert s3.get_object(Bucket=bucket, Key="events/a.jsonl")["Body"].read() == \
        b'{"user": {"email": "cy@example.com"}, "customer_id": 1}\n'


def test_parquet_batch_one_rewrite_keeps_schema_and_others(
        moto_endpoint: str, s3: Any, make_bucket: Any) -> None:
    bucket = make_bucket()
    n = 4000
    emails = [f"u{i % 500}@example.com" for i in range(n)]
    t = pa.table({"email": emails, "customer_id": pa.array(range(n), pa.int64()),
                  "v": pa.array([i * 0.5 for i in range(n)])}
                 ).replace_schema_metadata({"owner": "analytics"})
    out = io.BytesIO()
    pq.write_table(t, out, compression="zstd", row_group_size=1000)
    s3.put_object(Bucket=bucket, Key="lake/a.parquet", Body=out.getvalue())
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[PARQUET]))
    members = {str(i): keys(f"u{i}@example.com") for i in (3, 42, 499)}
    erased = connector.erase_shared_batch(members)
    assert {m: ev[0].deleted for m, ev in erased.items()} == {"3": 8, "42": 8, "499": 8}
    assert all(ev[0].remaining == 0 and ev[0].counts["records_redacted"] == 8
               for ev in erased.values())
    # the file was counted again as written, before its upload, not fetched again to recount
    assert all(ev[0].counts["versions_checked_in_pass"] == 1 for ev in erased.values())
    after = pq.ParquetFile(io.BytesIO(
        s3.get_object(Bucket=bucket, Key="lake/a.parquet")["Body"].read()))
    assert after.schema_arrow.metadata[b"owner"] == b"analytics"
    assert after.metadata.row_group(0).column(0).compression == "ZSTD"
    kept = after.read()
    assert kept.num_rows == n - 24
    gone = {"u3@example.com", "u42@example.com", "u499@example.com"}
    assert kept.column("email").to_pylist() == [e for e in emails if e not in gone]
