"""The request lifecycle: the state machine, its audit trail, and the deadlines it keeps; and
the task lifecycle's state machine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsar import requests
from dsar.app import App
from dsar.db.models import OutboxMessage
from dsar.errors import DsarError, IllegalTransition, InvalidInput
from dsar.lifecycle import (
    PAUSABLE,
    PAUSED,
    TASK_FINISHED,
    TASK_TRANSITIONS,
    TERMINAL,
    TRANSITIONS,
    State,
    TaskState,
    check_task_transition,
    check_transition,
)

pytest.register_assert_rewrite("tests.state")
from tests.state import Backend, Clock, set_state, submit  # noqa: E402

pytest_plugins = ["tests.state"]


def at(day: int, month: int = 9, hour: int = 9) -> datetime:
    return datetime(2025, month, day, hour, 0, tzinfo=UTC)


def timeline(app: App, request_id: str) -> list[tuple]:
    return [(e.id, e.at, e.actor, e.event, e.from_state, e.to_state, e.reason)
            for e in requests.load(app, request_id).events]


# -- the state machine -------------------------------------------------------------------------


def test_transitions_cover_every_state() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(targets <= set(State) for targets in TRANSITIONS.values())
    assert {s for s in State if not TRANSITIONS[s]} == TERMINAL
    assert {State.COMPLETED, State.REJECTED, State.CANCELLED} == TERMINAL
    assert set(State) > PAUSED | PAUSABLE and PAUSABLE.isdisjoint(TERMINAL)
    assert all(s not in TRANSITIONS[s] for s in State)
    # every non-terminal state can still be closed
    assert all(State.CANCELLED in TRANSITIONS[s] for s in State if s not in TERMINAL)


@pytest.mark.parametrize("current", list(State))
@pytest.mark.parametrize("target", list(State))
def test_check_transition(current: State, target: State) -> None:
    if target in TRANSITIONS[current]:
        check_transition("dsr_x", current, target)
        return
    with pytest.raises(IllegalTransition) as err:
        check_transition("dsr_x", current.value, target.value)
    assert err.value.problem.startswith("cannot ")
    assert f"request dsr_x while it is {current.value}" in err.value.problem
    if current in TERMINAL:
        assert "which is final" in (err.value.fix or "")
    else:
        assert "possible only from" in (err.value.fix or "")
    assert err.value.exit_code == 4


@settings(max_examples=200)
@given(st.lists(st.sampled_from(list(State)), max_size=30))
def test_random_transition_sequences_stay_in_the_machine(targets: list[State]) -> None:
    state = State.RECEIVED
    for target in targets:
        allowed = target in TRANSITIONS[state]
        try:
            check_transition("dsr_x", state, target)
        except IllegalTransition:
            assert not allowed
            continue
        assert allowed
        assert state not in TERMINAL
        state = target
        assert state in TRANSITIONS
    if state in TERMINAL:
        for target in State:
            with pytest.raises(IllegalTransition):
                check_transition("dsr_x", state, target)


def test_task_transitions_cover_every_task_state() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskState)
    assert all(targets <= set(TaskState) for targets in TASK_TRANSITIONS.values())
    # finished tasks stay finished, but a failed one may be retried
    assert {s for s in TaskState if not TASK_TRANSITIONS[s]} == TASK_FINISHED - {TaskState.FAILED}
    assert TASK_TRANSITIONS[TaskState.FAILED] == {TaskState.READY, TaskState.WAITING}
    # every unfinished task can be cancelled with its request, and only a claim makes it run
    assert all(TaskState.CANCELLED in TASK_TRANSITIONS[s] for s in TaskState
               if s not in TASK_FINISHED)
    assert {s for s in TaskState if TaskState.RUNNING in TASK_TRANSITIONS[s]} == {
        TaskState.WAITING, TaskState.READY, TaskState.RUNNING}
    assert [s.value for s in TaskState] == [
        "waiting", "ready", "running", "waiting_vendor", "done", "failed", "cancelled"]


@pytest.mark.parametrize("current", list(TaskState))
@pytest.mark.parametrize("target", list(TaskState))
def test_check_task_transition(current: TaskState, target: TaskState) -> None:
    if target in TASK_TRANSITIONS[current]:
        check_task_transition(7, current.value, target.value)
        return
    with pytest.raises(IllegalTransition) as err:
        check_task_transition(7, current, target)
    assert err.value.problem == (
        f"task 7 cannot become {target.value} while it is {current.value}")
    sources = [s.value for s in TaskState if target in TASK_TRANSITIONS[s]]
    assert all(source in (err.value.fix or "") for source in sources)


# -- random operations on a real request -------------------------------------------------------

OPERATIONS = {
    "confirm": lambda app, rid: requests.confirm_identity(app, rid, "email-link", "op"),
    "approve": lambda app, rid: requests.approve(app, rid, "op"),
    "pause": lambda app, rid: requests.pause(app, rid, "which account?", "op"),
    "resume": lambda app, rid: requests.resume(app, rid, "op"),
    "extend": lambda app, rid: requests.extend(app, rid, "complex", "op"),
    "cancel": lambda app, rid: requests.cancel(app, rid, "withdrawn", "op"),
    "reject": lambda app, rid: requests.reject(app, rid, "unfounded", "op"),
    "complete": lambda app, rid: set_state(app, rid, "completed")
    if requests.load(app, rid).state == "in_progress" else None,
    "attention": lambda app, rid: set_state(app, rid, "needs_attention")
    if requests.load(app, rid).state == "in_progress" else None,
}


@pytest.fixture(scope="module")
def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backend, App, Clock]:
    data = tmp_path_factory.mktemp("lifecycle")
    backend = Backend("sqlite", f"sqlite:///{data / 'state.sqlite3'}", data,
                      {"DSAR_DATA_DIR": str(data), "DSAR_APPROVAL_REQUIRED": "erasure"})
    clock = Clock()
    app = backend.make_app(clock)
    app.db.upgrade()
    return backend, app, clock


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["access", "erasure"]),
       regime=st.sampled_from(["gdpr", "uk_gdpr", "ccpa", "lgpd"]),
       verified=st.booleans(),
       ops=st.lists(st.tuples(st.sampled_from(sorted(OPERATIONS)), st.integers(0, 20)),
                    max_size=10))
def test_random_operations_follow_the_machine(
        sqlite_app: tuple[Backend, App, Clock], kind: str, regime: str, verified: bool,
        ops: list[tuple[str, int]]) -> None:
    backend, app, clock = sqlite_app
    clock.set(at(1))
    rid = submit(app, kind, regime=regime, identity_method="id-card" if verified else None).id
    for name, days in ops:
        clock.advance(days=days)
        before_state = requests.load(app, rid).state
        before_rows = backend.row_counts()
        try:
            OPERATIONS[name](app, rid)
        except DsarError:
            assert backend.row_counts() == before_rows, f"{name} failed but wrote"
            assert requests.load(app, rid).state == before_state
            continue
        state = requests.load(app, rid).state
        assert state in {s.value for s in State}
        if before_state in TERMINAL and name not in ("complete", "attention"):
            pytest.fail(f"{name} accepted on a {before_state} request")
    request = requests.load(app, rid)
    moves = [(e.from_state, e.to_state) for e in request.events if e.from_state != e.to_state]
    assert moves[0] == (None, "received")
    for (_, previous), (source, target) in pairwise(moves):
        assert source == previous, "events do not chain"
        assert State(target) in TRANSITIONS[State(source)]
    assert request.state == moves[-1][1]
    assert [e.id for e in request.events] == sorted(e.id for e in request.events)
    assert [e.at for e in request.events] == sorted(e.at for e in request.events)
    if request.state in TERMINAL:
        for name, op in OPERATIONS.items():
            if name in ("complete", "attention"):
                continue
            with pytest.raises(IllegalTransition):
                op(app, rid)


# -- the audit trail ---------------------------------------------------------------------------


def test_full_timeline(backend: Backend, clock: Clock) -> None:
    app = backend.make_app(clock, DSAR_APPROVAL_REQUIRED="erasure")
    clock.set(at(1))
    rid = submit(app, "erasure", by="alice").id
    snapshots = [timeline(app, rid)]

    def step(day: int, action: object) -> None:
        clock.set(at(day))
        action()
        now = timeline(app, rid)
        assert now[:len(snapshots[-1])] == snapshots[-1], "an earlier event changed"
        assert len(now) > len(snapshots[-1])
        snapshots.append(now)

    step(3, lambda: requests.confirm_identity(app, rid, "email-link", "bob"))
    step(4, lambda: requests.pause(app, rid, "which accounts?", "bob"))
    step(8, lambda: requests.resume(app, rid, "carol", "subject answered"))
    step(9, lambda: requests.extend(app, rid, "complex", "carol"))
    step(10, lambda: requests.approve(app, rid, "dave"))
    step(11, lambda: requests.cancel(app, rid, "withdrawn", "erin"))

    assert [row[1:] for row in snapshots[-1]] == [
        (at(1), "alice", "submitted", None, "received", None),
        (at(1), "alice", "identity_requested", "received", "awaiting_identity",
         "identity verification requested"),
        (at(3), "bob", "identity_verified", "awaiting_identity", "verified", "method: email-link"),
        (at(3), "bob", "approval_requested", "verified", "awaiting_approval",
         "erasure requests need approval (DSAR_APPROVAL_REQUIRED)"),
        (at(4), "bob", "paused", "awaiting_approval", "awaiting_clarification",
         "which accounts?"),
        (at(8), "carol", "resumed", "awaiting_clarification", "awaiting_approval",
         "subject answered"),
        (at(9), "carol", "extended", "awaiting_approval", "awaiting_approval", "complex"),
        (at(10), "dave", "approved", "awaiting_approval", "in_progress", None),
        (at(11), "erin", "cancelled", "in_progress", "cancelled", "withdrawn"),
    ]
    r = requests.load(app, rid)
    assert r.state == "cancelled"
    assert (r.identity_method, r.identity_verified_at) == ("email-link", at(3))
    assert (r.approved_by, r.approved_at) == ("dave", at(10))
    assert (r.extension_reason, r.extended_at) == ("complex", at(9))
    assert r.closing_reason == "withdrawn"
    assert [(p.started_at, p.ended_at, p.reason) for p in r.pauses] == [
        (at(1), at(3), "awaiting identity verification"),
        (at(4), at(8), "which accounts?")]
    # GDPR: 2 days waiting for identity + 4 days of clarification = 6 paused days
    assert r.due == date(2025, 10, 7)
    assert r.extended_due == date(2025, 12, 8)  # 12-07 is a Sunday
    with app.db.session() as session:  # the plan; no notice, as no mail server is configured
        assert session.scalars(sa.select(OutboxMessage.args)).all() == [[rid]]


def test_reveal_is_audited(app: App, clock: Clock) -> None:
    rid = submit(app).id
    clock.advance(hours=1)
    requests.record_reveal(app, rid, "auditor")
    last = requests.load(app, rid).events[-1]
    assert (last.event, last.actor, last.at) == ("identities_revealed", "auditor", clock.at)
    assert last.from_state == last.to_state == "awaiting_identity"


# -- identity verification ---------------------------------------------------------------------


def test_uk_gdpr_clock_starts_at_identity(app: App, clock: Clock) -> None:
    clock.set(at(1))
    rid = submit(app, regime="uk_gdpr", received_at=at(1)).id
    assert requests.load(app, rid).due == date(2025, 10, 1)
    clock.set(at(10))
    r = requests.confirm_identity(app, rid, "passport-check", "bob")
    assert r.state == "in_progress"
    assert requests.load(app, rid).due == date(2025, 10, 10)
    assert requests.load(app, rid).identity_method == "passport-check"


@pytest.mark.parametrize(("regime", "due"), [
    ("gdpr", date(2025, 10, 10)),  # clock stopped for the 9 days waiting for identity
    ("ccpa", date(2025, 10, 16)),  # 45 days regardless of verification
])
def test_identity_wait_under_other_regimes(app: App, clock: Clock, regime: str,
                                           due: date) -> None:
    clock.set(at(1))
    rid = submit(app, regime=regime).id
    clock.set(at(10))
    requests.confirm_identity(app, rid, "email-link", "bob")
    assert requests.load(app, rid).due == due


def test_identity_method_required(backend: Backend, app: App) -> None:
    rid = submit(app).id
    before = backend.row_counts()
    with pytest.raises(InvalidInput, match="method is empty"):
        requests.confirm_identity(app, rid, " ", "bob")
    assert backend.row_counts() == before


def test_clarification_while_awaiting_identity_keeps_the_identity_wait(app: App,
                                                                       clock: Clock) -> None:
    clock.set(at(1))
    rid = submit(app).id
    clock.set(at(3))
    requests.pause(app, rid, "which account?", "bob")
    clock.set(at(5))
    assert requests.resume(app, rid, "bob").state == "awaiting_identity"
    r = requests.load(app, rid)
    assert [p.ended_at for p in r.pauses] == [None, at(5)]
    clock.set(at(10))
    requests.confirm_identity(app, rid, "email-link", "bob")
    r = requests.load(app, rid)
    assert [p.ended_at for p in r.pauses] == [at(10), at(5)]
    assert r.due == date(2025, 10, 10)  # paused 09-01 to 09-10


def test_identity_cannot_be_confirmed_twice(backend: Backend, clock: Clock) -> None:
    app = backend.make_app(clock, DSAR_APPROVAL_REQUIRED="erasure")
    rid = submit(app, "erasure", regime="uk_gdpr", identity_method="email-link").id
    requests.pause(app, rid, "which account?", "bob")
    before = backend.row_counts()
    clock.advance(days=20)
    with pytest.raises(IllegalTransition, match="already confirmed"):
        requests.confirm_identity(app, rid, "video-call", "bob")
    assert backend.row_counts() == before
    assert requests.resume(app, rid, "bob").state == "awaiting_approval"


# -- approval ----------------------------------------------------------------------------------


def test_approval_required_per_kind(backend: Backend, clock: Clock) -> None:
    app = backend.make_app(clock, DSAR_APPROVAL_REQUIRED="erasure,export")
    erasure = submit(app, "erasure", identity_method="x").id
    access = submit(app, "access", identity_method="x").id
    assert requests.load(app, erasure).state == "awaiting_approval"
    assert requests.load(app, access).state == "in_progress"
    with app.db.session() as session:
        assert session.scalars(sa.select(OutboxMessage.args)).all() == [[access]]
    clock.advance(hours=2)
    r = requests.approve(app, erasure, "dpo")
    assert (r.state, r.approved_by, r.approved_at) == ("in_progress", "dpo", clock.at)
    with app.db.session() as session:
        assert sorted(session.scalars(sa.select(OutboxMessage.args)).all()) == sorted(
            [[access], [erasure]])


# -- pauses and deadlines ----------------------------------------------------------------------


@pytest.mark.parametrize(("regime", "due"), [
    ("gdpr", date(2025, 10, 13)),  # 10-01 + 10 paused days = Saturday 10-11, rolled
    ("ccpa", date(2025, 10, 16)),  # a pause does not move a CCPA deadline
])
def test_pause_resume_shifts_gdpr_not_ccpa(backend: Backend, clock: Clock, regime: str,
                                           due: date) -> None:
    app = backend.make_app(clock, DSAR_APPROVAL_REQUIRED="erasure")
    clock.set(at(1))
    rid = submit(app, "erasure", regime=regime, identity_method="x").id
    original = requests.load(app, rid).due
    clock.set(at(2))
    assert requests.pause(app, rid, "which account?", "bob").state == "awaiting_clarification"
    clock.set(at(12))
    assert requests.resume(app, rid, "bob").state == "awaiting_approval"
    assert original == (date(2025, 10, 1) if regime == "gdpr" else date(2025, 10, 16))
    assert requests.load(app, rid).due == due


def test_pause_needs_a_reason(backend: Backend, app: App) -> None:
    rid = submit(app).id
    before = backend.row_counts()
    with pytest.raises(InvalidInput, match="needs a reason"):
        requests.pause(app, rid, "  ", "bob")
    assert backend.row_counts() == before


# -- extension ---------------------------------------------------------------------------------


def test_extension_once_with_reason(backend: Backend, app: App, clock: Clock) -> None:
    clock.set(at(1))
    rid = submit(app, identity_method="x").id
    before = backend.row_counts()
    with pytest.raises(InvalidInput, match="needs a reason"):
        requests.extend(app, rid, "   ", "bob")
    assert backend.row_counts() == before
    clock.set(at(20))
    r = requests.extend(app, rid, " many systems ", "bob")
    assert (r.due, r.extended_due, r.effective_due) == (
        date(2025, 10, 1), date(2025, 12, 1), date(2025, 12, 1))
    assert r.extension_reason == "many systems"
    before = backend.row_counts()
    with pytest.raises(IllegalTransition, match="already extended"):
        requests.extend(app, rid, "again", "bob")
    assert backend.row_counts() == before
    assert requests.load(app, rid).extended_due == date(2025, 12, 1)


def test_extension_refused_after_first_period(backend: Backend, app: App,
                                              clock: Clock) -> None:
    clock.set(at(1))
    rid = submit(app, identity_method="x").id
    clock.set(at(2, month=10))
    before = backend.row_counts()
    with pytest.raises(IllegalTransition) as err:
        requests.extend(app, rid, "late", "bob")
    assert "first period ended on 2025-10-01" in err.value.problem
    assert backend.row_counts() == before
    assert requests.load(app, rid).extended_due is None


def test_extension_on_last_day_allowed(app: App, clock: Clock) -> None:
    clock.set(at(1))
    rid = submit(app, identity_method="x").id
    clock.set(at(1, month=10, hour=23))
    assert requests.extend(app, rid, "complex", "bob").extended_due == date(2025, 12, 1)


def test_no_extension_under_lgpd(app: App) -> None:
    rid = submit(app, regime="lgpd", identity_method="x").id
    with pytest.raises(IllegalTransition, match="allows no extension"):
        requests.extend(app, rid, "complex", "bob")


def test_extended_due_moves_with_a_later_pause(backend: Backend, clock: Clock) -> None:
    app = backend.make_app(clock, DSAR_APPROVAL_REQUIRED="access")
    clock.set(at(1))
    rid = submit(app, identity_method="x").id
    requests.extend(app, rid, "complex", "bob")
    clock.set(at(2))
    requests.pause(app, rid, "which account?", "bob")
    clock.set(at(5))
    requests.resume(app, rid, "bob")
    r = requests.load(app, rid)
    assert (r.due, r.extended_due) == (date(2025, 10, 6), date(2025, 12, 4))


# -- closing -----------------------------------------------------------------------------------


def test_reject_records_ground_and_reason(app: App) -> None:
    rid = submit(app).id
    r = requests.reject(app, rid, "sent 40 times this week", "dpo", ground="excessive")
    assert r.state == "rejected"
    assert r.closing_reason == ("Art. 12(5)(b): excessive, in particular because repetitive: "
                                "sent 40 times this week")
    assert requests.load(app, rid).pauses[0].ended_at is not None


@pytest.mark.parametrize(("action", "words"), [
    (lambda app, rid: requests.reject(app, rid, " ", "dpo"), "cannot be rejected without a "
                                                             "reason"),
    (lambda app, rid: requests.reject(app, rid, "x", "dpo", ground="vibes"),
     "unknown rejection ground"),
    (lambda app, rid: requests.cancel(app, rid, "", "dpo"), "cannot be cancelled without"),
])
def test_close_needs_reason(backend: Backend, app: App, action: object, words: str) -> None:
    rid = submit(app).id
    before = backend.row_counts()
    with pytest.raises(InvalidInput, match=words):
        action(app, rid)  # type: ignore[operator]
    assert backend.row_counts() == before


ILLEGAL = [
    ("completed", "approve", "cannot approve request {rid} while it is completed"),
    ("cancelled", "approve", "cannot approve request {rid} while it is cancelled"),
    ("in_progress", "approve", "cannot approve request {rid} while it is in_progress"),
    ("cancelled", "confirm", "cannot confirm the identity of request {rid} while it is "
                             "cancelled"),
    ("in_progress", "confirm", "cannot confirm the identity of request {rid} while it is "
                               "in_progress"),
    ("in_progress", "pause", "cannot pause request {rid} while it is in_progress"),
    ("rejected", "pause", "cannot pause request {rid} while it is rejected"),
    ("in_progress", "resume", "cannot resume request {rid} while it is in_progress"),
    ("completed", "extend", "cannot extend the deadline of request {rid} while it is completed"),
    ("cancelled", "cancel", "cannot cancel request {rid} while it is cancelled"),
    ("completed", "reject", "cannot reject request {rid} while it is completed"),
    ("needs_attention", "pause", "cannot pause request {rid} while it is needs_attention"),
]


@pytest.mark.parametrize(("state", "operation", "message"), ILLEGAL)
def test_illegal_transition_refused(backend: Backend, app: App, state: str, operation: str,
                                    message: str) -> None:
    rid = submit(app, identity_method="x").id
    set_state(app, rid, state)
    before = backend.row_counts()
    events_before = timeline(app, rid)
    with pytest.raises(IllegalTransition) as err:
        OPERATIONS[operation](app, rid)
    assert err.value.problem == message.format(rid=rid)
    assert err.value.fix
    if state in TERMINAL:
        assert "which is final" in err.value.fix
    assert backend.row_counts() == before
    assert timeline(app, rid) == events_before
    assert requests.load(app, rid).state == state


def test_unknown_request_refused(backend: Backend, app: App) -> None:
    for operation in OPERATIONS.values():
        if operation in (OPERATIONS["complete"], OPERATIONS["attention"]):
            continue
        with pytest.raises(DsarError, match="no request with id 'dsr_nope'"):
            operation(app, "dsr_nope")
    assert sum(backend.row_counts().values()) == 1  # alembic_version only


# -- the one function that changes a request's state ------------------------------------------


@pytest.mark.parametrize("current", sorted(State))
def test_move_checks_every_change_and_writes_it_with_its_event(
        backend: Backend, app: App, clock: Clock, current: State) -> None:
    rid = submit(app, identity_method="x").id
    set_state(app, rid, current.value)
    before, events_before = backend.row_counts(), timeline(app, rid)
    for target in sorted(set(State) - TRANSITIONS[current]):
        with app.db.session() as session, pytest.raises(IllegalTransition):
            requests.move(session, requests.get(session, rid), clock.at, "op", target, "why",
                          event="moved", attention_reason="never written")
    assert backend.row_counts() == before and timeline(app, rid) == events_before
    assert requests.load(app, rid).attention_reason is None
    allowed = sorted(TRANSITIONS[current])
    if not allowed:
        return
    target = allowed[0]
    with app.db.session() as session:
        request = requests.get(session, rid)
        requests.move(session, request, clock.at, "op", target, "why", event="moved",
                      attention_reason="a reason")
    moved = requests.load(app, rid)
    assert (moved.state, moved.attention_reason, moved.updated_at) == (
        target.value, "a reason", clock.at)
    last = timeline(app, rid)[-1]
    assert last[2:] == ("op", "moved", current.value, target.value, "why")
