"""Operating the fleet: queues per connector kind, SIGTERM, per-system caps across workers,
deadline priority and the deadline watch, JSON logs, ``submit --wait`` and metrics."""

from __future__ import annotations

import itertools
import json
import signal
import socket
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import connectors.sql
from dsar import requests
from dsar.db.models import AuditEvent, Request
from dsar.identities import parse_identities
from dsar.kinds import kind_of
from dsar.lifecycle import TaskState
from tests.chinook import chinook_map, copy_sqlite
from tests.workflows.fleet_helpers import (
    CUSTOMER,
    Fleet,
    dsar_cli,
    rabbit_vhost,
    several_chinooks,
    wait_until,
)
from workflows import fanout
from workflows.runtime import InProcessFleet, wait_for
from workflows.watch import watch_deadlines

pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_priority_earliest_deadline_first() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)

    def priority(days: int) -> int:
        req = Request(due=now.date() + timedelta(days=days), extended_due=None)
        return fanout.priority_for(req, now)

    values = [priority(d) for d in (-5, 0, 3, 4, 10, 20, 30, 36, 60, 90)]
    assert values == sorted(values, reverse=True)
    assert priority(-5) == priority(0) == 9 and priority(90) == 0
    assert all(0 <= v <= 9 for v in values)


def test_deadline_watch_flags_once_with_audit_events(
        postgres_url: str, tmp_path: Path, chinook_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", chinook_map("sqlite"),
                  {"CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path)})
    fleet.apply_env(monkeypatch)
    app = fleet.app
    try:
        def submit(days_ago: int) -> str:
            return requests.submit(app, "access", parse_identities([CUSTOMER]),
                                   received_at=app.now() - timedelta(days=days_ago),
                                   submitted_by="t", identity_method="test").request.id

        fresh, soon, overdue = submit(0), submit(28), submit(45)
        assert watch_deadlines(app) >= 3
        locking: list[str] = []

        def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
            if "FOR UPDATE" in statement:
                locking.append(statement)

        sa.event.listen(app.db.engine, "before_cursor_execute", record)
        try:
            assert watch_deadlines(app) == 0  # once per flag
        finally:
            sa.event.remove(app.db.engine, "before_cursor_execute", record)
        assert locking == []  # nothing to raise: no request row was locked
        with app.db.session() as session:
            events = session.execute(sa.select(AuditEvent.request_id, AuditEvent.event)
                                     .where(AuditEvent.actor == "deadline-watch")).all()
        flags: dict[str, list[str]] = {}
        for rid, event in events:
            flags.setdefault(rid, []).append(event)
        assert fresh not in flags
        assert sorted(flags[soon]) == ["due_soon", "extension_notice_due"]
        assert flags[overdue] == ["overdue"]
    finally:
        fleet.close()


@pytest.mark.rabbitmq
def test_system_cap_holds_across_workers(postgres_url: str, tmp_path: Path,
                                         chinook_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """max_concurrent_tasks 1: two fleets (separate consumers, shared state) never run two
    tasks of that system at once."""
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    datamap["systems"] = datamap["systems"][:2]
    datamap["systems"][0]["max_concurrent_tasks"] = 1
    capped = datamap["systems"][0]["name"]
    intervals: list[tuple[float, float]] = []
    lock = threading.Lock()

    class SlowSql(connectors.sql.SqlConnector):
        def collect(self, keys: Any, sink: Any) -> Any:
            start = time.monotonic()
            time.sleep(0.4)
            result = super().collect(keys, sink)
            if self.system.name == capped:
                with lock:
                    intervals.append((start, time.monotonic()))
            return result

    monkeypatch.setattr(kind_of("sql"), "open_connector", SlowSql)
    with rabbit_vhost() as url:
        fleet = Fleet(tmp_path / "fleet", postgres_url, url, datamap, env)
        fleet.apply_env(monkeypatch)
        try:
            ids = [fleet.submit("access") for _ in range(5)]
            with InProcessFleet(fleet.app, threads=4), InProcessFleet(fleet.app, threads=4):
                for rid in ids:
                    assert wait_for(fleet.app, rid, timeout=90).state == "completed"
        finally:
            fleet.close()
    assert len(intervals) == 5
    intervals.sort()
    for (_s1, end), (start, _e2) in itertools.pairwise(intervals):
        assert start >= end, f"two {capped} tasks overlapped: {intervals}"


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_queues_sigterm_json_logs_submit_wait_and_metrics(
        postgres_url: str, tmp_path: Path, chinook_dir: Path) -> None:
    port = free_port()
    with rabbit_vhost() as url:
        fleet = Fleet(tmp_path / "fleet", postgres_url, url, chinook_map("sqlite"),
                      {"CHINOOK_URL": copy_sqlite(chinook_dir, tmp_path),
                       "DSAR_LOG_FORMAT": "json",
                       "dramatiq_prom_db": str(tmp_path / "prom")})
        (tmp_path / "prom").mkdir()
        try:
            fleet.app  # noqa: B018 - migrate the state database
            fleet.start_worker(queues=("control",), args=("--metrics-port", str(port)))
            sql = fleet.start_worker(queues=("sql",), task_delay=2)
            request_id = fleet.submit("access")
            wait_until(lambda: any(t["state"] == TaskState.RUNNING
                                   for t in fleet.tasks(request_id)),
                       60, "the task to start on the sql worker")
            Fleet.kill(sql, signal.SIGTERM)  # finishes the task in hand, then stops
            assert sql.wait(30) == 0
            task = fleet.tasks(request_id)[0]
            assert (task["state"], task["attempts"]) == (TaskState.DONE, 1), \
                fleet.worker_log(1)[-3000:]
            assert fleet.wait_settled([request_id], 60)[request_id] == "completed"
            assert "run_sql_task" not in fleet.worker_log(0)  # -Q control took no task

            # its metrics go to the same multiprocess directory: either endpoint shows them
            fleet.start_worker(queues=("sql",), args=("--metrics-port", str(free_port())))
            waited = dsar_cli(fleet.env, "submit", "erasure", "--email", "ftremblay@gmail.com",
                              "--identity-verified", "test", "--wait", "--json")
            assert waited.returncode == 0, waited.stderr
            assert json.loads(waited.stdout)["state"] == "completed"

            def scrape() -> str | None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                timeout=5) as answer:
                        text = answer.read().decode()
                except OSError:
                    return None
                task = 'dsar_task_seconds_count{action="erase",outcome="done",system="chinook"}'
                done = 'dsar_requests{state="completed"}' in text and task in text
                return text if done else None

            metrics = wait_until(scrape, 30, "the metrics endpoint")
            assert "dramatiq_messages_total" in metrics
            assert 'actor_name="plan_request"' in metrics
            assert "@" not in metrics and request_id not in metrics
        finally:
            fleet.close()
        logs = fleet.worker_log(0) + fleet.worker_log(1) + fleet.worker_log(2)
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert lines, logs[-2000:]
        assert any(line.get("request_id") == request_id for line in lines)
        assert CUSTOMER not in logs and "ftremblay" not in logs and "Luís" not in logs


def test_data_map_is_parsed_once_per_version(tmp_path: Path, postgres_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from dsar.datamap import current

    fleet = Fleet(tmp_path / "fleet", postgres_url, "memory://", chinook_map("sqlite"))
    calls = []
    real = current.parse_datamap
    monkeypatch.setattr(current, "parse_datamap", lambda *a: calls.append(1) or real(*a))
    try:
        first, digest = current.load_map(fleet.app)
        assert current.load_map(fleet.app) == (first, digest)
        assert len(calls) == 1
        path = Path(fleet.env["DSAR_DATAMAP"])
        changed = yaml.safe_load(path.read_text())
        changed["controller"]["name"] = "Changed Ltd"
        path.write_text(yaml.safe_dump(changed))
        second, digest2 = current.load_map(fleet.app)
        assert digest2 != digest and second.controller.name == "Changed Ltd"
        assert len(calls) == 2
    finally:
        fleet.close()


def test_deadline_watch_keeps_a_paused_gdpr_deadline_moving(tmp_path: Path) -> None:
    """While a GDPR request waits for clarification its clock is stopped: the watch moves the
    stored due date on, so `dsar list --overdue` does not flag a request whose clock is off."""
    from datetime import UTC, datetime

    from dsar.app import App

    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path / "state")})
    start = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
    app.clock = lambda: start
    made = requests.submit(app, "access", parse_identities([CUSTOMER]), received_at=start,
                           submitted_by="t", identity_method="test")
    with app.db.session() as session:
        session.execute(sa.text("UPDATE requests SET state = 'verified' WHERE id = :id"),
                        {"id": made.request.id})
    requests.pause(app, made.request.id, "which account?", "t")
    due_at_pause = requests.load(app, made.request.id).due
    app.clock = lambda: start + timedelta(days=10)
    watch_deadlines(app)
    due_after = requests.load(app, made.request.id).due
    assert due_at_pause.isoformat() == "2025-04-07"  # 5 April 2025 is a Saturday
    # ten paused days are added to the month before the weekend roll: 5 April + 10 days
    assert due_after.isoformat() == "2025-04-15"
