"""Fan-out and fan-in decided in the database: concurrent finishes, duplicate deliveries,
dependencies between systems, and every actor run twice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from dsar.db.models import CompletionRecord, EvidenceRow, OutboxMessage, Task
from dsar.lifecycle import TaskState
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import SYSTEMS, Fleet, several_chinooks, sqlite_table
from workflows import fanout, runner

pytestmark = pytest.mark.postgres


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap, env)
    fleet.apply_env(monkeypatch)
    yield fleet
    fleet.close()


def run_concurrently(calls: list[Any]) -> list[BaseException]:
    """Run the calls from threads released together; return what they raised."""
    barrier, errors = threading.Barrier(len(calls)), []

    def go(call: Any) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def snapshot(fleet: Fleet, request_id: str) -> dict[str, Any]:
    with fleet.app.db.session() as session:
        evidence = sorted((r.task_id, r.collection, r.action, repr(r.body)) for r in
                          session.scalars(sa.select(EvidenceRow)
                                          .where(EvidenceRow.request_id == request_id)))
        tasks = sorted((t.id, t.state, t.attempts) for t in session.scalars(
            sa.select(Task).where(Task.request_id == request_id)))
        record = session.get(CompletionRecord, request_id)
        return {"evidence": evidence, "tasks": tasks,
                "record": record.envelope if record else None,
                "outbox": session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))}


@pytest.mark.parametrize("kind", ["access", "erasure"])
def test_last_task_enqueues_assembly_exactly_once(fleet: Fleet, kind: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app = fleet.app
    request_id = fleet.submit(kind)
    runner.plan(app, request_id)
    runner.plan(app, request_id)  # a repeated plan message changes nothing
    tasks = fleet.tasks(request_id)
    assert sorted(t["system"] for t in tasks) == sorted(SYSTEMS)
    assert all(t["state"] == TaskState.READY for t in tasks)

    finishing = threading.Barrier(len(tasks), timeout=60)
    real_finish = fanout.finish

    def finish_together(*args: Any, **kwargs: Any) -> Any:
        finishing.wait()  # every task commits its result at the same moment
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(fanout, "finish", finish_together)
    # each run_task message delivered twice, all at once
    errors = run_concurrently([lambda tid=t["id"]: runner.run_task(app, tid)
                               for t in tasks for _ in range(2)])
    assert errors == []
    assert [t["state"] for t in fleet.tasks(request_id)] == [TaskState.DONE] * len(SYSTEMS)
    assert [t["attempts"] for t in fleet.tasks(request_id)] == [1] * len(SYSTEMS)
    assert fleet.outbox_count("assemble_request", request_id) == 1

    # the assembly message delivered twice, at once
    errors = run_concurrently([lambda: runner.assemble(app, request_id)] * 2)
    assert errors == []
    assert fleet.state(request_id) == "completed"
    assert fleet.record_count(request_id) == 1
    evidence = fleet.evidence(request_id)
    keys = [(t, c, a) for t, c, a, _ in evidence]
    assert len(keys) == len(set(keys))
    assert {body["system"] for *_, body in evidence} == set(SYSTEMS)

    # every actor run again: same rows, same evidence, same record
    before = snapshot(fleet, request_id)
    runner.plan(app, request_id)
    for task in tasks:
        runner.run_task(app, task["id"])
    runner.assemble(app, request_id)
    assert snapshot(fleet, request_id) == before


def test_task_waits_for_the_system_that_provides_its_key(
        postgres_url: str, tmp_path: Path, chinook_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    loyalty_url = sqlite_table(
        tmp_path / "loyalty.sqlite",
        "CREATE TABLE loyalty (id INTEGER PRIMARY KEY, customer_id INTEGER, points INTEGER)",
        [(1, 1, 10), (2, 1, 20), (3, 2, 5)], "INSERT INTO loyalty VALUES (?, ?, ?)")
    datamap = yaml.safe_load(chinook_map("sqlite"))
    datamap["systems"].append({
        "name": "loyalty", "kind": "sql", "url_env": "LOYALTY_URL",
        "tables": [{"name": "loyalty", "primary_key": ["id"],
                    "identities": {"customer_id": "customer_id"},
                    "columns": {"points": {"category": "user.behavior"}}}]})
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap,
                  {"CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path),
                   "LOYALTY_URL": loyalty_url})
    fleet.apply_env(monkeypatch)
    try:
        app = fleet.app
        request_id = fleet.submit("erasure")
        runner.plan(app, request_id)
        tasks = {t["system"]: t for t in fleet.tasks(request_id)}
        assert tasks["chinook"]["state"] == TaskState.READY
        assert tasks["loyalty"]["state"] == TaskState.WAITING
        runner.run_task(app, tasks["loyalty"]["id"])  # delivered early: refused, unchanged
        states = {t["system"]: t["state"] for t in fleet.tasks(request_id)}
        assert states["loyalty"] == TaskState.WAITING
        assert fleet.outbox_count("run_sql_task", tasks["loyalty"]["id"]) == 0

        runner.run_task(app, tasks["chinook"]["id"])
        states = {t["system"]: t["state"] for t in fleet.tasks(request_id)}
        assert states["loyalty"] == TaskState.READY
        assert fleet.outbox_count("run_sql_task", tasks["loyalty"]["id"]) == 1
        assert fleet.outbox_count("assemble_request", request_id) == 0

        runner.run_task(app, tasks["loyalty"]["id"])
        assert fleet.outbox_count("assemble_request", request_id) == 1
        runner.assemble(app, request_id)
        assert fleet.state(request_id) == "completed"
        loyalty = [b for _t, c, _a, b in fleet.evidence(request_id) if c == "loyalty"]
        assert loyalty[0]["found"] == 2 and loyalty[0]["deleted"] == 2
        engine = sa.create_engine(loyalty_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM loyalty")).scalar() == 1
        engine.dispose()
    finally:
        fleet.close()
