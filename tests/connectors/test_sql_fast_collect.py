"""The fast collect path gives exactly what the general one gives.

Rows, digests and per-row keyed hashes feed signed evidence, so the shortcuts (one JSON dump per
batch, HMAC from prepared states, statements built once and run on the DB-API cursor) must be
byte-identical to the reference: ``json_row`` per row, ``sha256(canonical_json(rows))``,
``context.keyed_hash(f"{system}/{table}/{pk_text(pk)}")``, and SQLAlchemy's own execution — on
PostgreSQL, MariaDB and SQLite, for every column type, paged or not, subject after subject.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors import sql_engine
from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_collect import ItemHasher
from connectors.sql_plan import padded_size
from connectors.sql_query import StreamDigest, json_row, json_rows, pk_text
from dsar.datamap.loader import parse_datamap
from dsar.db.direct import DirectStatement
from dsar.errors import ConnectorError
from dsar.records.canonical import canonical_json
from tests.connectors.sql_dialects import DIALECTS, filled_database
from tests.connectors.test_sql_chinook import ListSink


class Level(enum.IntEnum):
    LOW = 1


class Tag(str):
    pass


values = st.one_of(
    st.none(), st.booleans(), st.text(), st.integers(), st.floats(),
    st.decimals(allow_nan=False, allow_infinity=False), st.datetimes(), st.dates(), st.times(),
    st.binary(max_size=8), st.uuids(), st.timedeltas(), st.just(Level.LOW), st.just(Tag("t")),
    st.datetimes(timezones=st.just(dt.UTC)),
)
names = st.lists(st.text(max_size=6), min_size=1, max_size=5, unique=True)


@given(names.flatmap(lambda ns: st.tuples(
    st.just(ns), st.lists(st.tuples(*[values for _ in ns]), max_size=4))))
def test_batched_rows_and_digest_equal_the_row_by_row_reference(
        case: tuple[list[str], list[tuple[Any, ...]]]) -> None:
    columns, rows = case
    expected = [json_row(dict(zip(columns, row, strict=True))) for row in rows]
    encoded, plain = json_rows(columns, rows)
    assert encoded == expected
    assert [list(r) for r in encoded] == [list(r) for r in expected]  # same key order
    one, batched = StreamDigest(), StreamDigest()
    for row in expected:
        one.add(row)
    batched.add_rows(encoded[:1], plain)
    batched.add_rows(encoded[1:], plain)
    assert batched.hexdigest() == one.hexdigest()
    assert one.hexdigest() == hashlib.sha256(canonical_json(expected)).hexdigest()


class CountingContext(ConnectorContext):
    def keyed_hash(self, value: bytes | str) -> str:
        return "custom:" + super().keyed_hash(value)


@pytest.mark.parametrize("key", [b"", b"k" * 32, b"x" * 64, b"y" * 65, b"z" * 200])
@pytest.mark.parametrize("context_type", [ConnectorContext, CountingContext])
def test_item_hashes_equal_the_keyed_hash_of_the_key_text(
        key: bytes, context_type: type[ConnectorContext]) -> None:
    ctx = context_type(hash_key=key, environ={})
    hasher = ItemHasher(ctx, "shop", "tåble")
    rows = [(1, "a"), (2**53, "b"), (-(2**53) + 1, "ü\u2028"), ("x", None), (True, 1.5),
            (None, dt.date(2020, 1, 2)), (decimal.Decimal("1.10"), uuid.UUID(int=7))]
    for positions in ([0], [1], [1, 0]):
        expected = [ctx.keyed_hash(f"shop/tåble/{pk_text([r[i] for i in positions])}")
                    for r in rows]
        assert hasher.rows(rows, positions) == expected


def test_padded_sizes_are_powers_of_two_at_least_the_count() -> None:
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 1000)] == [1, 2, 4, 4, 8, 1024]


# --- against the databases ------------------------------------------------------------------

MD = sa.MetaData()
PEOPLE = sa.Table(
    "people", MD, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(80)), sa.Column("born", sa.Date),
    sa.Column("seen", sa.DateTime), sa.Column("balance", sa.Numeric(10, 2)),
    sa.Column("ratio", sa.Float), sa.Column("active", sa.Boolean),
    sa.Column("token", sa.Uuid), sa.Column("blob", sa.LargeBinary(16)),
    sa.Column("note", sa.Text), sa.Column("big", sa.BigInteger))
VISITS = sa.Table(
    "visits", MD, sa.Column("person_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime), sa.Column("place", sa.String(20)))
NOTES = sa.Table(  # reached from visits by a composite reference (expanding tuple IN)
    "visit_notes", MD, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("person_id", sa.Integer), sa.Column("n", sa.Integer), sa.Column("text", sa.Text))
AUDIT = sa.Table(  # no primary key: streamed through a server-side cursor, not paged
    "audit", MD, sa.Column("person_id", sa.Integer), sa.Column("what", sa.String(20)))
EMAILS = ["Ann@Example.org", "bob@example.org", "cy@example.org", "dee@example.org",
          "eve@example.org"]  # eve: no visits, notes or audit rows


def person(i: int, email: str) -> dict[str, Any]:
    return {"id": i, "email": email, "born": dt.date(1980 + i, 2, 3),
            "seen": dt.datetime(2024, 5, i, 10, 11, 12, 345000), "balance":
            decimal.Decimal(f"{i}0.5{i}"), "ratio": i / 3, "active": i % 2 == 0,
            "token": uuid.UUID(int=i), "blob": bytes([i, 0, 255]), "note": f"Zoë {i} \u2028",
            "big": 2**60 + i}


ROWS = {
    PEOPLE: [person(i, e) for i, e in enumerate(EMAILS, start=1)],
    VISITS: [{"person_id": p, "n": n, "at": dt.datetime(2024, 1, n, p), "place": f"p{p}{n}"}
             for p in (1, 2, 3, 4) for n in range(1, 2 + p)],
    NOTES: [{"id": i, "person_id": 1 + i % 4, "n": 1 + i % 2, "text": f"note {i}"}
            for i in range(12)],
    AUDIT: [{"person_id": 1 + i % 2, "what": f"event {i}"} for i in range(5)],
}


def ref(columns: list[str], table: str, to: list[str]) -> dict[str, Any]:
    return {"columns": columns, "table": table, "to": to, "direction": "inbound"}


def typed_map(batch_size: int) -> str:
    tables = [
        {"name": "people", "primary_key": ["id"], "identities": {"email": "email"},
         "provides": {"person_id": "id"}},
        {"name": "visits", "primary_key": ["person_id", "n"],
         "references": [ref(["person_id"], "people", ["id"])]},
        {"name": "visit_notes", "primary_key": ["id"],
         "references": [ref(["person_id", "n"], "visits", ["person_id", "n"])]},
        {"name": "audit", "references": [ref(["person_id"], "people", ["id"])],
         "erasure": {"action": "retain", "retain": {"ground": "legal_obligation",
                                                     "period": "1 years"}}},
    ]
    return yaml.safe_dump({"systems": [{"name": "typed", "kind": "sql", "url_env": "TYPED_URL",
                                        "batch_size": batch_size, "tables": tables}]})


@pytest.fixture(params=DIALECTS)
def typed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from filled_database(request, tmp_path, "typed", MD, ROWS)


def collect(url: str, emails: list[str], batch_size: int = 1000) -> tuple[Any, ListSink]:
    system = parse_datamap(typed_map(batch_size)).systems[0]
    ctx = ConnectorContext(hash_key=b"t" * 32, environ={"TYPED_URL": url})
    sink = ListSink()
    with SqlConnector(system, ctx) as conn:  # type: ignore[arg-type]
        result = conn.collect({"email": frozenset(emails)}, sink)
    return result, sink


def summary(result: Any, sink: ListSink) -> dict[str, Any]:
    return {"rows": dict(sink.rows), "batches": sink.batches, "discovered": result.discovered,
            "evidence": [(e.collection, e.found, e.digest, e.item_hashes)
                         for e in result.evidence]}


class DirectSpy:
    """Counts cursor runs of :class:`DirectStatement` and keeps the SQL they sent."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sql: list[str] = []
        original = DirectStatement.all

        def spy(query: DirectStatement, conn: Any, params: Any) -> Any:
            self.sql.append(query.sql)
            return original(query, conn, params)

        monkeypatch.setattr(DirectStatement, "all", spy)


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_direct_execution_equals_sqlalchemy_execution(
        typed_url: str, batch_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = DirectSpy(monkeypatch)
    direct = summary(*collect(typed_url, ["ann@example.org"], batch_size))
    assert spy.sql, "the direct path ran"
    engine = sql_engine.engine_for(typed_url, 30.0)
    statements: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listen)  # tracing: SQLAlchemy runs all
    try:
        runs = len(spy.sql)
        general = summary(*collect(typed_url, ["ann@example.org"], batch_size))
        assert len(spy.sql) == runs and statements, "the general path ran"
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    assert direct == general
    rows = direct["rows"]
    assert [r["id"] for r in rows["people"]] == [1]
    assert [(r["person_id"], r["n"]) for r in rows["visits"]] == [(1, 1), (1, 2)]
    assert sorted(r["id"] for r in rows["visit_notes"]) == [0, 4, 8]
    assert sorted(r["what"] for r in rows["audit"]) == ["event 0", "event 2", "event 4"]
    # the sink gets the driver's values (the bundle types them); evidence hashes their JSON form
    assert rows["people"][0]["big"] == 2**60 + 1
    assert rows["people"][0]["born"] == dt.date(1981, 2, 3)
    assert json_row(rows["people"][0])["big"] == str(2**60 + 1)  # beyond JSON's exact ints
    assert all("ann@example.org" not in sql.lower() for sql in spy.sql + statements)
    ctx = ConnectorContext(hash_key=b"t" * 32, environ={})
    for name, found, digest, hashes in direct["evidence"]:
        assert found == len(rows[name])
        assert digest == hashlib.sha256(canonical_json([json_row(r) for r in rows[name]])
                                        ).hexdigest()
        if name == "audit":
            assert hashes == []  # no key to prove rows by
            continue
        pk = ["person_id", "n"] if name == "visits" else ["id"]
        assert hashes == [ctx.keyed_hash(f"typed/{name}/{pk_text([r[c] for c in pk])}")
                          for r in rows[name]]


