"""The transactional outbox: broker messages written in the same transaction as the state.

Code that wants work done adds a row with :func:`enqueue` inside its transaction. Only after that
transaction commits does the relay (``workflows.outbox_relay``) publish the row, so a rollback
never publishes and a crash never loses a message. Messages carry ids only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from dsar.db.models import OutboxMessage


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
    return message
