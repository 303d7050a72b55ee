"""The module ``dsar worker`` hands to Dramatiq's worker processes (RabbitMQ or Redis).

Each process builds the app from the environment, declares the actors, and, once its worker
has booted, runs an outbox relay and the periodic watch beside it; both stop before the worker
shuts down, after the tasks in hand are finished (Dramatiq's SIGTERM handling).
"""

from __future__ import annotations

import os

import dramatiq

from dsar import logs
from dsar.app import App
from workflows.relay import Relay
from workflows.runtime import setup_broker
from workflows.watch import Watch


class FleetServices(dramatiq.Middleware):
    """Starts the relay and the watch with the worker, stops them with it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.relay: Relay | None = None
        self.watch: Watch | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.relay = Relay(self.app, broker)
        self.watch = Watch(self.app, float(os.environ.get("DSAR_WATCH_INTERVAL", "30")))
        self.relay.start()
        self.watch.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for service in (self.watch, self.relay):
            if service is not None:
                service.stop()


app = App.from_env()
logs.configure(app.settings.log_format)
broker = setup_broker(app)
broker.add_middleware(FleetServices(app))
if os.environ.get("DSAR_METRICS_PORT"):
    from workflows.metrics import FleetMetrics

    broker.add_middleware(FleetMetrics(app, float(os.environ.get("DSAR_WATCH_INTERVAL", "15"))))
