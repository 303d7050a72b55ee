"""Which failures are worth retrying, and how long to wait.

Transient: connection refused or dropped, timeouts, deadlocks and serialization failures, HTTP
429 and 5xx (honouring Retry-After), S3 throttling. Everything else is permanent and puts the
request in ``needs attention`` with the reason. Waits grow exponentially with full jitter and
are kept in the database (the outbox's ``available_at``), never held by the broker.

A request whose data map changed after it was planned cannot be retried as planned
(:func:`refuse_if_the_map_changed` says so before anything changes); :func:`replan` plans it
again from the current map (``dsar retry ID --replan``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dsar.app import App
from dsar.db.models import OutboxMessage
from dsar.errors import ConnectorError, DataMapError, DsarError
from dsar.outbox import withdraw

MAX_ATTEMPTS = 8
BASE_DELAY = 1.0
MAX_DELAY = 15 * 60.0


@dataclass(frozen=True)
class Failure:
    """A classified failure: ``code`` for evidence and metrics, ``reason`` for people."""

    code: str
    reason: str
    transient: bool
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure:
    """Turn an exception from a connector call into a Failure. Never includes row data."""
    if isinstance(exc, ConnectorError):
        return Failure(exc.code, exc.one_line(), exc.transient, exc.retry_after)
    if isinstance(exc, DsarError):
        return Failure(type(exc).__name__.lower(), exc.one_line(), False)
    if isinstance(exc, OperationalError | PoolTimeout):
        return Failure("database_unavailable", "a database connection failed or timed out",
                       True)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Failure("database_connection_lost", "a database connection was lost", True)
    if isinstance(exc, ConnectionError | TimeoutError):
        return Failure("connection_error", f"{type(exc).__name__}", True)
    return Failure("internal_error", f"unexpected {type(exc).__name__}; see the worker log",
                   False)


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` >= 1): full jitter."""
    if retry_after is not None:
        return min(MAX_DELAY, max(retry_after, 0.0))
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


_UNSENT_ASSEMBLIES = sa.select(OutboxMessage.id, OutboxMessage.args).where(
    OutboxMessage.sent_at.is_(None), OutboxMessage.actor == "assemble_request")


@dataclass(frozen=True)
class Replanned:
    """What :func:`replan` did: finished tasks kept (their plan unchanged), tasks planned anew."""

    kept: tuple[str, ...]
    planned: tuple[str, ...]
    digest: str


def refuse_if_the_map_changed(app: App, request_id: str) -> None:
    """DataMapError naming both ways on when ``request_id`` needs attention and was planned on
    another version of the data map than the current one: a plain retry would fail again at
    once. Nothing is changed; with no readable map the retried tasks say what is wrong."""
    from dsar import requests
    from dsar.datamap.current import load_map

    request = requests.load(app, request_id)
    if not request.datamap_digest or request.state != "needs_attention":
        return
    try:
        _, digest = load_map(app)
    except DsarError:
        return
    if digest != request.datamap_digest:
        raise DataMapError(
            f"the data map changed since request {request_id} was planned",
            f"restore it and retry, or plan the request again from the current map: "
            f"`dsar retry {request_id} --replan`")


def _system_plans(plan: Mapping[str, Any] | None) -> dict[str, str]:
    """Per ``system:action`` task of a stored plan, what it does (its steps, key needs and
    collections; not the global step order, which other systems shift), as comparable text."""
    if not plan:
        return {}
    out = {}
    for task in plan.get("tasks", []):
        steps = [{k: v for k, v in step.items() if k != "order"}
                 for step in plan.get("steps", []) if step["system"] == task["system"]]
        out[task["id"]] = json.dumps([steps, task["needs"], task["collections"]],
                                     sort_keys=True)
    return out


