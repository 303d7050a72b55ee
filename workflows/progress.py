"""Progress of a request's tasks, for progress bars and ``dsar show``."""

from __future__ import annotations

import sqlalchemy as sa

from dsar.app import App
from dsar.db.models import Task
from dsar.lifecycle import TASK_FINISHED


def task_counts(app: App, request_id: str) -> tuple[int, int]:
    """(tasks finished, tasks in all) for a request."""
    with app.db.session() as session:
        states = list(session.scalars(sa.select(Task.state).where(Task.request_id == request_id)))
    return sum(1 for s in states if s in TASK_FINISHED), len(states)


def task_table(app: App, request_id: str) -> list[dict[str, object]]:
    """One line per task: system, action, state, attempts, error code and reason."""
    with app.db.session() as session:
        tasks = session.scalars(
            sa.select(Task).where(Task.request_id == request_id).order_by(Task.id)).all()
        return [{"id": t.id, "system": t.system, "action": t.action, "state": t.state,
                 "attempts": t.attempts, "error_code": t.error_code, "error": t.error}
                for t in tasks]
