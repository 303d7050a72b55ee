"""The outbox relay: publishes committed outbox rows to the broker and marks them sent.

Rows are taken earliest deadline first (highest priority), oldest first, with ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL so several relays (one per worker process) never publish the same row at
the same time. Publishing happens inside the transaction that marks the row sent: if the broker
is down nothing is marked and the row waits; if the commit fails after publishing, the message
goes out twice, which the idempotent actors absorb.
"""

from __future__ import annotations

import logging
import threading

import dramatiq
import sqlalchemy as sa
from dramatiq import Message

from dsar.app import App
from dsar.db.models import OutboxMessage

log = logging.getLogger("dsar.relay")


_DUE = (sa.select(OutboxMessage.id, OutboxMessage.actor, OutboxMessage.queue, OutboxMessage.args,
                  OutboxMessage.priority)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.available_at <= sa.bindparam("now"))
        .order_by(OutboxMessage.priority.desc(), OutboxMessage.id)
        .limit(sa.bindparam("batch", type_=sa.Integer))
        .with_for_update(skip_locked=True))
_MARK_SENT = (sa.update(OutboxMessage)
              .where(OutboxMessage.id.in_(sa.bindparam("ids", expanding=True)))
              .values(sent_at=sa.bindparam("sent", type_=OutboxMessage.sent_at.type)))
# Built once: the relay runs them after every commit that adds messages.


def relay_once(app: App, broker: dramatiq.Broker, batch: int = 200) -> int:
    """Publish up to ``batch`` due messages; returns how many were published."""
    now = app.now()
    with app.db.engine.begin() as conn:
        rows = conn.execute(_DUE, {"now": now, "batch": batch}).all()
        if not rows:
            return 0
        for row in rows:
            broker.enqueue(Message(
                queue_name=row.queue, actor_name=row.actor, args=tuple(row.args), kwargs={},
                options={"broker_priority": row.priority},
            ))
        conn.execute(_MARK_SENT, {"ids": [row.id for row in rows], "sent": now})
        return len(rows)


def purge_sent(app: App, older_than_seconds: float = 3600) -> int:
    """Delete sent outbox rows older than the given age."""
    from datetime import timedelta

    cutoff = app.now() - timedelta(seconds=older_than_seconds)
    with app.db.session() as session:
        result = session.execute(sa.delete(OutboxMessage).where(OutboxMessage.sent_at < cutoff))
        return int(result.rowcount or 0)


class Relay(threading.Thread):
    """Runs :func:`relay_once` in a loop until stopped; survives a broker or database outage."""

    def __init__(self, app: App, broker: dramatiq.Broker, idle: float = 0.2,
                 batch: int = 200) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.app, self.broker, self.idle, self.batch = app, broker, idle, batch
        self.stopping = threading.Event()

    def run(self) -> None:
        failures = 0
        committed = self.app.db.committed
        while not self.stopping.is_set():
            committed.clear()  # before reading: a commit from now on wakes the next wait
            try:
                sent = relay_once(self.app, self.broker, self.batch)
                failures = 0
            except Exception as exc:
                failures += 1
                log.warning("outbox relay: %s; retrying", type(exc).__name__)
                self.stopping.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
                continue
            if sent < self.batch:  # caught up
                committed.wait(self.idle)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
