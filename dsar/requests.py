"""Requests: intake, lifecycle changes and queries, each in one transaction.

Every public function here that takes an App opens its own transaction on the state database,
checks the change against :mod:`dsar.lifecycle`, recomputes the legal deadlines with
:mod:`dsar.deadlines`, writes an audit event, and, when work must start, an outbox message in
the same transaction. A refused change raises a :class:`~dsar.errors.DsarError` before anything
is written. Those that take a session work in the caller's transaction: :func:`move`, the one
function that changes a request's state (the fleet's changes go through it too), and
:func:`add_event`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from dsar import deadlines
from dsar.app import App
from dsar.db import rows
from dsar.db.models import AuditEvent, IdentityRow, Pause, Request
from dsar.db.rows import insert_rows, update_row
from dsar.errors import IllegalTransition, InvalidInput, NotFound
from dsar.identities import Identity
from dsar.intake import KeysReachNothing as KeysReachNothing  # re-exported: callers catch it
from dsar.intake import check_keys_reach
from dsar.lifecycle import PAUSABLE, PAUSED, TERMINAL, State, check_transition
from dsar.outbox import enqueue
from dsar.records.commitment import commit, new_salt
from dsar.regimes import rule_for
from dsar.settings import CHANNELS, KINDS

CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_RECEIPT = datetime(2000, 1, 1, tzinfo=UTC)
REJECTION_GROUNDS = {
    "manifestly-unfounded": "Art. 12(5)(b): manifestly unfounded",
    "excessive": "Art. 12(5)(b): excessive, in particular because repetitive",
    "identity-not-verified": "Art. 12(2) and 11(2): the subject could not be identified",
    "exemption": "an exemption in Union or Member State law (Art. 23)",
    "other": "other ground, stated in the reason",
}


@dataclass(frozen=True)
class Submission:
    """A new request, and the salt of its subject commitment: handed to the requester in their
    receipt and not kept, so only they can later prove the completion record is theirs."""

    request: Request
    salt: str


def new_request_id() -> str:
    return "dsr_" + secrets.token_hex(6)


def _require_choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise InvalidInput(f"unknown {what} {value!r}", f"use one of: {', '.join(choices)}")
    return value


def submit(
    app: App,
    kind: str,
    identities: Sequence[Identity],
    *,
    regime: str | None = None,
    channel: str = "cli",
    received_at: datetime | None = None,
    submitted_by: str,
    identity_method: str | None = None,
    then: Callable[[Session, Request, str], object] | None = None,
) -> Submission:
    """Record a new request. It starts ``received`` and moves on at once: to ``verified`` (and
    on to work or approval) when ``identity_method`` is given, else to ``awaiting_identity``.
    Identities the data map looks nobody up by are refused (:class:`KeysReachNothing`), with
    nothing written.
    ``then(session, request, salt)`` runs in the same transaction, after the request's rows are
    written (the portal starts its emailed verification there)."""
    now = app.now()
    _require_choice(kind, KINDS, "request kind")
    _require_choice(channel, CHANNELS, "channel")
    regime = regime or app.settings.default_regime
    rule = rule_for(regime)
    if not identities:
        raise InvalidInput("a request needs at least one identity", "give --email, --phone or --id")
    if received_at is None:
        received_at = now
    elif received_at.tzinfo is None:
        raise InvalidInput(
            f"receipt time {received_at.isoformat()} has no time zone",
            "add an offset, e.g. 2025-03-05T09:30:00+01:00, or Z for UTC",
        )
    elif received_at > now + CLOCK_SKEW:
        raise InvalidInput(
            f"receipt time {received_at.isoformat()} is in the future",
            "give the time the request actually arrived",
        )
    elif received_at < EARLIEST_RECEIPT:  # also keeps date arithmetic away from year 1
        raise InvalidInput(
            f"receipt time {received_at.isoformat()} is before "
            f"{EARLIEST_RECEIPT.date().isoformat()}, older than any regime dsar knows",
            "give the time the request actually arrived",
        )
    if identity_method is not None and not identity_method.strip():
        raise InvalidInput("the identity verification method is empty", "name the method used")
    check_keys_reach(app, identities)
    salt = new_salt()
    request = Request(
        id=new_request_id(), kind=kind, regime=regime, channel=channel,
        state=State.RECEIVED.value, submitted_by=submitted_by, received_at=received_at,
        timezone=app.settings.timezone, holiday_calendar=app.settings.holiday_calendar,
        rule_id=rule.id, rule_version=rule.version,
        subject_commitment=commit([f"{i.name}:{i.value}" for i in identities], salt),
        watch_flags={}, created_at=now, updated_at=now, assembly_enqueued=False,
        due=date.min,
    )
    for identity in identities:
        request.identities.append(IdentityRow(
            kind=identity.kind, name=identity.name,
            ciphertext=app.keys.identity_cipher.seal(identity.value.encode(),
                                                     identity.name.encode()),
            lookup_hash=app.keys.lookup_hash(identity.name, identity.value),
        ))
    # A new request has no pauses but those made here, so nothing is read back: its first
    # moves are made in memory and written with it, in one go.
    new = _NewRows()
    stand_in = cast(Session, new)  # takes what these add; nothing here reads the database
    _refresh_deadlines(request, [], now)
    add_event(stand_in, request, now, submitted_by, "submitted", None, State.RECEIVED, None)
    if identity_method:
        _verify(stand_in, app, request, identity_method.strip(), submitted_by, now, pauses=[])
    else:
        move(stand_in, request, now, submitted_by, State.AWAITING_IDENTITY,
              "identity verification requested", event="identity_requested")
        pause = Pause(request_id=request.id, started_at=now, ended_at=None,
                      reason="awaiting identity verification",
                      resume_to=State.RECEIVED.value)
        new.add(pause)
        _refresh_deadlines(request, [pause], now)
    with app.db.session() as session:
        new.write(session, request)
        if then is not None:
            then(session, request, salt)
    return Submission(request=request, salt=salt)


class _NewRows:
    """Stands in for the session while a new request makes its first moves: collects the
    rows they add (events, a pause, the outbox message), for :meth:`write` to insert after
    the request's own row, without the unit of work."""

    def __init__(self) -> None:
        self.objects: list[Any] = []
        self.info: dict[str, Any] = {}

    def add(self, obj: Any) -> None:
        self.objects.append(obj)

    def write(self, session: Session, request: Request) -> None:
        """Insert the request's row, its identities and the collected rows (on PostgreSQL in
        one round trip)."""
        for identity in request.identities:
            identity.request_id = request.id
        rows.insert_objects(session, [request, *request.identities, *self.objects])
        session.info.update(self.info)


