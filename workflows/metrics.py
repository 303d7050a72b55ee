"""Prometheus metrics for ``dsar worker --metrics-port N``.

Dramatiq's own middleware counts messages, errors, retries and durations per actor; this adds
two gauges about the work itself, refreshed by every worker process from the state database:

- ``dsar_requests{state=…}``: requests in each state;
- ``dsar_nearest_deadline_days``: days from today to the nearest due date of an open request
  (negative when one is overdue);

and a histogram of the tasks this process ran, whether from a message or handed off (see
:mod:`workflows.fanout`), so it covers tasks that Dramatiq's per-message durations do not:

- ``dsar_task_seconds{system, action, outcome}``: how long each task attempt took;
  ``outcome`` is ``done``, ``retry``, ``failed`` or ``lost``.

The exposition server listens on ``DSAR_METRICS_PORT`` (Dramatiq's own reads
``dramatiq_prom_port``, which the worker's parent process never sees), and also answers
``/healthz`` and ``/readyz`` (:mod:`workflows.health`). No identity or request id is ever a
label.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import dramatiq
import sqlalchemy as sa
from dramatiq.middleware import prometheus

from dsar.app import App
from dsar.db.models import Request
from dsar.lifecycle import TERMINAL, State
from dsar.settings import Settings
from workflows.task import TaskObservers

log = logging.getLogger("dsar.metrics")


def run_exposition_server() -> None:
    """The forked process that serves ``/metrics``, ``/healthz`` and ``/readyz`` on
    DSAR_METRICS_PORT; it stops when the worker's parent process dies
    (:func:`workflows.lifeline.die_with_parent`)."""
    from http.server import ThreadingHTTPServer

    from workflows.health import WorkerHealthHandler
    from workflows.lifeline import die_with_parent

    die_with_parent()
    WorkerHealthHandler.parent = os.getppid()
    port = Settings.from_env().metrics_port or prometheus.HTTP_PORT
    with ThreadingHTTPServer((prometheus.HTTP_HOST, port), WorkerHealthHandler) as httpd:
        httpd.serve_forever()


def request_figures(app: App) -> tuple[dict[str, int], int | None]:
    """(requests per state, days to the nearest due date of an open request or None)."""
    open_states = [s.value for s in State if s not in TERMINAL]
    with app.db.session() as session:
        counts = dict(session.execute(
            sa.select(Request.state, sa.func.count()).group_by(Request.state)).all())
        dues = session.execute(sa.select(Request.due, Request.extended_due)
                               .where(Request.state.in_(open_states))).all()
    today = app.now().date()
    nearest = min(((ext or due) - today).days for due, ext in dues) if dues else None
    return {s.value: int(counts.get(s.value, 0)) for s in State}, nearest


class FleetMetrics(prometheus.Prometheus):
    """Dramatiq's Prometheus middleware, served on DSAR_METRICS_PORT, plus dsar's gauges."""

    def __init__(self, app: App, interval: float = 15.0) -> None:
        super().__init__()
        self.app, self.interval = app, interval
        self.stopping = threading.Event()

    @property
    def forks(self) -> list[Any]:
        return [run_exposition_server]

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        super().after_process_boot(broker)
        import prometheus_client as prom

        self.requests_gauge = prom.Gauge("dsar_requests", "Requests by state.", ["state"],
                                         registry=None, multiprocess_mode="mostrecent")
        self.deadline_gauge = prom.Gauge(
            "dsar_nearest_deadline_days", "Days to the nearest due date of an open request.",
            registry=None, multiprocess_mode="mostrecent")
        self.task_seconds = prom.Histogram(
            "dsar_task_seconds", "Task attempts by system, action and outcome.",
            ["system", "action", "outcome"], registry=None,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, float("inf")))
        self.app.local(TaskObservers).append(self.observe_task)

    def observe_task(self, system: str, action: str, outcome: str, seconds: float) -> None:
        self.task_seconds.labels(system, action, outcome).observe(seconds)

    def refresh(self) -> None:
        counts, nearest = request_figures(self.app)
        for state, count in counts.items():
            self.requests_gauge.labels(state).set(count)
        if nearest is not None:
            self.deadline_gauge.set(nearest)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        def loop() -> None:
            while True:
                try:
                    self.refresh()
                except Exception:
                    log.warning("could not refresh the request gauges; will try again")
                if self.stopping.wait(self.interval):
                    return

        threading.Thread(target=loop, name="dsar-metrics", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stopping.set()
