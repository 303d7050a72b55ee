"""The transactional outbox: broker messages written in the same transaction as the state.

Code that wants work done adds a row with :func:`enqueue` inside its transaction. Only after that
transaction commits does the relay (``workflows.relay``) publish the row, so a rollback
never publishes and a crash never loses a message. Messages carry ids only.

A worker that will run the next step of a request itself still writes that step's message, as a
*fallback* delayed by one lease: if the worker dies first, the message goes out and another
worker takes the step over; if not, the worker withdraws it (:func:`withdraw`) in the
transaction that records the step.

A transaction that adds a message due now wakes the relays of its database when it commits
(:attr:`dsar.db.engine.StateDB.committed`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.db.engine import WAKE_RELAY
from dsar.db.models import OutboxMessage
from dsar.db.rows import insert_rows, send


def enqueue(
    session: Session,
    actor: str,
    args: list[str | int],
    *,
    queue: str,
    now: datetime,
    delay: timedelta = timedelta(0),
    priority: int = 0,
) -> OutboxMessage:
    """Add a message for ``actor`` to the outbox of ``session``'s transaction."""
    if any(not isinstance(a, str | int) for a in args):
        raise TypeError("outbox messages carry ids only")
    message = OutboxMessage(
        actor=actor, queue=queue, args=list(args), priority=priority,
        created_at=now, available_at=now + delay, sent_at=None,
    )
    session.add(message)
    if delay <= timedelta(0):  # a later message is left to the relay's next poll
        session.info[WAKE_RELAY] = True
    return message


def message_row(actor: str, args: list[str | int], *, queue: str, now: datetime,
                delay: timedelta = timedelta(0), priority: int = 0) -> dict[str, Any]:
    """A message as an outbox row, for :func:`enqueue_rows`."""
    if any(not isinstance(a, str | int) for a in args):
        raise TypeError("outbox messages carry ids only")
    return {"actor": actor, "queue": queue, "args": list(args), "priority": priority,
            "created_at": now, "available_at": now + delay, "sent_at": None}


def enqueue_rows(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Like :func:`enqueue` for several :func:`message_row` rows, written at once (not at the
    next flush); returns their ids in order."""
    ids = insert_rows(session, OutboxMessage.__table__, rows, returning_id=True)
    if any(row["available_at"] <= row["created_at"] for row in rows):
        session.info[WAKE_RELAY] = True
    return ids


_WITHDRAW = sa.delete(OutboxMessage).where(OutboxMessage.id == sa.bindparam("message_id"),
                                           OutboxMessage.sent_at.is_(None))
_POSTPONE = (sa.update(OutboxMessage)
             .where(OutboxMessage.id == sa.bindparam("message_id"),
                    OutboxMessage.sent_at.is_(None))
             .values(available_at=sa.bindparam("until", type_=OutboxMessage.available_at.type)))


def withdraw(session: Session, message_id: int) -> None:
    """Delete a message that has not been published yet: a fallback whose step was done (or
    arranged otherwise) by the worker that held it. A message already published stays
    published; its actor finds the work done."""
    send(session, _WITHDRAW, {"message_id": message_id})


def postpone(session: Session, message_id: int, until: datetime) -> None:
    """Move an unpublished message's publication to ``until``."""
    send(session, _POSTPONE, {"message_id": message_id, "until": until})
