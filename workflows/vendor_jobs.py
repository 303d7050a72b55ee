"""Vendor jobs in the fleet: an erasure whose SaaS vendor answers with a job waits for it in the
state database, holding no worker (issue #20; the vendor side is :mod:`connectors.saas.jobs`).

1. **Park.** A task whose connector returned ``result.jobs`` is recorded as
   ``waiting_vendor``: one :class:`~dsar.db.models.VendorJob` row per job (its id, the
   vendor's status, when to ask again, the task's evidence so far), its slot released, in one
   transaction fenced by the claim. The request's audit trail says what it waits for.
2. **Poll.** The watch (:func:`poll_due`, every worker process) asks the vendor about jobs
   whose ``next_poll_at`` has come, each claimed by moving ``next_poll_at`` (so two processes
   never ask about the same job at once). The wait doubles from the vendor file's ``every``
   (at least ``DSAR_VENDOR_JOB_POLL_MIN_SECONDS``) up to ``DSAR_VENDOR_JOB_POLL_MAX_SECONDS``;
   a job still pending ``DSAR_VENDOR_JOB_GIVE_UP_DAYS`` after it was submitted gives up.
   When the last job of a task ends, the task is ``ready`` again and sent.
3. **Resume.** The task runs again (:func:`resume`): every job ``done``: the connector recounts
   and the evidence gets the vendor's final status and job reference; a job ``failed`` or
   given up: the task fails for good (the request needs attention, the reason names the job
   and its status) and its jobs are forgotten, so ``dsar retry`` submits new ones.

Nothing lives only in memory: a worker killed at any point leaves the rows, and the next
worker's watch carries on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from connectors.base import Connector, ConnectorResult, JobStatus, PendingJob, open_connector
from dsar.app import App
from dsar.db.models import Task, VendorJob
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence
from dsar.lifecycle import State, TaskState
from dsar.outbox import withdraw
from dsar.requests import add_event
from workflows import fanout, slots

log = logging.getLogger("dsar.worker")

PENDING, DONE, FAILED, GAVE_UP = "pending", "done", "failed", "gave_up"
BATCH = 50


class Parked(Exception):
    """The task waits for its vendor's jobs; nothing of it is lost."""


def interval(app: App, every: float, attempts: int) -> timedelta:
    """The wait before the next poll of a job asked ``attempts`` times: the vendor's
    ``every`` (at least the minimum setting), doubled per attempt, at most the maximum."""
    s = app.settings
    base = max(s.vendor_job_poll_min_seconds, every)
    return timedelta(seconds=min(s.vendor_job_poll_max_seconds, base * 2 ** min(attempts, 30)))


def park(app: App, claim: fanout.Claim, result: ConnectorResult, vendor: str) -> None:
    """Record ``result.jobs`` and put the claimed task to wait for them; raises
    :class:`Parked` once committed, or ``LeaseLost`` if this worker no longer held the task."""
    from workflows.task import LeaseLost

    now = app.now()
    evidence = [item.to_dict() for item in result.evidence]
    with app.db.session() as session:
        request = fanout.lock_request(session, claim.request_id)
        task = session.get(Task, claim.task_id, populate_existing=True)
        if task is None or task.state != TaskState.RUNNING or task.attempts != claim.attempt:
            raise LeaseLost(f"task {claim.task_id} was taken over before its vendor jobs were "
                            "recorded; the next attempt finds them done or submits them again")
        if claim.fallback_id is not None:
            withdraw(session, claim.fallback_id)
        slots.release(session, task.id)
        fanout.move_task(session, task, TaskState.WAITING_VENDOR, lease_until=None,
                         not_before=None)
        for job in result.jobs:
            session.add(VendorJob(
                task_id=task.id, request_id=request.id, system=claim.system, vendor=vendor,
                resource=job.resource, collection=job.collection, job_id=job.job_id,
                reference=job.reference, state=PENDING, last_status=job.status,
                every_seconds=job.every, attempts=0, submitted_at=now,
                next_poll_at=now + interval(app, job.every, 0), task_evidence=evidence))
        statuses = ", ".join(sorted({job.status for job in result.jobs}))
        add_event(session, request, now, "worker", "waiting_for_vendor", request.state,
                  request.state, f"{claim.system}: {len(result.jobs)} erasure job(s) at "
                  f"{vendor} ({statuses}); the request completes when the vendor reports "
                  "them finished")
    raise Parked(f"waiting for {len(result.jobs)} {vendor} job(s)")


