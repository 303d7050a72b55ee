"""The lifecycles of a request and of its tasks, as explicit state machines.

``TRANSITIONS`` is the whole of a request's: a change not listed there is refused with
:class:`~dsar.errors.IllegalTransition`, whose message names the states from which the change is
allowed. One function makes every change, :func:`dsar.requests.move`, which checks it here and
writes it with its audit event.

``TASK_TRANSITIONS`` is a task's (one task per system and action of a request's plan, run by
the fleet); :func:`workflows.fanout.move_task` makes every change once the transaction that
creates the task's row (and may claim it for the planning worker) has committed. States are
stored as their string values.
"""

from __future__ import annotations

from enum import StrEnum

from dsar.errors import IllegalTransition


class State(StrEnum):
    RECEIVED = "received"
    AWAITING_IDENTITY = "awaiting_identity"
    AWAITING_CLARIFICATION = "awaiting_clarification"
    VERIFIED = "verified"
    AWAITING_APPROVAL = "awaiting_approval"
    IN_PROGRESS = "in_progress"
    NEEDS_ATTENTION = "needs_attention"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


S = State
TERMINAL = frozenset({S.COMPLETED, S.REJECTED, S.CANCELLED})
#: States in which the legal clock may be suspended, where the regime allows it.
PAUSED = frozenset({S.AWAITING_IDENTITY, S.AWAITING_CLARIFICATION})
#: States in which a request is still open before work starts (a pause can be opened).
PAUSABLE = frozenset({S.RECEIVED, S.AWAITING_IDENTITY, S.VERIFIED, S.AWAITING_APPROVAL})

TRANSITIONS: dict[State, frozenset[State]] = {
    S.RECEIVED: frozenset({S.AWAITING_IDENTITY, S.AWAITING_CLARIFICATION, S.VERIFIED,
                           S.REJECTED, S.CANCELLED}),
    S.AWAITING_IDENTITY: frozenset({S.VERIFIED, S.AWAITING_CLARIFICATION, S.REJECTED,
                                    S.CANCELLED}),
    S.AWAITING_CLARIFICATION: frozenset({S.RECEIVED, S.AWAITING_IDENTITY, S.VERIFIED,
                                         S.AWAITING_APPROVAL, S.REJECTED, S.CANCELLED}),
    S.VERIFIED: frozenset({S.AWAITING_APPROVAL, S.IN_PROGRESS, S.AWAITING_CLARIFICATION,
                           S.REJECTED, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.IN_PROGRESS, S.AWAITING_CLARIFICATION, S.REJECTED,
                                    S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.NEEDS_ATTENTION, S.CANCELLED}),
    S.NEEDS_ATTENTION: frozenset({S.IN_PROGRESS, S.REJECTED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
}

_VERBS = {
    S.VERIFIED: "confirm the identity of",
    S.IN_PROGRESS: "start work on",
    S.AWAITING_CLARIFICATION: "pause",
    S.REJECTED: "reject",
    S.CANCELLED: "cancel",
    S.COMPLETED: "complete",
    S.AWAITING_APPROVAL: "send for approval",
}


def check_transition(request_id: str, current: State | str, target: State | str) -> None:
    """Raise IllegalTransition unless ``current -> target`` is allowed."""
    current, target = State(current), State(target)
    if target in TRANSITIONS[current]:
        return
    verb = _VERBS.get(target, f"move to {target.value}")
    if current in TERMINAL:
        fix = f"it is {current.value}, which is final; submit a new request if needed"
    else:
        sources = sorted(s.value for s, targets in TRANSITIONS.items() if target in targets)
        fix = f"that is possible only from: {', '.join(sources)}; see `dsar show {request_id}`"
    raise IllegalTransition(f"cannot {verb} request {request_id} while it is {current.value}", fix)


class TaskState(StrEnum):
    """Where a task is. ``waiting``: for the tasks whose discovered keys it needs; ``ready``:
    to be claimed (or, with ``not_before`` set, after a retry's back-off); ``running``: claimed
    by a worker under a lease; ``waiting_vendor``: an erasure waiting for its SaaS vendor's
    jobs, holding no worker; ``done``, ``failed``, ``cancelled``: finished."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    WAITING_VENDOR = "waiting_vendor"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


T = TaskState
#: States of a task that will not run again (unless ``dsar retry`` restarts a failed one).
TASK_FINISHED = frozenset({T.DONE, T.FAILED, T.CANCELLED})

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    T.WAITING: frozenset({T.READY, T.RUNNING, T.CANCELLED}),  # claimed once its keys are in
    T.READY: frozenset({T.RUNNING, T.CANCELLED}),
    # running -> running: a lease that ran out (its worker died) is taken over
    T.RUNNING: frozenset({T.RUNNING, T.READY, T.WAITING_VENDOR, T.DONE, T.FAILED,
                          T.CANCELLED}),
    T.WAITING_VENDOR: frozenset({T.READY, T.CANCELLED}),
    T.DONE: frozenset(),
    T.FAILED: frozenset({T.READY, T.WAITING}),  # `dsar retry`
    T.CANCELLED: frozenset(),
}


def check_task_transition(task_id: int, current: TaskState | str,
                          target: TaskState | str) -> None:
    """Raise IllegalTransition unless a task may go from ``current`` to ``target``."""
    current, target = TaskState(current), TaskState(target)
    if target in TASK_TRANSITIONS[current]:
        return
    sources = sorted(s.value for s, targets in TASK_TRANSITIONS.items() if target in targets)
    raise IllegalTransition(
        f"task {task_id} cannot become {target.value} while it is {current.value}",
        f"a task becomes {target.value} only from: {', '.join(sources) or 'nowhere'}")
