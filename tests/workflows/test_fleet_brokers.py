"""The same actors and code path on RabbitMQ, Redis and the in-process broker: an access and an
erasure request on Chinook, end to end, with PostgreSQL state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from dsar.lifecycle import TaskState
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import CUSTOMER, Fleet, rabbit_vhost, redis_db
from workflows.broker import make_broker
from workflows.runtime import InProcessFleet, wait_for


@pytest.fixture(params=["amqp", "redis", "memory"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "amqp":
            yield stack.enter_context(rabbit_vhost())
        elif request.param == "redis":
            yield stack.enter_context(redis_db())
        else:
            yield "memory://"


def test_broker_kinds(broker_url: str) -> None:
    broker = make_broker(broker_url)
    try:
        if broker_url.startswith("amqp"):
            assert broker.confirm_delivery is True
            assert broker.max_priority == 10
        assert {"control", "sql", "s3", "saas"} <= set(broker.get_declared_queues()) | {
            "control", "sql", "s3", "saas"}
    finally:
        broker.close()


@pytest.mark.postgres
def test_access_and_erasure_end_to_end(broker_url: str, postgres_url: str, tmp_path: Path,
                                       chinook_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chinook = copy_sqlite(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, broker_url, chinook_map("sqlite"),
                  {"CHINOOK_URL": chinook})
    fleet.apply_env(monkeypatch)
    try:
        access = fleet.submit("access")
        with InProcessFleet(fleet.app, threads=2, watch_interval=1.0) as running:
            assert type(running.broker).__name__ == {
                "amqp": "RabbitmqBroker", "redis": "RedisBroker", "memory": "StubBroker",
            }[broker_url.split(":")[0]]
            assert wait_for(fleet.app, access, timeout=60).state == "completed"
            erasure = fleet.submit("erasure")
            assert wait_for(fleet.app, erasure, timeout=60).state == "completed"
        for rid in (access, erasure):
            assert fleet.record_count(rid) == 1
            # one worker serving every queue ran the task and the assembly itself: their
            # fallback messages were withdrawn, only the plan went through the broker
            assert fleet.outbox_count("plan_request", rid) == 1
            assert fleet.outbox_count("run_sql_task", fleet.tasks(rid)[0]["id"]) == 0
            assert fleet.outbox_count("assemble_request", rid) == 0
            assert [t["state"] for t in fleet.tasks(rid)] == [TaskState.DONE]
        evidence = {(c, a): body for _t, c, a, body in fleet.evidence(erasure)}
        assert evidence[("Customer", "delete")]["deleted"] == 1
        assert evidence[("InvoiceLine", "delete")]["deleted"] == 38
        engine = sa.create_engine(chinook)
        with engine.connect() as conn:
            left = conn.execute(sa.text("SELECT count(*) FROM Customer WHERE Email = :e"),
                                {"e": CUSTOMER}).scalar()
        engine.dispose()
        assert left == 0
    finally:
        fleet.close()
