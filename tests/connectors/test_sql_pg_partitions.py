"""PostgreSQL declarative partitioning and inheritance, as discover, check and the SQL connector
see them: a ``payment`` table partitioned by month whose foreign key to ``customer`` is declared
on only half of its partitions, and a ``refund`` table pointing at the partitioned parent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_discover import discover
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import SqlSystem
from tests.connectors.test_sql_chinook import ListSink

KEYS = {"email": frozenset({"ann@example.org"})}


@pytest.fixture
def shop(postgres_url: str) -> Iterator[str]:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run("CREATE TABLE customer (id int PRIMARY KEY, email text NOT NULL, name text)")
        run("CREATE TABLE payment (id int NOT NULL, customer_id int NOT NULL, amount "
            "numeric(10, 2), paid_at date NOT NULL, PRIMARY KEY (id, paid_at)) "
            "PARTITION BY RANGE (paid_at)")
        for month in range(1, 13):
            end = "2027-01-01" if month == 12 else f"2026-{month + 1:02d}-01"
            run(f"CREATE TABLE payment_{month:02d} PARTITION OF payment FOR VALUES FROM "
                f"('2026-{month:02d}-01') TO ('{end}')")
            if month <= 6:  # the foreign key exists on some partitions only
                run(f"ALTER TABLE payment_{month:02d} ADD FOREIGN KEY (customer_id) "
                    "REFERENCES customer (id)")
        run("CREATE TABLE refund (id int PRIMARY KEY, payment_id int, paid_at date, "
            "FOREIGN KEY (payment_id, paid_at) REFERENCES payment (id, paid_at))")
        run("CREATE TABLE contact (id int PRIMARY KEY, customer_id int REFERENCES customer, "
            "note text)")
        run("CREATE TABLE phone_contact (phone text) INHERITS (contact)")
        run("INSERT INTO customer VALUES (1, 'Ann@Example.org', 'Ann'), "
            "(2, 'bob@example.org', 'Bob')")
        rows = [(i, 1, f"2026-{(i - 1) % 12 + 1:02d}-{(i - 1) // 12 + 3:02d}")
                for i in range(1, 16)]
        rows += [(100 + i, 2, f"2026-{i:02d}-10") for i in range(1, 6)]
        for pid, cid, day in rows:
            run(f"INSERT INTO payment VALUES ({pid}, {cid}, 9.50, '{day}')")
        run("INSERT INTO refund VALUES (1, 1, '2026-01-03'), (2, 101, '2026-01-10')")
    engine.dispose()
    yield postgres_url
    sql_engine.dispose_all()


def connector(text: str, url: str) -> SqlConnector:
    system = parse_datamap(text).systems[0]
    context = ConnectorContext(hash_key=b"k" * 32, environ={"SHOP_URL": url})
    return SqlConnector(system, context)  # type: ignore[arg-type]


def findings(text: str, url: str) -> list[Any]:
    return check_datamap(parse_datamap(text), {"SHOP_URL": url})


def test_discover_maps_the_parent_and_access_finds_every_partition(shop: str) -> None:
    text = discover(shop, "shop", "SHOP_URL")
    dm = parse_datamap(text)
    system = dm.systems[0]
    assert isinstance(system, SqlSystem)
    names = {t.name for t in system.tables}
    assert "payment" in names and not any(n.startswith("payment_") for n in names)
    payment = system.table("payment")
    assert [(r.table, r.direction) for r in payment.references] == [("customer", "inbound")]
    assert payment.erasure.action == "retain"
    assert "payment is partitioned (12 partitions)" in text
    assert "phone_contact inherits from contact" in text
    found = findings(text, shop)
    assert [f for f in found if f.severity == "error"] == []
    assert not any("payment_" in f.one_line() for f in found)  # no word about partitions
    sink = ListSink()
    connector(text, shop).collect(KEYS, sink)
    assert len(sink.rows["payment"]) == 15
    assert [r["id"] for r in sink.rows["refund"]] == [1]


def shop_map(payment: dict[str, Any], payment_name: str = "payment") -> str:
    tables = [
        {"name": "customer", "primary_key": ["id"], "identities": {"email": "email"},
         "erasure": {"action": "delete"}},
        {"name": payment_name, "primary_key": ["id", "paid_at"],
         "references": [{"columns": ["customer_id"], "table": "customer", "to": ["id"],
                         "direction": "inbound"}], "erasure": payment},
        {"name": "refund", "primary_key": ["id"],
         "references": [{"columns": ["payment_id", "paid_at"], "table": payment_name,
                         "to": ["id", "paid_at"], "direction": "inbound"}],
         "erasure": {"action": "delete"}},
        {"name": "contact", "primary_key": ["id"],
         "references": [{"columns": ["customer_id"], "table": "customer", "to": ["id"],
                         "direction": "inbound"}], "erasure": {"action": "delete"}},
    ]
    return yaml.safe_dump({"version": 1, "systems": [
        {"name": "shop", "kind": "sql", "url_env": "SHOP_URL", "tables": tables}]})


def test_erasure_on_the_parent_reaches_every_partition(shop: str) -> None:
    text = shop_map({"action": "delete"})
    assert [f for f in findings(text, shop) if f.severity == "error"] == []
    result = connector(text, shop).erase(KEYS)
    by = {e.collection: e for e in result.evidence}
    assert by["payment"].deleted == 15 and by["payment"].remaining == 0
    engine = sa.create_engine(shop)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT customer_id, count(*) FROM payment "
                                    "GROUP BY customer_id")).all()
    engine.dispose()
    assert left == [(2, 5)]


def test_check_rejects_what_the_database_would(shop: str) -> None:
    retained = {"action": "retain", "retain": {"ground": "Art. 17(3)(b) tax", "period": "10 years"}}
    found = findings(shop_map(retained), shop)
    assert any(f.severity == "error" and f.table == "payment" and "refused by the database"
               in f.problem for f in found)
    doc = yaml.safe_load(shop_map({"action": "delete"}))
    doc["systems"][0]["tables"] = [doc["systems"][0]["tables"][0]]  # payment left out
    found = findings(yaml.safe_dump(doc), shop)
    assert any(f.severity == "error" and f.table == "payment" and "not in the data map"
               in f.problem for f in found)
    doc = yaml.safe_load(shop_map({"action": "delete"}))
    doc["systems"][0]["tables"].append({
        "name": "phone_contact", "primary_key": ["id"], "identities": {"phone": "phone"},
        "erasure": {"action": "none"}})
    found = findings(yaml.safe_dump(doc), shop)
    assert any(f.severity == "error" and f.table == "phone_contact" and "inherits from contact"
               in f.problem for f in found)
    found = findings(shop_map({"action": "delete"}, "payment_03"), shop)
    assert any(f.severity == "error" and f.table == "payment_03" and "a partition of payment"
               in f.problem for f in found)