def has_jobs(app: App, task_id: int) -> bool:
    """Whether the task submitted vendor jobs (pending or ended) that it has not settled."""
    with app.db.session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(VendorJob)
                              .where(VendorJob.task_id == task_id)) > 0


def resume(app: App, claim: fanout.Claim, connector: Connector) -> ConnectorResult:
    """The erasure's final evidence from its ended jobs (see the module docstring); raises
    :class:`Parked` if one is still pending, a permanent ``ConnectorError`` if one failed."""
    with app.db.session() as session:
        rows = list(session.scalars(sa.select(VendorJob).where(
            VendorJob.task_id == claim.task_id).order_by(VendorJob.id)))
        session.expunge_all()
    if any(row.state == PENDING for row in rows):
        _wait_again(app, claim)
    ended = [row for row in rows if row.state in (FAILED, GAVE_UP)]
    if ended:
        with app.db.session() as session:  # `dsar retry` submits new jobs
            session.execute(sa.delete(VendorJob).where(VendorJob.task_id == claim.task_id))
        row = ended[0]
        days = app.settings.vendor_job_give_up_days
        how = (f"was still {row.last_status} after {days:g} days" if row.state == GAVE_UP
               else f"ended {row.last_status}")
        raise ConnectorError(
            f"the {row.vendor} erasure job {row.reference} of {row.resource} {how}",
            f"check the job at {row.vendor}, then `dsar retry {claim.request_id}` submits a "
            "new one", system=claim.system, collection=row.collection,
            code="saas_job_gave_up" if row.state == GAVE_UP else "saas_job_failed")
    evidence = [CollectionEvidence.from_dict(dict(item)) for item in rows[0].task_evidence]
    finished = [(PendingJob(row.resource, row.collection, row.job_id, row.reference,
                            row.last_status or "", row.every_seconds),
                 JobStatus(DONE, row.last_status or "")) for row in rows]
    return connector.settle(claim.keys, evidence, finished)


def _wait_again(app: App, claim: fanout.Claim) -> None:
    """A task sent while its jobs are still pending (a duplicate message) waits again."""
    with app.db.session() as session:
        fanout.lock_request(session, claim.request_id)
        task = session.get(Task, claim.task_id, populate_existing=True)
        if task is not None and task.state == TaskState.RUNNING and \
                task.attempts == claim.attempt:
            if claim.fallback_id is not None:
                withdraw(session, claim.fallback_id)
            slots.release(session, task.id)
            fanout.move_task(session, task, TaskState.WAITING_VENDOR, lease_until=None)
    raise Parked("its vendor jobs are still pending")


# -- polling -----------------------------------------------------------------------------------

def poll_due(app: App, limit: int = BATCH) -> int:
    """Ask the vendors about up to ``limit`` jobs whose poll is due; returns how many were
    asked. Safe in every worker process at once."""
    now = app.now()
    hold = now + fanout.lease_length(app)
    with app.db.session() as session:
        due = session.execute(sa.select(VendorJob.id, VendorJob.next_poll_at).where(
            VendorJob.state == PENDING, VendorJob.next_poll_at <= now)
            .order_by(VendorJob.next_poll_at).limit(limit)).all()
    mine: list[VendorJob] = []
    for job_id, at in due:
        with app.db.session() as session:
            taken = session.execute(sa.update(VendorJob).where(
                VendorJob.id == job_id, VendorJob.state == PENDING,
                VendorJob.next_poll_at == at).values(next_poll_at=hold))
            if taken.rowcount == 1:
                row = session.get_one(VendorJob, job_id)
                session.expunge(row)
                mine.append(row)
    by_system: dict[str, list[VendorJob]] = defaultdict(list)
    for row in mine:
        by_system[row.system].append(row)
    for system, rows in by_system.items():
        for row, status, note in _ask(app, system, rows):
            _record(app, row, status, note)
    return len(mine)


