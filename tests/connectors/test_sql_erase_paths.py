"""Erase's look-ups on PostgreSQL, MariaDB and SQLite, where they are hardest to get right.

A schema without declared foreign keys where tables are found from tables erased *before* them:
``addresses`` and composite-keyed ``tax_ids`` from ``users`` (outbound references: users go
first), ``posts`` through a key ``profiles`` provides from a column erasure masks first
(``erase_after``). Erase must find exactly the rows collect finds (same counts, same per-row
hashes in the same order), in one round trip per deleted table on PostgreSQL (``DELETE …
RETURNING``), in keys-first mode elsewhere, with identical evidence either way; the recount must
find rows that point at a deleted parent; nothing may be left half-done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from connectors import sql_engine, sql_erase
from connectors.sql import SqlConnector
from connectors.sql_check import checked_sql_system
from dsar.db.direct import DirectStatement
from dsar.errors import ConnectorError
from tests.connectors.sql_dialects import DIALECTS, fill, filled_database, sql_connector
from tests.connectors.sql_dialects import snapshot as dialect_snapshot
from tests.connectors.test_sql_chinook import ListSink

KEYS = {"email": frozenset({"a@example.org"})}
MD = sa.MetaData()


def _table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(name, MD, *columns)


def _int(name: str, pk: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer, primary_key=pk, autoincrement=False)


USERS = _table("users", _int("id", True), sa.Column("email", sa.String(80)), _int("address_id"),
               sa.Column("tax_country", sa.String(2)), sa.Column("tax_no", sa.String(20)))
ADDRESSES = _table("addresses", _int("id", True), sa.Column("street", sa.String(50)))
TAX_IDS = _table("tax_ids", sa.Column("country", sa.String(2), primary_key=True),
                 sa.Column("number", sa.String(20), primary_key=True),
                 sa.Column("holder", sa.String(40)))
ORDERS = _table("orders", _int("id", True), _int("user_id"))
ITEMS = _table("order_items", _int("order_id", True), _int("line_no", True))
INVOICES = _table("invoices", _int("id", True), _int("order_id"))
PROFILES = _table("profiles", _int("user_id", True), sa.Column("handle", sa.String(30)),
                  sa.Column("bio", sa.String(100)))
POSTS = _table("posts", _int("id", True), sa.Column("author_handle", sa.String(30)),
               sa.Column("body", sa.String(40)))
ROWS: dict[sa.Table, list[dict[str, Any]]] = {
    USERS: [{"id": 1, "email": "A@Example.org", "address_id": 10, "tax_country": "DE",
             "tax_no": "111"},
            {"id": 2, "email": "b@example.org", "address_id": 20, "tax_country": "DE",
             "tax_no": "222"}],
    ADDRESSES: [{"id": 10, "street": "1 Main St"}, {"id": 20, "street": "2 Side St"}],
    TAX_IDS: [{"country": "DE", "number": "111", "holder": "A"},
              {"country": "DE", "number": "222", "holder": "B"},
              {"country": "FR", "number": "111", "holder": "C"}],  # half-matches: not the subject's
    ORDERS: [{"id": 100, "user_id": 1}, {"id": 101, "user_id": 1}, {"id": 102, "user_id": 2}],
    ITEMS: [{"order_id": 100, "line_no": 1}, {"order_id": 100, "line_no": 2},
            {"order_id": 101, "line_no": 1}, {"order_id": 102, "line_no": 1}],
    INVOICES: [{"id": 1000, "order_id": 100}, {"id": 1001, "order_id": 102}],
    PROFILES: [{"user_id": 1, "handle": "alice", "bio": "hi"},
               {"user_id": 2, "handle": "bob", "bio": "yo"}],
    POSTS: [{"id": 1, "author_handle": "alice", "body": "x"},
            {"id": 2, "author_handle": "alice", "body": "y"},
            {"id": 3, "author_handle": "bob", "body": "z"}],
}


def ref(columns: list[str], table: str, to: list[str], direction: str) -> dict[str, Any]:
    return {"columns": columns, "table": table, "to": to, "direction": direction}


def paths_map(deletes_only: bool = False) -> str:
    tables: list[dict[str, Any]] = [
        {"name": "users", "primary_key": ["id"], "identities": {"email": "email"},
         "provides": {"user_id": "id"},
         "references": [ref(["address_id"], "addresses", ["id"], "outbound"),
                        ref(["tax_country", "tax_no"], "tax_ids", ["country", "number"],
                            "outbound")]},
        {"name": "addresses", "primary_key": ["id"]},
        {"name": "tax_ids", "primary_key": ["country", "number"]},
        {"name": "orders", "primary_key": ["id"],
         "references": [ref(["user_id"], "users", ["id"], "inbound")]},
        {"name": "order_items", "primary_key": ["order_id", "line_no"],
         "references": [ref(["order_id"], "orders", ["id"], "inbound")]},
    ]
    if not deletes_only:
        tables += [
            {"name": "invoices", "primary_key": ["id"],
             "references": [ref(["order_id"], "orders", ["id"], "inbound")],
             "erasure": {"action": "retain",
                         "retain": {"ground": "Art. 17(3)(b) tax records", "period": "10 years"}}},
            {"name": "profiles", "primary_key": ["user_id"], "provides": {"handle": "handle"},
             "references": [ref(["user_id"], "users", ["id"], "inbound")],
             "columns": {"handle": {"category": "user.name"}, "bio": {"category": "user.bio"}},
             "erasure": {"action": "mask", "mask": {"handle": {"strategy": "hash"},
                                                    "bio": {"strategy": "null"}}}},
            {"name": "posts", "primary_key": ["id"], "identities": {"handle": "author_handle"},
             "erase_after": ["profiles"]},
        ]
    return yaml.safe_dump({"systems": [{"name": "paths", "kind": "sql", "url_env": "PATHS_URL",
                                        "statement_timeout_seconds": 5, "tables": tables}]})


@pytest.fixture(params=DIALECTS)
def paths_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "paths", MD, ROWS)


def make(url: str, text: str | None = None) -> SqlConnector:
    return sql_connector(text or paths_map(), "PATHS_URL", url, b"p" * 32)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    return dialect_snapshot(url, list(ROWS))


def comparable(evidence: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.to_dict().items() if k != "duration_ms"} for e in evidence]


def test_erase_finds_what_collect_finds_and_a_second_run_changes_nothing(paths_url: str) -> None:
    with make(paths_url) as conn:
        collected = {e.collection: e for e in conn.collect(KEYS, ListSink()).evidence}
        first = conn.erase(KEYS)
        second = conn.erase(KEYS)
    for evidence in first.evidence:  # the same rows, hashed in the same (primary-key) order
        assert evidence.found == collected[evidence.collection].found > 0
        assert evidence.item_hashes == collected[evidence.collection].item_hashes
    by = {e.collection: e for e in first.evidence}
    assert {n: by[n].deleted for n in ("users", "addresses", "tax_ids", "orders",
                                       "order_items", "posts")} == {
        "users": 1, "addresses": 1, "tax_ids": 1, "orders": 2, "order_items": 3, "posts": 2}
    assert (by["profiles"].masked, by["invoices"].retained) == (1, 1)
    assert by["invoices"].retained_ground == "Art. 17(3)(b) tax records"
    assert by["invoices"].remaining is None
    assert all(e.remaining == 0 for e in first.evidence if e.action != "retain")
    assert first.discovered == {"user_id": {"1"}, "handle": {"alice"}}
    order = [e.collection for e in first.evidence]
    assert order.index("posts") > order.index("profiles")  # erase_after: found by old handle
    after = snapshot(paths_url)
    assert [r[0] for r in after["users"]] == [2] and [r[0] for r in after["addresses"]] == [20]
    assert [r[:2] for r in after["tax_ids"]] == [("DE", "222"), ("FR", "111")]
    assert after["order_items"] == [(102, 1)] and [r[0] for r in after["posts"]] == [3]
    assert len(after["invoices"]) == 2
    masked = after["profiles"][0]
    assert masked[0] == 1 and masked[1] not in ("alice", None) and masked[2] is None
    assert after["profiles"][1] == (2, "bob", "yo")
    assert all(e.found == e.deleted == e.masked == e.retained == 0 for e in second.evidence)
    assert snapshot(paths_url) == after


def test_postgresql_gives_the_keys_first_evidence_in_one_statement_per_deleted_table(
        postgres_url: str, mariadb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(postgres_url, MD, ROWS)
    statements: list[str] = []
    conn = make(postgres_url, paths_map(deletes_only=True))
    with conn:
        conn.check(KEYS)  # reflects the schema: the erasure then sends its own statements only
        sa.event.listen(conn.engine, "before_cursor_execute",  # also: SQLAlchemy's own path
                        lambda *args: statements.append(args[2]))
        returning = conn.erase(KEYS)
    tables = ("users", "addresses", "tax_ids", "orders", "order_items")
    assert len(statements) == len(tables) + 1  # one DELETE … RETURNING each, one recount
    # addresses and tax_ids, reached only outbound, are read and deleted unless shared, at once
    assert all(" ".join(s.split()).startswith(("WITH erased AS (DELETE", "WITH found AS"))
               for s in statements[:-1])
    assert "a@example.org" not in " ".join(statements)  # bound, never in the text
    sql_engine.dispose_all()
    fill(mariadb_url, MD, ROWS)
    monkeypatch.setattr(sql_erase, "RETURNING_DIALECTS", frozenset())
    with make(mariadb_url, paths_map(deletes_only=True)) as maria:
        keys_first = maria.erase(KEYS)
    assert comparable(returning.evidence) == comparable(keys_first.evidence)
    assert snapshot(postgres_url) == snapshot(mariadb_url)


@pytest.mark.parametrize("returning", [True, False])
def test_both_modes_give_the_same_evidence_with_or_without_the_direct_path(
        postgres_url: str, returning: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not returning:
        monkeypatch.setattr(sql_erase, "RETURNING_DIALECTS", frozenset())
    results = []
    for listened in (False, True):
        fill(postgres_url, MD, ROWS)
        conn = make(postgres_url)
        with conn:
            if listened:  # a listener: every statement through conn.execute instead
                sa.event.listen(conn.engine, "before_cursor_execute", lambda *args: None)
            results.append((comparable(conn.erase(KEYS).evidence), snapshot(postgres_url)))
        sql_engine.dispose_all()
        engine = sa.create_engine(postgres_url)
        MD.drop_all(engine)
        engine.dispose()
    assert results[0] == results[1]
    monkeypatch.setattr(sql_erase, "RETURNING_DIALECTS", frozenset({"postgresql"}))
    fill(postgres_url, MD, ROWS)
    with make(postgres_url) as again:
        assert comparable(again.erase(KEYS).evidence) == results[0][0]
    sql_engine.dispose_all()


TRIGGERS = {
    "postgresql": ["CREATE FUNCTION reattach() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "INSERT INTO orders VALUES (999, 1); RETURN NULL; END $$",
                   "CREATE TRIGGER reattach AFTER DELETE ON addresses FOR EACH STATEMENT "
                   "EXECUTE FUNCTION reattach()"],
    "mysql": ["CREATE TRIGGER reattach AFTER DELETE ON addresses FOR EACH ROW "
              "INSERT INTO orders VALUES (999, 1)"],
    "sqlite": ["CREATE TRIGGER reattach AFTER DELETE ON addresses BEGIN "
               "INSERT INTO orders VALUES (999, 1); END"],
}


def test_the_recount_finds_rows_pointing_at_a_deleted_parent_and_rolls_back(
        paths_url: str) -> None:
    """addresses go after users and orders; a trigger then adds an order for the deleted user:
    the recount counts orders by the ids users held, so it finds it (a look-up through users,
    now empty, would not)."""
    engine = sa.create_engine(paths_url)
    with engine.begin() as db:
        for statement in TRIGGERS[engine.dialect.name]:
            db.exec_driver_sql(statement)
    engine.dispose()
    before = snapshot(paths_url)
    with make(paths_url) as conn, pytest.raises(ConnectorError) as info:
        conn.erase(KEYS)
    assert (info.value.code, info.value.collection, info.value.transient) == (
        "recount_failed", "orders", True)
    assert snapshot(paths_url) == before


def test_a_subject_with_more_values_than_a_statement_can_bind(paths_url: str) -> None:
    """70,000 orders: more than PostgreSQL's 65,535 parameters and SQLite's 32,766 — one
    array on PostgreSQL, the recount's look-up by sub-query past the budget elsewhere."""
    many = 70_000
    engine = sa.create_engine(paths_url)
    with engine.begin() as db:
        db.execute(ORDERS.insert(), [{"id": 10_000 + i, "user_id": 1} for i in range(many)])
        db.execute(ITEMS.insert(), [{"order_id": 10_000 + i, "line_no": 1}
                                    for i in range(many)])
    engine.dispose()
    with make(paths_url) as conn:
        by = {e.collection: e for e in conn.erase(KEYS).evidence}
    assert (by["orders"].deleted, by["order_items"].deleted) == (many + 2, many + 3)
    assert len(set(by["orders"].item_hashes)) == many + 2
    after = snapshot(paths_url)
    assert [r[0] for r in after["orders"]] == [102] and after["order_items"] == [(102, 1)]


