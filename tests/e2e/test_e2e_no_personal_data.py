"""End to end: after access, export and erasure requests, no personal data is anywhere it must
not be: completion records, the ledger export, log lines, broker messages, or (collected values)
the state database.

Runs the demo company (SQLite shop, S3 bucket on moto's server) through the real worker code,
capturing every log record and every message the broker is given.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from rich.console import Console

from dsar.identities import normalise_phone
from interfaces.demo.company import build_database
from interfaces.demo.run import demo_environment, run_demo


@pytest.fixture
def demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             caplog: pytest.LogCaptureFixture) -> Iterator[dict[str, Any]]:
    saved = dict(os.environ)
    messages: list[bytes] = []
    original = StubBroker.enqueue

    def recording_enqueue(self: StubBroker, message: Any, *, delay: Any = None) -> Any:
        messages.append(message.encode())
        return original(self, message, delay=delay)

    monkeypatch.setattr(StubBroker, "enqueue", recording_enqueue)
    caplog.set_level(logging.DEBUG)
    try:
        result = run_demo(tmp_path / "demo", Console(file=io.StringIO()), customers=60)
        assert dict(os.environ) == saved, "the demo changed the process's environment"
        yield {"result": result, "folder": tmp_path / "demo", "messages": messages,
               "logs": "\n".join(r.getMessage() + " " + json.dumps(r.__dict__, default=str)
                                 for r in caplog.records),
               "environ": demo_environment(tmp_path / "demo", "http://127.0.0.1:9")}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def subject_values(tmp_path: Path) -> list[str]:
    """The subject's data as the shop held it before any request (same seed, fresh copy)."""
    subject, _ = build_database(tmp_path / "pristine.sqlite3", customers=60)
    db = sqlite3.connect(tmp_path / "pristine.sqlite3")
    customer = db.execute("SELECT email, phone, first_name || ' ' || last_name, street "
                          "FROM customers WHERE id = 1").fetchone()
    orders = [r[0] for r in db.execute(
        "SELECT billing_address FROM orders WHERE customer_id = 1")]
    tickets = [r[0] for r in db.execute(
        "SELECT body FROM support_tickets WHERE customer_id = 1")]
    db.close()
    values = [customer[0], customer[0].upper(), customer[1], normalise_phone(customer[1]),
              customer[2], customer[3], *orders, *tickets]
    assert subject.email == customer[0]
    return [v for v in values if v and len(v) >= 6]


def state_database_text(folder: Path) -> str:
    db = sqlite3.connect(folder / "state" / "state.sqlite3")
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    out = []
    for table in tables:
        for row in db.execute(f'SELECT * FROM "{table}"'):
            out += [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row]
    db.close()
    return "\n".join(out)


def test_no_identity_or_collected_value_leaks(demo_run: dict[str, Any], tmp_path: Path) -> None:
    result, folder = demo_run["result"], demo_run["folder"]
    assert [r["state"] for r in result.requests] == ["completed"] * 3
    assert result.all_verified
    values = subject_values(tmp_path)
    assert len(values) >= 6
    records = "\n".join(p.read_text() for p in (folder / "records").glob("*.json"))
    assert "signatures" in records and "payload" in records
    assert demo_run["messages"], "the broker was given no messages to inspect"
    places = {
        "completion records and the ledger export": records,
        "log lines": demo_run["logs"],
        "broker messages": "\n".join(m.decode("utf-8", "replace") for m in demo_run["messages"]),
        "the state database": state_database_text(folder),
    }
    for place, text in places.items():
        leaked = [v for v in values if v.lower() in text.lower()]
        assert not leaked, f"personal data found in {place}: {len(leaked)} value(s)"
    # the records also hold no digest-free copy: payloads are base64 of JSON; decode and look
    for path in (folder / "records").glob("dsr_*.json"):
        import base64

        envelope = json.loads(path.read_text())["envelope"]
        payload = base64.b64decode(envelope["payload"]).decode()
        assert not [v for v in values if v.lower() in payload.lower()]


def test_staged_data_and_discovered_keys_are_purged(demo_run: dict[str, Any]) -> None:
    db = sqlite3.connect(demo_run["folder"] / "state" / "state.sqlite3")
    assert db.execute("SELECT count(*) FROM staged_items").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM subject_keys").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM bundles").fetchone() == (2,)
    db.close()


def test_bundle_command_issues_a_link_that_downloads_the_bundle(demo_run: dict[str, Any]) -> None:
    import hashlib

    from click.testing import CliRunner
    from starlette.testclient import TestClient

    from cli import main
    from dsar.app import App
    from interfaces.portal import make_portal

    access = next(r for r in demo_run["result"].requests if r["kind"] == "access")
    environ = demo_run["environ"]  # the demo's settings, which it gave its App
    out = CliRunner(env=environ).invoke(main, ["bundle", access["id"], "--new-link", "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    token = shown["link"].rsplit("/download/", 1)[1]
    with TestClient(make_portal(App.from_env(environ), sweep_expired=False)) as portal:
        for _attempt in (1, 2):  # a link works repeatedly until it expires
            response = portal.get(f"/download/{token}/file")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).hexdigest() == shown["sha256"]
    missing = CliRunner(env=environ).invoke(main, ["bundle", "dsr_000000000000"])
    assert missing.exit_code != 0
    assert "has no bundle" in missing.output
