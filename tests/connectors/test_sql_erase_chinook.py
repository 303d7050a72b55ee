"""Shared catalogue rows on Chinook, in PostgreSQL, MariaDB and SQLite.

The map follows customer 1's invoice lines to the tracks bought (``invoice_line → track``,
outbound) and erases tracks with ``delete`` — the trap an import sets when a table has no
personal fields. A track is the subject's to delete only if nothing else points at it: no other
customer's invoice line, no playlist (``playlist_track``, outside the map, known only by its
foreign key). Three tracks only customer 1 bought are taken out of every playlist first, so
some go. Every other row is byte-identical before and after.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
import yaml

from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from tests.chinook import (  # noqa: F401 - fixtures
    ChinookDb,
    chinook_db_fixture,
    chinook_map,
    chinook_maria_template_fixture,
    chinook_pg_template_fixture,
)
from tests.connectors.test_sql_chinook import KEYS, ListSink


def track_map(db: ChinookDb) -> str:
    n = db.n
    doc = yaml.safe_load(chinook_map(db.dialect))
    tables = doc["systems"][0]["tables"]
    line = next(t for t in tables if t["name"] == n("invoice_line"))
    line["references"].append({"columns": [n("track_id")], "table": n("track"),
                               "to": [n("track_id")], "direction": "outbound"})
    tables.append({"name": n("track"), "primary_key": [n("track_id")],
                   "erasure": {"action": "delete"}})
    return yaml.safe_dump(doc, sort_keys=False)


def rows(db: ChinookDb, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(db.url)
    try:
        with engine.connect() as conn:
            found = sa.Table(db.n(table), sa.MetaData(), autoload_with=conn)
            return sorted(tuple(r) for r in conn.execute(sa.select(found)))
    finally:
        engine.dispose()


def digest(table_rows: list[tuple[Any, ...]], leave_out: set[Any]) -> str:
    return hashlib.sha256(repr([r for r in table_rows if r[0] not in leave_out]).encode()
                          ).hexdigest()


def test_tracks_other_records_point_at_are_kept(chinook_db: ChinookDb) -> None:
    db, n, q = chinook_db, chinook_db.n, chinook_db.q
    text = track_map(db)
    findings = check_datamap(parse_datamap(text), {"CHINOOK_URL": db.url})
    assert [f.one_line() for f in findings if f.severity == "error"] == []
    bought = {r[0] for r in _query(db, f"SELECT DISTINCT l.{q('track_id')} FROM "
                                   f"{q('invoice_line')} l JOIN {q('invoice')} i ON "
                                   f"l.{q('invoice_id')} = i.{q('invoice_id')} "
                                   f"WHERE i.{q('customer_id')} = 1")}
    others = {r[0] for r in _query(
        db, f"SELECT l.{q('track_id')} FROM {q('invoice_line')} l JOIN {q('invoice')} i ON "
        f"l.{q('invoice_id')} = i.{q('invoice_id')} WHERE i.{q('customer_id')} <> 1")}
    only_hers = sorted(bought - others)[:3]  # then in no playlist: the subject's alone
    _query(db, f"DELETE FROM {q('playlist_track')} WHERE {q('track_id')} IN "
           f"({', '.join(str(t) for t in only_hers)})")
    elsewhere = {r[0] for r in _query(
        db, f"SELECT l.{q('track_id')} FROM {q('invoice_line')} l JOIN {q('invoice')} i ON "
        f"l.{q('invoice_id')} = i.{q('invoice_id')} WHERE i.{q('customer_id')} <> 1 "
        f"UNION SELECT {q('track_id')} FROM {q('playlist_track')}")}
    own = bought - elsewhere
    assert own == set(only_hers) and len(own) == 3 and len(elsewhere & bought) > 30
    before = {t: rows(db, t) for t in ("track", "playlist_track", "invoice_line", "invoice",
                                       "customer")}
    subject_lines = {r[0] for r in before["invoice_line"]
                     if r[1] in {i[0] for i in before["invoice"] if i[1] == 1}}
    sink = ListSink()
    system = parse_datamap(text).systems[0]
    conn = SqlConnector(system, ConnectorContext(  # type: ignore[arg-type]
        hash_key=b"k" * 32, environ={"CHINOOK_URL": db.url}))
    with conn:
        conn.collect(KEYS, sink)
        by = {e.collection: e for e in conn.erase(KEYS).evidence}
    assert len(sink.rows[n("track")]) == len(bought)  # access: the tracks the subject bought
    track = by[n("track")]
    assert (track.found, track.deleted) == (len(bought), len(own))
    assert track.counts == {"kept_shared": len(bought) - len(own)} and track.remaining == 0
    after = {t: rows(db, t) for t in before}
    assert {r[0] for r in after["track"]} == {r[0] for r in before["track"]} - own
    assert digest(before["track"], own) == digest(after["track"], set())
    assert after["playlist_track"] == before["playlist_track"]
    assert digest(before["invoice_line"], subject_lines) == digest(after["invoice_line"], set())
    assert [r for r in after["customer"] if r[0] == 1] == []
    assert digest(before["customer"], {1}) == digest(after["customer"], set())


def _query(db: ChinookDb, sql: str) -> list[Any]:
    engine = sa.create_engine(db.url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()
