"""What each actor does, as plain functions of an :class:`~dsar.app.App` and an id: the
entry points of a request's steps, each in a module of its own.

    intake       dsar/requests.py        request row, identities, outbox message "plan R"
    plan         workflows/plan.py       the task graph; the ready tasks enqueued
    tasks        workflows/task.py       one task: claim, connector, evidence; fan-in in
                                         workflows/fanout.py
    assemble     workflows/assembly.py   bundle and completion, entered from the last task
    record       dsar/records/record.py  the signed completion record and its ledger entry

Every function is idempotent: run twice with the same id it leaves the same rows, the same
evidence and the same record. Broker specifics live in :mod:`workflows.actors`.
"""

from __future__ import annotations

from dsar.app import App
from workflows import assembly, fanout
from workflows.plan import plan
from workflows.task import follow, run_claimed, run_task


def assemble(app: App, request_id: str) -> None:
    """Run the completion step from its message (:func:`workflows.assembly.assemble`)."""
    assembly.assemble(app, request_id)


def retry(app: App, request_id: str, actor: str) -> int:
    """Resume a request that needs attention from its failed tasks; returns how many."""
    return fanout.retry_request(app, request_id, actor)


__all__ = ["assemble", "follow", "plan", "retry", "run_claimed", "run_task"]
