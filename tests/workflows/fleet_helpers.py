"""Helpers for the fleet tests: isolated broker namespaces, a fleet environment, real workers.

- :func:`rabbit_vhost`: a RabbitMQ virtual host of its own for one test (deleted afterwards;
  a test that stops the broker uses :mod:`tests.workflows.private_rabbit` instead);
- :func:`redis_db`: a Redis database number claimed for one test (flushed afterwards);
- :class:`Fleet`: the environment of one fleet (PostgreSQL or SQLite state, a broker, a data
  map, a signing key), an :class:`~dsar.app.App` on it, and ``dsar worker`` processes started
  in their own process groups so a test can SIGKILL or SIGTERM them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from dsar.app import App
from dsar.db.models import CompletionRecord, EvidenceRow, OutboxMessage, Request, Task
from dsar.identities import parse_identities
from tests import services
from tests.chinook import chinook_map, copy_sqlite

REPO = Path(__file__).resolve().parents[2]
DSAR = str(Path(sys.executable).parent / "dsar")
CUSTOMER = "luisg@embraer.com.br"  # Chinook customer 1: 7 invoices, 38 invoice lines
SYSTEMS = ("shop_a", "shop_b", "shop_c", "shop_d")


# One home for the test services' helpers (tests/services.py, which honours DSAR_TEST_*_URL);
# the names the fleet tests use stay.
rabbitmqctl = services.rabbitmqctl
rabbit_vhost = services.rabbitmq_vhost
redis_db = services.redis_database


def wait_until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


class Fleet:
    """One fleet's environment, its App, and the worker processes started for it."""

    def __init__(self, tmp: Path, state_url: str, broker_url: str, datamap: str | dict[str, Any],
                 extra: Mapping[str, str] | None = None, task_delay: float | None = None
                 ) -> None:
        """``task_delay``: seconds every worker holds each task between its connector call and
        recording its result (:mod:`tests.workflows.task_delay`)."""
        from dsar.records import keys as signing

        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        map_path = tmp / "map.yaml"
        map_path.write_text(datamap if isinstance(datamap, str) else yaml.safe_dump(datamap))
        signing_dir = tmp / "signing-keys"
        if not signing_dir.exists():
            signing.generate(signing_dir)
        self.env: dict[str, str] = {
            "DSAR_DATA_DIR": str(tmp / "data"),
            "DSAR_DATABASE_URL": state_url,
            "DSAR_BROKER_URL": broker_url,
            "DSAR_DATAMAP": str(map_path),
            "DSAR_SIGNING_KEYS_DIR": str(signing_dir),
            "DSAR_EXPORT_URL": str(tmp / "exports"),
            "DSAR_MASTER_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            "DSAR_TASK_LEASE_SECONDS": "3",
            "DSAR_WATCH_INTERVAL": "1",
            **(extra or {}),
        }
        self.task_delay = task_delay
        self.workers: list[subprocess.Popen[bytes]] = []
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            app = App.from_env(self.env, migrate=False)
            if app.db.current_revision() != app.db.head_revision():
                app.db.upgrade()
            self._app = app
        return self._app

    def apply_env(self, monkeypatch: Any) -> None:
        """Put the fleet's variables into this process (connectors read ``url_env`` here)."""
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)

    def submit(self, kind: str, email: str = CUSTOMER) -> str:
        from dsar import requests

        sub = requests.submit(self.app, kind, parse_identities([email]), submitted_by="fleet-test",
                              identity_method="test")
        return sub.request.id

    # -- worker processes ---------------------------------------------------------------------

    def start_worker(self, processes: int = 1, threads: int = 2, queues: tuple[str, ...] = (),
                     extra: Mapping[str, str] | None = None,
                     args: tuple[str, ...] = (),
                     task_delay: float | None = None) -> subprocess.Popen[bytes]:
        """``dsar worker`` in its own process group, once it has booted; its output goes to a
        log file in tmp. The state database is migrated first, as `dsar db upgrade` would be:
        workers refuse an unmigrated one. ``task_delay`` overrides the fleet's."""
        _ = self.app
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        argv = [DSAR, "worker", "-p", str(processes), "-t", str(threads), *args]
        for queue in queues:
            argv += ["-Q", queue]
        env = {**os.environ, **self.env, **(extra or {})}
        delay = self.task_delay if task_delay is None else task_delay
        if delay:
            argv += ["--test-hook", "tests.workflows.task_delay"]
            env["TEST_TASK_DELAY"] = str(delay)
        proc = subprocess.Popen(argv, env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)
        log.close()
        self.workers.append(proc)
        self._wait_ready(len(self.workers) - 1, proc, processes)
        return proc

    def _wait_ready(self, index: int, proc: subprocess.Popen[bytes], processes: int) -> None:
        """Until every worker process has booted: a signal sent earlier finds Dramatiq still
        starting up, when it kills rather than drains."""
        deadline = time.monotonic() + 90
        while self.worker_log(index).count("Worker process is ready for action") < processes:
            if proc.poll() is not None:
                raise RuntimeError(f"dsar worker exited with {proc.returncode}:\n"
                                   f"{self.worker_log(index)[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("dsar worker did not become ready in 90 s")
            time.sleep(0.1)

    def worker_log(self, index: int) -> str:
        return (self.tmp / f"worker-{index}.log").read_text(errors="replace")

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """SIGKILL the worker's whole process group (the Dramatiq parent and children), as a
        crash would; any other signal goes to the parent only, which forwards it once to its
        children (a child that receives SIGTERM twice is killed rather than drained)."""
        with suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc, signal.SIGKILL)
                proc.wait(timeout=10)

    def close(self) -> None:
        self.stop_workers()
        if self._app is not None:
            self._app.db.dispose()

    # -- looking at state ---------------------------------------------------------------------

    def scalar(self, stmt: Any) -> Any:
        with self.app.db.session() as session:
            return session.scalar(stmt)

    def state(self, request_id: str) -> str:
        return str(self.scalar(sa.select(Request.state).where(Request.id == request_id)))

    def tasks(self, request_id: str) -> list[dict[str, Any]]:
        with self.app.db.session() as session:
            rows = session.scalars(sa.select(Task).where(Task.request_id == request_id)
                                   .order_by(Task.id)).all()
            return [{"id": t.id, "system": t.system, "action": t.action, "state": t.state,
                     "attempts": t.attempts, "started_at": t.started_at,
                     "finished_at": t.finished_at, "error": t.error, "precount": t.precount}
                    for t in rows]

    def evidence(self, request_id: str) -> list[tuple[int, str, str, dict[str, Any]]]:
        with self.app.db.session() as session:
            rows = session.execute(sa.select(EvidenceRow.task_id, EvidenceRow.collection,
                                             EvidenceRow.action, EvidenceRow.body)
                                   .where(EvidenceRow.request_id == request_id)
                                   .order_by(EvidenceRow.task_id, EvidenceRow.collection)).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def outbox_count(self, actor: str, arg: str | int) -> int:
        with self.app.db.session() as session:
            rows = session.scalars(sa.select(OutboxMessage.args)
                                   .where(OutboxMessage.actor == actor)).all()
        return sum(1 for args in rows if args == [arg])

    def pending_outbox(self) -> list[tuple[str, list[Any]]]:
        """Messages written and neither published nor withdrawn: (actor, args)."""
        with self.app.db.session() as session:
            return [(a, list(args)) for a, args in session.execute(
                sa.select(OutboxMessage.actor, OutboxMessage.args)
                .where(OutboxMessage.sent_at.is_(None)))]

    def record_count(self, request_id: str) -> int:
        return int(self.scalar(sa.select(sa.func.count()).select_from(CompletionRecord)
                               .where(CompletionRecord.request_id == request_id)))

    def wait_settled(self, request_ids: list[str], timeout: float = 60.0) -> dict[str, str]:
        from workflows.runtime import SETTLED

        settled = {s.value for s in SETTLED}

        def check() -> dict[str, str] | None:
            states = {rid: self.state(rid) for rid in request_ids}
            return states if all(s in settled for s in states.values()) else None

        try:
            return wait_until(check, timeout, f"requests {request_ids} to settle", poll=0.2)
        except AssertionError:
            logs = "\n".join(self.worker_log(i)[-3000:] for i in range(len(self.workers)))
            states = {rid: self.state(rid) for rid in request_ids}
            raise AssertionError(f"requests not settled: {states}\nworker logs:\n{logs}") from None


def sqlite_table(path: Path, ddl: str, rows: list[tuple[Any, ...]], insert: str) -> str:
    """A small SQLite database with one table, for a second system in a data map."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text(ddl))
        for row in rows:
            conn.exec_driver_sql(insert, row)
    engine.dispose()
    return f"sqlite:///{path}"


def several_chinooks(chinook_dir: Path, tmp: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """A data map of four SQL systems, each its own copy of Chinook."""
    systems, env = [], {}
    for name in SYSTEMS:
        folder = tmp / name
        folder.mkdir()
        var = f"{name.upper()}_URL"
        env[var] = copy_sqlite(chinook_dir, folder)
        system = yaml.safe_load(chinook_map("sqlite", url_env=var))["systems"][0]
        system["name"] = name
        systems.append(system)
    return {"version": 1, "controller": {"name": "Chinook Music Ltd"}, "systems": systems}, env


def dsar_cli(env: Mapping[str, str], *args: str,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``dsar`` command line with the fleet's environment."""
    return subprocess.run([DSAR, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
