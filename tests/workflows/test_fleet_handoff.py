"""Handoffs: the worker that plans a request runs its first task itself, with a fallback
message that brings the task back through the broker if that worker never gets to it; the
last task, which hands its request to the completion step: completed in its own transaction
when it holds all the data, else through the step's message; and the watch's recovery of lost
work, which must not duplicate a backlog."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.bundles.aead import decrypt_stream
from dsar.bundles.store import open_store
from dsar.datamap.current import load_map
from dsar.db.models import Bundle, CompletionRecord, OutboxMessage, Request, StagedItem
from dsar.lifecycle import TaskState
from dsar.records.record import build_predicate
from tests.workflows.fleet_helpers import SYSTEMS, Fleet, several_chinooks
from workflows import assembly, fanout, runner
from workflows.relay import relay_once
from workflows.watch import recover_lost_work

pytestmark = pytest.mark.postgres
EVERY_QUEUE = frozenset({"control", "sql", "s3", "saas"})


@pytest.fixture
def fleet(postgres_url: str, tmp_path: Path, chinook_dir: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", datamap, env)
    fleet.apply_env(monkeypatch)  # leases of 3 seconds
    yield fleet
    fleet.close()


class Catch:
    """A broker that keeps what the relay publishes."""

    def __init__(self) -> None:
        self.published: list[tuple[str, tuple[Any, ...]]] = []

    def enqueue(self, message: Any, **_: Any) -> Any:
        self.published.append((message.actor_name, tuple(message.args)))
        return message


def messages(fleet: Fleet, actor: str, arg: str | int) -> list[OutboxMessage]:
    with fleet.app.db.session() as session:
        rows = session.scalars(sa.select(OutboxMessage).where(OutboxMessage.actor == actor)
                               .order_by(OutboxMessage.id)).all()
        session.expunge_all()
    return [m for m in rows if m.args == [arg]]


def later(app: Any, seconds: float) -> None:
    """Move the app's clock forward."""
    real = app.clock
    app.clock = lambda: real() + timedelta(seconds=seconds)


