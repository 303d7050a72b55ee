"""Rows collected by the SQL connector keep their types all the way into the bundle: data.json
names the type of every date, timestamp, decimal and UUID column, and the CSV leaves numbers and
booleans unquoted (docs/bundle.md), on every dialect."""

from __future__ import annotations

import datetime as dt
import io
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.sql_collect import restore_values
from connectors.sql_query import json_row, json_rows
from dsar.bundles import BundleMeta, LocalBundleStore, RowsBatch, build_bundle
from dsar.bundles.reader import collection, csv_rows, load_data
from dsar.bundles.reader import json_rows as decoded_rows
from dsar.bundles.values import decode, encode, kind_of
from dsar.datamap.loader import parse_datamap
from tests.connectors.sql_dialects import DIALECTS, filled_database, sql_connector
from tests.connectors.test_sql_chinook import ListSink
from tests.dsar.bundles.test_bundle_build import _download
from workflows.staging import dumps, loads

MD = sa.MetaData()
ACCOUNT = sa.Table(
    "account", MD,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(80)),
    sa.Column("born", sa.Date),
    sa.Column("seen_at", sa.DateTime),
    sa.Column("balance", sa.Numeric(12, 2)),
    sa.Column("token", sa.Uuid),
    sa.Column("visits", sa.Integer),
    sa.Column("huge", sa.BigInteger),
    sa.Column("active", sa.Boolean),
    sa.Column("nickname", sa.String(20)),
)
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")
ROW = {"id": 7, "email": "a@example.org", "born": dt.date(1990, 2, 28),
       "seen_at": dt.datetime(2024, 5, 1, 14, 3, 9), "balance": Decimal("1234.50"),
       "token": TOKEN, "visits": 42, "huge": 2**60 + 3, "active": True, "nickname": "42"}
OTHER = {**ROW, "id": 8, "email": "b@example.org", "token": uuid.uuid4()}
MAP = yaml.safe_dump({"systems": [{
    "name": "shop", "kind": "sql", "url_env": "SHOP_URL",
    "tables": [{"name": "account", "primary_key": ["id"], "identities": {"email": "email"},
                "columns": {"email": {"category": "user.contact.email"}}}]}]})


def expected(url: str) -> dict[str, Any]:
    """ROW as the database's catalog lets it come back: SQLite has no UUID type (SQLAlchemy
    stores 32 hex digits as text), MariaDB's BOOLEAN is TINYINT(1), a number."""
    if url.startswith("sqlite"):
        return {**ROW, "token": TOKEN.hex}
    if url.startswith("mysql") or url.startswith("mariadb"):
        return {**ROW, "active": 1}
    return ROW


@pytest.fixture(params=DIALECTS)
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "types", MD, {ACCOUNT: [ROW, OTHER]})


def collected(url: str) -> list[dict[str, Any]]:
    sink = ListSink()
    with sql_connector(MAP, "SHOP_URL", url, b"k" * 32) as conn:
        conn.collect({"email": frozenset({"a@example.org"})}, sink)
    return sink.rows["account"]


def test_sql_values_reach_the_sink_with_their_types(shop_url: str) -> None:
    (row,) = collected(shop_url)
    want = expected(shop_url)
    assert row == want
    assert {k: type(v) for k, v in row.items()} == {k: type(v) for k, v in want.items()}


def test_sql_types_in_data_json_and_csv(shop_url: str, tmp_path: Path) -> None:
    rows = collected(shop_url)
    staged = loads(dumps(rows))  # what the fleet's staging gives back
    store, key, now = LocalBundleStore(tmp_path / "b"), b"x" * 32, dt.datetime.now(dt.UTC)
    secret = b"s" * 32
    info = build_bundle(BundleMeta("r1"), parse_datamap(MAP),
                        lambda: [RowsBatch("shop", "account", staged)], store, key, now)
    archive = zipfile.ZipFile(io.BytesIO(_download(store, info, key, secret, now)))
    coll = collection(load_data(archive), "shop", "account")
    want = expected(shop_url)
    types = {"born": "date", "seen_at": "datetime", "balance": "decimal", "token": "uuid"}
    if shop_url.startswith("sqlite"):
        del types["token"]
    assert coll["types"] == types
    assert coll["rows"][0]["visits"] == 42
    assert coll["rows"][0]["huge"] == 2**60 + 3  # a JSON number, not a string
    assert coll["rows"][0]["active"] is want["active"]
    assert decoded_rows(coll) == [want]

    header, line = archive.read(coll["csv"]).decode().splitlines()
    fields = dict(zip(header.replace('"', "").split(","), line.split(","), strict=True))
    assert fields["id"] == "7"
    assert fields["visits"] == "42"
    assert fields["huge"] == str(2**60 + 3)
    assert fields["active"] == ("true" if want["active"] is True else "1")
    assert fields["nickname"] == '"42"'  # text stays text
    assert fields["balance"] == '"1234.50"'
    assert fields["born"] == '"1990-02-28"'
    assert fields["token"] == f'"{want["token"]}"'
    assert csv_rows(archive, coll) == (list(ROW), [want])


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.dates(), st.datetimes(timezones=st.sampled_from([None, dt.UTC])),
    st.times(), st.uuids(), st.binary(max_size=8), st.timedeltas(),
)


@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), max_size=5))
def test_restored_rows_hash_like_the_evidence_and_bundle_exactly(rows: list[list[Any]]) -> None:
    """Whatever the driver returns: the sink's rows have the JSON form the evidence digest was
    computed from, and every value the bundle can type comes back from data.json as it was."""
    names = ["a", "b", "c"]
    encoded, _ = json_rows(names, rows)
    before = [dict(row) for row in encoded]
    restore_values(encoded, rows, [(name, at) for at, name in enumerate(names)])
    assert [json_row(row) for row in encoded] == before
    for row, restored in zip(rows, encoded, strict=True):
        for name, value in zip(names, row, strict=True):
            back = decode(encode(restored[name]), kind_of(restored[name]))
            if isinstance(value, dt.timedelta):  # no bundle type: its text
                assert back == str(value)
            else:
                assert back == value and type(back) is type(value)
