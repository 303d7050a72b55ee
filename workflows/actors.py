"""The Dramatiq actors: thin wrappers that name a row and call :mod:`workflows.runner`.

Actors are declared on a given broker by :func:`declare_actors`, so the same functions run on
RabbitMQ, Redis or the in-process broker. Messages carry ids only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from dsar.app import App
from workflows import runner
from workflows.broker import QUEUES

TASK_KINDS = ("sql", "s3", "saas")


def declare_actors(broker: dramatiq.Broker, app_factory: Callable[[], App]) -> dict[str, Any]:
    """Declare every actor on ``broker``; ``app_factory`` gives the (cached) App to use."""

    def plan_request(request_id: str) -> None:
        runner.plan(app_factory(), request_id)

    def assemble_request(request_id: str) -> None:
        runner.assemble(app_factory(), request_id)

    def run_task(task_id: int) -> None:
        runner.run_task(app_factory(), task_id)

    actors = {
        "plan_request": dramatiq.actor(plan_request, broker=broker, queue_name="control",
                                       actor_name="plan_request"),
        "assemble_request": dramatiq.actor(assemble_request, broker=broker,
                                           queue_name="control", actor_name="assemble_request"),
    }
    for kind in TASK_KINDS:
        name = f"run_{kind}_task"
        actors[name] = dramatiq.actor(run_task, broker=broker, queue_name=kind, actor_name=name)
    for queue in QUEUES:
        broker.declare_queue(queue)
    return actors
