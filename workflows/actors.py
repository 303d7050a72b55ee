"""The Dramatiq actors: thin wrappers that name a row and call :mod:`workflows.runner`.

Actors are declared on a given broker by :func:`declare_actors`, so the same functions run on
RabbitMQ, Redis or the in-process broker. Messages carry ids only.

A worker goes on with a request's next step itself when that step's queue is one it consumes:
planning runs the first ready task (its message is still written, as a fallback, see
:mod:`workflows.fanout`, so a worker that dies in between loses nothing), and the last task
completes the request in its own transaction when it holds all the collected data
(:func:`workflows.assembly.after_last_task`): one broker message per request instead of three
for a request on one system. Workers that do not consume a queue never run its steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from dsar.app import App
from workflows import runner
from workflows.broker import QUEUES

TASK_KINDS = ("sql", "s3", "saas")


class ServedQueues(dramatiq.Middleware):
    """The queues this process's worker consumes, while it runs (none once it shuts down)."""

    def __init__(self) -> None:
        self.queues: frozenset[str] = frozenset()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.queues = frozenset(worker.consumer_whitelist or QUEUES)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.queues = frozenset()  # SIGTERM: finish the step in hand, take on nothing more


def declare_actors(broker: dramatiq.Broker, app_factory: Callable[[], App]) -> dict[str, Any]:
    """Declare every actor on ``broker``; ``app_factory`` gives the (cached) App to use."""
    served = ServedQueues()
    broker.add_middleware(served)

    def plan_request(request_id: str) -> None:
        app, here = app_factory(), served.queues
        runner.follow(app, runner.plan(app, request_id, run_here=here), here)

    def assemble_request(request_id: str) -> None:
        runner.assemble(app_factory(), request_id)

    def run_task(task_id: int) -> None:
        runner.run_task(app_factory(), task_id, run_here=served.queues)

    actors = {
        "plan_request": dramatiq.actor(plan_request, broker=broker, queue_name="control",
                                       actor_name="plan_request"),
        "assemble_request": dramatiq.actor(assemble_request, broker=broker,
                                           queue_name="control", actor_name="assemble_request"),
    }
    for kind in TASK_KINDS:
        name = f"run_{kind}_task"
        actors[name] = dramatiq.actor(run_task, broker=broker, queue_name=kind, actor_name=name)
    actors.update(__import__("workflows.messages").messages.declare(broker, app_factory))
    for queue in QUEUES:
        broker.declare_queue(queue)
    return actors
