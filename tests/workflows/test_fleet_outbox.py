"""Enqueue after commit: the outbox and its relay, on PostgreSQL state and real brokers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq import Message

from dsar.db.models import OutboxMessage
from dsar.outbox import enqueue
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import Fleet, rabbit_vhost
from workflows.broker import make_broker
from workflows.relay import relay_once
from workflows.runtime import InProcessFleet, wait_for

pytestmark = pytest.mark.postgres


class RecordingBroker:
    """Stands in for a broker in relay tests: keeps what it is given, slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[Message[Any]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        time.sleep(self.delay)
        with self.lock:
            self.sent.append(message)
        return message


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    chinook = copy_sqlite(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", chinook_map("sqlite"),
                  {"CHINOOK_URL": chinook})
    fleet.apply_env(monkeypatch)
    yield fleet
    fleet.close()


def test_rolled_back_work_is_never_published(fleet: Fleet) -> None:
    app = fleet.app
    with pytest.raises(RuntimeError), app.db.session() as session:
        enqueue(session, "plan_request", ["dsr_rolledback"], queue="control", now=app.now())
        session.flush()
        raise RuntimeError("the transaction fails after the outbox row was added")
    broker = RecordingBroker()
    assert relay_once(app, broker) == 0  # type: ignore[arg-type]
    assert broker.sent == []
    assert fleet.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_relay_waits_for_available_at(fleet: Fleet) -> None:
    from datetime import timedelta

    app = fleet.app
    with app.db.session() as session:
        enqueue(session, "plan_request", ["later"], queue="control", now=app.now(),
                delay=timedelta(seconds=30))
        enqueue(session, "plan_request", ["now"], queue="control", now=app.now())
    broker = RecordingBroker()
    assert relay_once(app, broker) == 1  # type: ignore[arg-type]
    assert [m.args for m in broker.sent] == [("now",)]


def test_relay_publishes_earliest_deadline_first(fleet: Fleet) -> None:
    app = fleet.app
    with app.db.session() as session:
        for i, priority in enumerate([0, 9, 3, 9, 5]):
            enqueue(session, "plan_request", [f"m{i}"], queue="control", now=app.now(),
                    priority=priority)
    broker = RecordingBroker()
    relay_once(app, broker)  # type: ignore[arg-type]
    assert [m.args[0] for m in broker.sent] == ["m1", "m3", "m4", "m2", "m0"]
    assert [m.options["broker_priority"] for m in broker.sent] == [9, 9, 5, 3, 0]


def test_two_relays_never_publish_a_row_twice(fleet: Fleet) -> None:
    app = fleet.app
    total = 600
    with app.db.session() as session:
        for i in range(total):
            enqueue(session, "plan_request", [f"r{i}"], queue="control", now=app.now())
    broker = RecordingBroker(delay=0.001)
    barrier = threading.Barrier(3)

    def relay() -> None:
        barrier.wait()
        while relay_once(app, broker, batch=50):  # type: ignore[arg-type]
            pass

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    published = [m.args[0] for m in broker.sent]
    assert len(published) == total
    assert len(set(published)) == total
    unsent = fleet.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                          .where(OutboxMessage.sent_at.is_(None)))
    assert unsent == 0


@pytest.mark.rabbitmq
def test_request_submitted_while_broker_down_runs_when_it_returns(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    with rabbit_vhost() as live_url:
        fleet.env["DSAR_BROKER_URL"] = live_url
        request_id = fleet.submit("access")  # committed; the broker was never asked
        dead = make_broker("amqp://guest:guest@127.0.0.1:1/")
        with pytest.raises(Exception):  # noqa: B017 - whichever connection error pika raises
            relay_once(fleet.app, dead)
        unsent = fleet.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.sent_at.is_(None)))
        assert unsent == 1, "a failed publish must leave the row for the next try"
        object.__setattr__(fleet.app, "settings",
                           fleet.app.settings.__class__.from_env(fleet.env))
        with InProcessFleet(fleet.app, threads=2):
            assert wait_for(fleet.app, request_id, timeout=60).state == "completed"
        assert fleet.outbox_count("plan_request", request_id) == 1
