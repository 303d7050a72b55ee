"""Batched erasure of shared S3 files: one pass removes every pending person (issue #25).

With ``DSAR_SHARED_ERASURE_MAX_WAIT_HOURS`` above 0, the erasure task of an S3 system that has
shared collections runs in two steps (see docs/decisions/0001-batched-shared-erasure.md):

1. **Join.** The subject's own objects are erased at once. The task joins its system's
   ``open`` batch (a :class:`~dsar.db.models.SharedBatchMember` row: the request's deadline and
   the evidence so far; never keys) and waits in the database, ``ready`` with ``not_before`` at
   the batch's ``run_at``, as a retry waits. ``run_at`` is the earliest of every member's
   ``deadline - DSAR_SHARED_ERASURE_MARGIN_DAYS`` (the start of that day in the request's time
   zone, the controller's) and ``joined + max wait``; a member whose deadline is near pulls
   the whole batch forward.
2. **Pass.** The first member to run at or after ``run_at`` claims the batch (``running``, under
   a lease kept like a task's; the batch takes no new members from then on), loads every
   member's keys from its own request, runs one pass over each shared file
   (:mod:`connectors.s3_batch`), saving just before each file changes what it held for each
   member (:mod:`workflows.batch_journal`), and saves each member's evidence; the batch is then
   ``done`` and the other members' tasks are sent at once. A pass killed midway leaves every
   file old or new (conditional writes); the batch's lease runs out and the next member to run
   claims it again, and the journal keeps ``found`` true for the files already changed.
3. **Finish.** Each member's task records its own evidence (its objects, its share of the
   pass with ``batch``, ``batch_size`` and ``batch_others`` in ``counts``) and fans in as any
   task does: a request is not complete before its batch has run and recounted.

Only erasure tasks wait: access and export tasks never join a batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connectors.base import Connector, ConnectorResult
from dsar.app import App
from dsar.db.models import Request, SharedBatch, SharedBatchMember, Task
from dsar.evidence import CollectionEvidence
from dsar.lifecycle import State, TaskState
from dsar.outbox import withdraw
from workflows import fanout, slots
from workflows.batch_journal import Journal
from workflows.leases import LeaseKeeper

OPEN, RUNNING, DONE = "open", "running", "done"


class Waiting(Exception):
    """The task waits for its batch until ``until``; nothing of it is lost."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"waiting for its shared batch until {until.isoformat()}")
        self.until = until


def applies(app: App, claim: fanout.Claim, connector: Connector) -> bool:
    """Whether this task erases shared files through a batch."""
    return (claim.action == "erase" and app.settings.shared_erasure_max_wait_hours > 0
            and bool(getattr(connector.system, "shared", None))
            and hasattr(connector, "erase_shared_batch"))


def erase(app: App, claim: fanout.Claim, connector: Any) -> ConnectorResult:
    """The task's erasure through its batch: its evidence once the batch has run, or
    :class:`Waiting` until it can."""
    member = _member(app, claim.task_id)
    if member is None:
        own = connector.erase_objects(claim.keys)
        run_at = _join(app, claim, [e.to_dict() for e in own.evidence])
        member = _member(app, claim.task_id)
        assert member is not None
        if run_at > app.now():
            raise Waiting(run_at)
    if member.shared_evidence is None:
        _run_batch(app, member.batch_id, connector)
        member = _member(app, claim.task_id)
        assert member is not None and member.shared_evidence is not None
    evidence = [CollectionEvidence.from_dict(dict(e))
                for e in [*member.own_evidence, *member.shared_evidence]]
    return ConnectorResult(evidence=evidence)


