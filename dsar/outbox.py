"""The transactional outbox: broker messages written in the same transaction as the state.

Code that wants work done adds a row with :func:`enqueue` inside its transaction. Only after that
transaction commits does the relay (``workflows.outbox_relay``) publish the row, so a rollback
never publishes and a crash never loses a message. Messages carry ids only.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from dsar.db.models import OutboxMessage

#: Set after a transaction that added outbox rows commits, so a relay in this process
#: publishes at once instead of at its next poll.
COMMITTED = threading.Event()


def _wake(_session: Session) -> None:
    COMMITTED.set()


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
    if "outbox_wake" not in session.info:
        session.info["outbox_wake"] = True
        event.listen(session, "after_commit", _wake, once=True)
    return message
