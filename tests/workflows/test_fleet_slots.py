"""Per-system slot rows: made to match the data map's cap, once per cap, and made again if they
vanish, so a system never runs without its cap."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dsar.datamap.current import load_map
from dsar.db.models import SystemSlot
from tests.workflows.fleet_helpers import SYSTEMS, Fleet
from workflows import runner, slots

pytestmark = pytest.mark.postgres
SYSTEM = SYSTEMS[0]  # the one system of the `one_system` fleet


def slot_rows(fleet: Fleet, system: str = SYSTEM) -> list[tuple[int, int | None]]:
    with fleet.app.db.session() as session:
        return [tuple(r) for r in session.execute(
            sa.select(SystemSlot.slot, SystemSlot.task_id)
            .where(SystemSlot.system == system).order_by(SystemSlot.slot))]


@contextmanager
def statements_on(fleet: Fleet, table: str) -> Iterator[list[str]]:
    """The SQL statements run on the state database meanwhile that name ``table``."""
    seen: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if table in statement:
            seen.append(statement.split(None, 1)[0].upper())

    engine = fleet.app.db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)


def test_slot_rows_follow_the_cap_up_and_down(one_system: Fleet) -> None:
    app = one_system.app
    for cap, expected in ((3, [0, 1, 2]), (1, [0]), (2, [0, 1])):
        with app.db.session() as session:
            slots.ensure(session, SYSTEM, cap)
        assert [slot for slot, _ in slot_rows(one_system)] == expected


def test_a_lowered_cap_deletes_a_held_slot_and_its_task_still_finishes(
        one_system: Fleet) -> None:
    app = one_system.app
    now = app.now()
    with app.db.session() as session:
        slots.ensure(session, SYSTEM, 2)
        assert slots.take(session, SYSTEM, 7, now, now + timedelta(minutes=1))
        assert slots.take(session, SYSTEM, 8, now, now + timedelta(minutes=1))
    with app.db.session() as session:
        slots.ensure(session, SYSTEM, 1)
        assert not slots.take(session, SYSTEM, 9, now, now + timedelta(minutes=1))
    with app.db.session() as session:
        slots.release(session, 8)  # held slot 1, deleted: nothing to free
        slots.release(session, 7)
    assert slot_rows(one_system) == [(0, None)]


def test_planning_reads_the_slot_rows_once_per_cap(one_system: Fleet) -> None:
    app = one_system.app
    first, second = one_system.submit("access"), one_system.submit("access")
    with statements_on(one_system, "system_slots") as seen:
        runner.plan(app, first, run_here={"control", "sql"})
    assert "SELECT" in seen and "DELETE" in seen
    with statements_on(one_system, "system_slots") as seen:
        runner.plan(app, second, run_here={"control", "sql"})
    assert seen == ["UPDATE"]  # taking the handed-off task's slot, nothing else
    cap = load_map(app)[0].system(SYSTEM).max_concurrent_tasks
    assert len(slot_rows(one_system)) == cap


def test_an_ensure_that_rolled_back_is_done_again(one_system: Fleet) -> None:
    app = one_system.app
    with pytest.raises(RuntimeError), app.db.session() as session:
        slots.ensure(session, SYSTEM, 2)
        raise RuntimeError("the transaction fails after the rows were added")
    assert slot_rows(one_system) == []
    with app.db.session() as session:
        slots.ensure(session, SYSTEM, 2)
    assert len(slot_rows(one_system)) == 2


def test_slot_rows_that_vanished_are_made_again_when_a_task_takes_one(
        one_system: Fleet) -> None:
    """The state database emptied or restored under a running worker: the cap it knew is
    restored by the next claim instead of the system running uncapped."""
    app = one_system.app
    now = app.now()
    with app.db.session() as session:
        slots.ensure(session, SYSTEM, 1)
    with app.db.session() as session:
        session.execute(sa.delete(SystemSlot))
    with app.db.session() as session:
        assert slots.take(session, SYSTEM, 11, now, now + timedelta(minutes=1))
        assert not slots.take(session, SYSTEM, 12, now, now + timedelta(minutes=1))
    assert slot_rows(one_system) == [(0, 11)]


def test_a_system_never_capped_here_runs_without_slot_rows(one_system: Fleet) -> None:
    app = one_system.app
    now = app.now()
    with app.db.session() as session:
        assert slots.take(session, "elsewhere", 13, now, now + timedelta(minutes=1))
    assert slot_rows(one_system, "elsewhere") == []
