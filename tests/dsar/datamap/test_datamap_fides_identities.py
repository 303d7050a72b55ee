"""A Fides collection with two identity fields: both become identity columns, and a request by
either address finds, and erases, the person's rows through the SQL connector on every dialect.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.datamap.check import check_datamap
from dsar.datamap.fides import import_fides, import_fides_map
from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import SqlSystem
from dsar.errors import DataMapError
from dsar.planning import walk_sql_system
from tests.connectors.sql_dialects import DIALECTS, filled_database, sql_connector
from tests.connectors.sql_dialects import snapshot as dialect_snapshot
from tests.connectors.test_sql_chinook import ListSink

FIXTURE = (Path(__file__).parent / "fides_two_identities.yml").read_text()
MD = sa.MetaData()
CUSTOMER = sa.Table("customer", MD, sa.Column("id", sa.Integer, primary_key=True,
                                               autoincrement=False),
                    sa.Column("email", sa.String(80)), sa.Column("alt_email", sa.String(80)),
                    sa.Column("name", sa.String(40)))
ORDERS = sa.Table("orders", MD, sa.Column("id", sa.Integer, primary_key=True,
                                           autoincrement=False),
                  sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id")),
                  sa.Column("total", sa.Integer))
PRODUCT = sa.Table("product", MD, sa.Column("id", sa.Integer, primary_key=True,
                                             autoincrement=False),
                   sa.Column("title", sa.String(40)))
LINE = sa.Table("order_line", MD, sa.Column("id", sa.Integer, primary_key=True,
                                             autoincrement=False),
                sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id")),
                sa.Column("product_id", sa.Integer, sa.ForeignKey("product.id")))
ROWS: dict[sa.Table, list[dict[str, Any]]] = {
    CUSTOMER: [{"id": 1, "email": "ann@example.org", "alt_email": "Ann.Work@Example.org",
                "name": "Ann"},
               {"id": 2, "email": "bob@example.org", "alt_email": None, "name": "Bob"}],
    ORDERS: [{"id": 10, "customer_id": 1, "total": 5}, {"id": 11, "customer_id": 2, "total": 7}],
    PRODUCT: [{"id": 100, "title": "Kettle"}],
    LINE: [{"id": 1000, "order_id": 10, "product_id": 100},
           {"id": 1001, "order_id": 11, "product_id": 100}],
}
SECOND = {"email": frozenset({"ann.work@example.org"})}
FIRST = {"email": frozenset({"ann@example.org"})}


@pytest.fixture(params=DIALECTS)
def crm_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "crm", MD, ROWS)


def imported() -> str:
    return import_fides(FIXTURE, "CRM_URL", "fides_two_identities.yml")


def test_both_identity_fields_become_identity_columns() -> None:
    crm = import_fides_map(FIXTURE, "CRM_URL").systems[0]
    assert isinstance(crm, SqlSystem)
    customer = crm.table("customer")
    assert customer.identities == {"email": ["email", "alt_email"]}
    assert customer.identity_columns("email") == ("email", "alt_email")
    assert customer.erasure.action == "mask"
    assert set(customer.erasure.mask) == {"email", "alt_email", "name"}
    walk = walk_sql_system(crm, {"email"})
    assert [m.columns for m in walk.matches["customer"]] == [("email",), ("alt_email",)]
    assert crm.table("product").erasure.action == "none"  # catalogue: never changed
    assert crm.table("order_line").erasure.action == "delete"  # asked for by the override


def test_a_request_by_the_second_address_finds_and_erases_the_person(crm_url: str) -> None:
    before = dialect_snapshot(crm_url, list(ROWS))
    findings = check_datamap(parse_datamap(imported()), {"CRM_URL": crm_url})
    assert [f for f in findings if f.severity == "error"] == []
    with sql_connector(imported(), "CRM_URL", crm_url, b"k" * 32) as conn:
        sink = ListSink()
        conn.collect(SECOND, sink)
        assert [r["id"] for r in sink.rows["customer"]] == [1]
        assert [r["id"] for r in sink.rows["orders"]] == [10]
        assert [r["id"] for r in sink.rows["order_line"]] == [1000]
        assert [r["id"] for r in sink.rows["product"]] == [100]
        erased = conn.erase(SECOND)
        by = {e.collection: e for e in erased.evidence}
        assert (by["customer"].masked, by["orders"].masked, by["order_line"].deleted) == (1, 1, 1)
        assert by["product"].deleted == by["product"].masked == 0
        assert all(e.remaining in (0, None) for e in erased.evidence)
        for keys in (FIRST, SECOND):  # erased means not found, by either address
            again = ListSink()
            conn.collect(keys, again)
            assert not any(again.rows.values())
    after = dialect_snapshot(crm_url, list(ROWS))
    assert after["customer"] == [(1, None, None, None), before["customer"][1]]
    assert after["orders"] == [(10, None, 5), before["orders"][1]]
    assert after["order_line"] == [before["order_line"][1]]
    assert after["product"] == before["product"]  # shared catalogue row untouched


def test_a_single_column_identity_stays_a_string_and_lists_are_validated() -> None:
    def table(identities: Any) -> str:
        return ("systems: [{name: s, kind: sql, url_env: S_URL, tables: [{name: t, "
                f"primary_key: [id], identities: {identities}}}]}}]")

    one = parse_datamap(table("{email: mail}")).systems[0]
    assert isinstance(one, SqlSystem)
    assert one.tables[0].identity_items() == [("email", "mail")]
    assert one.tables[0].known_columns() == {"id", "mail"}
    for bad, says in (("{email: []}", "a column or a list of columns"),
                      ("{email: [a, a]}", "lists a column twice"),
                      ("{email: [a, 3]}", "a column or a list of columns")):
        with pytest.raises(DataMapError, match=says):
            parse_datamap(table(bad), "m.yaml")


def test_discover_lists_every_identity_column_of_a_table(tmp_path: Path) -> None:
    from connectors.sql_discover import discover

    url = f"sqlite:///{tmp_path / 'two.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customer (id INTEGER PRIMARY KEY, "
                             "email VARCHAR(80), alt_email VARCHAR(80), name VARCHAR(40))")
    engine.dispose()
    system = parse_datamap(discover(url, "crm", "CRM_URL")).systems[0]
    assert isinstance(system, SqlSystem)
    assert system.table("customer").identity_columns("email") == ("email", "alt_email")
