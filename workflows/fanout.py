"""A request's tasks in the state database: claims, leases, fencing, fan-out and fan-in.

A plan becomes task rows (:func:`workflows.plan.create_tasks`). A task is ``ready`` when the
tasks it needs keys from are ``done``; whoever marks a task done also readies its dependents
and, if it was the last, hands the request to the completion step
(:func:`workflows.assembly.after_last_task`), in the same transaction, under a lock on the
request row. So the request reaches that step exactly once however the finishing tasks
interleave and however often their messages are delivered.

A running task holds a lease that its worker renews; a task whose lease ran out (its worker
died) is taken over by the next delivery of its message or by the watch. ``attempts`` is the
fencing token: a worker that lost its lease cannot record a result.

The worker that plans a request may run its first ready task itself (a hand-off: the claim
:func:`workflows.plan.create_tasks` returns) instead of going through the broker. The task's
message is still written, as a fallback published one lease later; the worker withdraws it in
the transaction that records the task, or pushes it back while the task runs. Who runs a task
never decides whether it runs: the same claims, fencing and fan-in apply.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from connectors.base import ConnectorResult
from dsar.app import App
from dsar.db.models import (
    EvidenceRow,
    IdentityRow,
    OutboxMessage,
    Request,
    StagedItem,
    SubjectKey,
    Task,
)
from dsar.db.rows import (
    Read,
    deferred,
    fetch,
    insert_rows,
    read_together,
    select_all,
    update_row,
)
from dsar.lifecycle import TASK_FINISHED, State, TaskState, check_task_transition
from dsar.outbox import enqueue, postpone, withdraw
from dsar.requests import move
from workflows import slots
from workflows.retry import MAX_ATTEMPTS, Failure, backoff
from workflows.staging import Collected, insert_staged

log = logging.getLogger("dsar.worker")


def lease_length(app: App) -> timedelta:
    """How long a worker holds a task before another may take it over
    (DSAR_TASK_LEASE_SECONDS)."""
    return timedelta(seconds=app.settings.task_lease_seconds)


def priority_for(request: Request, now: datetime) -> int:
    """Broker priority from days to the deadline: the earliest deadline goes first."""
    days_left = (request.effective_due - now.date()).days
    return max(0, min(9, 9 - days_left // 4))


# Statements of the hot path, built once (construction and cache keys are per-call CPU).
_LOCK_REQUEST = (select_all(Request).where(Request.id == sa.bindparam("request_id"))
                 .with_for_update())
_LOCK_REQUEST_OF_TASK = sa.select(Request).where(
    Request.id == sa.select(Task.request_id).where(Task.id == sa.bindparam("task_id"))
    .scalar_subquery()).with_for_update()
_SUBJECT_KEYS = sa.union_all(
    sa.select(IdentityRow.name, IdentityRow.ciphertext)
    .where(IdentityRow.request_id == sa.bindparam("request_id")),
    sa.select(SubjectKey.name, SubjectKey.ciphertext)
    .where(SubjectKey.request_id == sa.bindparam("request_id")))
_TASKS_OF_REQUEST = select_all(Task).where(Task.request_id == sa.bindparam("request_id"))


def lock_request(session: Session, request_id: str) -> Request:
    """The request row, locked for the transaction (SQLite serialises writers anyway), as a
    persistent object with the row's values; NoResultFound if there is none."""
    return lock_request_with(session, request_id)[0]


def lock_request_with(session: Session, request_id: str,
                      *reads: Read) -> tuple[Request, list[list[Any]]]:
    """:func:`lock_request`, and what ``reads`` find (statements that do not need the lock's
    answer; see :func:`dsar.db.rows.read_together`), read in the same round trip on
    PostgreSQL."""
    found, *others = read_together(
        session, [(Request, _LOCK_REQUEST, {"request_id": request_id}), *reads])
    if not found:
        raise sa.exc.NoResultFound(f"no request {request_id}")
    return found[0], others


def enqueue_task(session: Session, request: Request, task: Task, now: datetime,
                 delay: timedelta = timedelta(0)) -> OutboxMessage:
    task.enqueued_at = now + delay
    return enqueue(session, task_actor(task.kind), [task.id], queue=task.kind, now=now,
                   delay=delay, priority=priority_for(request, now))


def task_actor(kind: str) -> str:
    """One task actor per connector kind, each on its own queue."""
    return f"run_{kind}_task"


