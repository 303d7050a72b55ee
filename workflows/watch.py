"""Periodic work inside the fleet: the deadline watch and the safety net for lost messages.

Every ``interval`` seconds, in every worker process (all of it is idempotent, so running in
several processes at once is harmless):

- deadline watch: open requests due within 7 days, overdue, or whose extension notice date is
  within 3 days get an audit event (once per flag) and a log line with the request id only;
- lost work: tasks whose worker died (lease expired) are enqueued again at once; a task, plan
  or assembly whose message has waited longer than ``DSAR_LOST_MESSAGE_SECONDS`` (default 900)
  is taken for lost (a broker that lost it, say Redis without persistence) and sent again,
  once per that period. The period is long so that a backlog waiting its turn in the broker
  is not duplicated: a worker that dies is covered by the lease and the handoff fallbacks;
- vendor jobs: SaaS vendors' erasure jobs whose poll is due are asked about, and the tasks
  waiting for them are sent again once they ended (:mod:`workflows.vendor_jobs`);
- housekeeping: a ledger checkpoint when the ledger grew (hashing only the new entries),
  bundles past retention deleted (at most every ``DSAR_RETENTION_SWEEP_SECONDS``, default
  300) and orphaned ones (at most every ``DSAR_ORPHAN_SWEEP_SECONDS``, default a day), old
  outbox rows purged.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from dsar.app import App
from dsar.db.models import Request, Task
from dsar.lifecycle import PAUSED, TERMINAL, State, TaskState
from dsar.outbox import enqueue
from dsar.requests import add_event, refresh_deadlines
from workflows import fanout

log = logging.getLogger("dsar.watch")

DUE_SOON = 7
NOTICE_SOON = 3


def deadline_flags(request: Request, today: datetime) -> list[tuple[str, str]]:
    """The flags a request deserves today: (flag, reason)."""
    local_today = today.date()
    due = request.effective_due
    flags = []
    if due < local_today:
        flags.append(("overdue", f"overdue since {due.isoformat()}"))
    elif (due - local_today).days <= DUE_SOON:
        flags.append(("due_soon", f"due {due.isoformat()}"))
    if (request.extended_due is None and request.extension_notice_by is not None
            and 0 <= (request.extension_notice_by - local_today).days <= NOTICE_SOON):
        flags.append(("extension_notice_due",
                      f"an extension must be notified by {request.extension_notice_by}"))
    return flags


def watch_deadlines(app: App) -> int:
    """Raise each deadline flag once per request; returns how many were raised.

    Open requests are read without locks; only those with a flag to raise or a paused clock
    to refresh are then locked (``SKIP LOCKED``: one a worker holds is left for the next
    pass), so workers never wait for a pass over every open request."""
    now = app.now()
    open_states = [s.value for s in State if s not in TERMINAL]
    with app.db.session() as session:
        due = [request.id for request in session.scalars(
            sa.select(Request).options(_FLAG_COLUMNS).where(Request.state.in_(open_states)))
            if request.state in PAUSED or _new_flags(request, now)]
    if not due:
        return 0
    raised = 0
    with app.db.session() as session:
        rows = session.scalars(sa.select(Request).where(
            Request.id.in_(due), Request.state.in_(open_states))
            .with_for_update(skip_locked=True)).all()
        for request in rows:
            if request.state in PAUSED:
                refresh_deadlines(session, request, now)
            flags = dict(request.watch_flags or {})
            for key, flag, reason in _new_flags(request, now):
                flags[key] = now.isoformat()
                add_event(session, request, now, "deadline-watch", flag, request.state,
                          request.state, reason)
                log.warning("request %s %s", request.id, flag,
                            extra={"request_id": request.id, "flag": flag})
                raised += 1
            request.watch_flags = flags
    return raised


# What the flags are decided from: a pass over every open request loads only these columns.
_FLAG_COLUMNS = load_only(Request.id, Request.state, Request.timezone, Request.due,
                          Request.extended_due, Request.extension_notice_by,
                          Request.watch_flags, raiseload=True)


def _new_flags(request: Request, now: datetime) -> list[tuple[str, str, str]]:
    """The flags ``request`` should carry now and does not yet: ``(key, flag, reason)``."""
    local_now = now.astimezone(ZoneInfo(request.timezone))
    have = request.watch_flags or {}
    found = []
    for flag, reason in deadline_flags(request, local_now):
        key = f"{flag}:{request.effective_due.isoformat()}"
        if key not in have:
            found.append((key, flag, reason))
    return found


def lost_message_age(app: App) -> timedelta:
    """How long a message may wait before the watch takes it for lost
    (DSAR_LOST_MESSAGE_SECONDS)."""
    return timedelta(seconds=app.settings.lost_message_seconds)


def recover_lost_work(app: App) -> int:
    """Enqueue again what a dead worker or a lost message left behind; returns the count."""
    now = app.now()
    stale = now - lost_message_age(app)
    nudged = 0
    with app.db.session() as session:
        tasks = session.scalars(sa.select(Task).where(sa.or_(
            # a dead worker's task, not yet sent again since its lease ended
            sa.and_(Task.state == TaskState.RUNNING, Task.lease_until < now,
                    sa.or_(Task.enqueued_at.is_(None), Task.enqueued_at < Task.lease_until,
                           Task.enqueued_at < stale)),
            sa.and_(Task.state == TaskState.READY, Task.enqueued_at < stale),
        ))).all()
        for task in tasks:
            request = session.get(Request, task.request_id)
            if request is not None and request.state == State.IN_PROGRESS:
                fanout.enqueue_task(session, request, task, now)
                nudged += 1
        stuck = session.scalars(sa.select(Request).where(
            Request.state == State.IN_PROGRESS.value, Request.updated_at < stale,
            sa.or_(Request.plan.is_(None), Request.assembly_enqueued.is_(True)))).all()
        for request in stuck:
            actor = "plan_request" if request.plan is None else "assemble_request"
            enqueue(session, actor, [request.id], queue="control", now=now)
            request.updated_at = now
            nudged += 1
    return nudged


def poll_vendor_jobs(app: App) -> None:
    """Ask SaaS vendors about the erasure jobs whose poll is due (workflows.vendor_jobs)."""
    from workflows.vendor_jobs import poll_due

    poll_due(app)


def housekeeping(app: App) -> None:
    from workflows.housekeeping import periodic_housekeeping
    from workflows.relay import purge_sent

    periodic_housekeeping(app)
    purge_sent(app)


class Watch(threading.Thread):
    """Runs the periodic work every ``interval`` seconds until stopped."""

    def __init__(self, app: App, interval: float = 30.0) -> None:
        super().__init__(name="deadline-watch", daemon=True)
        self.app, self.interval = app, interval
        self.stopping = threading.Event()

    def tick(self) -> None:
        for step in (watch_deadlines, recover_lost_work, poll_vendor_jobs, housekeeping):
            try:
                step(self.app)
            except Exception:
                log.exception("periodic step %s failed; will try again", step.__name__)

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.tick()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


__all__ = ["Watch", "deadline_flags", "recover_lost_work", "watch_deadlines"]
