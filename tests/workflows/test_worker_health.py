"""Liveness and readiness of a real ``dsar worker --metrics-port N``.

``/healthz`` answers while the worker lives; ``/readyz`` says "ready" while the state database
(migrated) and the broker answer, and names what fails otherwise. The broker that goes away is
a private RabbitMQ node of the test's own.
"""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dsar.app import App
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import Fleet, wait_until
from tests.workflows.private_rabbit import free_port, private_rabbit
from workflows.health import health_response

pytestmark = [pytest.mark.postgres]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def refused(port: int) -> bool:
    try:
        get(port, "/healthz")
    except (urllib.error.URLError, ConnectionError):
        return True
    return False


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_worker_health_and_readiness(tmp_path: Path, chinook_dir: Path,
                                     postgres_url: str) -> None:
    with private_rabbit(tmp_path) as rabbit:
        fleet = Fleet(tmp_path / "fleet", postgres_url, rabbit.url, chinook_map("sqlite"),
                      {"CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path)})
        port = free_port()
        try:
            worker = fleet.start_worker(processes=1, threads=1, args=("--metrics-port", str(port)))
            assert wait_until(lambda: not refused(port) and get(port, "/healthz"), 30,
                              "the health server") == (200, "ok\n")
            assert get(port, "/readyz") == (200, "ready\n")
            status, metrics = get(port, "/metrics")
            assert status == 200 and "dsar_requests{" in metrics
            rabbit.stop_app()
            status, body = get(port, "/readyz")
            assert (status, body) == (503, "not ready: broker unreachable (AMQPConnectionError)\n")
            assert "guest" not in body and str(rabbit.port) not in body
            assert get(port, "/healthz") == (200, "ok\n"), "not a reason to restart the worker"
            rabbit.start_app()
            assert get(port, "/readyz") == (200, "ready\n")
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            wait_until(lambda: refused(port), 15, "the health server to go with its worker")
        finally:
            fleet.close()


def test_readiness_names_an_unmigrated_state_database(postgres_url: str, tmp_path: Path) -> None:
    env = {"DSAR_DATABASE_URL": postgres_url, "DSAR_BROKER_URL": "memory://",
           "DSAR_DATA_DIR": str(tmp_path / "data")}
    app = App.from_env(env, migrate=False)
    try:
        assert health_response("/readyz", lambda: app) == (
            503, "not ready: state database not migrated to head (run `dsar db upgrade`)\n")
        app.db.upgrade()
        assert health_response("/readyz", lambda: app) == (200, "ready\n")
        assert health_response("/healthz", lambda: app, lambda: False) == (
            503, "parent process gone\n")
        assert health_response("/metrics", lambda: app) is None
    finally:
        app.db.dispose()