def get(session: Session, request_id: str) -> Request:
    """The request with ``request_id``; NotFound names the fix."""
    request = session.scalars(
        sa.select(Request).where(Request.id == request_id)
        .options(selectinload(Request.events), selectinload(Request.pauses),
                 selectinload(Request.identities))
    ).one_or_none()
    if request is None:
        raise NotFound(f"no request with id {request_id!r}", "see `dsar list` for the ids")
    return request


def load(app: App, request_id: str) -> Request:
    with app.db.session() as session:
        return get(session, request_id)


def identities_of(app: App, request: Request) -> list[Identity]:
    """Decrypt a request's identities (for the connectors; never for logs or records)."""
    return [
        Identity(row.kind, row.name,
                 app.keys.identity_cipher.open(row.ciphertext, row.name.encode()).decode())
        for row in request.identities
    ]


def confirm_identity(app: App, request_id: str, method: str, actor: str) -> Request:
    """Record that the subject's identity was verified, by ``method`` only: no documents."""
    if not method.strip():
        raise InvalidInput("the identity verification method is empty",
                           "name the method, e.g. --method 'email-link'")
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        check_transition(request.id, request.state, State.VERIFIED)
        if request.identity_verified_at is not None:
            raise IllegalTransition(
                f"the identity of request {request.id} was already confirmed "
                f"({request.identity_method})",
                f"see `dsar show {request.id}`; use `dsar resume` to end a pause",
            )
        _close_pauses(session, request, now)
        _verify(session, app, request, method.strip(), actor, now)
        return request