def test_the_pre_checks_are_kept_per_reflected_schema_and_refusals_never(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paths.sqlite'}"
    fill(url, MD, ROWS)
    conn = make(url)
    with conn.engine.connect() as db:
        first = checked_sql_system(conn.system, db, conn.catalog, ["email"])
        assert checked_sql_system(conn.system, db, conn.catalog, ["email"])[0] is first[0]
        conn.catalog.invalidate()  # what every failed statement does
        assert checked_sql_system(conn.system, db, conn.catalog, ["email"])[0] is not first[0]
    text = paths_map().replace("tables:\n", "tables:\n  - name: ghosts\n    primary_key: [id]\n"
                               "    identities: {email: email}\n", 1)
    ghostly = make(url, text)
    with pytest.raises(ConnectorError) as info:
        ghostly.erase(KEYS)
    assert info.value.code == "missing_table"
    engine = sa.create_engine(url)
    with engine.begin() as db:  # created after the refusal: the next erasure checks again
        db.exec_driver_sql("CREATE TABLE ghosts (id INTEGER PRIMARY KEY, email VARCHAR(80))")
    engine.dispose()
    assert {e.collection: e.deleted for e in ghostly.erase(KEYS).evidence}["users"] == 1
    sql_engine.dispose_all()


def test_direct_dml_counts_and_returns_what_sqlalchemy_does(paths_url: str) -> None:
    engine = sa.create_engine(paths_url)
    with engine.begin() as conn:
        update = sa.update(PROFILES).where(PROFILES.c.user_id <= 2).where(
            PROFILES.c.bio != "yo").values(bio="yo")
        assert DirectStatement(update, conn.dialect).usable
        assert not DirectStatement(sa.delete(POSTS).where(POSTS.c.id.in_([1])), conn.dialect).usable
        assert DirectStatement(update, conn.dialect).rowcount(conn, {}) == 1
        assert DirectStatement(update, conn.dialect).rowcount(conn, {}) == 0  # rows matched
        if conn.dialect.delete_returning:
            delete = sa.delete(POSTS).where(POSTS.c.id < 3).returning(POSTS.c.id,
                                                                      POSTS.c.body)
            query = DirectStatement(delete, conn.dialect)
            assert query.names == ["id", "body"]
            assert sorted(tuple(r) for r in query.all(conn, {})) == [(1, "x"), (2, "y")]
    engine.dispose()


def test_a_reference_of_a_type_sqlalchemy_does_not_know_binds_per_value(
        postgres_url: str) -> None:
    """``pg_lsn`` reflects as NullType, which has no array type to cast to: the values of
    users.lsn, read when users were deleted, find checkpoints one parameter each."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as db:
        db.exec_driver_sql("CREATE TABLE checkpoints (lsn pg_lsn PRIMARY KEY, note text)")
        db.exec_driver_sql("CREATE TABLE users (id int PRIMARY KEY, email text, lsn pg_lsn)")
        db.exec_driver_sql("INSERT INTO checkpoints VALUES ('0/16B3748', 'a'), ('0/1', 'b')")
        db.exec_driver_sql("INSERT INTO users VALUES (1, 'a@example.org', '0/16B3748'), "
                           "(2, 'b@example.org', '0/1')")
    engine.dispose()
    text = yaml.safe_dump({"systems": [{"name": "paths", "kind": "sql", "url_env": "PATHS_URL",
                                        "tables": [
        {"name": "users", "primary_key": ["id"], "identities": {"email": "email"},
         "references": [ref(["lsn"], "checkpoints", ["lsn"], "outbound")]},
        {"name": "checkpoints", "primary_key": ["lsn"]}]}]})
    with pytest.warns(sa.exc.SAWarning, match="pg_lsn"), make(postgres_url, text) as conn:
        first = {e.collection: e.deleted for e in conn.erase(KEYS).evidence}
        second = {e.collection: e.found for e in conn.erase(KEYS).evidence}
    assert first == {"users": 1, "checkpoints": 1} and second == {"users": 0, "checkpoints": 0}
    engine = sa.create_engine(postgres_url)
    with engine.connect() as db:
        assert db.exec_driver_sql("SELECT lsn::text FROM checkpoints").scalars().all() == ["0/1"]
    engine.dispose()
    sql_engine.dispose_all()


def test_a_reloaded_map_that_only_adds_a_provided_key_is_heard(paths_url: str) -> None:
    """Same walk, same tables, so the same cached statements' plan: what the map's entries add
    (a provided key for other systems) must still be read."""
    with make(paths_url) as conn:
        assert "tax_no" not in conn.collect(KEYS, ListSink()).discovered
    reloaded = yaml.safe_load(paths_map())
    reloaded["systems"][0]["tables"][0]["provides"]["tax_no"] = "tax_no"
    with make(paths_url, yaml.safe_dump(reloaded)) as conn:
        assert conn.collect(KEYS, ListSink()).discovered["tax_no"] == {"111"}
        assert conn.erase(KEYS).discovered["tax_no"] == {"111"}


def test_erase_counted_records_what_it_found_before_committing(paths_url: str) -> None:
    before = snapshot(paths_url)
    seen: list[dict[str, int]] = []

    def refuse(found: list[Any]) -> None:
        seen.append({e.collection: e.found for e in found})
        if not paths_url.startswith("sqlite"):  # another connection still sees every row
            assert snapshot(paths_url) == before
        raise RuntimeError("the state database is away")

    with make(paths_url) as conn:
        with pytest.raises(RuntimeError, match="state database is away"):
            conn.erase_counted(KEYS, refuse)
        assert snapshot(paths_url) == before  # it raised: rolled back, nothing erased
        recorded: list[dict[str, int]] = []
        result = conn.erase_counted(
            KEYS, lambda found: recorded.append({e.collection: e.found for e in found}))
    assert recorded == seen  # what the erasure found, handed over once, before the commit
    assert recorded[0] == {e.collection: e.found for e in result.evidence
                           if e.outcome != "skipped"}
    assert recorded[0]["users"] == 1 and recorded[0]["order_items"] == 3
    assert snapshot(paths_url) != before