def replan(app: App, request_id: str, actor: str) -> Replanned:
    """Plan a request that needs attention again from the current data map, in one transaction
    under its lock, and put it back to work; recorded in its audit trail as ``replanned``.

    A finished task whose part of the plan is unchanged is kept with its evidence (what it
    erased stays proven); every other task of the old plan is dropped with what it left (its
    evidence, staged data, discovered keys) and the new plan's tasks are created and queued.
    Refused, changing nothing, while a task still runs, when the current map cannot plan the
    request, or when a finished erasure task would have to run again (its evidence is the
    only proof of what it erased); the error names the fix."""
    from dsar import requests
    from dsar.datamap.current import loaded_map
    from dsar.db.models import EvidenceRow, StagedItem, SubjectKey, Task
    from dsar.errors import IllegalTransition
    from dsar.lifecycle import State, TaskState, check_transition
    from workflows import fanout, slots
    from workflows.plan import create_tasks, plan_for

    now = app.now()
    with app.db.session() as session:
        requests.get(session, request_id)  # NotFound with the fix for an unknown id
        request = fanout.lock_request(session, request_id)
        check_transition(request.id, request.state, State.IN_PROGRESS)
        tasks = list(session.scalars(sa.select(Task).where(Task.request_id == request.id)))
        running = [f"{t.system}:{t.action}" for t in tasks if t.state == TaskState.RUNNING]
        if running:
            raise IllegalTransition(
                f"request {request.id} still has running task(s): {', '.join(running)}",
                "wait until they finish (`dsar show ID`), then replan")
        loaded = loaded_map(app)
        datamap, digest = loaded.datamap, loaded.digest
        names = frozenset(row.name for row in request.identities)  # as planning had them
        planned, plan_dict = plan_for(loaded, names, request.kind)
        before, after = _system_plans(request.plan), _system_plans(plan_dict)
        kept = {f"{t.system}:{t.action}": t for t in tasks if t.state == TaskState.DONE
                and f"{t.system}:{t.action}" in after
                and before.get(f"{t.system}:{t.action}") == after[f"{t.system}:{t.action}"]}
        # A kept task's discovered keys were saved only if a task of the old plan waited for
        # them: one that only a new task waits for runs again, so that its keys are saved.
        waited_for = {d for t in (request.plan or {}).get("tasks", []) for d in t["depends_on"]}
        while stale := [d for t in planned.tasks if t.id not in kept for d in t.depends_on
                        if d in kept and d not in waited_for]:
            for name in stale:
                kept.pop(name, None)
        lost = sorted(f"{t.system}:{t.action}" for t in tasks if t.state == TaskState.DONE
                      and t.action == "erase" and f"{t.system}:{t.action}" not in kept)
        if lost:  # running it again would find nothing left: its evidence is the proof
            raise IllegalTransition(
                f"request {request.id}: {', '.join(lost)} erased under the old plan and the "
                f"current data map changes that part of it; planning again would lose the "
                f"proof of that erasure",
                f"restore the data map and `dsar retry {request.id}`, or cancel the request "
                f"and submit a new one")
        dropped = [t.id for t in tasks if f"{t.system}:{t.action}" not in kept]
        if dropped:
            for model in (EvidenceRow, StagedItem, SubjectKey):
                session.execute(sa.delete(model).where(model.task_id.in_(dropped)))
            for task_id in dropped:
                slots.release(session, task_id)
            session.execute(sa.delete(Task).where(Task.id.in_(dropped)))
        remaining = tuple(
            dataclasses.replace(t, depends_on=tuple(d for d in t.depends_on if d not in kept))
            for t in planned.tasks if t.id not in kept)
        reason = (f"planned again from data map {digest[:19]}: {len(kept)} finished task(s) "
                  f"kept, {len(remaining)} planned")
        # The new tasks' last one enqueues the assembly (with none left, create_tasks does):
        # an assembly enqueued for the old plan must neither stop it nor run before it.
        for message_id, args in session.execute(_UNSENT_ASSEMBLIES):
            if args == [request.id]:
                withdraw(session, message_id)
        requests.move(session, request, now, actor, State.IN_PROGRESS, reason, event="replanned",
                      attention_reason=None, plan=plan_dict, datamap_digest=digest,
                      assembly_enqueued=False)
        kinds = {s.name: s.kind for s in datamap.systems}
        caps = {s.name: s.max_concurrent_tasks for s in datamap.systems}
        create_tasks(session, request, dataclasses.replace(planned, tasks=remaining), kinds,
                     caps, now, lease_for=fanout.lease_length(app))
        return Replanned(tuple(kept), tuple(t.id for t in remaining), digest)