def test_planning_hands_one_task_to_the_worker_and_fans_out_the_rest(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    assert handoff is not None
    tasks = fleet.tasks(request_id)
    assert handoff.task_id == tasks[0]["id"]
    # claimed for this worker in the planning transaction; the others wait for the broker
    assert [(t["state"], t["attempts"]) for t in tasks] == [
        (TaskState.RUNNING, 1)] + [(TaskState.READY, 0)] * 3
    fallback, = messages(fleet, "run_sql_task", tasks[0]["id"])
    assert fallback.id == handoff.fallback_id
    assert (fallback.available_at - fallback.created_at) == fanout.lease_length(app)
    for other in tasks[1:]:
        message, = messages(fleet, "run_sql_task", other["id"])
        assert message.available_at == message.created_at

    broker = Catch()
    relay_once(app, broker)  # type: ignore[arg-type]
    tasks_published = sorted(m for m in broker.published if m[0] == "run_sql_task")
    assert tasks_published == sorted(("run_sql_task", (t["id"],)) for t in tasks[1:])

    runner.follow(app, handoff, EVERY_QUEUE)  # the handed-off task, not the last: no assembly
    assert [t["state"] for t in fleet.tasks(request_id)] == [TaskState.DONE] + [
        TaskState.READY] * 3
    assert messages(fleet, "run_sql_task", tasks[0]["id"]) == []  # the fallback withdrawn

    for other in tasks[1:]:
        runner.run_task(app, other["id"], run_here=EVERY_QUEUE)
    # four systems collected: the last task staged its data and enqueued the completion step,
    # for the broker to deliver at once
    assert fleet.state(request_id) == "in_progress"
    message, = messages(fleet, "assemble_request", request_id)
    assert message.available_at == message.created_at
    broker.published.clear()
    relay_once(app, broker)  # type: ignore[arg-type]
    assert broker.published == [("assemble_request", (request_id,))]
    runner.assemble(app, request_id)
    assert fleet.state(request_id) == "completed"
    assert fleet.record_count(request_id) == 1
    assert fleet.pending_outbox() == []  # no completion email: no mail server configured


def test_a_system_without_a_free_slot_hands_off_the_next_ready_task(fleet: Fleet) -> None:
    """The first ready task is written claimed; when its system has no free slot, it is put
    back to ready with an immediate message and the next task that gets a slot is handed
    off instead."""
    from dsar.db.models import SystemSlot
    from workflows import slots

    app = fleet.app
    datamap, _ = load_map(app)
    cap = datamap.system(SYSTEMS[0]).max_concurrent_tasks
    now = app.now()
    with app.db.session() as session:  # another request's tasks hold every slot of shop_a
        slots.ensure(session, SYSTEMS[0], cap)
        session.execute(sa.update(SystemSlot).where(SystemSlot.system == SYSTEMS[0])
                        .values(task_id=-1, lease_until=now + timedelta(hours=1)))
    request_id = fleet.submit("access")
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    tasks = {t["system"]: t for t in fleet.tasks(request_id)}
    assert handoff is not None
    assert handoff.task_id == tasks[SYSTEMS[1]]["id"]
    assert handoff.system == SYSTEMS[1]
    assert [(tasks[s]["state"], tasks[s]["attempts"]) for s in SYSTEMS] == [
        ("ready", 0), ("running", 1), ("ready", 0), ("ready", 0)]
    assert tasks[SYSTEMS[0]]["started_at"] is None
    blocked, = messages(fleet, "run_sql_task", tasks[SYSTEMS[0]]["id"])
    assert blocked.available_at == blocked.created_at
    fallback, = messages(fleet, "run_sql_task", tasks[SYSTEMS[1]]["id"])
    assert fallback.id == handoff.fallback_id
    assert fallback.available_at - fallback.created_at == fanout.lease_length(app)


def test_no_handoff_to_a_worker_that_does_not_serve_the_queue(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("erasure")
    assert runner.plan(app, request_id, run_here={"control", "saas"}) is None
    tasks = fleet.tasks(request_id)
    assert len(tasks) == len(SYSTEMS)
    for task in tasks:
        message, = messages(fleet, "run_sql_task", task["id"])
        assert message.available_at == message.created_at
    for task in tasks:  # a worker serving only sql runs the tasks and leaves the assembly
        runner.run_task(app, task["id"], run_here={"sql"})
    assert fleet.state(request_id) == "in_progress"  # an erasure, but not completed here
    message, = messages(fleet, "assemble_request", request_id)
    assert message.available_at == message.created_at


def test_a_handoff_whose_worker_died_runs_from_its_fallback(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")  # four systems collect: the assembly is a step
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    assert handoff is not None  # claimed for the worker, which died before it ran it

    broker = Catch()
    relay_once(app, broker)  # type: ignore[arg-type]
    assert ("run_sql_task", (handoff.task_id,)) not in broker.published  # not before the lease
    later(app, fanout.lease_length(app).total_seconds() + 1)
    relay_once(app, broker)  # type: ignore[arg-type]
    assert ("run_sql_task", (handoff.task_id,)) in broker.published

    runner.run_task(app, handoff.task_id)  # the fallback's delivery takes over
    task = next(t for t in fleet.tasks(request_id) if t["id"] == handoff.task_id)
    assert (task["state"], task["attempts"]) == (TaskState.DONE, 2)
    for other in [t for t in fleet.tasks(request_id) if t["state"] != TaskState.DONE]:
        runner.run_task(app, other["id"], run_here=EVERY_QUEUE)
    relay_once(app, broker)  # type: ignore[arg-type]
    assert ("assemble_request", (request_id,)) in broker.published
    runner.assemble(app, request_id)
    assert fleet.state(request_id) == "completed"
    assert fleet.record_count(request_id) == 1


def test_a_delivery_of_a_handed_off_task_waits_for_its_lease(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    assert handoff is not None
    fallback, = messages(fleet, "run_sql_task", handoff.task_id)
    # its message delivered early (say, by the watch): put back behind the lease, not run
    runner.run_task(app, handoff.task_id)
    task = next(t for t in fleet.tasks(request_id) if t["id"] == handoff.task_id)
    assert (task["state"], task["attempts"]) == (TaskState.RUNNING, 1)
    again = [m for m in messages(fleet, "run_sql_task", handoff.task_id) if m.id != fallback.id]
    assert len(again) == 1 and again[0].available_at >= fallback.available_at
    runner.run_claimed(app, handoff)  # the holder runs it
    task = next(t for t in fleet.tasks(request_id) if t["id"] == handoff.task_id)
    assert (task["state"], task["attempts"]) == (TaskState.DONE, 1)
    assert [m.id for m in messages(fleet, "run_sql_task", handoff.task_id)] == [again[0].id]


def test_a_running_handoff_keeps_its_fallback_behind_its_lease(fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("access")
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    assert handoff is not None
    claim = handoff
    later(app, 2)
    before = app.now()
    assert fanout.renew(app, claim)
    after = app.now()
    fallback, = messages(fleet, "run_sql_task", handoff.task_id)
    assert before + fanout.lease_length(app) <= fallback.available_at
    assert fallback.available_at <= after + fanout.lease_length(app)


def test_the_watch_resends_lost_work_once_and_leaves_a_backlog_alone(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet.env["DSAR_LOST_MESSAGE_SECONDS"] = "600"
    app = fleet.app
    waiting = fleet.submit("access")  # its plan message waits its turn in the broker
    planned = fleet.submit("erasure")
    handoff = runner.plan(app, planned, run_here=EVERY_QUEUE)  # this worker dies holding it
    assert handoff is not None
    taken = next(t for t in fleet.tasks(planned) if t["state"] == TaskState.READY)
    assert fanout.claim(app, taken["id"]) is not None  # and so does the one that took this
    assert recover_lost_work(app) == 0  # leases live, messages young

    later(app, fanout.lease_length(app).total_seconds() + 1)
    assert recover_lost_work(app) == 1  # the task taken from the broker, sent again ...
    assert recover_lost_work(app) == 0  # ... once: it is in the broker now
    assert len(messages(fleet, "run_sql_task", taken["id"])) == 2
    # the handed-off task has its fallback for that; a backlog is not lost work
    assert len(messages(fleet, "run_sql_task", handoff.task_id)) == 1
    assert len(messages(fleet, "plan_request", waiting)) == 1

    later(app, 601)  # whatever is still not acted on is taken for lost: sent again, once
    assert recover_lost_work(app) == len(SYSTEMS) + 1  # every task, and the waiting plan
    assert recover_lost_work(app) == 0
    assert len(messages(fleet, "plan_request", waiting)) == 2


def run_everything_here(app: Any, fleet: Fleet, request_id: str) -> None:
    """Plan and run the request as workers serving every queue do, until nothing is left."""
    runner.follow(app, runner.plan(app, request_id, run_here=EVERY_QUEUE), EVERY_QUEUE)
    for task in fleet.tasks(request_id):
        if task["state"] != TaskState.DONE:
            runner.run_task(app, task["id"], run_here=EVERY_QUEUE)


def recorded_predicate_is_that_of_the_rows(app: Any, request_id: str) -> bool:
    """Whether the stored record's predicate equals the one built afresh from the request's
    rows (the completing task built it from the tasks and evidence it held)."""
    with app.db.session() as session:
        envelope = session.get(CompletionRecord, request_id).envelope
        statement = json.loads(base64.b64decode(envelope["payload"]))
        return statement["predicate"] == build_predicate(session,
                                                         session.get(Request, request_id))


def test_the_last_erasure_task_completes_the_request_in_its_own_transaction(
        fleet: Fleet) -> None:
    app = fleet.app
    request_id = fleet.submit("erasure")
    run_everything_here(app, fleet, request_id)
    assert fleet.state(request_id) == "completed"
    assert fleet.record_count(request_id) == 1
    assert [t["state"] for t in fleet.tasks(request_id)] == [TaskState.DONE] * len(SYSTEMS)
    tasks = {t["id"] for t in fleet.tasks(request_id)}
    assert {e[0] for e in fleet.evidence(request_id)} == tasks  # every system's evidence
    assert messages(fleet, "assemble_request", request_id) == []  # no assembly step at all
    delayed = sa.select(sa.func.count()).select_from(OutboxMessage).where(
        OutboxMessage.available_at > OutboxMessage.created_at)
    assert fleet.scalar(delayed) == 0  # the handed-off task's fallback withdrawn
    assert recorded_predicate_is_that_of_the_rows(app, request_id)


def test_a_one_system_access_request_is_bundled_from_the_data_in_hand(
        one_system: Fleet) -> None:
    app = one_system.app
    request_id = one_system.submit("access")
    staged: list[str] = []

    @sa.event.listens_for(app.db.engine, "before_cursor_execute")
    def watch(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "staged_items" in statement:
            staged.append(statement.split()[0])

    run_everything_here(app, one_system, request_id)
    sa.event.remove(app.db.engine, "before_cursor_execute", watch)
    assert one_system.state(request_id) == "completed"
    assert one_system.record_count(request_id) == 1
    assert staged == []  # the collected rows never went to the state database
    assert messages(one_system, "assemble_request", request_id) == []
    with app.db.session() as session:
        bundle = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)).one()
        blob = bundle.location.rsplit("/", 1)[1]
    store = open_store(one_system.env["DSAR_EXPORT_URL"])
    data = b"".join(decrypt_stream(store.open_stream(blob), app.keys.bundle_key))
    assert data.startswith(b"PK")  # the zip, with the customer's rows in it:
    assert b"csv/" in data and len(data) == bundle.size
    assert recorded_predicate_is_that_of_the_rows(app, request_id)


def test_a_failed_completion_records_the_task_and_leaves_the_assembly_to_follow(
        one_system: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    app = one_system.app
    request_id = one_system.submit("access")
    real, calls = assembly._make_bundle, []

    def full_disk_once(app: Any, request: Any, items: Any = None, bodies: Any = None,
                       language: Any = None) -> Any:
        calls.append("in hand" if items is not None else "staged")
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(app, request, items, bodies, language)

    monkeypatch.setattr(assembly, "_make_bundle", full_disk_once)
    handoff = runner.plan(app, request_id, run_here=EVERY_QUEUE)
    assert handoff is not None
    runner.run_claimed(app, handoff, EVERY_QUEUE)
    assert one_system.state(request_id) == "in_progress"
    assert [t["state"] for t in one_system.tasks(request_id)] == [TaskState.DONE]
    assert one_system.scalar(sa.select(sa.func.count()).select_from(StagedItem)
                             .where(StagedItem.request_id == request_id)) > 0
    message, = messages(one_system, "assemble_request", request_id)  # the step follows
    assert message.available_at == message.created_at
    runner.assemble(app, request_id)
    assert one_system.state(request_id) == "completed"
    assert one_system.record_count(request_id) == 1
    assert calls == ["in hand", "staged"]
    assert one_system.scalar(sa.select(sa.func.count()).select_from(StagedItem)
                             .where(StagedItem.request_id == request_id)) == 0
