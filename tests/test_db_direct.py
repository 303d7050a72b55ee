"""The state database's one-row writes on the driver's cursor (SQLite and PostgreSQL): the same
rows as through SQLAlchemy, SQLAlchemy's errors, and SQLAlchemy itself wherever it would do
more (column defaults computed in Python, statement listeners)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.db import direct
from dsar.db.models import AuditEvent, OutboxMessage, Request
from dsar.db.rows import insert_rows, update_row

pytest.register_assert_rewrite("tests.state")
from tests.state import submit  # noqa: E402

pytest_plugins = ["tests.state"]


def cursor_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL that :class:`~dsar.db.direct.DirectStatement` ran on a cursor."""
    sent: list[str] = []
    real = direct.DirectStatement._execute

    def spy(query: direct.DirectStatement, conn: Any, params: Any, fetch: bool) -> Any:
        sent.append(query.sql.split(None, 1)[0])
        return real(query, conn, params, fetch)

    monkeypatch.setattr(direct.DirectStatement, "_execute", spy)
    return sent


def row_of(app: App, table: sa.Table, row_id: int) -> dict[str, Any]:
    with app.db.session() as session:
        return dict(session.execute(sa.select(table).where(table.c.id == row_id)).mappings()
                    .one())


def test_a_row_written_on_the_cursor_equals_one_written_by_sqlalchemy(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = submit(app).id
    table = OutboxMessage.__table__
    row = {"actor": "run_sql_task", "queue": "sql", "args": [7, {"a": "ü"}], "priority": 3,
           "created_at": app.now(), "available_at": app.now() + timedelta(seconds=5),
           "sent_at": None}
    sent = cursor_runs(monkeypatch)
    with app.db.session() as session:
        (on_cursor,) = insert_rows(session, table, [row], returning_id=True)
        (through_sqlalchemy,) = session.execute(sa.insert(table).returning(table.c.id),
                                                [row]).scalars()
        insert_rows(session, AuditEvent.__table__, [{
            "request_id": request_id, "at": app.now(), "actor": "test", "event": "direct",
            "from_state": None, "to_state": None, "reason": None}])
    assert sent == ["INSERT", "INSERT"]
    first, second = row_of(app, table, on_cursor), row_of(app, table, through_sqlalchemy)
    assert {k: v for k, v in first.items() if k != "id"} == \
        {k: v for k, v in second.items() if k != "id"}
    assert first["args"] == [7, {"a": "ü"}] and first["created_at"] == row["created_at"]
    assert [e.event for e in requests.load(app, request_id).events][-1] == "direct"


def test_update_row_changes_the_row_and_the_loaded_object(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = submit(app).id
    sent = cursor_runs(monkeypatch)
    with app.db.session() as session:
        request = session.get(Request, request_id)
        assert update_row(session, request, plan={"tasks": []}, updated_at=app.now()) == 1
        assert request.plan == {"tasks": []}
        assert not session.dirty  # nothing left for a flush
    assert sent == ["UPDATE"]
    with app.db.session() as session:
        assert session.get(Request, request_id).plan == {"tasks": []}


def test_an_insert_leaving_out_a_python_default_goes_through_sqlalchemy(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = cursor_runs(monkeypatch)
    with app.db.session() as session:
        (message_id,) = insert_rows(session, OutboxMessage.__table__, [{
            "actor": "plan_request", "queue": "control", "args": ["r"],
            "created_at": app.now(), "available_at": app.now(), "sent_at": None}],
            returning_id=True)
    assert sent == []
    assert row_of(app, OutboxMessage.__table__, message_id)["priority"] == 0  # the default


def test_errors_are_sqlalchemys_and_leave_nothing(app: App) -> None:
    request_id = submit(app).id
    with pytest.raises(sa.exc.IntegrityError), app.db.session() as session:
        insert_rows(session, AuditEvent.__table__, [{
            "request_id": request_id, "at": app.now(), "actor": "test", "event": "direct",
            "from_state": None, "to_state": None, "reason": None}])
        insert_rows(session, AuditEvent.__table__, [{
            "request_id": request_id, "at": None, "actor": "test", "event": "no time",
            "from_state": None, "to_state": None, "reason": None}])
    assert "direct" not in [e.event for e in requests.load(app, request_id).events]


def test_statement_listeners_still_see_every_write(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = submit(app).id
    sent, seen = cursor_runs(monkeypatch), []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split(None, 1)[0])

    sa.event.listen(app.db.engine, "before_cursor_execute", note)
    try:
        with app.db.session() as session:
            update_row(session, session.get(Request, request_id), updated_at=app.now())
    finally:
        sa.event.remove(app.db.engine, "before_cursor_execute", note)
    assert sent == [] and "UPDATE" in seen
