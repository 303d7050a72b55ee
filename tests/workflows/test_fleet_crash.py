"""Crash safety with real ``dsar worker`` processes on RabbitMQ and Redis, PostgreSQL state.

The fleet's task delay (:mod:`tests.workflows.task_delay`) holds each task after its connector
call (the erasure committed, the collection staged) and before its result is recorded, so "the
middle of a task" is reliable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.lifecycle import TaskState
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import Fleet, rabbit_vhost, redis_db, wait_until
from tests.workflows.private_rabbit import private_rabbit

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
OTHER = "leonekohler@surfeu.de"  # Chinook customer 2


@pytest.fixture(params=["amqp", "redis"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with ExitStack() as stack:
        yield stack.enter_context(rabbit_vhost() if request.param == "amqp" else redis_db())


def make_fleet(tmp_path: Path, chinook_dir: Path, postgres_url: str, broker_url: str,
               delay: float = 3) -> Fleet:
    chinook = copy_sqlite(chinook_dir, tmp_path)
    return Fleet(tmp_path / "fleet", postgres_url, broker_url, chinook_map("sqlite"),
                 {"CHINOOK_URL": chinook}, task_delay=delay)


def running_tasks(fleet: Fleet, request_ids: list[str]) -> list[dict[str, Any]]:
    return [t for rid in request_ids for t in fleet.tasks(rid) if t["state"] == TaskState.RUNNING]


def check_completed(fleet: Fleet, request_ids: list[str]) -> None:
    states = fleet.wait_settled(request_ids, timeout=90)
    assert set(states.values()) == {"completed"}, states
    for rid in request_ids:
        keys = [(t, c, a) for t, c, a, _ in fleet.evidence(rid)]
        assert keys and len(keys) == len(set(keys)), "one evidence row per task/collection/action"
        assert fleet.record_count(rid) == 1
    # every message is published or, a fallback of a step a worker ran itself, withdrawn
    # (a redelivery that found its task held re-enqueues it for when the lease ends: 3 s)
    wait_until(lambda: fleet.pending_outbox() == [], 15, "no message left unpublished")


def test_sigkill_in_the_middle_of_tasks(broker_url: str, postgres_url: str, tmp_path: Path,
                                        chinook_dir: Path) -> None:
    fleet = make_fleet(tmp_path, chinook_dir, postgres_url, broker_url)
    try:
        first = fleet.start_worker(processes=1, threads=2)
        access = fleet.submit("access", OTHER)  # another customer than the erasure's
        erasure = fleet.submit("erasure")
        wait_until(lambda: len(running_tasks(fleet, [access, erasure])) == 2, 60,
                   "both tasks to be in the middle of their work")
        time.sleep(1)  # the connector calls are done; the results are not recorded yet
        fleet.kill(first)
        first.wait(10)
        killed = {t["id"] for t in running_tasks(fleet, [access, erasure])}
        assert len(killed) == 2
        fleet.start_worker(processes=1, threads=2)
        check_completed(fleet, [access, erasure])
        for rid in (access, erasure):
            assert all(t["attempts"] >= 2 for t in fleet.tasks(rid) if t["id"] in killed)
        for task_id in killed:  # handed off to the planning worker; its fallback went out
            assert fleet.outbox_count("run_sql_task", task_id) >= 1
        evidence = {(c, a): body for _t, c, a, body in fleet.evidence(erasure)}
        customer = evidence[("Customer", "delete")]
        assert (customer["found"], customer["deleted"]) == (1, 1)
        assert customer["counts"]["erased_by_earlier_attempt"] == 1
        lines = evidence[("InvoiceLine", "delete")]
        assert (lines["found"], lines["deleted"]) == (38, 38)
        access_rows = {c: b["found"] for _t, c, _a, b in fleet.evidence(access)}
        assert access_rows["Customer"] == 1 and access_rows["InvoiceLine"] == 38
    finally:
        fleet.close()


@pytest.mark.rabbitmq
def test_rabbitmq_restarted_mid_run(postgres_url: str, tmp_path: Path,
                                    chinook_dir: Path) -> None:
    """The broker goes away and comes back mid-run: a private RabbitMQ node of this test's own
    (the machine's RabbitMQ is never stopped)."""
    with private_rabbit(tmp_path) as rabbit:
        fleet = make_fleet(tmp_path, chinook_dir, postgres_url, rabbit.url, delay=2)
        try:
            fleet.start_worker(processes=1, threads=2)
            ids = [fleet.submit("access") for _ in range(3)]
            wait_until(lambda: running_tasks(fleet, ids), 60, "a task to start")
            rabbit.stop_app()
            try:
                time.sleep(3)
                ids.append(fleet.submit("access"))  # submitted while the broker is away
            finally:
                rabbit.start_app()
            check_completed(fleet, ids)
        finally:
            fleet.close()


@pytest.mark.rabbitmq
def test_state_database_connections_dropped_mid_task(postgres_url: str, tmp_path: Path,
                                                     chinook_dir: Path) -> None:
    with rabbit_vhost() as url:
        fleet = make_fleet(tmp_path, chinook_dir, postgres_url, url, delay=3)
        try:
            fleet.start_worker(processes=1, threads=2)
            ids = [fleet.submit("access", OTHER), fleet.submit("erasure")]
            wait_until(lambda: len(running_tasks(fleet, ids)) == 2, 60, "tasks to start")
            name = sa.make_url(postgres_url).database
            admin = sa.create_engine(sa.make_url(postgres_url).set(database="postgres"),
                                     isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                dropped = conn.execute(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": name}).scalar()
            admin.dispose()
            assert dropped
            fleet.app.db.engine.dispose()  # our own pooled connections were dropped too
            check_completed(fleet, ids)
        finally:
            fleet.close()
