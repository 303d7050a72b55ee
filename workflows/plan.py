"""The plan step: a request in progress becomes its task graph.

:func:`plan` turns the data map and the subject's key names into a plan (:mod:`dsar.planning`:
one task per system and action, ordered where one system's keys feed another's) and saves it
with its tasks, the ready ones enqueued (:func:`create_tasks`), in one
transaction under the request row's lock. A data map that cannot be planned puts the request
in ``needs_attention`` instead. Planning a request twice changes nothing: a planned request
already has its tasks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.app import App
from dsar.datamap.current import LoadedMap, loaded_map
from dsar.db.models import Request, Task
from dsar.db.rows import deferred, insert_rows, update_row
from dsar.errors import DataMapError
from dsar.lifecycle import State, TaskState
from dsar.outbox import enqueue_rows, message_row
from dsar.planning import Plan, plan_request
from workflows import fanout, slots

log = logging.getLogger("dsar.worker")


def plan(app: App, request_id: str, *, run_here: Collection[str] = ()) -> fanout.Claim | None:
    """Turn a request into its task graph and enqueue the tasks that can start, in one
    transaction under the request row's lock; a data map that cannot be planned puts the
    request in ``needs_attention`` instead.

    ``run_here`` names the queues the caller serves: the first ready task on one of them is
    claimed in the same transaction and its claim returned, handed off to the caller to run
    (see :func:`workflows.task.follow`)."""
    failure, handoff = None, None
    with app.db.session() as session:
        request, (sealed,) = fanout.lock_request_with(
            session, request_id, (None, *fanout.subject_keys_read(request_id)))
        # Planned already means its tasks exist too: both are written in this transaction.
        if request.state != State.IN_PROGRESS or request.plan is not None:
            return None
        try:
            loaded = loaded_map(app)
            datamap, digest = loaded.datamap, loaded.digest
            keys = fanout.subject_keys_from(app, sealed)  # identities only, yet
            names = frozenset(k for k, v in keys.items() if v)
            planned, plan_dict = plan_for(loaded, names, request.kind)
        except DataMapError as err:
            failure = f"planning failed: {err.one_line()}"
        else:
            kinds = {s.name: s.kind for s in datamap.systems}
            caps = {s.name: s.max_concurrent_tasks for s in datamap.systems}
            with deferred(session):  # the plan goes with the tasks
                update_row(session, request, plan=plan_dict, datamap_digest=digest)
                handoff = create_tasks(session, request, planned, kinds, caps, app.now(),
                                       run_here, keys, lease_for=fanout.lease_length(app))
    if failure is not None:
        if fanout.flag_attention(app, request_id, failure, event="plan_failed"):
            log.warning("request %s needs attention: its planning failed (`dsar show` says "
                        "why)", request_id, extra={"request_id": request_id})
        return None
    log.info("planned request %s: %d task(s)", request_id, len(planned.tasks),
             extra={"request_id": request_id})
    return handoff


def plan_for(loaded: LoadedMap, names: frozenset[str],
             kind: str) -> tuple[Plan, dict[str, Any]]:
    """The plan and its JSON form for a request of ``kind`` whose subject is known by the key
    ``names``, made once per data map version, names and kind."""
    key = (names, kind)
    cached = loaded.plans.get(key)
    if cached is None:
        planned = plan_request(loaded.datamap, names, kind)
        if len(loaded.plans) >= 256:  # key-name subsets are few; bound them all the same
            loaded.plans.clear()
        cached = loaded.plans[key] = (planned, json.dumps(planned.to_dict()))
    return cached[0], json.loads(cached[1])  # a fresh dict for each request


def create_tasks(session: Session, request: Request, plan: Plan, kinds: Mapping[str, str],
                 caps: Mapping[str, int], now: datetime, run_here: Collection[str] = (),
                 keys: Mapping[str, frozenset[str]] | None = None, *,
                 lease_for: timedelta) -> fanout.Claim | None:
    """Save the plan's task graph and enqueue what can start now. Call once per request, in
    the transaction that stores its plan (see :func:`plan`).

    ``run_here`` names the queues of the calling worker: the first ready task on one of them
    that can take a slot of its system is claimed here and its claim returned, handed off
    to the caller (its message becomes a fallback); the others are enqueued. ``keys`` are the
    subject's keys (its identities), which the handed-off claim carries; ``lease_for`` is how
    long a claim holds (:func:`workflows.fanout.lease_length`)."""
    if not plan.tasks:
        fanout.enqueue_assembly(session, request, now)
        return None
    for system in dict.fromkeys(p.system for p in plan.tasks):
        slots.ensure(session, system, caps[system])
    lease = now + lease_for
    ready = [p for p in plan.tasks if not p.depends_on]
    candidates = [p for p in ready if kinds[p.system] in run_here] if keys is not None else []
    # Written as claimed by this worker if the first candidate gets a slot (the usual case),
    # put back to ready below if it does not.
    first = candidates[0] if candidates else None
    rows = [{"request_id": request.id, "system": p.system, "kind": kinds[p.system],
             "action": p.action,
             "state": TaskState.WAITING if p.depends_on else TaskState.READY,
             "depends_on": [], "attempts": 0, "enqueued_at": None if p.depends_on else now,
             "lease_until": None, "started_at": None} for p in plan.tasks]
    for planned, row in zip(plan.tasks, rows, strict=True):
        if planned is first:
            row.update(_claimed_values(now, lease))
    ids = dict(zip([p.id for p in plan.tasks],
                   insert_rows(session, Task.__table__, rows, returning_id=True), strict=True))
    dependents = [{"task_id": ids[p.id], "depends_on": [ids[d] for d in p.depends_on if d in ids]}
                  for p in plan.tasks if p.depends_on]
    conn = session.connection()
    if dependents:
        conn.execute(_SET_DEPENDS_ON, dependents)
    chosen = next((p for p in candidates
                   if slots.take(session, p.system, ids[p.id], now, lease)), None)
    if first is not None and chosen is not first:
        conn.execute(_SET_CLAIM, {"task_id": ids[first.id], **_unclaimed_values(now)})
        if chosen is not None:
            conn.execute(_SET_CLAIM, {"task_id": ids[chosen.id], **_claimed_values(now, lease)})
    priority = fanout.priority_for(request, now)
    messages = [message_row(fanout.task_actor(kinds[p.system]), [ids[p.id]],
                            queue=kinds[p.system], now=now,
                            delay=lease_for if p is chosen else timedelta(0), priority=priority)
                for p in ready]
    message_ids = dict(zip([p.id for p in ready], enqueue_rows(session, messages), strict=True))
    if chosen is None or keys is None:
        return None
    task_id, fallback_id = ids[chosen.id], message_ids[chosen.id]
    return fanout.Claim(task_id, 1, request.id, chosen.system, chosen.action, None,
                        dict(keys), request.datamap_digest, fallback_id)


def _claimed_values(now: datetime, lease: datetime) -> dict[str, Any]:
    return {"state": TaskState.RUNNING, "attempts": 1, "lease_until": lease, "started_at": now,
            "enqueued_at": lease}


def _unclaimed_values(now: datetime) -> dict[str, Any]:
    return {"state": TaskState.READY, "attempts": 0, "lease_until": None, "started_at": None,
            "enqueued_at": now}


_SET_DEPENDS_ON = (sa.update(Task).where(Task.id == sa.bindparam("task_id"))
                   .values(depends_on=sa.bindparam("depends_on")))
_SET_CLAIM = (sa.update(Task).where(Task.id == sa.bindparam("task_id"))
              .values({name: sa.bindparam(name) for name in _unclaimed_values(datetime.min)}))