def _ask(app: App, system: str, rows: list[VendorJob]
         ) -> list[tuple[VendorJob, JobStatus | None, str]]:
    """Each job's status from its vendor, or None with what went wrong (asked again later)."""
    from dsar.datamap.current import load_map
    from workflows.task import connector_context

    out: list[tuple[VendorJob, JobStatus | None, str]] = []
    try:
        datamap, _ = load_map(app)
        connector = open_connector(datamap.system(system), connector_context(app))
    except Exception as exc:
        note = exc.one_line() if hasattr(exc, "one_line") else type(exc).__name__
        return [(row, None, note) for row in rows]
    with connector:
        for row in rows:
            try:
                out.append((row, connector.poll_job(row.resource, row.job_id), ""))
            except Exception as exc:
                note = exc.one_line() if hasattr(exc, "one_line") else type(exc).__name__
                out.append((row, None, note))
    return out


def _record(app: App, job: VendorJob, status: JobStatus | None, note: str) -> None:
    """Save one poll's answer; the task is sent again when its last job ended."""
    now = app.now()
    give_up = timedelta(days=app.settings.vendor_job_give_up_days)
    with app.db.session() as session:
        request = fanout.lock_request(session, job.request_id)
        row = session.get(VendorJob, job.id, populate_existing=True)
        if row is None or row.state != PENDING:
            return
        row.attempts, row.polled_at = row.attempts + 1, now
        row.last_status = status.status if status is not None else f"poll failed: {note}"
        if status is not None and status.state in (DONE, FAILED):
            row.state, row.finished_at = status.state, now
        elif now - row.submitted_at >= give_up:
            row.state, row.finished_at = GAVE_UP, now
        else:
            row.next_poll_at = now + interval(app, row.every_seconds, row.attempts)
            return
        session.flush()
        left = session.scalar(sa.select(sa.func.count()).select_from(VendorJob).where(
            VendorJob.task_id == row.task_id, VendorJob.state == PENDING))
        if left:
            return
        task = session.get(Task, row.task_id, populate_existing=True)
        if task is None or task.state != TaskState.WAITING_VENDOR:
            return
        fanout.move_task(session, task, TaskState.READY, not_before=None)
        ended = session.execute(sa.select(VendorJob.state, VendorJob.last_status).where(
            VendorJob.task_id == row.task_id)).all()
        said = ", ".join(sorted({f"{s} ({text})" for s, text in ended}))
        add_event(session, request, now, "worker", "vendor_jobs_ended", request.state,
                  request.state, f"{row.system}: the {row.vendor} erasure job(s) ended: {said}")
        if request.state == State.IN_PROGRESS:
            fanout.enqueue_task(session, request, task, now)
    log.info("request %s: %s erasure jobs of task %s ended", job.request_id, job.vendor,
             job.task_id, extra={"request_id": job.request_id, "task_id": job.task_id})


def only_vendors_left(app: App, request_id: str) -> bool:
    """Whether every unfinished task of the request waits for its vendor's jobs (nothing a
    worker could do now): ``submit --wait`` stops waiting then."""
    with app.db.session() as session:
        states = set(session.scalars(sa.select(Task.state).where(
            Task.request_id == request_id)))
    return TaskState.WAITING_VENDOR in states and states <= {TaskState.WAITING_VENDOR,
                                                             TaskState.DONE}


def waiting(session: Any, request_id: str) -> list[dict[str, Any]]:
    """The request's vendor jobs, for ``dsar show``: system, vendor, resource, reference,
    state, the vendor's last status, when submitted and when asked next (no personal data)."""
    rows = session.scalars(sa.select(VendorJob).where(VendorJob.request_id == request_id)
                           .order_by(VendorJob.id))
    return [{"system": r.system, "vendor": r.vendor, "resource": r.resource,
             "job": r.reference, "state": r.state, "vendor_status": r.last_status,
             "submitted_at": r.submitted_at,
             "next_poll_at": r.next_poll_at if r.state == PENDING else None,
             "last_polled_at": r.polled_at, "polls": r.attempts} for r in rows]
