"""Queuing a message: a ``messages`` row and its outbox row, in the caller's transaction.

The row is unique per (request, kind): queuing the same kind again returns the row already
there and adds nothing, so a retried intake or a repeated command never sends twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.app import App
from dsar.db.models import MessageRow, Request
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
ACTOR = "send_message"
QUEUE = "control"


def queue_message(session: Session, app: App, request: Request, kind: str) -> MessageRow:
    """The (request, kind) message, queued now unless it already was."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown message kind {kind!r}", f"use one of: {', '.join(KINDS)}")
    existing = session.scalars(sa.select(MessageRow).where(
        MessageRow.request_id == request.id, MessageRow.kind == kind)).first()
    if existing is not None:
        return existing
    now = app.now()
    row = MessageRow(request_id=request.id, kind=kind, created_at=now, attempts=0,
                     claimed_until=None, sent_at=None)
    session.add(row)
    session.flush()
    enqueue(session, ACTOR, [row.id], queue=QUEUE, now=now)
    return row
