"""Parquet shared files against moto's server: find by key columns, skip row groups, rewrite."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.s3_bloom import might_contain, parse, plain_encoding
from dsar.errors import ConnectorError
from tests.s3server import RecordingSink, open_s3, s3_system

pytest_plugins = ["tests.s3server"]

SUBJECT = {"email": frozenset({"ann@example.com"}), "customer_id": frozenset({"4"})}
SPEC = {"name": "events", "prefix": "lake/", "format": "parquet",
        "match": {"email": "user.email", "customer_id": "customer_id"}}


def table(n: int = 3000) -> pa.Table:
    emails = [f"u{i}@example.com" for i in range(n)]
    emails[10], emails[2500] = "ANN@example.com", "ann@EXAMPLE.com"
    ids = list(range(100, 100 + n))
    ids[1700] = 4
    return pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "user": pa.array([{"email": e, "age": i % 90} for i, e in enumerate(emails)]),
        "at": pa.array([i * 1000 for i in range(n)], pa.timestamp("ms", tz="UTC")),
    }).replace_schema_metadata({"writer": "bench", "owner": "analytics"})


def parquet_bytes(t: pa.Table, **options: Any) -> bytes:
    out = io.BytesIO()
    pq.write_table(t, out, **options)
    return out.getvalue()


def test_collect_count_and_erase_keep_schema_codec_groups_and_metadata(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    t = table()
    s3.put_object(Bucket=bucket, Key="lake/day=1/a.parquet", ContentType="application/x-parquet",
                  Body=parquet_bytes(t, compression="zstd", row_group_size=1000),
                  Metadata={"team": "data"}, Tagging="keep=yes")
    s3.put_object(Bucket=bucket, Key="lake/day=2/b.parquet",
                  Body=parquet_bytes(t.slice(0, 5), compression="snappy"))
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[SPEC]))
    sink = RecordingSink()
    ev = connector.collect(SUBJECT, sink).evidence[0]
    assert ev.found == 3 and ev.collected == 3 and len(ev.item_hashes) == 3
    rows = sink.rows["events"]
    assert [r["line"] for r in rows] == [11, 1701, 2501]
    assert rows[0]["record"]["user"]["email"] == "ANN@example.com"
    assert rows[0]["record"]["at"].startswith("1970-01-01T00:00:10")
    assert connector.count(SUBJECT).evidence[0].found == 3

    ev = connector.erase(SUBJECT).evidence[0]
    assert ev.deleted == 3 and ev.remaining == 0
    obj = s3.get_object(Bucket=bucket, Key="lake/day=1/a.parquet")
    assert obj["ContentType"] == "application/x-parquet" and obj["Metadata"] == {"team": "data"}
    assert s3.get_object_tagging(Bucket=bucket, Key="lake/day=1/a.parquet")["TagSet"] == [
        {"Key": "keep", "Value": "yes"}]
    f = pq.ParquetFile(io.BytesIO(obj["Body"].read()))
    assert f.schema_arrow.equals(t.schema) and f.metadata.num_rows == 2997
    assert f.schema_arrow.metadata[b"owner"] == b"analytics"
    assert [f.metadata.row_group(i).num_rows for i in range(3)] == [999, 999, 999]
    assert f.metadata.row_group(0).column(0).compression == "ZSTD"
    kept = f.read()
    expected = t.filter(pa.array([i not in (10, 1700, 2500) for i in range(3000)]))
    assert kept.equals(expected.replace_schema_metadata(kept.schema.metadata))
    again = connector.erase(SUBJECT).evidence[0]
    assert again.deleted == 0 and again.remaining == 0


def test_row_groups_whose_statistics_exclude_the_subject_are_not_read(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    t = pa.table({"customer_id": pa.array(range(10_000), pa.int64()),
                  "note": pa.array([f"note {i} " * 20 for i in range(10_000)])})
    s3.put_object(Bucket=bucket, Key="lake/ids.parquet",
                  Body=parquet_bytes(t, row_group_size=1000, compression="none"))
    spec = {**SPEC, "match": {"customer_id": "customer_id"}}
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[spec]))
    from connectors.s3_parquet import ParquetScan
    from connectors.s3_parquet_file import RangeFile
    from connectors.s3_shared import matcher_for

    source = RangeFile(s3, bucket, "lake/ids.parquet", None)
    scan = ParquetScan(source, "lake/ids.parquet", matcher_for(connector.system.shared[0],
                                                                {"customer_id": {"4242"}}))
    assert scan.count() == 1 and scan.groups_skipped == 9
    assert source.bytes_read < source.size / 5  # footer + one group's key column


def test_hive_partition_column_decides_the_whole_file(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    t = pa.table({"event": ["a", "b"]})
    s3.put_object(Bucket=bucket, Key="lake/customer_id=4/x.parquet", Body=parquet_bytes(t))
    s3.put_object(Bucket=bucket, Key="lake/customer_id=42/x.parquet", Body=parquet_bytes(t))
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[SPEC]))
    assert connector.count({"customer_id": frozenset({"4"})}).evidence[0].found == 2
    assert connector.erase({"customer_id": frozenset({"4"})}).evidence[0].deleted == 2
    body = s3.get_object(Bucket=bucket, Key="lake/customer_id=4/x.parquet")["Body"].read()
    assert pq.ParquetFile(io.BytesIO(body)).metadata.num_rows == 0
    body = s3.get_object(Bucket=bucket, Key="lake/customer_id=42/x.parquet")["Body"].read()
    assert pq.ParquetFile(io.BytesIO(body)).metadata.num_rows == 2


def test_not_parquet_is_a_clear_error_and_changes_nothing(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket()
    s3.put_object(Bucket=bucket, Key="lake/oops.parquet", Body=b'{"customer_id": 4}\n')
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[SPEC]))
    with pytest.raises(ConnectorError) as err:
        connector.erase(SUBJECT)
    assert err.value.code == "s3_malformed_record" and "lake/oops.parquet" in str(err.value)
    assert s3.get_object(Bucket=bucket, Key="lake/oops.parquet")["Body"].read() == (
        b'{"customer_id": 4}\n')


@settings(max_examples=40, deadline=None)
@given(
    strings=st.lists(st.text(min_size=0, max_size=12), min_size=1, max_size=60, unique=True),
    ints=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=60),
    small=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=60),
)
def test_bloom_filters_written_by_pyarrow_contain_every_value_written(
    strings: list[str], ints: list[int], small: list[int]
) -> None:
    """No false negatives against pyarrow's own writer, for strings, INT64 and INT32."""
    n = max(len(strings), len(ints), len(small))
    t = pa.table({
        "s": pa.array([strings[i % len(strings)] for i in range(n)], pa.string()),
        "i": pa.array([ints[i % len(ints)] for i in range(n)], pa.int64()),
        "j": pa.array([small[i % len(small)] for i in range(n)], pa.int32()),
    })
    data = parquet_bytes(t, bloom_filter_options={"s": True, "i": True, "j": True})
    meta = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    for column, values in ((0, strings), (1, ints), (2, small)):
        chunk = meta.column(column)
        bitset = parse(data[chunk.bloom_filter_offset:][: chunk.bloom_filter_length])
        assert bitset is not None
        for value in values:
            encoded = plain_encoding(str(value), chunk.physical_type)
            assert encoded is not None and might_contain(bitset, encoded)


