"""What ``dsar worker`` hands to Dramatiq's worker processes (RabbitMQ or Redis):
``workflows.entry:setup``, which Dramatiq calls in each process before it starts the worker.

Importing this module builds nothing. In each process :func:`setup` first arranges to stop
when Dramatiq's parent process dies (:func:`workflows.lifeline.die_with_parent`), builds the
app from the environment and declares the actors; once its worker has booted, the process runs
an outbox relay and the periodic watch beside it, and on Redis gives a dead worker's messages
back every few seconds (:func:`workflows.broker.requeue_dead_workers`); all stop before the
worker shuts down, after the tasks in hand are finished (Dramatiq's SIGTERM handling). Modules
named after it on Dramatiq's command line (``dsar worker --test-hook``) are imported after
:func:`setup`, and can reach the App through :func:`workflows.runtime.app_of`.
"""

from __future__ import annotations

import logging
import threading

import dramatiq

from dsar import logs
from dsar.app import App
from workflows.broker import REDIS_MAINTENANCE_SECONDS, requeue_dead_workers
from workflows.lifeline import die_with_parent
from workflows.relay import Relay
from workflows.runtime import setup_broker
from workflows.watch import Watch

log = logging.getLogger("dsar.worker")


class FleetServices(dramatiq.Middleware):
    """Starts the relay, the watch and the dead-worker requeue with the worker, stops them
    with it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.relay: Relay | None = None
        self.watch: Watch | None = None
        self.stopping = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.relay = Relay(self.app, broker)
        self.watch = Watch(self.app, self.app.settings.watch_interval)
        self.relay.start()
        self.watch.start()
        if type(broker).__name__ == "RedisBroker":  # RabbitMQ does it by itself
            threading.Thread(target=self._requeue_loop, args=(broker,), name="dsar-requeue",
                             daemon=True).start()

    def _requeue_loop(self, broker: dramatiq.Broker) -> None:
        while not self.stopping.wait(REDIS_MAINTENANCE_SECONDS):
            try:
                requeue_dead_workers(broker)
            except Exception as exc:  # the broker away for a moment: try again next round
                log.warning("could not requeue dead workers' messages (%s)", type(exc).__name__)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stopping.set()
        for service in (self.watch, self.relay):
            if service is not None:
                service.stop()


def setup() -> None:
    """Build this worker process's App from the environment and its broker with every actor,
    the fleet's services and, with DSAR_METRICS_PORT, the metrics; the broker becomes
    Dramatiq's global one, which Dramatiq's command line then runs (and the modules it imports
    after this one find)."""
    die_with_parent()
    app = App.from_env()
    logs.configure(app.settings.log_format)
    broker = setup_broker(app)
    dramatiq.set_broker(broker)
    broker.add_middleware(FleetServices(app))
    if app.settings.metrics_port:
        from workflows.metrics import FleetMetrics

        broker.add_middleware(FleetMetrics(app, min(15.0, app.settings.watch_interval)))
