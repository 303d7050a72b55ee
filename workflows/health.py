"""Liveness and readiness for workers (and anything else that serves HTTP, such as the portal).

- ``/healthz`` (liveness): 200 while the worker's parent process lives. The server runs in a
  process the parent forked, which dies with it (:mod:`workflows.lifeline`), so an answer at
  all means the worker is there; restart it when this fails.
- ``/readyz`` (readiness): 200 when the state database answers and is migrated to head and
  the broker accepts a connection; 503 with one line per problem otherwise. Stop sending work
  (or traffic) while this fails; do not restart for it.

``dsar worker --metrics-port N`` serves both beside ``/metrics``. :func:`readiness_problems`
and :func:`health_response` are plain functions so another server (the portal) can mount the
same checks. Answers never carry a URL, password or personal data: only what failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from dramatiq.middleware.prometheus import _metrics_handler

from dsar.app import App

CHECK_TIMEOUT = 3.0


def broker_problem(url: str, timeout: float = CHECK_TIMEOUT) -> str | None:
    """None when the broker at ``url`` accepts a connection, else what failed (no URL)."""
    try:
        if url.startswith(("amqp://", "amqps://")):
            import pika

            params = pika.URLParameters(url)
            params.socket_timeout = params.blocked_connection_timeout = timeout
            params.connection_attempts, params.retry_delay = 1, 0
            pika.BlockingConnection(params).close()
        elif url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_timeout=timeout,
                                          socket_connect_timeout=timeout)
            try:
                client.ping()
            finally:
                client.close()
    except Exception as exc:
        return f"broker unreachable ({type(exc).__name__})"
    return None


def state_db_problem(app: App) -> str | None:
    """None when the state database answers and its schema is at head, else what failed."""
    try:
        with app.db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        if app.db.current_revision() != app.db.head_revision():
            return "state database not migrated to head (run `dsar db upgrade`)"
    except Exception as exc:
        return f"state database unreachable ({type(exc).__name__})"
    return None


def readiness_problems(app: App) -> list[str]:
    """Everything that keeps this host from doing work now; empty when it is ready."""
    return [p for p in (state_db_problem(app), broker_problem(app.settings.broker_url)) if p]


def health_response(path: str, app: Callable[[], App],
                    alive: Callable[[], bool] = lambda: True) -> tuple[int, str] | None:
    """``(status, body)`` for ``/healthz`` and ``/readyz``; None for any other path.
    ``app`` is called only for readiness (building it may itself fail: that is a problem)."""
    if path == "/healthz":
        return (200, "ok\n") if alive() else (503, "parent process gone\n")
    if path == "/readyz":
        try:
            problems = readiness_problems(app())
        except Exception as exc:
            problems = [f"cannot load the settings ({type(exc).__name__})"]
        if problems:
            return 503, "".join(f"not ready: {p}\n" for p in problems)
        return 200, "ready\n"
    return None


class WorkerHealthHandler(_metrics_handler):  # type: ignore[misc]
    """Dramatiq's ``/metrics`` handler, plus ``/healthz`` and ``/readyz``."""

    parent = os.getppid()
    _app: App | None = None

    @classmethod
    def app(cls) -> App:
        if cls._app is None:
            cls._app = App.from_env(migrate=False)
        return cls._app

    def do_GET(self) -> None:
        answer = health_response(self.path.split("?", 1)[0], self.app,
                                 lambda: os.getppid() == self.parent)
        if answer is None:
            super().do_GET()
            return
        status, body = answer
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
