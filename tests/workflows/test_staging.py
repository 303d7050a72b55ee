"""The staging sink: records are sealed only when written, in the order they were given, and the
data a task keeps in hand reads back exactly as staged data does."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.bundles.items import RowsBatch, StagedObject
from dsar.db.models import StagedItem, Task
from dsar.identities import parse_identities
from dsar.lifecycle import TaskState
from workflows import staging
from workflows.staging import StagingSink, insert_staged, read_staged

pytest_plugins = ["tests.state"]

WHEN = dt.datetime(2025, 9, 1, 9, 30, tzinfo=dt.UTC)
ROWS = [{"id": 1, "email": "jane@example.com", "at": WHEN, "day": WHEN.date(),
         "amount": Decimal("12.50"), "ref": uuid.UUID(int=7), "raw": b"\x00\xff",
         "tags": ["a", "b"], "score": 0.5, "ok": True, "note": None}]


def _new_task(app: App) -> tuple[str, int]:
    """A request with one collect task, for staged rows to belong to."""
    request_id = requests.submit(app, "access", parse_identities(["jane@example.com"]),
                                 submitted_by="test", identity_method="test").request.id
    with app.db.session() as session:
        task_id = session.execute(sa.insert(Task).values(
            request_id=request_id, system="crm", kind="sql", action="collect",
            state=TaskState.RUNNING, depends_on=[], attempts=1).returning(Task.id)).scalar_one()
    return request_id, task_id


def _read(items) -> list[tuple]:
    out = []
    for item in items:
        if isinstance(item, RowsBatch):
            out.append(("rows", item.system, item.collection, list(item.rows)))
        else:
            assert isinstance(item, StagedObject)
            out.append(("object", item.name, b"".join(item.chunks), item.metadata))
    return out


def test_data_in_hand_reads_back_as_staged_data_does(app: App) -> None:
    request_id, task_id = _new_task(app)
    sink = StagingSink(app, request_id, task_id)
    sink.write_rows("crm", "contacts", ROWS)
    sink.write_object("files", "avatars", "me.png", {"type": "image/png"},
                      iter([b"x" * 10, b"y" * 5]))
    sink.write_rows("crm", "orders", [{"id": 2}])
    collected = sink.take()
    with app.db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(StagedItem)) == 0
    in_hand = _read(collected.items())
    with app.db.session() as session:
        insert_staged(session, collected.sealed(app))
    staged = _read(read_staged(app, request_id))
    assert in_hand == staged
    assert in_hand[0] == ("rows", "crm", "contacts", ROWS)
    assert in_hand[1] == ("object", "me.png", b"x" * 10 + b"y" * 5, {"type": "image/png"})


def test_a_full_buffer_is_written_early_and_numbering_carries_on(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging, "FLUSH_BYTES", 2000)
    request_id, task_id = _new_task(app)
    sink = StagingSink(app, request_id, task_id)
    for n in range(30):
        sink.write_rows("crm", "contacts", [{"id": n, "text": "z" * 100}])
    assert sink.flushed
    rest = sink.take()
    with app.db.session() as session:
        insert_staged(session, rest.sealed(app))
        seqs = list(session.scalars(sa.select(StagedItem.seq).order_by(StagedItem.seq)))
    assert seqs == list(range(30))
    ids = [row["id"] for item in read_staged(app, request_id) for row in item.rows]
    assert ids == list(range(30))


def test_a_value_staging_cannot_write_is_refused_when_collected(app: App) -> None:
    sink = StagingSink(app, "dsr_x", 1)
    with pytest.raises(TypeError, match="timedelta"):
        sink.write_rows("crm", "contacts", [{"id": 1, "wait": dt.timedelta(days=1)}])
    assert len(sink.take()) == 0


def test_a_large_nested_document_counts_towards_the_buffer(
        app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON column's document is measured by its contents, so a few large documents fill
    the buffer as their size says."""
    monkeypatch.setattr(staging, "FLUSH_BYTES", 50_000)
    request_id, task_id = _new_task(app)
    sink = StagingSink(app, request_id, task_id)
    sink.write_rows("crm", "profiles", [{"id": 1, "doc": {"notes": ["x" * 1000] * 30}}])
    assert not sink.flushed
    sink.write_rows("crm", "profiles", [{"id": 2, "doc": {"notes": ["x" * 1000] * 30}}])
    assert sink.flushed
