"""One log format for every line a worker prints: with ``DSAR_LOG_FORMAT=json`` each line a
real ``dsar worker`` writes to standard error (dsar's own, Dramatiq's, Alembic's, the
libraries') is one JSON object, on RabbitMQ (Dramatiq's worker processes) and on the
in-process broker; Alembic's plugin announcements are gone; no line holds a subject's email.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsar import logs
from tests.workflows.fleet_helpers import CUSTOMER, DSAR, REPO, Fleet, rabbit_vhost, wait_until


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the worker printed nothing"
    parsed = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            pytest.fail(f"a line that is not JSON: {line[:300]!r}")
        assert isinstance(data, dict), line
        assert {"time", "level", "logger", "message"} <= data.keys(), line
        parsed.append(data)
    return parsed


def _check(text: str) -> list[dict[str, object]]:
    assert CUSTOMER.lower() not in text.lower()
    assert CUSTOMER.split("@")[0].lower() not in text.lower()
    lines = _json_lines(text)
    assert not any("plugin" in str(d["message"]).lower() for d in lines), "Alembic's chatter"
    return lines


def test_rabbitmq_worker_prints_only_json(one_system: Fleet) -> None:
    fleet = one_system
    with rabbit_vhost() as url:
        fleet.env["DSAR_BROKER_URL"] = url
        fleet.env["DSAR_LOG_FORMAT"] = "json"
        fleet._app = None
        request_id = fleet.submit("access")
        fleet.start_worker(processes=2, threads=2)
        wait_until(lambda: fleet.state(request_id) == "completed", 90, "the request completed")
        fleet.stop_workers()
    lines = _check(fleet.worker_log(0))
    loggers = {d["logger"] for d in lines}
    assert any(str(name).startswith("dramatiq") for name in loggers), loggers
    assert any(d.get("request_id") == request_id for d in lines)


def test_in_process_worker_prints_only_json(one_system: Fleet, tmp_path: Path) -> None:
    fleet = one_system
    fleet.env["DSAR_LOG_FORMAT"] = "json"
    request_id = fleet.submit("erasure")
    err = tmp_path / "stderr.log"
    with open(err, "wb") as sink:
        proc = subprocess.Popen([DSAR, "worker", "-t", "2"], env={**os.environ, **fleet.env},
                                stdout=subprocess.DEVNULL, stderr=sink, cwd=REPO,
                                start_new_session=True)
    try:
        wait_until(lambda: fleet.state(request_id) == "completed", 90, "the request completed")
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = _check(err.read_text())
    assert any(d.get("request_id") == request_id for d in lines)


@given(message=st.text(), name=st.text(min_size=1).filter(lambda s: s.strip(".") == s))
def test_any_message_is_one_json_line(message: str, name: str) -> None:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and json.loads(line)["message"] == message


def test_the_handler_follows_sys_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dramatiq's worker processes swap sys.stderr for a pipe after logging is set up."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    logs.configure("json")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("dsar.test").info("one")
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("dramatiq.test").info("two")
    assert json.loads(first.getvalue())["message"] == "one"
    assert json.loads(second.getvalue())["logger"] == "dramatiq.test"
