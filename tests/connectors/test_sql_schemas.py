"""The SQL connector on a schema with no declared foreign keys (the data map supplies the
references), a composite primary key, a table reached by two paths and a self-reference, in
PostgreSQL, MariaDB and SQLite; plus the failure modes: missing table or column, unreachable
database, bad credentials and statement timeouts — each rolled back, each retryable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors import sql_engine
from connectors.sql import SqlConnector
from dsar.datamap.loader import parse_datamap
from dsar.errors import ConnectorError
from dsar.planning import plan_request
from tests.connectors.sql_dialects import DIALECTS, filled_database, sql_connector
from tests.connectors.sql_dialects import snapshot as dialect_snapshot
from tests.connectors.test_sql_chinook import ListSink

KEYS = {"email": frozenset({"a@example.org"})}
MD = sa.MetaData()
USERS = sa.Table("users", MD, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("email", sa.String(80)), sa.Column("referred_by", sa.Integer))
ORDERS = sa.Table("orders", MD, sa.Column("id", sa.Integer, primary_key=True,
                                          autoincrement=False),
                  sa.Column("user_id", sa.Integer, nullable=False))
ITEMS = sa.Table("order_items", MD,
                 sa.Column("order_id", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
                 sa.Column("sku", sa.String(20)))
PAYMENTS = sa.Table("payments", MD, sa.Column("id", sa.Integer, primary_key=True,
                                              autoincrement=False),
                    sa.Column("order_id", sa.Integer), sa.Column("user_id", sa.Integer),
                    sa.Column("card_last4", sa.String(4)))
ADDRESSES = sa.Table("addresses", MD,
                     sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
                     sa.Column("kind", sa.String(10), primary_key=True),
                     sa.Column("street", sa.String(50)), sa.Column("city", sa.String(30)))
ROWS: dict[sa.Table, list[dict[str, Any]]] = {
    USERS: [{"id": 1, "email": "a@example.org", "referred_by": 2},
            {"id": 2, "email": "b@example.org", "referred_by": 1}],
    ORDERS: [{"id": 10, "user_id": 1}, {"id": 11, "user_id": 1}, {"id": 12, "user_id": 2}],
    ITEMS: [{"order_id": 10, "line_no": 1, "sku": "A"}, {"order_id": 10, "line_no": 2, "sku": "B"},
            {"order_id": 11, "line_no": 1, "sku": "C"}, {"order_id": 12, "line_no": 1, "sku": "D"}],
    PAYMENTS: [{"id": 1, "order_id": 10, "user_id": 1, "card_last4": "1111"},
               {"id": 2, "order_id": 12, "user_id": 1, "card_last4": "2222"},
               {"id": 3, "order_id": 11, "user_id": 2, "card_last4": "3333"},
               {"id": 4, "order_id": 12, "user_id": 2, "card_last4": "4444"}],
    ADDRESSES: [{"user_id": 1, "kind": "home", "street": "1 Main St", "city": "Bonn"},
                {"user_id": 1, "kind": "work", "street": "2 Side St", "city": "Köln"},
                {"user_id": 2, "kind": "home", "street": "3 Other St", "city": "Bonn"}],
}


def ref(columns: str, table: str, to: str = "id", direction: str = "inbound") -> dict[str, Any]:
    return {"columns": [columns], "table": table, "to": [to], "direction": direction}


def shop_map(url_env: str = "SHOP_URL", extra: list[dict[str, Any]] | None = None) -> str:
    tables = [
        {"name": "users", "primary_key": ["id"], "identities": {"email": "email"},
         "provides": {"user_id": "id"}, "columns": {"email": {"category": "contact.email"}},
         "references": [ref("referred_by", "users")]},
        {"name": "orders", "primary_key": ["id"], "references": [ref("user_id", "users")]},
        {"name": "order_items", "primary_key": ["order_id", "line_no"],
         "references": [ref("order_id", "orders")]},
        {"name": "payments", "primary_key": ["id"],
         "references": [ref("order_id", "orders"), ref("user_id", "users")]},
        {"name": "addresses", "primary_key": ["user_id", "kind"],
         "references": [ref("user_id", "users")],
         "columns": {"street": {"category": "contact.address"},
                     "city": {"category": "contact.address"}},
         "erase_after": ["payments", "order_items", "orders"],
         "erasure": {"action": "mask", "mask": {"street": {"strategy": "hash"},
                                                "city": {"strategy": "fixed", "value": "-"}}}},
        *(extra or []),
    ]
    return yaml.safe_dump({"systems": [{"name": "shop", "kind": "sql", "url_env": url_env,
                                        "statement_timeout_seconds": 1, "tables": tables}]})


@pytest.fixture(params=DIALECTS)
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "shop", MD, ROWS)


def make(url: str, text: str | None = None) -> SqlConnector:
    return sql_connector(text or shop_map(), "SHOP_URL", url, b"s" * 32)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return dialect_snapshot(url, list(ROWS))


def test_collect_uses_map_references_two_paths_once_and_skips_self_reference(
        shop_url: str) -> None:
    sink = ListSink()
    with make(shop_url) as conn:
        result = conn.collect(KEYS, sink)
    assert [r["id"] for r in sink.rows["users"]] == [1]  # not the referred user 2
    assert [r["id"] for r in sink.rows["orders"]] == [10, 11]
    assert [(r["order_id"], r["line_no"]) for r in sink.rows["order_items"]] == [
        (10, 1), (10, 2), (11, 1)]
    assert [r["id"] for r in sink.rows["payments"]] == [1, 2, 3]  # each once, by two paths
    assert len(sink.rows["addresses"]) == 2
    assert result.discovered == {"user_id": {"1"}}
    plan = plan_request(parse_datamap(shop_map()), KEYS, "access")
    payments = next(s for s in plan.steps if s.collection == "payments")
    assert {m.source for m in payments.matches} == {"orders", "users"}


def test_erase_without_declared_foreign_keys_masks_composite_keys_and_is_idempotent(
        shop_url: str) -> None:
    with make(shop_url) as conn:
        first = conn.erase(KEYS)
        second = conn.erase(KEYS)
    after = snapshot(shop_url)
    assert [r[0] for r in after["users"]] == [2]
    assert [r[0] for r in after["orders"]] == [12]
    assert after["order_items"] == [(12, 1, "D")]
    assert [r[0] for r in after["payments"]] == [4]
    masked = [r for r in after["addresses"] if r[0] == 1]
    assert len(masked) == 2 and all(r[3] == "-" and r[2] not in ("1 Main St", "2 Side St")
                                    for r in masked)
    assert (2, "home", "3 Other St", "Bonn") in after["addresses"]
    order = [e.collection for e in first.evidence]
    assert order.index("addresses") > order.index("orders") and order[-1] == "users"
    assert {e.collection: e.masked for e in first.evidence}["addresses"] == 2
    assert all(e.found == e.deleted == e.masked == 0 for e in second.evidence)


def test_missing_table_is_refused_before_anything_changes(shop_url: str) -> None:
    before = snapshot(shop_url)
    text = shop_map(extra=[{"name": "ghosts", "primary_key": ["id"],
                            "references": [ref("user_id", "users")]}])
    with make(shop_url, text) as conn, pytest.raises(ConnectorError) as info:
        conn.erase(KEYS)
    assert info.value.code == "missing_table" and info.value.collection == "ghosts"
    assert not info.value.transient
    assert snapshot(shop_url) == before


def test_column_dropped_at_run_time_rolls_back_and_a_retry_works(shop_url: str) -> None:
    before = snapshot(shop_url)
    with make(shop_url) as conn:
        conn.count(KEYS)  # warms the reflection cache
        engine = sa.create_engine(shop_url)
        with engine.begin() as db:
            db.execute(sa.text("ALTER TABLE addresses DROP COLUMN city"))
        with pytest.raises(ConnectorError) as info:
            conn.erase(KEYS)
        assert info.value.collection == "addresses"
        assert info.value.code in ("missing_column", "db_error")
        after = snapshot_without_city(shop_url)
        assert after == {k: [r[:3] if k == "addresses" else r for r in v]
                         for k, v in before.items()}
        with engine.begin() as db:
            db.execute(sa.text("ALTER TABLE addresses ADD COLUMN city VARCHAR(30)"))
        engine.dispose()
        result = conn.erase(KEYS)
    assert {e.collection: e.deleted for e in result.evidence}["users"] == 1


def snapshot_without_city(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {}
        for t in ROWS:
            cols = [c for c in t.c if c.name != "city"]
            out[t.name] = sorted(tuple(r) for r in conn.execute(sa.select(*cols)))
    engine.dispose()
    return out


@pytest.mark.parametrize(("url", "code", "transient"), [
    ("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "unreachable", True),
    ("mysql+pymysql://root@127.0.0.1:1/nowhere", "unreachable", True),
    ("postgresql+psycopg://no_such_role_dsar@127.0.0.1:5432/postgres", "auth", False),
    ("mysql+pymysql://root:wrong-password@127.0.0.1:3306/mysql", "auth", False),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_dsar", "missing_database", False),
])
@pytest.mark.usefixtures("postgres_server", "mariadb_server")
def test_connection_failures_are_named_and_classified(url: str, code: str,
                                                      transient: bool) -> None:
    with make(url) as conn, pytest.raises(ConnectorError) as info:
        conn.erase(KEYS)
    assert (info.value.code, info.value.transient, info.value.system) == (code, transient, "shop")
    assert "password" not in str(info.value)
    sql_engine.dispose_all()


def test_statement_timeout_is_transient_and_rolls_back(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    MD.create_all(engine)
    with engine.begin() as conn:
        for table, rows in ROWS.items():
            conn.execute(table.insert(), rows)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(5)
    try:
        with make(postgres_url) as conn, pytest.raises(ConnectorError) as info:
            conn.erase(KEYS)
        assert (info.value.code, info.value.transient) == ("timeout", True)
    finally:
        release.set()
        holder.join()
    with make(postgres_url) as conn:
        assert {e.collection: e.deleted for e in conn.erase(KEYS).evidence}["users"] == 1
    engine.dispose()
    sql_engine.dispose_all()