def enqueue_assembly(session: Session, request: Request, now: datetime,
                     delay: timedelta = timedelta(0)) -> OutboxMessage:
    request.assembly_enqueued, request.updated_at = True, now  # the watch's clock for it
    return enqueue(session, "assemble_request", [request.id], queue="control", now=now,
                   delay=delay, priority=priority_for(request, now))


@dataclass(frozen=True)
class Claim:
    """A task this worker holds, with what the connector needs, read in the claim's
    transaction: the subject's keys (identities and keys other tasks discovered, decrypted)
    and the digest of the data map the request was planned with. ``fallback_id`` is set for
    a handed-off task: its fallback message, pushed back while the lease is renewed and
    withdrawn when the task's result or failure is recorded."""

    task_id: int
    attempt: int
    request_id: str
    system: str
    action: str
    precount: dict[str, Any] | None
    keys: dict[str, frozenset[str]]
    datamap_digest: str | None
    fallback_id: int | None = None


def claim(app: App, task_id: int) -> Claim | None:
    """Take a task for this worker if it can run now; otherwise arrange for it to run later
    (or never, if it is finished or its request was cancelled) and return None."""
    now = app.now()
    with app.db.session() as session:
        request = session.scalars(_LOCK_REQUEST_OF_TASK, {"task_id": task_id}).one_or_none()
        task = session.get(Task, task_id)  # read after the request's lock: current
        if (request is None or task is None or task.state in TASK_FINISHED
                or task.state == TaskState.WAITING_VENDOR):
            return None
        if request.state != State.IN_PROGRESS:
            if request.state == State.CANCELLED:
                move_task(session, task, TaskState.CANCELLED)
            return None
        if task.state == TaskState.RUNNING and task.lease_until and task.lease_until > now:
            enqueue_task(session, request, task, now, task.lease_until - now)
            return None
        if task.state == TaskState.WAITING and not _deps_done(session, task):
            return None
        if task.not_before and task.not_before > now:
            enqueue_task(session, request, task, now, task.not_before - now)
            return None
        lease = now + lease_length(app)
        if not slots.take(session, task.system, task.id, now, lease):
            enqueue_task(session, request, task, now, timedelta(seconds=1))
            return None
        if task.action == "collect" and task.started_at is not None:
            # what an earlier attempt staged before it was interrupted or failed
            session.execute(sa.delete(StagedItem).where(StagedItem.task_id == task.id))
        move_task(session, task, TaskState.RUNNING, lease_until=lease,
                  started_at=task.started_at or now, attempts=task.attempts + 1)
        return Claim(task.id, task.attempts, request.id, task.system, task.action,
                     task.precount, subject_keys_of(session, app, request),
                     request.datamap_digest)


def subject_keys_of(session: Session, app: App,
                    request: Request) -> dict[str, frozenset[str]]:
    """The subject's keys for the connectors: the request's identities and the keys its
    tasks discovered so far, decrypted, by key name."""
    return subject_keys_from(app, fetch(session, *subject_keys_read(
        request.id)))


def subject_keys_read(request_id: str) -> tuple[sa.Select[Any], Mapping[str, Any]]:
    """The read of a request's sealed subject keys, for :func:`subject_keys_from`."""
    return _SUBJECT_KEYS, {"request_id": request_id}


def subject_keys_from(app: App, rows: Sequence[Sequence[Any]]) -> dict[str, frozenset[str]]:
    """:func:`subject_keys_of` from the rows of :func:`subject_keys_read`."""
    keys: dict[str, set[str]] = {}
    cipher = app.keys.identity_cipher
    for name, sealed in rows:
        keys.setdefault(name, set()).add(cipher.open(sealed, name.encode()).decode())
    return {name: frozenset(values) for name, values in keys.items()}


def _deps_done(session: Session, task: Task) -> bool:
    if not task.depends_on:
        return True
    states = session.scalars(sa.select(Task.state).where(Task.id.in_(task.depends_on)))
    return all(s == TaskState.DONE for s in states)


def move_task(session: Session, task: Task, target: TaskState, **values: Any) -> None:
    """Change a task's state: the one function that does once its row exists. A change
    :data:`dsar.lifecycle.TASK_TRANSITIONS` does not list raises IllegalTransition (a fault of
    the fleet's, never of its input) before anything is written; otherwise the row takes the
    state and ``values`` at once, in the session's transaction (see
    :func:`dsar.db.rows.update_row`)."""
    check_task_transition(task.id, task.state, target)
    update_row(session, task, state=target.value, **values)


