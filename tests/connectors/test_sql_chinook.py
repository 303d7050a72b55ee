"""The SQL connector on Chinook, in PostgreSQL, MariaDB and SQLite.

The subject is customer 1 (luisg@embraer.com.br): 7 invoices and their lines, support rep
employee 3 — who is another person and must never be collected or erased as the subject's.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest

from connectors.base import ConnectorContext
from connectors.sql import SqlConnector
from connectors.sql_query import json_row
from dsar.datamap.check import check_datamap
from dsar.datamap.loader import parse_datamap
from dsar.errors import DataMapError
from dsar.records.canonical import canonical_json
from tests.chinook import (  # noqa: F401 - fixtures
    RETAIN_INVOICES,
    ChinookDb,
    chinook_db_fixture,
    chinook_map,
    chinook_maria_template_fixture,
    chinook_pg_template_fixture,
    mask_customer,
)

EMAIL = "luisg@embraer.com.br"
KEYS = {"email": frozenset({EMAIL})}


class ListSink:
    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.batches = 0

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        self.batches += 1
        self.rows[collection] += [dict(r) for r in rows]

    def write_object(self, system: str, collection: str, name: str, metadata: Mapping[str, str],
                     chunks: Iterator[bytes]) -> None:
        raise AssertionError("SQL writes rows")


def connector(db: ChinookDb, **erasure: Any) -> SqlConnector:
    dm = parse_datamap(chinook_map(db.dialect, **erasure))
    ctx = ConnectorContext(hash_key=b"k" * 32, environ={"CHINOOK_URL": db.url})
    return SqlConnector(dm.systems[0], ctx)  # type: ignore[arg-type]


def subject_counts(db: ChinookDb) -> dict[str, int]:
    q, n = db.q, db.n
    return {
        "customer": db.scalar(f"SELECT count(*) FROM {q('customer')} WHERE {q('customer_id')}=1"),
        "invoice": db.scalar(f"SELECT count(*) FROM {q('invoice')} WHERE {q('customer_id')}=1"),
        "invoice_line": db.scalar(
            f"SELECT count(*) FROM {q('invoice_line')} l JOIN {q('invoice')} i "
            f"ON l.{q('invoice_id')} = i.{q('invoice_id')} WHERE i.{q('customer_id')}=1"),
        "all_customers": db.scalar(f"SELECT count(*) FROM {q('customer')}"),
        "all_lines": db.scalar(f"SELECT count(*) FROM {q('invoice_line')}"),
        "employee": db.scalar(f"SELECT count(*) FROM {q('employee')}"),
        "masked": db.scalar(f"SELECT count(*) FROM {q('customer')} WHERE {q('first_name')}="
                            f"'erased' AND {q('customer_id')}=1"),
    } | {"n": n is not None}


def test_collect_follows_the_subject_and_never_the_support_rep(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    before = subject_counts(chinook_db)
    sink = ListSink()
    with connector(chinook_db) as conn:
        result = conn.collect(KEYS, sink)
    by_table = {e.collection: e for e in result.evidence}
    assert len(sink.rows[n("customer")]) == 1
    assert sink.rows[n("customer")][0][n("email")] == EMAIL
    assert len(sink.rows[n("invoice")]) == before["invoice"] == 7
    assert len(sink.rows[n("invoice_line")]) == before["invoice_line"] > 0
    assert n("employee") not in sink.rows
    assert by_table[n("employee")].outcome == "skipped"
    assert result.discovered == {"customer_id": {"1"}}
    for name, rows in sink.rows.items():
        evidence = by_table[name]
        assert evidence.collected == evidence.found == len(rows)
        assert evidence.digest == hashlib.sha256(  # the digest is of the rows' JSON form
            canonical_json([json_row(r) for r in rows])).hexdigest()
        assert len(set(evidence.item_hashes)) == len(rows)
    assert {type(r[n("customer_id")]) for r in sink.rows[n("invoice")]} == {int}


def test_count_matches_collect(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    with connector(chinook_db) as conn:
        result = conn.count(KEYS)
    found = {e.collection: e.found for e in result.evidence}
    assert found[n("customer")] == 1 and found[n("invoice")] == 7
    assert result.discovered == {"customer_id": {"1"}}


def test_erase_deletes_children_first_and_is_idempotent(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    before = subject_counts(chinook_db)
    with connector(chinook_db) as conn:
        first = conn.erase(KEYS)
        second = conn.erase(KEYS)
    after = subject_counts(chinook_db)
    assert [e.collection for e in first.evidence][:3] == [
        n("invoice_line"), n("invoice"), n("customer")]
    deleted = {e.collection: e.deleted for e in first.evidence}
    assert deleted[n("customer")] == 1 and deleted[n("invoice")] == 7
    assert deleted[n("invoice_line")] == before["invoice_line"]
    assert all(e.remaining == 0 for e in first.evidence if e.action == "delete")
    assert after["customer"] == after["invoice"] == after["invoice_line"] == 0
    assert after["all_customers"] == before["all_customers"] - 1
    assert after["all_lines"] == before["all_lines"] - before["invoice_line"]
    assert after["employee"] == before["employee"]
    assert all(e.found == e.deleted == e.masked == 0 for e in second.evidence)


def test_retaining_invoices_while_deleting_the_customer_is_refused(chinook_db: ChinookDb) -> None:
    before = subject_counts(chinook_db)
    dm = parse_datamap(chinook_map(chinook_db.dialect, invoice=RETAIN_INVOICES))
    findings = check_datamap(dm, {"CHINOOK_URL": chinook_db.url})
    errors = [f for f in findings if f.severity == "error"]
    assert errors and errors[0].table == chinook_db.n("invoice")
    assert "mask" in errors[0].fix
    with connector(chinook_db, invoice=RETAIN_INVOICES) as conn, \
            pytest.raises(DataMapError, match="refused by the database"):
        conn.erase(KEYS)
    assert subject_counts(chinook_db) == before


def test_masking_the_customer_keeps_retained_invoices_valid(chinook_db: ChinookDb) -> None:
    n = chinook_db.n
    erasure = {"invoice": RETAIN_INVOICES, "customer": mask_customer(chinook_db.dialect)}
    dm = parse_datamap(chinook_map(chinook_db.dialect, **erasure))
    findings = check_datamap(dm, {"CHINOOK_URL": chinook_db.url})
    assert [f for f in findings if f.severity == "error"] == []
    with connector(chinook_db, **erasure) as conn:
        first = conn.erase(KEYS)
        second = conn.erase(KEYS)
    by_table = {e.collection: e for e in first.evidence}
    assert by_table[n("customer")].masked == 1 and by_table[n("customer")].remaining == 0
    assert by_table[n("invoice")].retained == 7
    assert by_table[n("invoice")].retained_ground == "Art. 17(3)(b) tax records"
    after = subject_counts(chinook_db)
    assert after["customer"] == 1 and after["masked"] == 1 and after["invoice"] == 7
    email = chinook_db.scalar(f"SELECT {chinook_db.q('email')} FROM {chinook_db.q('customer')} "
                              f"WHERE {chinook_db.q('customer_id')} = 1")
    assert email != EMAIL and len(email) <= 60
    assert all(e.masked == e.deleted == 0 for e in second.evidence)
