"""Putting the fleet together: broker, actors, relay and watch, in-process or as workers.

- :class:`InProcessFleet` runs everything as threads of the current process, on any broker;
  the embedded default (``memory://``) and ``dsar submit --wait`` use it.
- :mod:`workflows.entry` is what ``dsar worker`` hands to Dramatiq's own worker processes on
  RabbitMQ or Redis; each process also runs a relay and the watch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

import dramatiq
from dramatiq import Worker

from dsar import requests
from dsar.app import App
from dsar.db.models import Request
from dsar.lifecycle import TERMINAL, State
from workflows.actors import declare_actors
from workflows.broker import make_broker
from workflows.relay import Relay
from workflows.watch import Watch


def setup_broker(app: App) -> dramatiq.Broker:
    """The broker for the app's settings, with every actor declared, set as Dramatiq's global."""
    broker = make_broker(app.settings.broker_url)
    declare_actors(broker, lambda: app)
    dramatiq.set_broker(broker)
    return broker


class InProcessFleet:
    """Workers, relay and watch as threads of this process. Use as a context manager."""

    def __init__(self, app: App, threads: int = 4, queues: set[str] | None = None,
                 watch_interval: float = 30.0) -> None:
        self.app = app
        self.broker = setup_broker(app)
        self.worker = Worker(self.broker, worker_threads=threads, queues=queues,
                             worker_timeout=100)
        self.relay = Relay(app, self.broker, idle=0.05)
        self.watch = Watch(app, interval=watch_interval)

    def start(self) -> InProcessFleet:
        self.worker.start()
        self.relay.start()
        self.watch.start()
        return self

    def stop(self) -> None:
        self.watch.stop()
        self.relay.stop()
        self.worker.stop(timeout=30_000)
        self.broker.close()

    def __enter__(self) -> InProcessFleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


SETTLED = TERMINAL | {State.NEEDS_ATTENTION, State.AWAITING_APPROVAL, State.AWAITING_IDENTITY,
                      State.AWAITING_CLARIFICATION}


def wait_for(app: App, request_id: str, timeout: float = 600.0,
             on_progress: Callable[[Request, int, int], None] | None = None,
             poll: float = 0.1) -> Request:
    """Poll until the request is settled (finished, or waiting on a person); return it.

    ``on_progress(request, done, total)`` is called on every poll with the task counts.
    """
    from workflows.progress import task_counts

    deadline = time.monotonic() + timeout
    while True:
        request = requests.load(app, request_id)
        done, total = task_counts(app, request_id)
        if on_progress:
            on_progress(request, done, total)
        if State(request.state) in SETTLED:
            return request
        if time.monotonic() > deadline:
            return request
        time.sleep(poll)
