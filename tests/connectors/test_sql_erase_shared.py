"""Erasure never changes other people's rows, and erased means not found: PostgreSQL, MariaDB,
SQLite.

A shop where the traps are real: two customers' orders ship to one address (``orders`` →
``addresses``, outbound), a product sits on several customers' order lines (``order_lines`` →
``products``, outbound; products default to ``delete``, as an import would), and a support
table is masked without masking the column the subject is found by. For each: access finds
exactly the subject's rows; erasure leaves the subject in no row outside what is kept with a
reason; every other row is byte-identical before and after.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors import sql_erase
from connectors.sql import SqlConnector
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.errors import ConnectorError, DataMapError
from tests.connectors.sql_dialects import DIALECTS, filled_database, sql_connector
from tests.connectors.sql_dialects import snapshot as dialect_snapshot
from tests.connectors.test_sql_chinook import ListSink
from tests.connectors.test_sql_erase_paths import KEYS as PATHS_KEYS
from tests.connectors.test_sql_erase_paths import MD as PATHS_MD
from tests.connectors.test_sql_erase_paths import ROWS as PATHS_ROWS
from tests.connectors.test_sql_erase_paths import make as paths_connector
from tests.connectors.test_sql_erase_paths import paths_map
from tests.connectors.test_sql_erase_paths import snapshot as paths_snapshot

ALICE = {"email": frozenset({"a@example.org"})}
BOB = {"email": frozenset({"b@example.org"})}
MD = sa.MetaData()


def _int(name: str, pk: bool = False, fk: str | None = None) -> sa.Column[Any]:
    args = [sa.ForeignKey(fk)] if fk else []
    return sa.Column(name, sa.Integer, *args, primary_key=pk, autoincrement=False)


ADDRESSES = sa.Table("addresses", MD, _int("id", True), sa.Column("street", sa.String(40)),
                     sa.Column("contact", sa.String(80)))  # who to call on delivery
PRODUCTS = sa.Table("products", MD, _int("id", True), sa.Column("title", sa.String(40)))
CUSTOMERS = sa.Table("customers", MD, _int("id", True), sa.Column("email", sa.String(80)),
                     sa.Column("name", sa.String(40)), _int("home_id", fk="addresses.id"))
ORDERS = sa.Table("orders", MD, _int("id", True), _int("customer_id", fk="customers.id"),
                  _int("ship_to", fk="addresses.id"))
LINES = sa.Table("order_lines", MD, _int("order_id", True, "orders.id"), _int("line_no", True),
                 _int("product_id", fk="products.id"))
REQUESTS = sa.Table("service_request", MD, _int("id", True), sa.Column("email", sa.String(80)),
                    sa.Column("body", sa.String(80)))
REVIEWS = sa.Table("reviews", MD, _int("id", True), _int("product_id", fk="products.id"),
                   sa.Column("stars", sa.Integer))  # not in the map: only the database knows
ROWS: dict[sa.Table, list[dict[str, Any]]] = {
    ADDRESSES: [{"id": i, "street": f"{i} Main St", "contact": None}
                for i in (10, 20, 30, 40, 50)],
    PRODUCTS: [{"id": 500, "title": "Lamp"}, {"id": 501, "title": "Desk"},
               {"id": 502, "title": "Chair"}, {"id": 503, "title": "Rug"}],
    CUSTOMERS: [{"id": 1, "email": "A@Example.org", "name": "Alice", "home_id": 10},
                {"id": 2, "email": "b@example.org", "name": "Bob", "home_id": 20},
                {"id": 3, "email": "c@example.org", "name": "Carol", "home_id": 30}],
    ORDERS: [{"id": 100, "customer_id": 1, "ship_to": 40},  # 40: Alice's and Bob's
             {"id": 101, "customer_id": 1, "ship_to": 50},
             {"id": 102, "customer_id": 2, "ship_to": 40},
             {"id": 103, "customer_id": 3, "ship_to": 30}],
    LINES: [{"order_id": 100, "line_no": 1, "product_id": 500},
            {"order_id": 100, "line_no": 2, "product_id": 501},
            {"order_id": 101, "line_no": 1, "product_id": 500},
            {"order_id": 101, "line_no": 2, "product_id": 503},
            {"order_id": 102, "line_no": 1, "product_id": 500},
            {"order_id": 102, "line_no": 2, "product_id": 502},
            {"order_id": 103, "line_no": 1, "product_id": 502}],
    REQUESTS: [{"id": 1, "email": "a@example.org", "body": "my lamp broke"},
               {"id": 2, "email": "b@example.org", "body": "hello"}],
    REVIEWS: [{"id": 1, "product_id": 503, "stars": 4}],  # someone reviewed the rug
}
MASK_REQUESTS = {"action": "mask", "mask": {"email": {"strategy": "hash"},
                                            "body": {"strategy": "null"}}}


def ref(columns: list[str], table: str, to: list[str], direction: str) -> dict[str, Any]:
    return {"columns": columns, "table": table, "to": to, "direction": direction}


def shop_map(requests: dict[str, Any] | None = None, products: str = "delete") -> str:
    tables: list[dict[str, Any]] = [
        {"name": "customers", "primary_key": ["id"], "identities": {"email": "email"},
         "provides": {"customer_id": "id"},
         "columns": {"email": {"category": "user.contact.email"},
                     "name": {"category": "user.name"}},
         "references": [ref(["home_id"], "addresses", ["id"], "outbound")]},
        {"name": "addresses", "primary_key": ["id"],
         "columns": {"street": {"category": "user.contact.address"}}},
        {"name": "orders", "primary_key": ["id"],
         "references": [ref(["customer_id"], "customers", ["id"], "inbound"),
                        ref(["ship_to"], "addresses", ["id"], "outbound")]},
        {"name": "order_lines", "primary_key": ["order_id", "line_no"],
         "references": [ref(["order_id"], "orders", ["id"], "inbound"),
                        ref(["product_id"], "products", ["id"], "outbound")]},
        {"name": "products", "primary_key": ["id"], "erasure": {"action": products}},
        {"name": "service_request", "primary_key": ["id"], "identities": {"email": "email"},
         "columns": {"email": {"category": "user.contact.email"},
                     "body": {"category": "user.content"}},
         "erasure": requests or MASK_REQUESTS},
    ]
    return yaml.safe_dump({"systems": [{"name": "shop", "kind": "sql", "url_env": "SHOP_URL",
                                        "statement_timeout_seconds": 10, "tables": tables}]})


@pytest.fixture(params=DIALECTS)
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "shop", MD, ROWS)


def make(url: str, text: str | None = None) -> SqlConnector:
    return sql_connector(text or shop_map(), "SHOP_URL", url, b"s" * 32)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return dialect_snapshot(url, list(ROWS))


def checksums(rows: dict[str, list[tuple[Any, ...]]],
              leave_out: dict[str, set[Any]]) -> dict[str, str]:
    """Per table, a SHA-256 over every row whose first column(s) are not in ``leave_out``."""
    out = {}
    for table, table_rows in rows.items():
        gone = leave_out.get(table, set())
        kept = [r for r in table_rows if r[0] not in gone and r[:2] not in gone]
        out[table] = hashlib.sha256(repr(kept).encode()).hexdigest()
    return out


def ids(rows: list[tuple[Any, ...]], width: int = 1) -> list[Any]:
    return [r[0] if width == 1 else r[:width] for r in rows]


# Alice's rows: what erasure may change. 40 and 500 are hers and others'.
ALICE_ROWS = {"customers": {1}, "addresses": {10, 40, 50}, "orders": {100, 101},
              "order_lines": {(100, 1), (100, 2), (101, 1), (101, 2)},
              "products": {500, 501, 503}, "service_request": {1}}


def test_access_finds_exactly_the_subjects_rows(shop_url: str) -> None:
    sink = ListSink()
    with make(shop_url) as conn:
        conn.collect(ALICE, sink)
    found = {t: {r["id"] if "id" in r else (r["order_id"], r["line_no"]) for r in rows}
             for t, rows in sink.rows.items()}
    assert found == ALICE_ROWS


def test_shared_address_and_catalogue_rows_are_kept_and_counted(shop_url: str) -> None:
    before = snapshot(shop_url)
    with make(shop_url) as conn:
        first = {e.collection: e for e in conn.erase(ALICE).evidence}
        second = {e.collection: e for e in conn.erase(ALICE).evidence}
    after = snapshot(shop_url)
    # shared: address 40 (Bob's order ships there), product 500 (on Bob's lines), 503 (a
    # review outside the map points at it); Alice's own: address 10 and 50, product 501
    assert ids(after["addresses"]) == [20, 30, 40]
    assert ids(after["products"]) == [500, 502, 503]
    assert (first["addresses"].found, first["addresses"].deleted) == (3, 2)
    assert first["addresses"].counts == {"kept_shared": 1}
    assert (first["products"].found, first["products"].deleted) == (3, 1)
    assert first["products"].counts == {"kept_shared": 2}
    assert all(e.remaining == 0 for e in first.values())
    assert ids(after["customers"]) == [2, 3] and ids(after["orders"]) == [102, 103]
    masked = after["service_request"][0]
    assert masked[0] == 1 and masked[1] not in ("a@example.org", None) and masked[2] is None
    # everyone else's rows, and the kept shared ones, are byte-identical
    changed = {t: {k for k in ALICE_ROWS[t]} for t in ALICE_ROWS}
    changed["addresses"] -= {40}
    changed["products"] -= {500, 503}
    assert checksums(before, changed) == checksums(after, changed)
    # a second run: Alice's orders are gone, so nothing leads to the kept rows any more
    assert all(e.deleted == e.masked == 0 and not e.counts for e in second.values())
    assert snapshot(shop_url) == after


def test_a_row_shared_by_two_subjects_goes_with_the_second(shop_url: str) -> None:
    before = snapshot(shop_url)
    with make(shop_url) as conn:
        conn.erase(ALICE)
        assert 40 in ids(snapshot(shop_url)["addresses"])
        bob = {e.collection: e for e in conn.erase(BOB).evidence}
    after = snapshot(shop_url)
    assert ids(after["addresses"]) == [30]  # 40: nobody else points at it any more
    assert bob["addresses"].deleted == 2 and "kept_shared" not in bob["addresses"].counts
    assert ids(after["products"]) == [502, 503]  # 502 is on Carol's line; 503 reviewed
    assert bob["products"].counts == {"kept_shared": 1}
    assert after["customers"] == [r for r in before["customers"] if r[0] == 3]
    assert after["order_lines"] == [(103, 1, 502)]
    assert after["reviews"] == before["reviews"]


def test_both_modes_keep_the_same_rows(postgres_url: str, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """PostgreSQL's one statement per table (read, test, delete) and the keys-first mode."""
    results = []
    for returning in (True, False):
        if not returning:
            monkeypatch.setattr(sql_erase, "RETURNING_DIALECTS", frozenset())
        url = f"sqlite:///{tmp_path / f'{returning}.sqlite'}" if not returning else postgres_url
        from tests.connectors.sql_dialects import fill
        fill(url, MD, ROWS)
        with make(url) as conn:
            evidence = conn.erase(ALICE).evidence
        results.append(([{k: v for k, v in e.to_dict().items() if k != "duration_ms"}
                         for e in evidence], snapshot(url)))
    assert results[0] == results[1]


