"""The module ``dsar worker`` hands to Dramatiq's worker processes (RabbitMQ or Redis).

Each process first arranges to stop when Dramatiq's parent process dies
(:func:`workflows.lifeline.die_with_parent`), builds the app from the environment, declares the
actors, and, once its worker has booted, runs an outbox relay and the periodic watch beside it,
and on Redis gives a dead worker's messages back every few seconds
(:func:`workflows.broker.requeue_dead_workers`); all stop before the worker shuts down, after
the tasks in hand are finished (Dramatiq's SIGTERM handling).
"""

from __future__ import annotations

import logging
import os
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
        self.watch = Watch(self.app, float(os.environ.get("DSAR_WATCH_INTERVAL", "30")))
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


die_with_parent()
app = App.from_env()
logs.configure(app.settings.log_format)
broker = setup_broker(app)
broker.add_middleware(FleetServices(app))
if os.environ.get("DSAR_METRICS_PORT"):
    from workflows.metrics import FleetMetrics

    broker.add_middleware(FleetMetrics(app, float(os.environ.get("DSAR_WATCH_INTERVAL", "15"))))