def renew(app: App, claim: Claim) -> bool:
    """Extend the lease of a running task; False if this worker no longer holds it."""
    lease = app.now() + lease_length(app)
    with app.db.session() as session:
        result = session.execute(sa.update(Task).where(
            Task.id == claim.task_id, Task.attempts == claim.attempt,
            Task.state == TaskState.RUNNING,
        ).values(lease_until=lease))
        slots.renew(session, claim.task_id, lease)
        if claim.fallback_id is not None:
            postpone(session, claim.fallback_id, lease)
        return result.rowcount == 1


def save_precount(app: App, claim: Claim, counts: dict[str, Any]) -> bool:
    """Record what an erasure found before it changed anything (see
    :func:`workflows.task._merge_precount`); False if the claim was lost meanwhile."""
    with app.db.session() as session:
        saved = session.connection().execute(sa.update(Task).where(
            Task.id == claim.task_id, Task.attempts == claim.attempt, Task.precount.is_(None),
        ).values(precount=counts))
        return saved.rowcount == 1


def finish(app: App, claim: Claim, result: ConnectorResult, staged: Collected | None = None,
           *, whole: bool = True, assemble_here: bool = False) -> str:
    """Record a task's evidence, the collected items it still holds (``staged``; ``whole``:
    they are all it collected) and the keys it discovered, ready its dependents, and fan in:
    if it was its request's last, hand the request to the completion step in the same
    transaction (:func:`workflows.assembly.after_last_task`). ``assemble_here``: the caller
    serves the control queue, so that step may complete the request in this transaction, from
    the items in hand.

    Returns ``"lost"`` (and records nothing) if the claim was lost to another worker,
    ``"completed"`` if the request was completed here, else ``"done"``. If completing here
    fails, this transaction rolls back and the task is recorded again without it."""
    try:
        return _finish(app, claim, result, staged, whole and assemble_here)
    except NotCompletedHere as failed:
        log.warning("task %s: completing request %s in the same transaction failed (%s); "
                    "recording the task, the assembly follows", claim.task_id, claim.request_id,
                    type(failed.__cause__).__name__, extra={"request_id": claim.request_id})
        return _finish(app, claim, result, staged, False)


class NotCompletedHere(Exception):
    """The completion step failed in the transaction of the request's last task; that
    transaction is rolled back (the cause is chained)."""


def _finish(app: App, claim: Claim, result: ConnectorResult, staged: Collected | None,
            may_hold: bool) -> str:
    from workflows.assembly import Held, after_last_task

    now = app.now()
    with app.db.session() as session:
        request, (siblings,) = lock_request_with(
            session, claim.request_id, (Task, _TASKS_OF_REQUEST, {"request_id": claim.request_id}))
        task = next((t for t in siblings if t.id == claim.task_id), None)
        if task is None or task.state != TaskState.RUNNING or task.attempts != claim.attempt:
            return "lost"
        others = [t for t in siblings if t is not task]
        last = not request.assembly_enqueued and all(t.state == TaskState.DONE for t in others)
        # This task holds all its request collected: the completion step may bundle it from
        # memory, in this transaction, and it is never staged.
        held = (Held(staged) if may_hold and last and request.state == State.IN_PROGRESS
                and all(t.action != "collect" for t in others) else None)
        # The writes below wait for the next read (or the block's end) to share its round
        # trip; this transaction's reads and locks come in the same order as without.
        with deferred(session):
            if claim.fallback_id is not None:
                withdraw(session, claim.fallback_id)
            if held is None and staged:
                insert_staged(session, staged.sealed(app))
            if task.attempts > 1:  # evidence an earlier attempt recorded before failing
                session.execute(sa.delete(EvidenceRow).where(EvidenceRow.task_id == task.id))
            bodies = [item.to_dict() for item in result.evidence]
            insert_rows(session, EvidenceRow.__table__, [
                {"request_id": request.id, "task_id": task.id, "system": body["system"],
                 "collection": body["collection"], "action": body["action"], "body": body,
                 "recorded_at": now} for body in bodies])
            if any(task.id in (other.depends_on or ()) for other in others):
                _save_keys(session, app, request.id, task.id, result.discovered)
            move_task(session, task, TaskState.DONE, finished_at=now, lease_until=None,
                      error_code=None, error=None)
            slots.release(session, task.id)
            if last:
                # others' evidence is only in the database
                return after_last_task(session, app, request, siblings,
                                       None if others else bodies, held)
            for other in others:
                if other.state == TaskState.WAITING and task.id in other.depends_on and \
                        _deps_done(session, other):
                    move_task(session, other, TaskState.READY)
                    enqueue_task(session, request, other, now)
            return "done"