def wait(app: App, claim: fanout.Claim, until: datetime) -> str:
    """Put a claimed task back to wait for its batch (as a retry waits, without counting as
    one); ``"waiting"``, or ``"lost"`` if this worker no longer held it."""
    now = app.now()
    with app.db.session() as session:
        request = fanout.lock_request(session, claim.request_id)
        task = session.get(Task, claim.task_id, populate_existing=True)
        if task is None or task.state != TaskState.RUNNING or task.attempts != claim.attempt:
            return "lost"
        if claim.fallback_id is not None:
            withdraw(session, claim.fallback_id)
        slots.release(session, task.id)
        fanout.move_task(session, task, TaskState.READY, lease_until=None, not_before=until)
        fanout.enqueue_task(session, request, task, now, max(until - now, timedelta(0)))
        return "waiting"


def _member(app: App, task_id: int) -> SharedBatchMember | None:
    with app.db.session() as session:
        member = session.get(SharedBatchMember, task_id)
        if member is not None:
            session.expunge(member)
        return member


def run_by(deadline: date, tz: str, joined: datetime, max_wait_hours: float,
           margin_days: int) -> datetime:
    """When a member needs its batch to run: ``max_wait_hours`` after it joined, or the start
    of the day ``margin_days`` before its deadline's day, that day in ``tz`` (the controller's
    time zone the deadline was computed in), whichever is first; never before it joined.
    The answer is in UTC."""
    day = deadline - timedelta(days=margin_days)
    latest = datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return max(joined, min(joined + timedelta(hours=max_wait_hours), latest))


def _join(app: App, claim: fanout.Claim, own: list[dict[str, Any]]) -> datetime:
    """Join the system's open batch (or open one) and return when the batch runs."""
    now, s = app.now(), app.settings
    with app.db.session() as session:
        request = fanout.lock_request(session, claim.request_id)
        task = session.get(Task, claim.task_id, populate_existing=True)
        if task is None or task.state != TaskState.RUNNING or task.attempts != claim.attempt:
            from workflows.task import LeaseLost

            raise LeaseLost(f"task {claim.task_id} was taken over before it joined a batch")
        existing = session.get(SharedBatchMember, claim.task_id)
        if existing is not None:
            return session.get_one(SharedBatch, existing.batch_id).run_at
        due = run_by(request.effective_due, request.timezone, now,
                     s.shared_erasure_max_wait_hours, s.shared_erasure_margin_days)
        batch = session.scalars(
            sa.select(SharedBatch).where(SharedBatch.system == claim.system,
                                         SharedBatch.state == OPEN)
            .order_by(SharedBatch.created_at).limit(1).with_for_update()).first()
        if batch is None:
            batch = SharedBatch(id=uuid.uuid4().hex[:16], system=claim.system, state=OPEN,
                                created_at=now, run_at=due, attempts=0)
            session.add(batch)
            session.flush()
        elif due < batch.run_at:
            batch.run_at = due
            # members waiting already run with it: the first to wake runs the pass
            session.execute(sa.update(Task).where(Task.id.in_(
                sa.select(SharedBatchMember.task_id).where(
                    SharedBatchMember.batch_id == batch.id))).where(
                Task.state == TaskState.READY).values(not_before=due))
        session.add(SharedBatchMember(
            task_id=claim.task_id, batch_id=batch.id, request_id=request.id,
            deadline=request.effective_due, joined_at=now, own_evidence=own))
        return batch.run_at


def _claim_batch(app: App, batch_id: str) -> int | datetime | None:
    """Take the batch for this worker: its attempt number; or when to look again (another
    worker runs it, or it is not due); None when it is done."""
    now = app.now()
    with app.db.session() as session:
        batch = session.get_one(SharedBatch, batch_id, with_for_update=True,
                                populate_existing=True)
        if batch.state == DONE:
            return None
        if batch.state == OPEN and batch.run_at > now:
            return batch.run_at
        if batch.state == RUNNING and batch.claimed_until and batch.claimed_until > now:
            return batch.claimed_until
        batch.state, batch.attempts = RUNNING, batch.attempts + 1
        batch.claimed_until = now + fanout.lease_length(app)
        batch.started_at = batch.started_at or now
        return batch.attempts