def approve(app: App, request_id: str, actor: str) -> Request:
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        if request.state != State.AWAITING_APPROVAL:
            raise IllegalTransition(
                f"cannot approve request {request.id} while it is {request.state}",
                _final_fix(request) or "only a request awaiting_approval can be approved "
                "(kinds listed in DSAR_APPROVAL_REQUIRED)",
            )
        request.approved_by, request.approved_at = actor, now
        _start_work(session, request, now, actor, "approved")
        return request


def extend(app: App, request_id: str, reason: str, actor: str) -> Request:
    """Take the regime's extension once, with a reason, before the first period ends."""
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        if request.state in TERMINAL:
            raise IllegalTransition(
                f"cannot extend the deadline of request {request.id} while it is "
                f"{request.state}", _final_fix(request))
        current = _deadlines(request, _pauses(session, request.id), now)
        extended = deadlines.check_extension(
            rule_for(request.regime), current, now, reason,
            already_extended=request.extended_due is not None,
        )
        request.extended_due, request.extension_reason = extended, reason.strip()
        request.extended_at = now
        add_event(session, request, now, actor, "extended", request.state, request.state,
               reason.strip())
        _tell_subject(session, app, request, "extension")
        return request


def pause(app: App, request_id: str, reason: str, actor: str) -> Request:
    """Wait for clarification from the subject; the clock stops where the regime allows."""
    if not reason.strip():
        raise InvalidInput("a pause needs a reason", "say what was asked of the subject")
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        check_transition(request.id, request.state, State.AWAITING_CLARIFICATION)
        if request.state not in PAUSABLE:
            raise InvalidInput(f"request {request.id} cannot be paused while {request.state}",
                               "pause before the work starts")
        session.add(Pause(request_id=request.id, started_at=now, ended_at=None,
                          reason=reason.strip(), resume_to=request.state))
        move(session, request, now, actor, State.AWAITING_CLARIFICATION, reason.strip(),
              event="paused")
        session.flush()
        _refresh_deadlines(request, _pauses(session, request.id), now)
        return request


def resume(app: App, request_id: str, actor: str, reason: str | None = None) -> Request:
    """End the open clarification pause and return to the state it interrupted."""
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        if request.state != State.AWAITING_CLARIFICATION:
            raise IllegalTransition(
                f"cannot resume request {request.id} while it is {request.state}",
                _final_fix(request) or "only a request awaiting_clarification can be resumed",
            )
        open_pause = _close_pauses(session, request, now, keep_identity_pause=True)
        target = State(open_pause.resume_to if open_pause else State.RECEIVED)
        move(session, request, now, actor, target, reason, event="resumed")
        session.flush()
        _refresh_deadlines(request, _pauses(session, request.id), now)
        if target == State.VERIFIED:
            _after_verification(session, app, request, now, actor)
        return request


def cancel(app: App, request_id: str, reason: str, actor: str) -> Request:
    return _close(app, request_id, State.CANCELLED, reason, actor, "cancelled")


def reject(app: App, request_id: str, reason: str, actor: str, ground: str = "other") -> Request:
    """Refuse the request (Art. 12(4)): the ground and the reason are recorded."""
    _require_choice(ground, list(REJECTION_GROUNDS), "rejection ground")
    return _close(app, request_id, State.REJECTED, f"{REJECTION_GROUNDS[ground]}: {reason}",
                  actor, "rejected", reason_given=reason)