def _save_keys(session: Session, app: App, request_id: str, task_id: int,
               discovered: Mapping[str, set[str]]) -> None:
    for name, values in discovered.items():
        known = set(session.scalars(sa.select(SubjectKey.lookup_hash).where(
            SubjectKey.request_id == request_id, SubjectKey.name == name)))
        for value in sorted(values):
            digest = app.keys.lookup_hash(name, value)
            if digest in known:
                continue
            known.add(digest)
            session.add(SubjectKey(
                request_id=request_id, task_id=task_id, name=name, lookup_hash=digest,
                ciphertext=app.keys.identity_cipher.seal(value.encode(), name.encode())))


def fail(app: App, claim: Claim, failure: Failure) -> str:
    """Record a failed attempt: schedule a retry (transient) or stop the task and flag the
    request for attention (permanent). Returns ``"retry"``, ``"failed"`` or ``"lost"``."""
    now = app.now()
    with app.db.session() as session:
        request = lock_request(session, claim.request_id)
        task = session.get(Task, claim.task_id, populate_existing=True)
        if task is None or task.state != TaskState.RUNNING or task.attempts != claim.attempt:
            return "lost"
        if claim.fallback_id is not None:  # what follows arranges the task's future
            withdraw(session, claim.fallback_id)
        slots.release(session, task.id)
        error = {"lease_until": None, "error_code": failure.code, "error": failure.reason}
        if failure.transient and task.attempts < MAX_ATTEMPTS:
            delay = timedelta(seconds=backoff(task.attempts, failure.retry_after))
            move_task(session, task, TaskState.READY, not_before=now + delay, **error)
            enqueue_task(session, request, task, now, delay)
            return "retry"
        move_task(session, task, TaskState.FAILED, finished_at=now, **error)
        if request.state == State.IN_PROGRESS:
            reason = f"{task.system} {task.action} failed ({failure.code}): {failure.reason}"
            move(session, request, now, "worker", State.NEEDS_ATTENTION, reason,
                 event="task_failed", attention_reason=reason)
        return "failed"


def flag_attention(app: App, request_id: str, reason: str, *, event: str) -> bool:
    """Move an in-progress request to ``needs_attention`` with ``reason``, written to its audit
    trail as ``event``; False, changing nothing, if it is in another state."""
    now = app.now()
    with app.db.session() as session:
        request = lock_request(session, request_id)
        if request.state != State.IN_PROGRESS:
            return False
        move(session, request, now, "worker", State.NEEDS_ATTENTION, reason, event=event,
             attention_reason=reason)
    return True


def retry_request(app: App, request_id: str, actor: str) -> int:
    """Put a request that needs attention back to work: its failed tasks run again, finished
    tasks are kept. Returns the number of tasks restarted."""
    from dsar import requests

    now = app.now()
    with app.db.session() as session:
        requests.get(session, request_id)  # NotFound with the fix for an unknown id
        request = lock_request(session, request_id)
        tasks = list(session.scalars(sa.select(Task).where(Task.request_id == request.id)))
        failed = [t for t in tasks if t.state == TaskState.FAILED]
        move(session, request, now, actor, State.IN_PROGRESS,
             f"{len(failed)} failed task(s) restarted", event="retried", attention_reason=None)
        for task in failed:
            move_task(session, task,
                      TaskState.READY if _deps_done(session, task) else TaskState.WAITING,
                      attempts=0, not_before=None, finished_at=None, error_code=None, error=None)
        # Failed tasks, and tasks readied while the request needed attention (their claims
        # were refused then), run now rather than when the watch next looks for lost work.
        for task in tasks:
            if task.state == TaskState.READY:
                enqueue_task(session, request, task, now)
        if request.plan is None:
            enqueue(session, "plan_request", [request.id], queue="control", now=now)
        elif not failed and all(t.state == TaskState.DONE for t in tasks):
            enqueue_assembly(session, request, now)
        return len(failed)