def test_bloom_filter_rejects_most_values_never_written() -> None:
    t = pa.table({"s": pa.array([f"id-{i}" for i in range(1000)])})
    data = parquet_bytes(t, bloom_filter_options={"s": {"ndv": 1000, "fpp": 0.01}})
    chunk = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0)
    bitset = parse(data[chunk.bloom_filter_offset:][: chunk.bloom_filter_length])
    assert bitset is not None
    false_hits = sum(might_contain(bitset, f"other-{i}".encode()) for i in range(10_000))
    assert false_hits < 500  # about 1 % asked for; a filter that says "maybe" to all fails
    assert parse(b"\x15\x02\x00") is None  # truncated or unknown headers mean "maybe"


def test_row_groups_whose_bloom_filters_exclude_the_subject_are_not_read(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    """Every group spans the same id range (statistics decide nothing); the filters do."""
    bucket = make_bucket()
    ids = [f"c{(i * 7919) % 10_000:05d}" for i in range(10_000)]
    t = pa.table({"customer_id": pa.array(ids),
                  "note": pa.array([f"note {i} " * 20 for i in range(10_000)])})
    t = t.append_column("first", pa.array([i % 1000 == 0 for i in range(10_000)]))
    groups = [t.slice(g * 1000, 1000) for g in range(10)]
    # c00000 and c09999 in every group, so min/max never exclude anything.
    padded = pa.concat_tables([
        pa.concat_tables([g, pa.table({"customer_id": ["c00000", "c09999"],
                                       "note": ["", ""], "first": [False, False]})])
        for g in groups])
    s3.put_object(Bucket=bucket, Key="lake/ids.parquet", Body=parquet_bytes(
        padded, row_group_size=1002, compression="none",
        bloom_filter_options={"customer_id": {"ndv": 1002, "fpp": 0.01}}))
    target = ids[4321]
    spec = {**SPEC, "match": {"customer_id": "customer_id"}}
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[spec]))
    from connectors.s3_parquet import ParquetScan
    from connectors.s3_parquet_file import RangeFile, read_footer
    from connectors.s3_shared import matcher_for

    source = RangeFile(s3, bucket, "lake/ids.parquet", None)
    metadata, tail = read_footer(source)
    scan = ParquetScan(source, "lake/ids.parquet",
                       matcher_for(connector.system.shared[0], {"customer_id": {target}}),
                       metadata=metadata, tail=tail)
    assert scan.count() == 1
    assert scan.groups_skipped >= 8  # 1 % false positives allowed
    # Past the footer's bytes (which held the filters), one or two groups' key column.
    assert source.bytes_read - len(tail[1]) < source.size / 20
    ev = connector.erase({"customer_id": frozenset({target})}).evidence[0]
    assert ev.deleted == 1 and ev.remaining == 0
    body = s3.get_object(Bucket=bucket, Key="lake/ids.parquet")["Body"].read()
    rewritten = pq.ParquetFile(io.BytesIO(body)).metadata
    assert rewritten.num_rows == padded.num_rows - 1
    assert rewritten.row_group(0).column(0).bloom_filter_offset  # the filters were kept