def list_requests(
    app: App, *, states: Sequence[str] = (), kinds: Sequence[str] = (),
    overdue: bool = False, due_within: timedelta | None = None,
) -> list[Request]:
    """Requests matching all the filters, soonest effective due date first."""
    due = sa.func.coalesce(Request.extended_due, Request.due)
    query = sa.select(Request).order_by(due, Request.received_at)
    if states:
        query = query.where(Request.state.in_(states))
    if kinds:
        query = query.where(Request.kind.in_(kinds))
    today = deadlines.local_date(app.now(), app.settings.timezone)
    open_states = [s.value for s in State if s not in TERMINAL]
    if overdue:
        query = query.where(due < today, Request.state.in_(open_states))
    if due_within is not None:
        query = query.where(due <= today + due_within, Request.state.in_(open_states))
    with app.db.session() as session:
        return list(session.scalars(query))


# -- internals ---------------------------------------------------------------------------------


def _close(app: App, request_id: str, target: State, reason: str, actor: str, event: str,
           reason_given: str | None = None) -> Request:
    if not (reason_given if reason_given is not None else reason).strip():
        raise InvalidInput(f"a request cannot be {target.value} without a reason",
                           "give --reason with the reason that will be on record")
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        check_transition(request.id, request.state, target)
        _close_pauses(session, request, now)
        move(session, request, now, actor, target, reason.strip(), event=event,
             closing_reason=reason.strip(), completed_at=now)
        session.flush()
        sign_closed_request(session, app, request)
        if target == State.REJECTED:
            _tell_subject(session, app, request, "refusal")
        return request


def _tell_subject(session: Session, app: App, request: Request, kind: str) -> None:
    """Queue message ``kind`` to the person in this transaction, if they gave an email.

    No refusal goes to the address of a request filed on the form or the API (``web``,
    ``api``) that was never verified: it was typed by someone who has not shown it is theirs,
    and the refusal would tell its holder (or them) what the privacy team wrote. The audit
    trail says so (``message_withheld``); ``dsar notify ID refusal`` sends one on purpose. A
    request the privacy team filed (``cli``) is answered at the address they entered."""
    from dsar.mail.queue import can_write_to, tell_subject

    if kind == "refusal" and request.identity_verified_at is None and request.channel != "cli":
        if can_write_to(session, request.id):
            add_event(session, request, app.now(), "mailer", "message_withheld", None, None,
                      "refusal: the email address was never verified")
        return
    tell_subject(session, app, request, kind)


def sign_closed_request(session: Session, app: App, request: Request) -> bool:
    """Give a rejected or cancelled request its completion record now, if a signing key is at
    hand; otherwise the fleet's periodic work does it once one is (see `dsar keys generate`).
    Returns whether the record exists."""
    from dsar.records.record import build_record

    try:
        build_record(session, app, request)
    except NotFound:
        return False
    return True


def _final_fix(request: Request) -> str | None:
    if request.state in TERMINAL:
        return f"it is {request.state}, which is final; submit a new request if needed"
    return None


def _verify(session: Session, app: App, request: Request, method: str, actor: str,
            now: datetime, pauses: Sequence[Pause] | None = None) -> None:
    """Record the verification and move on; ``pauses`` are the request's pauses when the
    caller knows them (a new request), else they are read."""
    request.identity_method, request.identity_verified_at = method, now
    move(session, request, now, actor, State.VERIFIED, f"method: {method}",
          event="identity_verified")
    if pauses is None:
        session.flush()
        pauses = _pauses(session, request.id)
    _refresh_deadlines(request, pauses, now)
    _after_verification(session, app, request, now, actor)


def _after_verification(session: Session, app: App, request: Request, now: datetime,
                        actor: str) -> None:
    if request.kind in app.settings.approval_required and request.approved_at is None:
        move(session, request, now, actor, State.AWAITING_APPROVAL,
              f"{request.kind} requests need approval (DSAR_APPROVAL_REQUIRED)",
              event="approval_requested")
    else:
        _start_work(session, request, now, actor, "work_started")


def _start_work(session: Session, request: Request, now: datetime, actor: str,
                event: str) -> None:
    move(session, request, now, actor, State.IN_PROGRESS, None, event=event)
    enqueue(session, "plan_request", [request.id], queue="control", now=now)


