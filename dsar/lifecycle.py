"""The request lifecycle as an explicit state machine.

``TRANSITIONS`` is the whole of it: a change not listed there is refused with
:class:`~dsar.errors.IllegalTransition`, whose message names the states from which the change is
allowed. Every accepted change is written as an audit event by :mod:`dsar.requests`.
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
