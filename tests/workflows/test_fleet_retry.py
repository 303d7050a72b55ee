"""Transient failures are retried with jittered backoff kept in the database; permanent ones stop
the task and put the request in needs_attention; ``dsar retry`` resumes from the failed tasks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import connectors.sql
from dsar.db.models import OutboxMessage
from dsar.errors import ConnectorError
from dsar.kinds import kind_of
from dsar.lifecycle import TaskState
from tests.chinook import chinook_map
from tests.workflows.fleet_helpers import Fleet, dsar_cli, several_chinooks, wait_until
from workflows import retry, runner
from workflows.relay import relay_once
from workflows.runtime import InProcessFleet, wait_for
from workflows.task import TaskObservers

pytestmark = pytest.mark.postgres

#: system name -> exceptions its next connector calls raise, in order
FAULTS: dict[str, list[BaseException]] = {}
#: system name -> exception its next collect raises after writing everything to the sink
FAIL_AFTER_COLLECT: dict[str, BaseException] = {}


class FaultySql(connectors.sql.SqlConnector):
    """The real SQL connector, failing first as FAULTS says for its system."""

    def _maybe_fail(self) -> None:
        pending = FAULTS.get(self.system.name)
        if pending:
            raise pending.pop(0)

    def collect(self, keys: Any, sink: Any) -> Any:
        self._maybe_fail()
        result = super().collect(keys, sink)
        after = FAIL_AFTER_COLLECT.pop(self.system.name, None)
        if after is not None:
            raise after
        return result

    def erase(self, keys: Any) -> Any:
        self._maybe_fail()
        return super().erase(keys)

    def erase_counted(self, keys: Any, record_found: Any) -> Any:
        self._maybe_fail()
        return super().erase_counted(keys, record_found)


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap, env)
    fleet.apply_env(monkeypatch)
    monkeypatch.setattr(kind_of("sql"), "open_connector", FaultySql)
    FAULTS.clear()
    FAIL_AFTER_COLLECT.clear()
    yield fleet
    FAULTS.clear()
    FAIL_AFTER_COLLECT.clear()
    fleet.close()


def outbox_for(fleet: Fleet, task_id: int) -> list[OutboxMessage]:
    with fleet.app.db.session() as session:
        return [m for m in session.scalars(sa.select(OutboxMessage)
                                           .where(OutboxMessage.actor == "run_sql_task")
                                           .order_by(OutboxMessage.id)) if m.args == [task_id]]


def test_backoff_is_exponential_with_jitter() -> None:
    for attempt in range(1, 8):
        ceiling = min(retry.MAX_DELAY, retry.BASE_DELAY * 2 ** (attempt - 1))
        waits = {retry.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 40  # jittered, not one fixed value
    assert retry.backoff(30) <= retry.MAX_DELAY
    assert retry.backoff(1, retry_after=42) == 42


@pytest.mark.parametrize("retry_after", [None, 20.0])
def test_transient_failure_is_retried_later_from_the_database(
        fleet: Fleet, retry_after: float | None) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    task = next(t for t in fleet.tasks(request_id) if t["system"] == "shop_b")
    FAULTS["shop_b"] = [ConnectorError("the API said 429", system="shop_b", code="rate_limited",
                                       transient=True, retry_after=retry_after)]
    published = []

    class Catch:
        def enqueue(self, message: Any, **_: Any) -> Any:
            published.append(message.args)
            return message

    relay_once(app, Catch())  # type: ignore[arg-type]  # the plan's messages go out
    published.clear()
    before = app.now()
    runner.run_task(app, task["id"])
    after = fleet.tasks(request_id)[1]
    assert (after["state"], after["attempts"]) == (TaskState.READY, 1)
    assert fleet.state(request_id) == "in_progress"
    again = outbox_for(fleet, task["id"])[-1]
    wait = (again.available_at - before).total_seconds()
    if retry_after is None:
        assert 0.5 <= wait <= 1.5
    else:
        assert 20 <= wait <= 21
    # the wait is the database's: the relay does not publish the retry before it is due ...
    relay_once(app, Catch())  # type: ignore[arg-type]
    assert (task["id"],) not in published
    # ... and an early (duplicate) delivery does not run it either
    runner.run_task(app, task["id"])
    assert fleet.tasks(request_id)[1]["attempts"] == 1
    # once due, it runs and succeeds
    real = app.clock
    app.clock = lambda: real() + timedelta(seconds=30)
    try:
        runner.run_task(app, task["id"])
    finally:
        app.clock = real
    after = fleet.tasks(request_id)[1]
    assert (after["state"], after["attempts"]) == (TaskState.DONE, 2)


def test_connection_refused_is_transient(postgres_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    datamap = yaml.safe_load(chinook_map("postgresql", url_env="DEAD_URL"))
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap,
                  {"DEAD_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing"})
    fleet.apply_env(monkeypatch)
    try:
        request_id = fleet.submit("access")
        runner.plan(fleet.app, request_id)
        task = fleet.tasks(request_id)[0]
        runner.run_task(fleet.app, task["id"])
        with fleet.app.db.session() as session:
            row = session.get(runner.fanout.Task, task["id"])
            assert row is not None
            assert row.state == TaskState.READY and row.error_code
            assert row.not_before is not None and row.not_before > fleet.app.now()
        assert fleet.state(request_id) == "in_progress"
    finally:
        fleet.close()


def test_permanent_failure_needs_attention_and_retry_resumes(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("erasure")
    FAULTS["shop_c"] = [ConnectorError("permission denied for table Customer", system="shop_c",
                                       code="permission_denied", transient=False)]
    with InProcessFleet(app, threads=2):
        assert wait_for(app, request_id, timeout=60).state == "needs_attention"
        # let the tasks that were running finish; those not started yet are held back
        wait_until(lambda: all(t["state"] != TaskState.RUNNING for t in fleet.tasks(request_id)),
                   30, "the running tasks")
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    assert tasks["shop_c"]["state"] == TaskState.FAILED
    assert {t["state"] for s, t in tasks.items() if s != "shop_c"} <= {
        TaskState.DONE, TaskState.READY}

    shown = dsar_cli(fleet.env, "show", request_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["state"] == "needs_attention"
    reason = "shop_c erase failed (permission_denied): permission denied for table Customer"
    assert data["timeline"][-1]["event"] == "task_failed"
    assert data["timeline"][-1]["reason"].startswith(reason)
    failed = {t["system"]: t for t in data["tasks"]}["shop_c"]
    assert (failed["state"], failed["error_code"]) == (TaskState.FAILED, "permission_denied")
    text = " ".join(dsar_cli(fleet.env, "show", request_id).stdout.split())
    assert "needs attention: shop_c erase failed (permission_denied)" in text
    listed = dsar_cli(fleet.env, "list", "--state", "needs_attention", "--json")
    assert request_id in listed.stdout

    finished = {s: t for s, t in tasks.items() if t["state"] == TaskState.DONE}
    held = {s for s, t in tasks.items() if t["state"] == TaskState.READY}
    evidence_before = [e for e in fleet.evidence(request_id)
                       if e[0] in {t["id"] for t in finished.values()}]
    retried = dsar_cli(fleet.env, "retry", request_id)
    assert retried.returncode == 0, retried.stderr
    assert "1 failed task(s) restarted" in retried.stdout
    with InProcessFleet(app, threads=2):
        assert wait_for(app, request_id, timeout=60).state == "completed"
    after = {t["system"]: t for t in fleet.tasks(request_id)}
    for system, task in finished.items():
        assert after[system]["attempts"] == task["attempts"] == 1
        assert after[system]["finished_at"] == task["finished_at"]
    for system in held | {"shop_c"}:  # run once each, after the retry
        assert (after[system]["state"], after[system]["attempts"]) == (TaskState.DONE, 1)
    assert [e for e in fleet.evidence(request_id)
            if e[0] in {t["id"] for t in finished.values()}] == evidence_before
    assert fleet.record_count(request_id) == 1
    assert dsar_cli(fleet.env, "retry", request_id).returncode != 0  # completed: refused


def test_retry_replaces_what_a_failed_collect_had_staged(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collect that staged data (in flushes of its own) and then failed leaves that data
    behind; the retried attempt replaces it rather than adding to it, and the bundle holds
    each row once."""
    from dsar.db.models import StagedItem
    from workflows import staging

    app = fleet.app
    monkeypatch.setattr(staging, "FLUSH_BYTES", 1)  # every item is written as it comes
    request_id = fleet.submit("access")
    runner.plan(app, request_id)
    task = next(t for t in fleet.tasks(request_id) if t["system"] == "shop_b")
    FAIL_AFTER_COLLECT["shop_b"] = ConnectorError(
        "permission denied for table Track", system="shop_b", code="permission_denied",
        transient=False)
    runner.run_task(app, task["id"])
    assert fleet.state(request_id) == "needs_attention"
    staged_by_failed = fleet.scalar(sa.select(sa.func.count()).select_from(StagedItem)
                                    .where(StagedItem.task_id == task["id"]))
    assert staged_by_failed > 0

    assert runner.retry(app, request_id, "test") == 1
    runner.run_task(app, task["id"])
    assert {t["system"]: t["state"] for t in fleet.tasks(request_id)}["shop_b"] == TaskState.DONE
    seqs = sorted(fleet.scalar(sa.select(sa.func.array_agg(StagedItem.seq))
                               .where(StagedItem.task_id == task["id"])))
    assert seqs == list(range(staged_by_failed))  # one attempt's items, not two
    for other in fleet.tasks(request_id):
        if other["state"] != TaskState.DONE:
            runner.run_task(app, other["id"])
    runner.assemble(app, request_id)
    assert fleet.state(request_id) == "completed"
    assert fleet.record_count(request_id) == 1


def test_every_task_attempt_is_observed_with_its_outcome(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str, float]] = []
    app = fleet.app
    app.local(TaskObservers).append(lambda *args: seen.append(args))
    request_id = fleet.submit("erasure")
    runner.plan(app, request_id)
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    FAULTS["shop_a"] = [ConnectorError("the API said 503", system="shop_a", code="unavailable",
                                       transient=True)]
    FAULTS["shop_b"] = [ConnectorError("permission denied", system="shop_b",
                                       code="permission_denied", transient=False)]
    for system in ("shop_c", "shop_a", "shop_b"):
        runner.run_task(app, tasks[system]["id"])
    assert [(s, a, o) for s, a, o, _ in seen] == [
        ("shop_c", "erase", "done"), ("shop_a", "erase", "retry"), ("shop_b", "erase", "failed")]
    assert all(seconds > 0 for *_, seconds in seen)
