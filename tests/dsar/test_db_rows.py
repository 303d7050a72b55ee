"""The state database's fast path (SQLite and PostgreSQL): one-row writes on the driver's
cursor give the same rows as through SQLAlchemy, SQLAlchemy's errors, and SQLAlchemy itself
wherever it would do more (column defaults computed in Python, statement listeners); writes
deferred to travel with the next read (PostgreSQL's pipeline), seen in order and failing as a
whole; reads sent together; rows read outside the ORM made into the objects it would load.

These tests run with the fast path on whatever DSAR_SQL_FAST_PATH the suite runs with; the
last ones check that :mod:`dsar.db.rows` leaves the same rows and objects without it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsar import requests
from dsar.app import App
from dsar.db import direct
from dsar.db.models import AuditEvent, OutboxMessage, Request
from dsar.db.rows import (
    deferred,
    fetch,
    insert_objects,
    insert_rows,
    read_together,
    select_all,
    send,
    update_row,
)

pytest.register_assert_rewrite("tests.state")
from tests.state import Backend, Clock, submit  # noqa: E402

pytest_plugins = ["tests.state"]


@pytest.fixture
def app(backend: Backend, clock: Clock) -> App:
    """An App with the fast path on, whatever mode the suite runs in."""
    return backend.make_app(clock, DSAR_SQL_FAST_PATH="true")


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
        update_row(session, request, plan={"tasks": []}, updated_at=app.now())
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


def audit_row(request_id: str, event: str, at: Any) -> dict[str, Any]:
    return {"request_id": request_id, "at": at, "actor": "test", "event": event,
            "from_state": None, "to_state": None, "reason": None}


def test_deferred_writes_wait_for_a_read_and_are_seen_in_order(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    request_id = submit(app).id
    pipelined = app.db.engine.dialect.driver == "psycopg"
    sent = cursor_runs(monkeypatch)
    events = sa.select(AuditEvent.event).where(AuditEvent.request_id == request_id) \
        .order_by(AuditEvent.id)
    with app.db.session() as session:
        conn = session.connection()
        with direct.deferred(conn):
            assert direct.deferring(conn) == pipelined
            request = session.get(Request, request_id)  # an ORM read, before any write
            update_row(session, request, plan={"tasks": ["t"]}, updated_at=app.now())
            insert_rows(session, AuditEvent.__table__,
                        [audit_row(request_id, f"e{i}", app.now()) for i in range(3)])
            # on PostgreSQL nothing has reached the cursor yet; elsewhere the update has
            assert sent == ([] if pipelined else ["UPDATE"])
            # a read on the cursor carries them (and sees them) ...
            plans = direct.fetch(conn, sa.select(Request.plan).where(
                Request.id == sa.bindparam("rid")), {"rid": request_id})
            assert plans == [({"tasks": ["t"]},)]
            insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "e3", app.now())])
            # ... and so does one through SQLAlchemy
            assert list(session.scalars(events))[-4:] == ["e0", "e1", "e2", "e3"]
            insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "e4", app.now())])
        assert not direct.deferring(conn)  # the block's end sent the last one
        assert list(session.scalars(events))[-1] == "e4"
    with app.db.session() as session:
        assert list(session.scalars(events))[-5:] == ["e0", "e1", "e2", "e3", "e4"]
        assert session.get(Request, request_id).plan == {"tasks": ["t"]}


def test_a_deferred_write_that_fails_fails_the_transaction(app: App) -> None:
    request_id = submit(app).id
    before = len(requests.load(app, request_id).events)
    with pytest.raises(sa.exc.IntegrityError), app.db.session() as session:
        conn = session.connection()
        with direct.deferred(conn):
            insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "kept?", app.now())])
            insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "no time", None)])
            direct.fetch(conn, sa.select(Request.id).where(Request.id == sa.bindparam("rid")),
                         {"rid": request_id})
    assert len(requests.load(app, request_id).events) == before


def test_an_exception_in_the_block_leaves_nothing(app: App) -> None:
    request_id = submit(app).id
    before = len(requests.load(app, request_id).events)
    with pytest.raises(ValueError, match="boom"), app.db.session() as session, \
            direct.deferred(session.connection()):
        insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "x", app.now())])
        raise ValueError("boom")
    assert len(requests.load(app, request_id).events) == before
    with app.db.session() as session:  # the pool's connection carries nothing over
        assert not direct.deferring(session.connection())


_ADD_EVENT = sa.insert(AuditEvent.__table__).values(
    {name: sa.bindparam(name) for name in ("request_id", "at", "actor", "event", "from_state",
                                           "to_state", "reason")})


def _events(app: App, request_id: str) -> list[str]:
    with app.db.session() as session:
        return list(session.scalars(sa.select(AuditEvent.event)
                                    .where(AuditEvent.request_id == request_id)
                                    .order_by(AuditEvent.id)))


def test_a_write_on_the_cursor_is_in_the_transaction_sqlalchemy_ends(app: App) -> None:
    request_id = submit(app).id
    before = _events(app, request_id)
    with app.db.engine.connect() as conn:  # no transaction yet: the write begins one
        direct.send(conn, _ADD_EVENT, audit_row(request_id, "undone", app.now()))
        assert conn.in_transaction()
        conn.rollback()
        direct.fetch_together(conn, [(sa.select(Request.id), {})])  # so do reads
        assert conn.in_transaction()
        conn.rollback()
        direct.send(conn, _ADD_EVENT, audit_row(request_id, "done", app.now()))
        conn.commit()
    assert _events(app, request_id) == [*before, "done"]


def test_a_commit_in_the_block_commits_the_waiting_writes_first(app: App) -> None:
    request_id = submit(app).id
    before = _events(app, request_id)
    with app.db.engine.connect() as conn, direct.deferred(conn):
        direct.send(conn, _ADD_EVENT, audit_row(request_id, "first", app.now()))
        conn.commit()
        assert _events(app, request_id) == [*before, "first"]  # committed, seen elsewhere
        direct.send(conn, _ADD_EVENT, audit_row(request_id, "second", app.now()))
        conn.commit()
    assert _events(app, request_id) == [*before, "first", "second"]
    with app.db.session() as session, direct.deferred(session.connection()):
        insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "third", app.now())])
        session.commit()
    assert _events(app, request_id)[-1] == "third"


def test_a_waiting_write_that_fails_fails_the_commit(app: App) -> None:
    request_id = submit(app).id
    before = _events(app, request_id)
    with app.db.engine.connect() as conn, direct.deferred(conn):
        direct.send(conn, _ADD_EVENT, audit_row(request_id, "kept?", app.now()))
        with pytest.raises(sa.exc.IntegrityError):  # by the write itself or by the commit
            direct.send(conn, _ADD_EVENT, audit_row(request_id, "no time", None))
            conn.commit()
        conn.rollback()
    assert _events(app, request_id) == before


def test_a_rollback_in_the_block_drops_the_waiting_writes(app: App) -> None:
    request_id = submit(app).id
    before = _events(app, request_id)
    with app.db.engine.connect() as conn:
        with direct.deferred(conn):
            direct.send(conn, _ADD_EVENT, audit_row(request_id, "dropped", app.now()))
            conn.rollback()
            direct.send(conn, _ADD_EVENT, audit_row(request_id, "kept", app.now()))
        conn.commit()
    assert _events(app, request_id) == [*before, "kept"]


def test_reads_together_return_what_each_returns_alone(app: App) -> None:
    request_id = submit(app).id
    requests_of = sa.select(Request.id, Request.state).where(Request.id == sa.bindparam("rid"))
    events_of = sa.select(AuditEvent.event).where(AuditEvent.request_id == sa.bindparam("rid")) \
        .order_by(AuditEvent.id)
    with app.db.session() as session:
        conn = session.connection()
        alone = [direct.fetch(conn, requests_of, {"rid": request_id}),
                 direct.fetch(conn, events_of, {"rid": request_id})]
    with app.db.session() as session:  # first statements of a transaction (its BEGIN rides)
        conn = session.connection()
        together = direct.fetch_together(conn, [(requests_of, {"rid": request_id}),
                                                (events_of, {"rid": request_id})])
        assert together == alone and alone[1]
        with direct.deferred(conn):  # waiting writes go first and are seen
            insert_rows(session, AuditEvent.__table__, [audit_row(request_id, "w", app.now())])
            _, events = direct.fetch_together(conn, [(requests_of, {"rid": request_id}),
                                                     (events_of, {"rid": request_id})])
        assert [e for (e,) in events] == [e for (e,) in alone[1]] + ["w"]


@pytest.fixture(params=["true", "false"], ids=["fast", "orm"])
def either_app(request: pytest.FixtureRequest, backend: Backend, clock: Clock) -> App:
    """An App with the fast path on, and one with it off."""
    return backend.make_app(clock, DSAR_SQL_FAST_PATH=request.param)


def test_objects_read_together_are_the_objects_the_orm_loads(either_app: App) -> None:
    app = either_app
    request_id = submit(app).id
    with app.db.session() as session:
        loaded = session.get(Request, request_id)
        expected = {p.key: getattr(loaded, p.key) for p in sa.inspect(Request).column_attrs}
    with app.db.session() as session:
        ((request,),) = read_together(session, [
            (Request, select_all(Request).where(Request.id == sa.bindparam("rid")),
             {"rid": request_id})])
        state = sa.inspect(request)
        assert state.persistent and not state.modified and session.get(Request, request_id) \
            is request
        assert {p.key: getattr(request, p.key) for p in sa.inspect(Request).column_attrs} \
            == expected
        assert [i.name for i in request.identities]  # relationships load when first used
        request.attention_reason = "adopted"  # and the unit of work writes its changes
    with app.db.session() as session:
        assert session.get(Request, request_id).attention_reason == "adopted"


def test_reading_together_refreshes_an_object_already_in_the_session(either_app: App) -> None:
    app = either_app
    request_id = submit(app).id
    by_id = select_all(Request).where(Request.id == sa.bindparam("rid"))
    with app.db.session() as session:
        request = session.get(Request, request_id)
        direct.execute(session.connection(), sa.update(Request).where(
            Request.id == sa.bindparam("rid")).values(attention_reason=sa.bindparam("why")),
            {"rid": request_id, "why": "changed behind it"})
        assert request.attention_reason is None  # stale
        assert read_together(session, [(Request, by_id, {"rid": request_id})]) == [[request]]
        assert request.attention_reason == "changed behind it"
        assert not sa.inspect(request).modified


def _snapshot(app: App, request_id: str) -> dict[str, Any]:
    """What the database holds for a request, without ids, salts and ciphertexts."""
    with app.db.session() as session:
        request = session.get(Request, request_id)
        assert request is not None
        return {
            "request": {p.key: getattr(request, p.key) for p in sa.inspect(Request).column_attrs
                        if p.key not in ("id", "subject_commitment")},
            "identities": sorted((i.kind, i.name, i.lookup_hash) for i in request.identities),
            "events": [(e.actor, e.event, e.from_state, e.to_state, e.reason, e.at)
                       for e in request.events],
            "pauses": [(p.started_at, p.ended_at, p.reason, p.resume_to)
                       for p in request.pauses],
            "outbox": sorted((m.actor, m.queue, m.priority, m.available_at)
                             for m in session.scalars(sa.select(OutboxMessage).where(
                                 OutboxMessage.args.is_not(None)))
                             if m.args == [request_id]),
        }


_MARK = sa.update(Request).where(Request.id == sa.bindparam("rid")).values(
    attention_reason=sa.bindparam("why"))


def _work(app: App, plan: dict[str, Any], reasons: list[str], verified: bool) -> dict[str, Any]:
    """Submit a request, then write to it through every function of dsar.db.rows; what the
    database holds afterwards, and what the loaded object said."""
    options = {"identity_method": "signed in"} if verified else {}
    request_id = submit(app, **options).id
    events = [audit_row(request_id, reason, app.now()) for reason in reasons]
    with app.db.session() as session, deferred(session):
        ((request,),) = read_together(session, [
            (Request, select_all(Request).where(Request.id == sa.bindparam("rid")),
             {"rid": request_id})])
        update_row(session, request, plan=plan, updated_at=app.now())
        ids = insert_rows(session, AuditEvent.__table__, events, returning_id=True)
        insert_rows(session, AuditEvent.__table__, events)
        send(session, _MARK, {"rid": request_id, "why": "marked"})
        seen = fetch(session, sa.select(AuditEvent.id).where(
            AuditEvent.request_id == sa.bindparam("rid"), AuditEvent.id.in_(ids or [-1])),
            {"rid": request_id})
        loaded = (request.plan, bool(session.dirty), sorted(i for (i,) in seen) == sorted(ids))
    return {"loaded": loaded, "ids": len(set(ids)), **_snapshot(app, request_id)}


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.dictionaries(st.text(max_size=5), st.lists(st.integers(), max_size=3),
                            max_size=3),
       reasons=st.lists(st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t),
                        max_size=4),
       verified=st.booleans())
def test_without_the_fast_path_the_same_rows_and_objects(
        backend: Backend, clock: Clock, plan: dict[str, Any], reasons: list[str],
        verified: bool) -> None:
    fast = _work(backend.make_app(clock, DSAR_SQL_FAST_PATH="true"), plan, reasons, verified)
    orm = _work(backend.make_app(clock, DSAR_SQL_FAST_PATH="false"), plan, reasons, verified)
    assert fast == orm
    assert fast["loaded"] == (plan, False, True) and fast["ids"] == len(reasons)
    assert fast["request"]["attention_reason"] == "marked"
    written = fast["events"][len(fast["events"]) - 2 * len(reasons):]
    assert [e[1] for e in written] == [*reasons, *reasons]


def test_new_objects_go_in_both_ways(either_app: App) -> None:
    app = either_app
    request_id = submit(app).id
    with app.db.session() as session:
        insert_objects(session, [AuditEvent(**audit_row(request_id, "one", app.now())),
                                 AuditEvent(**audit_row(request_id, "two", app.now()))])
    assert _events(app, request_id)[-2:] == ["one", "two"]
