"""``discover`` writes drafts that pass their own ``check``, on every dialect, on a shop schema
with the traps real schemas have: two schemas, a view, a generated column, lookup and catalogue
tables, a self-reference, financial records, tables without personal data and a shared
address; then the draft runs: access finds the subject's rows (stored with other capitals),
erasure completes and leaves the other customer's rows as they were. Also Chinook, MariaDB
partitioning, and the refusals (empty database, a table name in two schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_discover import discover
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import SqlSystem
from dsar.errors import DataMapError
from tests import services
from tests.chinook import (  # noqa: F401 - fixtures
    ChinookDb,
    chinook_db_fixture,
    chinook_maria_template_fixture,
    chinook_pg_template_fixture,
)
from tests.connectors.sql_dialects import DIALECTS, dialect_url
from tests.connectors.test_sql_chinook import ListSink


def shop_metadata(billing: str | None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    md = sa.MetaData()
    s, i, n = sa.String, sa.Integer, sa.Numeric(10, 2)

    def pk() -> sa.Column[Any]:
        return sa.Column("id", i, primary_key=True, autoincrement=False)

    t = {
        "country": sa.Table("country", md, sa.Column("code", s(2), primary_key=True),
                            sa.Column("name", s(50))),
        "address": sa.Table("address", md, pk(), sa.Column("street", s(100)),
                            sa.Column("city", s(50))),
        "employee": sa.Table("employee", md, pk(), sa.Column("email", s(120)),
                             sa.Column("first_name", s(40)),
                             sa.Column("manager_id", i, sa.ForeignKey("employee.id"))),
        "customer": sa.Table(
            "customer", md, pk(), sa.Column("email", s(120), nullable=False),
            sa.Column("first_name", s(40), nullable=False), sa.Column("last_name", s(40)),
            sa.Column("display_name", s(40), sa.Computed("upper(first_name)", persisted=True)),
            sa.Column("address_id", i, sa.ForeignKey("address.id")),
            sa.Column("country_code", s(2), sa.ForeignKey("country.code")),
            sa.Column("support_rep_id", i, sa.ForeignKey("employee.id"))),
        "orders": sa.Table("orders", md, pk(), sa.Column("customer_id", i, sa.ForeignKey(
            "customer.id"), nullable=False), sa.Column("total", n)),
        "product": sa.Table("product", md, pk(), sa.Column("title", s(80))),
        "order_line": sa.Table("order_line", md, pk(),
                               sa.Column("order_id", i, sa.ForeignKey("orders.id")),
                               sa.Column("product_id", i, sa.ForeignKey("product.id")),
                               sa.Column("quantity", i)),
        "newsletter": sa.Table("newsletter", md, pk(),
                               sa.Column("customer_id", i, sa.ForeignKey("customer.id")),
                               sa.Column("topic", s(30))),
    }
    if billing is not None:  # created by INVOICE_DDL: its key crosses schemas
        t["invoice"] = sa.Table("invoice", sa.MetaData(), pk(), sa.Column("customer_id", i),
                                sa.Column("amount", n), schema=billing)
    return md, t


INVOICE_DDL = ("CREATE TABLE {q}{billing}{q}.invoice (id INT PRIMARY KEY, customer_id INT, "
               "amount DECIMAL(10, 2), FOREIGN KEY (customer_id) REFERENCES "
               "{q}{main}{q}.customer (id))")


ROWS = {
    "country": [{"code": "DE", "name": "Germany"}],
    "address": [{"id": 1, "street": "1 Shared St", "city": "Bonn"},
                {"id": 2, "street": "2 Own St", "city": "Köln"}],
    "employee": [{"id": 1, "email": "boss@shop.example", "first_name": "Bo", "manager_id": None},
                 {"id": 2, "email": "rep@shop.example", "first_name": "Re", "manager_id": 1}],
    "customer": [
        {"id": 1, "email": "Ann@Example.org", "first_name": "Ann", "last_name": "A",
         "address_id": 1, "country_code": "DE", "support_rep_id": 2},
        {"id": 2, "email": "bob@example.org", "first_name": "Bob", "last_name": "B",
         "address_id": 2, "country_code": "DE", "support_rep_id": 2},
        {"id": 3, "email": "cy@example.org", "first_name": "Cy", "last_name": "C",
         "address_id": 1, "country_code": "DE", "support_rep_id": 2}],
    "orders": [{"id": 10, "customer_id": 1, "total": 5}, {"id": 11, "customer_id": 1, "total": 7},
               {"id": 12, "customer_id": 2, "total": 9}],
    "product": [{"id": 1, "title": "Lamp"}, {"id": 2, "title": "Desk"}],
    "order_line": [{"id": 1, "order_id": 10, "product_id": 1, "quantity": 1},
                   {"id": 2, "order_id": 11, "product_id": 2, "quantity": 2},
                   {"id": 3, "order_id": 12, "product_id": 1, "quantity": 1}],
    "newsletter": [{"id": 1, "customer_id": 1, "topic": "news"},
                   {"id": 2, "customer_id": 2, "topic": "news"}],
    "invoice": [{"id": 1, "customer_id": 1, "amount": 12}, {"id": 2, "customer_id": 2,
                                                            "amount": 9}],
}


def _second_schema(dialect: str, url: str) -> Iterator[str | None]:
    if dialect == "postgresql":
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA billing")
        engine.dispose()
        yield "billing"
    elif dialect == "mariadb":
        other = services.create_mariadb_database("dsar_billing")
        yield sa.make_url(other).database
        services.drop_mariadb_database(other)
    else:
        yield None


@pytest.fixture(params=DIALECTS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, list]]:
    """(dialect, url, schemas to discover) of a filled shop database."""
    from connectors import sql_engine

    url = dialect_url(request, tmp_path, "shop")
    gen = _second_schema(request.param, url)
    billing = next(gen)
    md, tables = shop_metadata(billing)
    engine = sa.create_engine(url)
    md.create_all(engine)
    with engine.begin() as conn:
        default = sa.inspect(conn).default_schema_name
        if billing:
            conn.exec_driver_sql(INVOICE_DDL.format(
                q="`" if request.param == "mariadb" else '"', billing=billing, main=default))
        for name, table in tables.items():
            conn.execute(table.insert(), ROWS[name])
        conn.exec_driver_sql("CREATE VIEW customer_names AS SELECT id, first_name FROM customer")
    engine.dispose()
    yield request.param, url, [default, billing] if billing else []
    sql_engine.dispose_all()
    for _ in gen:
        pass


def errors(dm: Any, url: str) -> list[str]:
    return [f.one_line() for f in check_datamap(dm, {"SHOP_URL": url}) if f.severity == "error"]


def test_the_shop_draft_passes_its_check_and_runs(shop: tuple[str, str, list]) -> None:
    _dialect, url, schemas = shop
    text = discover(url, "shop", "SHOP_URL", schemas or None)
    dm = parse_datamap(text)
    assert errors(dm, url) == []
    system = dm.systems[0]
    assert isinstance(system, SqlSystem)
    entry = {t.name: t for t in system.tables}
    assert "customer_names" not in entry and "# note: views are not mapped" in text
    assert "customer.display_name" in text and "generated" in text
    customer = entry["customer"]
    assert customer.erasure.action == "mask" and "display_name" not in customer.erasure.mask
    assert set(customer.erasure.mask) >= {"email", "first_name", "last_name"}
    assert entry["orders"].erasure.action == "retain"
    assert entry["employee"].erasure.action == "mask"  # other employees point at a manager
    assert entry["order_line"].erasure.action == "none"
    assert entry["newsletter"].erasure.action == "none"
    assert "product" not in entry and "country" not in entry  # catalogue, lookup: never reached
    directions = {(t.name, r.table): r.direction for t in system.tables for r in t.references}
    assert directions[("customer", "address")] == "outbound"
    assert directions[("customer", "employee")] == "none"
    assert "# review:" in text and url not in text
    if schemas:
        assert entry["invoice"].db_schema == schemas[1]
        assert entry["invoice"].erasure.action == "retain"
        assert directions[("invoice", "customer")] == "inbound"

    context = ConnectorContext(hash_key=b"k" * 32, environ={"SHOP_URL": url})
    keys = {"email": frozenset({"ann@example.org"})}
    sink = ListSink()
    SqlConnector(system, context).collect(keys, sink)
    assert [r["id"] for r in sink.rows["customer"]] == [1]
    assert sorted(r["id"] for r in sink.rows["orders"]) == [10, 11]
    assert sorted(r["id"] for r in sink.rows["order_line"]) == [1, 2]
    if schemas:
        assert [r["id"] for r in sink.rows["invoice"]] == [1]

    others = _rows_of_others(url)
    SqlConnector(system, context).erase(keys)
    assert _rows_of_others(url) == others
    again = ListSink()
    SqlConnector(system, context).collect(keys, again)
    assert not again.rows.get("customer")


def _rows_of_others(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Rows the erasure of customer 1 must leave as they are: other customers', their orders,
    every address (address 1 is shared with customer 3), employees, products."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {
            "customer": list(conn.execute(sa.text("SELECT * FROM customer WHERE id <> 1 "
                                                  "ORDER BY id"))),
            "orders": list(conn.execute(sa.text("SELECT * FROM orders WHERE customer_id = 2"))),
            "address": list(conn.execute(sa.text("SELECT * FROM address ORDER BY id"))),
            "employee": list(conn.execute(sa.text("SELECT * FROM employee ORDER BY id"))),
            "product": list(conn.execute(sa.text("SELECT * FROM product ORDER BY id"))),
        }
    engine.dispose()
    return out


def test_chinook_drafts_pass_their_check(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    dm = parse_datamap(discover(chinook_db.url, "chinook", "SHOP_URL"))
    assert errors(dm, chinook_db.url) == []
    system = dm.systems[0]
    assert isinstance(system, SqlSystem)
    actions = {t.name: t.erasure.action for t in system.tables}
    assert actions[n("invoice")] == "retain" and actions[n("customer")] == "mask"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_empty_database_is_refused(request: pytest.FixtureRequest, tmp_path: Path,
                                      dialect: str) -> None:
    request.param = dialect  # type: ignore[attr-defined]
    url = dialect_url(request, tmp_path, "empty")
    if dialect == "sqlite":
        sa.create_engine(url).connect().close()
    with pytest.raises(DataMapError, match="has no tables"):
        discover(url)


def test_an_empty_postgresql_schema_is_refused(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA empty")
        conn.exec_driver_sql("CREATE SCHEMA other")
        conn.exec_driver_sql("CREATE TABLE customer (id int primary key, email text)")
        conn.exec_driver_sql("CREATE TABLE other.customer (id int primary key, email text)")
    engine.dispose()
    with pytest.raises(DataMapError, match="schema 'empty' has no tables"):
        discover(postgres_url, schema=["public", "empty"])
    with pytest.raises(DataMapError, match="exists in schemas 'public' and 'other'"):
        discover(postgres_url, schema=["public", "other"])
    with pytest.raises(DataMapError, match="no column that looks like an email"):
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA plain")
            conn.exec_driver_sql("CREATE TABLE plain.thing (id int primary key)")
        engine.dispose()
        discover(postgres_url, schema="plain")


def test_a_partitioned_mariadb_table_is_one_table(mariadb_url: str) -> None:
    from connectors import sql_engine

    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE payment (id INT NOT NULL, payer_email VARCHAR(120) NOT NULL, "
            "amount DECIMAL(10,2), paid_at DATE NOT NULL, PRIMARY KEY (id, paid_at)) "
            "PARTITION BY RANGE COLUMNS(paid_at) (PARTITION p1 VALUES LESS THAN "
            "('2026-07-01'), PARTITION p2 VALUES LESS THAN (MAXVALUE))")
        conn.exec_driver_sql(
            "INSERT INTO payment VALUES (1, 'Ann@Example.org', 5, '2026-01-05'), "
            "(2, 'ann@example.org', 6, '2026-09-05'), (3, 'bob@example.org', 7, '2026-09-05')")
    engine.dispose()
    text = discover(mariadb_url, "shop", "SHOP_URL")
    assert "payment is partitioned" in text
    dm = parse_datamap(text)
    assert errors(dm, mariadb_url) == []
    system = dm.systems[0]
    assert isinstance(system, SqlSystem) and [t.name for t in system.tables] == ["payment"]
    sink = ListSink()
    context = ConnectorContext(hash_key=b"k" * 32, environ={"SHOP_URL": mariadb_url})
    SqlConnector(system, context).collect({"email": frozenset({"ann@example.org"})}, sink)
    assert sorted(r["id"] for r in sink.rows["payment"]) == [1, 2]
    sql_engine.dispose_all()


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_keys_from_another_schema_keep_rows_from_being_deleted(
        request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> None:
    from connectors import sql_engine

    request.param = dialect  # type: ignore[attr-defined]
    url = dialect_url(request, tmp_path, "main")
    gen = _second_schema(dialect, url)
    audit = next(gen)
    q = "`" if dialect == "mariadb" else '"'
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        main = sa.inspect(conn).default_schema_name
        conn.exec_driver_sql("CREATE TABLE customer (id INT PRIMARY KEY, email VARCHAR(80))")
        conn.exec_driver_sql(f"CREATE TABLE {q}{audit}{q}.login (id INT PRIMARY KEY, "
                             f"customer_id INT NOT NULL, FOREIGN KEY (customer_id) "
                             f"REFERENCES {q}{main}{q}.customer (id))")
    engine.dispose()
    try:
        text = discover(url, "shop", "SHOP_URL")  # the default schema only
        dm = parse_datamap(text)
        assert errors(dm, url) == []
        system = dm.systems[0]
        assert isinstance(system, SqlSystem)
        assert system.table("customer").erasure.action == "mask"
        assert f"{audit}.login rows (customer_id) point at it" in text
        deleting = text.replace("erasure:\n          action: mask\n          mask:\n"
                                "            email: {strategy: 'null'}",
                                "erasure: {action: delete}")
        assert [e for e in errors(parse_datamap(deleting), url) if f"{audit}.login" in e]
    finally:
        sql_engine.dispose_all()
        for _ in gen:
            pass
