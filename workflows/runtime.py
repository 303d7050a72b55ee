"""Putting the fleet together: broker, actors, relay and watch, in-process or as workers.

- :class:`InProcessFleet` runs everything as threads of the current process, on any broker;
  the embedded default (``memory://``) and ``dsar submit --wait`` use it.
- :mod:`workflows.entry` is what ``dsar worker`` hands to Dramatiq's own worker processes on
  RabbitMQ or Redis; each process also runs a relay and the watch.
- :func:`preflight` is what ``dsar worker`` checks before it starts any: a worker that could
  only fail refuses to start, with the fix in one line.
- :class:`PermanentErrors` puts a request in ``needs attention`` at once when a step fails in
  a way no retry can mend (:func:`workflows.broker.permanent`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import dramatiq
import sqlalchemy as sa
from dramatiq import Worker

from dsar import requests
from dsar.app import App
from dsar.db.models import IdentityRow, Request, Task
from dsar.errors import DsarError
from dsar.lifecycle import TERMINAL, State
from workflows import fanout
from workflows.actors import TASK_KINDS, declare_actors
from workflows.broker import make_broker, permanent
from workflows.relay import Relay
from workflows.tracing import install as install_tracing
from workflows.watch import Watch

log = logging.getLogger("dsar.worker")


def setup_broker(app: App) -> dramatiq.Broker:
    """The broker for the app's settings, with every actor declared. It is not made
    Dramatiq's global broker: a process's entry point does that when it runs one."""
    broker = make_broker(app.settings.broker_url)
    broker.add_middleware(PermanentErrors(app))
    install_tracing(broker)  # OpenTelemetry spans, ids only, when installed
    declare_actors(broker, lambda: app)
    return broker


def app_of(broker: dramatiq.Broker) -> App:
    """The App whose work ``broker``'s actors do (the one :func:`setup_broker` was given): how
    a module Dramatiq imports into a worker process after the broker (a test's fault hook)
    reaches it."""
    for middleware in broker.middleware:
        if isinstance(middleware, PermanentErrors):
            return middleware.app
    raise LookupError("this broker was not set up by workflows.runtime.setup_broker")


def preflight(app: App) -> None:
    """Refuse to run workers that could only fail: raise a :class:`~dsar.errors.DsarError`
    when there is no usable signing key (completion records could not be signed), or when the
    master key cannot decrypt the state database's data (every request would fail). The
    embedded default makes its signing key on first use, as it always has."""
    from dsar.records.ledger import load_signer

    load_signer(app.settings)
    with app.db.session() as session:
        newest = session.execute(sa.select(IdentityRow.name, IdentityRow.ciphertext)
                                 .order_by(IdentityRow.id.desc()).limit(1)).first()
    if newest is None:
        return
    try:
        app.keys.identity_cipher.open(newest.ciphertext, newest.name.encode())
    except DsarError:
        raise DsarError(
            "the master key cannot decrypt the data in the state database (it is not the key "
            "the CLI and the other workers use)",
            "give this worker the same DSAR_MASTER_KEY (or <DSAR_DATA_DIR>/master.key) as the "
            "rest of the fleet",
        ) from None


class PermanentErrors(dramatiq.Middleware):
    """A step that failed with an error no retry can mend puts its request in ``needs
    attention`` at once, with the error's one line as the reason (Dramatiq does not retry it:
    see :func:`workflows.broker.permanent`). Task failures inside a connector call are the task
    runner's business and never reach here."""

    def __init__(self, app: App) -> None:
        self.app = app

    def after_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message,
                              *, result: Any = None, exception: BaseException | None = None
                              ) -> None:
        if exception is None or not permanent(exception):
            return
        try:
            request_id = self._request_of(message)
            if request_id is not None:
                flag_request(self.app, request_id, f"{message.actor_name} failed: "
                             f"{exception.one_line()}")  # type: ignore[attr-defined]
        except Exception as exc:  # the state database away: the lost-work sweep comes back
            log.warning("could not flag a request for attention after %s (%s)",
                        message.actor_name, type(exc).__name__)

    def _request_of(self, message: dramatiq.Message) -> str | None:
        if not message.args:
            return None
        if message.actor_name in {f"run_{kind}_task" for kind in TASK_KINDS}:
            with self.app.db.session() as session:
                return session.scalar(sa.select(Task.request_id)
                                      .where(Task.id == int(message.args[0])))
        return str(message.args[0])


def flag_request(app: App, request_id: str, reason: str) -> bool:
    """Move an in-progress request to ``needs attention`` with ``reason``; False if it was in
    another state (nothing changed)."""
    if not fanout.flag_attention(app, request_id, reason, event="step_failed"):
        return False
    log.warning("request %s needs attention: a step failed permanently", request_id,
                extra={"request_id": request_id})
    return True


class InProcessFleet:
    """Workers, relay and watch as threads of this process. Use as a context manager."""

    def __init__(self, app: App, threads: int = 4, queues: set[str] | None = None,
                 watch_interval: float | None = None) -> None:
        """``watch_interval``: seconds between the watch's rounds (default
        DSAR_WATCH_INTERVAL)."""
        self.app = app
        self.broker = setup_broker(app)
        self.worker = Worker(self.broker, worker_threads=threads, queues=queues,
                             worker_timeout=100)
        self.relay = Relay(app, self.broker, idle=0.05)
        self.watch = Watch(app, interval=watch_interval or app.settings.watch_interval)

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
    """Poll until the request is settled (finished, or waiting on a person) or all its work
    left waits for SaaS vendors' erasure jobs (the fleet's workers finish it when they end);
    return it.

    ``on_progress(request, done, total)`` is called on every poll with the task counts.
    """
    from workflows.progress import task_counts
    from workflows.vendor_jobs import only_vendors_left

    deadline = time.monotonic() + timeout
    while True:
        request = requests.load(app, request_id)
        done, total = task_counts(app, request_id)
        if on_progress:
            on_progress(request, done, total)
        if State(request.state) in SETTLED or (
                request.state == State.IN_PROGRESS and only_vendors_left(app, request_id)):
            return request
        if time.monotonic() > deadline:
            return request
        time.sleep(poll)
