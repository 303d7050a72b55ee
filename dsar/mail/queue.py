"""Queuing a message: a ``messages`` row and its outbox row, in the caller's transaction.

The row is unique per (request, kind): queuing the same kind again returns the row already
there and adds nothing, so a retried intake or a repeated command never sends twice.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.app import App
from dsar.db.models import IdentityRow, MessageRow, Request
from dsar.errors import InvalidInput
from dsar.outbox import enqueue

KINDS: dict[str, str] = {
    "verification": "confirm the email address (link and one-time code)",
    "already_open": "an open request of this kind exists: its status, no new request",
    "acknowledgement": "we have your request, and its due date",
    "extension": "the deadline is extended, with the reasons",
    "completion": "access or export done: the download link",
    "erasure_confirmation": "erasure done: what was erased, what was kept and why",
    "refusal": "the request is refused: the reasons and the right to complain",
}
#: The message a request's completion sends, by request kind.
ON_COMPLETION = {"access": "completion", "export": "completion",
                 "erasure": "erasure_confirmation"}
ACTOR = "send_message"
QUEUE = "control"
RESEND_AFTER = timedelta(hours=6)
"""A message still unsent this long after it was queued went through all its broker retries
(about 2.5 hours with ``send_message``'s back-off) or was lost: it is queued again."""


def queue_message(session: Session, app: App, request: Request, kind: str,
                  language: str | None = None) -> MessageRow:
    """The (request, kind) message, queued now unless it already was; in ``language``, by
    default the language of the request's first message (the form's), else English."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown message kind {kind!r}", f"use one of: {', '.join(KINDS)}")
    existing = session.scalars(sa.select(MessageRow).where(
        MessageRow.request_id == request.id, MessageRow.kind == kind)).first()
    if existing is not None:
        return existing
    if language is None:
        language = session.scalar(sa.select(MessageRow.language)
                                  .where(MessageRow.request_id == request.id)
                                  .order_by(MessageRow.id).limit(1)) or "en"
    now = app.now()
    row = MessageRow(request_id=request.id, kind=kind, created_at=now, queued_at=now,
                     attempts=0, claimed_until=None, sent_at=None, language=language)
    session.add(row)
    session.flush()
    enqueue(session, ACTOR, [row.id], queue=QUEUE, now=now)
    return row


def can_write_to(session: Session, request_id: str) -> bool:
    """Whether the request has an email address to write to."""
    return session.scalar(sa.select(sa.exists().where(
        IdentityRow.request_id == request_id, IdentityRow.kind == "email"))) or False


def tell_subject(session: Session, app: App, request: Request, kind: str | None) -> bool:
    """Queue ``kind`` in the caller's transaction (the one that changes the request's state)
    when a mail server is configured (``DSAR_SMTP_URL``) and the request has an email address;
    otherwise, or with ``kind`` None, nothing: a notice nobody can send is not kept to go out
    late once a server is configured (``dsar notify`` still queues one on purpose). Returns
    whether a message is queued."""
    if kind is None or app.settings.smtp_url is None or not can_write_to(session, request.id):
        return False
    queue_message(session, app, request, kind)
    return True


def requeue_unsent(app: App, resend_after: timedelta = RESEND_AFTER, limit: int = 200) -> int:
    """Queue again every message unsent ``resend_after`` after it was last queued (its retries
    ran out, the mail server was down or not configured, or a broker lost it), each with an
    audit event naming its kind and attempts (not one whose request no longer has an address:
    its identities were forgotten). Returns how many were queued. Sending stays
    once-only: ``send_message`` skips a message stamped sent and claims the one it sends."""
    from dsar.requests import add_event

    now = app.now()
    with app.db.session() as session:
        rows = list(session.scalars(
            sa.select(MessageRow).where(MessageRow.sent_at.is_(None),
                                        MessageRow.queued_at <= now - resend_after,
                                        sa.exists().where(IdentityRow.request_id ==
                                                          MessageRow.request_id,
                                                          IdentityRow.kind == "email"))
            .order_by(MessageRow.queued_at).limit(limit).with_for_update(skip_locked=True)))
        for row in rows:
            row.queued_at = now
            enqueue(session, ACTOR, [row.id], queue=QUEUE, now=now)
            request = session.get(Request, row.request_id)
            assert request is not None
            add_event(session, request, now, "mailer", "message_requeued", None, None,
                      f"{row.kind} message not sent after {row.attempts} attempt(s); "
                      "queued again")
        return len(rows)