def test_reused_statements_bind_each_subjects_values(typed_url: str) -> None:
    seen = {}
    for emails in (EMAILS[:1], EMAILS[1:2], EMAILS[1:4], EMAILS[4:], EMAILS[:1], EMAILS):
        result, sink = collect(typed_url, [e.lower() for e in emails], batch_size=2)
        ids = sorted(r["id"] for r in sink.rows["people"])
        assert ids == sorted(EMAILS.index(e) + 1 for e in emails)
        visited = [i for i in ids if i != 5]
        assert sorted({r["person_id"] for r in sink.rows.get("visits", [])}) == visited
        assert len(sink.rows.get("visits", [])) == sum(1 + i for i in visited)
        assert result.discovered == {"person_id": {str(i) for i in ids}}
        assert all(sink.rows.values()), "no empty batch reaches the sink"
        assert sink.batches == sum(-(-len(rows) // 2) for rows in sink.rows.values())
        key = tuple(emails)
        assert seen.setdefault(key, summary(result, sink)) == summary(result, sink)


def test_a_failing_statement_is_translated_rolled_back_and_retried_afresh(
        typed_url: str) -> None:
    before = summary(*collect(typed_url, ["ann@example.org"]))  # statements cached
    engine = sa.create_engine(typed_url)
    with engine.begin() as db:
        db.execute(sa.text("ALTER TABLE visits DROP COLUMN place"))
    with pytest.raises(ConnectorError) as info:
        collect(typed_url, ["ann@example.org"])
    assert info.value.collection == "visits"
    assert info.value.code in ("missing_column", "db_error")
    assert "ann@example.org" not in str(info.value).lower()
    with engine.begin() as db:
        db.execute(sa.text("ALTER TABLE visits ADD COLUMN place VARCHAR(20)"))
        db.execute(sa.update(VISITS).values(place=sa.literal("p1") + sa.cast(VISITS.c.n,
                                                                              sa.String)))
    engine.dispose()
    after = summary(*collect(typed_url, ["ann@example.org"]))  # reflected and built afresh
    assert after["rows"]["visits"] == before["rows"]["visits"]
    assert after == before


def test_a_dropped_connection_is_invalidated_and_the_retry_reconnects(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = sa.create_engine(postgres_url)
    MD.create_all(engine)
    with engine.begin() as conn:
        for table, rows in ROWS.items():
            conn.execute(table.insert(), rows)
    spy = DirectSpy(monkeypatch)
    before = summary(*collect(postgres_url, ["ann@example.org"]))
    with engine.begin() as conn:  # kill every other session: the pooled connection dies
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    runs = len(spy.sql)
    with pytest.raises(ConnectorError) as info:
        collect(postgres_url, ["ann@example.org"])
    assert len(spy.sql) == runs + 1  # failed on the direct path
    assert (info.value.code, info.value.transient) == ("unreachable", True)
    assert summary(*collect(postgres_url, ["ann@example.org"])) == before
    engine.dispose()
    sql_engine.dispose_all()