def _renew_batch(app: App, batch_id: str, attempt: int) -> bool:
    with app.db.session() as session:
        done = session.execute(sa.update(SharedBatch).where(
            SharedBatch.id == batch_id, SharedBatch.attempts == attempt,
            SharedBatch.state == RUNNING).values(
            claimed_until=app.now() + fanout.lease_length(app)))
        return done.rowcount == 1


def _run_batch(app: App, batch_id: str, connector: Any) -> None:
    """Claim the batch and run its pass, or raise :class:`Waiting` while someone else does."""
    claimed = _claim_batch(app, batch_id)
    if claimed is None:
        return
    if isinstance(claimed, datetime):
        raise Waiting(claimed)
    attempt = claimed
    interval = fanout.lease_length(app).total_seconds() / 3
    try:
        with app.local(LeaseKeeper).hold(f"shared batch {batch_id}",
                         lambda: _renew_batch(app, batch_id, attempt), interval):
            _pass(app, batch_id, attempt, connector)
    except BaseException:
        with app.db.session() as session:  # the next member to run takes it over at once
            session.execute(sa.update(SharedBatch).where(
                SharedBatch.id == batch_id, SharedBatch.attempts == attempt,
                SharedBatch.state == RUNNING).values(claimed_until=app.now()))
        raise


def _pass(app: App, batch_id: str, attempt: int, connector: Any) -> None:
    from workflows.task import _merge_precount

    with app.db.session() as session:
        members = list(session.scalars(sa.select(SharedBatchMember).where(
            SharedBatchMember.batch_id == batch_id).order_by(SharedBatchMember.task_id)))
        requests = {m.request_id: session.get_one(Request, m.request_id) for m in members}
        # a request cancelled while it waited is not erased; it has no share to record
        members = [m for m in members if requests[m.request_id].state != State.CANCELLED]
        keys = {str(m.task_id): fanout.subject_keys_of(session, app, requests[m.request_id])
                for m in members}
        # a batch an earlier version of dsar began kept whole pre-counts instead of a journal
        older = {str(m.task_id): m.precount for m in members if m.precount is not None}
    journal = Journal(app, batch_id, attempt)
    erased = connector.erase_shared_batch(keys, before_change=journal.record)
    held = journal.totals()
    size = len(erased)
    shares: dict[str, list[dict[str, Any]]] = {}
    for member, evidence in erased.items():
        before = older.get(member) or held.get(member, {})
        merged = _merge_precount(ConnectorResult(evidence=evidence), before)
        for item in merged.evidence:
            item.counts.update(batch=batch_id, batch_size=size,  # type: ignore[dict-item]
                               batch_others=size - 1)
        shares[member] = [item.to_dict() for item in merged.evidence]
    _record(app, batch_id, attempt, shares)


def _still_held(session: Any, batch_id: str, attempt: int) -> bool:
    batch = session.get_one(SharedBatch, batch_id, with_for_update=True, populate_existing=True)
    return bool(batch.state == RUNNING and batch.attempts == attempt)


def _record(app: App, batch_id: str, attempt: int,
            shares: Mapping[str, list[dict[str, Any]]]) -> None:
    """Save each member's evidence, close the batch and send the other members' tasks."""
    from workflows.task import LeaseLost

    now = app.now()
    with app.db.session() as session:
        if not _still_held(session, batch_id, attempt):
            raise LeaseLost(f"shared batch {batch_id} was taken over after its pass")
        for member, evidence in shares.items():
            session.execute(sa.update(SharedBatchMember).where(
                SharedBatchMember.task_id == int(member)).values(shared_evidence=evidence))
        session.execute(sa.update(SharedBatch).where(SharedBatch.id == batch_id).values(
            state=DONE, finished_at=now, claimed_until=None))
        waiting = session.scalars(sa.select(Task).where(
            Task.id.in_([int(m) for m in shares]), Task.state == TaskState.READY))
        for task in waiting:
            request = session.get_one(Request, task.request_id)
            task.not_before = None
            fanout.enqueue_task(session, request, task, now)