def test_a_mask_that_leaves_the_identity_is_refused_by_check_and_by_the_recount(
        shop_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """service_request masks its body but keeps the email the subject is found by."""
    leaky = shop_map({"action": "mask", "mask": {"body": {"strategy": "null"}}})
    findings = check_datamap(parse_datamap(leaky), {"SHOP_URL": shop_url})
    errors = [f for f in findings if f.severity == "error"]
    assert [(f.table, f.column) for f in errors] == [("service_request", "email")]
    assert "keep:" in errors[0].fix and "mask" in errors[0].fix
    before = snapshot(shop_url)
    with make(shop_url, leaky) as conn, pytest.raises(DataMapError, match="still be found"):
        conn.erase(ALICE)
    assert snapshot(shop_url) == before
    # past the check, the recount finds the masked row by its email and rolls back
    monkeypatch.setattr(SqlConnector, "_refuse", lambda self, findings: None)
    with make(shop_url, leaky) as conn, pytest.raises(ConnectorError) as info:
        conn.erase(ALICE)
    assert (info.value.code, info.value.collection) == ("recount_failed", "service_request")
    assert not info.value.transient and "keep" in (info.value.fix or "")
    assert snapshot(shop_url) == before


def test_an_identity_kept_on_purpose_is_stated_in_the_evidence(shop_url: str) -> None:
    kept = shop_map({"action": "mask", "mask": {"body": {"strategy": "null"}},
                     "keep": {"email": "the opt-out list must still match this address"}})
    findings = check_datamap(parse_datamap(kept), {"SHOP_URL": shop_url})
    assert [f for f in findings if f.severity == "error"] == []
    with make(shop_url, kept) as conn:
        by = {e.collection: e for e in conn.erase(ALICE).evidence}
    assert by["service_request"].masked == 1 and by["service_request"].remaining == 0
    assert by["service_request"].counts == {"kept_findable": 1}
    assert snapshot(shop_url)["service_request"][0] == (1, "a@example.org", None)


def test_action_none_leaves_the_catalogue_as_it_is(shop_url: str) -> None:
    before = snapshot(shop_url)
    with make(shop_url, shop_map(products="none")) as conn:
        by = {e.collection: e for e in conn.erase(ALICE).evidence}
    products = by["products"]
    assert (products.action, products.found, products.deleted, products.masked) == (
        "none", 3, 0, 0)
    assert products.remaining is None
    assert snapshot(shop_url)["products"] == before["products"]


def test_a_table_reached_both_ways_tests_only_the_rows_reached_outbound(shop_url: str) -> None:
    """Addresses are also looked up by their delivery contact's email: the one whose contact is
    Alice (10) is hers and goes; ship addresses reached through orders alone are tested, and the
    one Alice and Bob share (40) stays."""
    engine = sa.create_engine(shop_url)
    with engine.begin() as db:
        db.execute(ADDRESSES.update().where(ADDRESSES.c.id == 10).values(
            contact="a@example.org"))
    engine.dispose()
    doc = yaml.safe_load(shop_map())
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["addresses"]["identities"] = {"email": "contact"}
    text = yaml.safe_dump(doc)
    findings = check_datamap(parse_datamap(text), {"SHOP_URL": shop_url})
    assert [f for f in findings if f.severity == "error"] == []
    before = snapshot(shop_url)
    with make(shop_url, text) as conn:
        by = {e.collection: e for e in conn.erase(ALICE).evidence}
    after = snapshot(shop_url)
    assert ids(after["addresses"]) == [20, 30, 40]
    assert (by["addresses"].found, by["addresses"].deleted) == (3, 2)
    assert by["addresses"].counts == {"kept_shared": 1} and by["addresses"].remaining == 0
    assert a_row(after, "addresses", 40) == a_row(before, "addresses", 40)


def a_row(rows: dict[str, list[tuple[Any, ...]]], table: str, pk: int) -> tuple[Any, ...]:
    return next(r for r in rows[table] if r[0] == pk)


def test_a_masked_shared_address_is_left_unmasked(shop_url: str) -> None:
    doc = yaml.safe_load(shop_map())
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["addresses"]["erasure"] = {"action": "mask", "mask": {"street": {"strategy": "null"}}}
    tables["customers"]["erasure"] = {"action": "mask", "mask": {
        "email": {"strategy": "hash"}, "name": {"strategy": "fixed", "value": "erased"}}}
    before = snapshot(shop_url)
    with make(shop_url, yaml.safe_dump(doc)) as conn:
        by = {e.collection: e for e in conn.erase(ALICE).evidence}
    after = snapshot(shop_url)
    # her home (10) is pointed at only by her own (masked) customer row: masked all the same;
    # the ship address Bob's order uses too (40) stays as it was
    assert (by["addresses"].found, by["addresses"].masked) == (3, 2)
    assert by["addresses"].counts == {"kept_shared": 1} and by["addresses"].remaining == 0
    assert a_row(after, "addresses", 10)[1] is None and a_row(after, "addresses", 50)[1] is None
    for pk in (20, 30, 40):
        assert a_row(after, "addresses", pk) == a_row(before, "addresses", pk)


@pytest.fixture(params=DIALECTS)
def paths_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "paths", PATHS_MD, PATHS_ROWS)