def move(session: Session, request: Request, now: datetime, actor: str, target: State,
         reason: str | None, *, event: str, **columns: Any) -> None:
    """Change the request's state: the one function that does, wherever the change comes from
    (a person, the portal, a worker). Refuses a change :data:`dsar.lifecycle.TRANSITIONS` does
    not list with IllegalTransition, before anything is written. Otherwise, in the session's
    transaction: the state, ``updated_at`` and the other ``columns`` given (say
    ``attention_reason``), and the audit event ``event`` (from, to, ``actor``, ``reason``).

    A loaded request's row is updated at once, without the ORM's flush (see
    :func:`dsar.db.rows.update_row`); a new request's object takes the values and is written
    with them."""
    check_transition(request.id, request.state, target)
    source = request.state
    values = {"state": State(target).value, "updated_at": now, **columns}
    if sa.inspect(request).persistent:
        update_row(session, request, **values)
    else:
        for name, value in values.items():
            setattr(request, name, value)
    add_event(session, request, now, actor, event, source, target, reason)


def add_event(session: Session, request: Request, now: datetime, actor: str, event: str,
              source: str | None, target: str | None, reason: str | None) -> None:
    """Add a line to the request's audit trail, in the session's transaction: written at once
    when the request's row exists, else added to ``session`` (for a new request: the stand-in
    that writes it after the request's row)."""
    event_row = {"request_id": request.id, "at": now, "actor": actor, "event": event,
                 "from_state": source, "to_state": target, "reason": reason}
    if sa.inspect(request).persistent:
        insert_rows(session, AuditEvent.__table__, [event_row])
    else:
        session.add(AuditEvent(**event_row))


def _pauses(session: Session, request_id: str) -> list[Pause]:
    return list(session.scalars(
        sa.select(Pause).where(Pause.request_id == request_id).order_by(Pause.id)))


def _close_pauses(session: Session, request: Request, now: datetime,
                  keep_identity_pause: bool = False) -> Pause | None:
    """End the open pauses and return the latest. With ``keep_identity_pause`` (a resume), end
    only the latest: when it returns to awaiting_identity, the wait for identity goes on."""
    open_pauses = [p for p in _pauses(session, request.id) if p.ended_at is None]
    if keep_identity_pause and open_pauses and \
            open_pauses[-1].resume_to == State.AWAITING_IDENTITY.value:
        open_pauses = open_pauses[-1:]
    last = None
    for open_pause in open_pauses:
        open_pause.ended_at = now
        last = open_pause
    if request.state in PAUSED:
        session.flush()
        _refresh_deadlines(request, _pauses(session, request.id), now)
    return last


def _deadlines(request: Request, pauses: Sequence[Pause], now: datetime) -> deadlines.Deadlines:
    return deadlines.compute_deadlines(
        rule_for(request.regime), request.received_at, tz=request.timezone,
        calendar=request.holiday_calendar,
        pauses=[(p.started_at, p.ended_at) for p in pauses],
        identity_confirmed_at=request.identity_verified_at, now=now,
    )


def refresh_deadlines(session: Session, request: Request, now: datetime) -> None:
    """Recompute the stored due dates, e.g. of a request whose clock is stopped by an open
    pause (the deadline watch does this, so `dsar list --overdue` stays true)."""
    _refresh_deadlines(request, _pauses(session, request.id), now)


def _refresh_deadlines(request: Request, pauses: Sequence[Pause], now: datetime) -> None:
    result = _deadlines(request, pauses, now)
    request.due = result.due
    request.acknowledge_by = result.acknowledge_by
    request.extension_notice_by = result.extension_notice_by
    if request.extended_due is not None and result.extended_due is not None:
        request.extended_due = result.extended_due


def record_reveal(app: App, request_id: str, actor: str) -> None:
    """Write to the audit trail that ``actor`` saw the request's identities in full."""
    now = app.now()
    with app.db.session() as session:
        request = get(session, request_id)
        add_event(session, request, now, actor, "identities_revealed", request.state,
               request.state, None)