def test_a_masked_row_still_found_by_a_discovered_key_is_remaining(
        paths_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """posts are looked up by the handle profiles provide (a key found while erasing): masking
    a post's body but not its author_handle leaves it found by that key."""
    doc = yaml.safe_load(paths_map())
    tables = {t["name"]: t for t in doc["systems"][0]["tables"]}
    tables["posts"]["erasure"] = {"action": "mask", "mask": {"body": {"strategy": "null"}}}
    tables["posts"]["columns"] = {"body": {"category": "user.content"}}
    text = yaml.safe_dump(doc)
    errors = [f for f in check_datamap(parse_datamap(text), {"PATHS_URL": paths_url})
              if f.severity == "error"]
    assert [(f.table, f.column) for f in errors] == [("posts", "author_handle")]
    before = paths_snapshot(paths_url)
    monkeypatch.setattr(SqlConnector, "_refuse", lambda self, findings: None)
    with paths_connector(paths_url, text) as conn, pytest.raises(ConnectorError) as info:
        conn.erase(PATHS_KEYS)
    assert (info.value.code, info.value.collection) == ("recount_failed", "posts")
    assert paths_snapshot(paths_url) == before
    tables["posts"]["erasure"]["keep"] = {"author_handle": "public attribution stays"}
    with paths_connector(paths_url, yaml.safe_dump(doc)) as conn:
        by = {e.collection: e for e in conn.erase(PATHS_KEYS).evidence}
    assert (by["posts"].masked, by["posts"].remaining) == (2, 0)
    assert by["posts"].counts == {"kept_findable": 2}
