"""Shared set-up for the completion-record tests: an App on SQLite or PostgreSQL with a clock
the test moves, and requests completed the way the fleet completes them (Task and EvidenceRow
rows written directly, then build_record inside the completing transaction).

Other test modules import these helpers; the one test here checks the set-up itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.crypto import Keys
from dsar.db.engine import StateDB
from dsar.db.models import Bundle, EvidenceRow, Request, Task
from dsar.evidence import CollectionEvidence
from dsar.identities import Identity
from dsar.records import keys
from dsar.records.record import build_record
from dsar.settings import Settings
from tests import services

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
BACKENDS = ["sqlite", "postgres"]


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: datetime = field(default=START)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_app(backend: str, tmp_path: Path, *, generate_key: bool = True) -> Iterator[App]:
    """An upgraded App on ``backend`` with its own data dir, signing keyring and clock.

    The keyring is generated up front when ``generate_key`` (PostgreSQL never makes one on
    its own). PostgreSQL databases are created for the test and dropped after it.
    """
    data_dir = tmp_path / f"data-{backend}"
    data_dir.mkdir(parents=True, exist_ok=True)
    url = (f"sqlite:///{data_dir / 'state.sqlite3'}" if backend == "sqlite"
           else services.create_postgres_database())
    env = {"DSAR_DATA_DIR": str(data_dir), "DSAR_DATABASE_URL": url,
           "DSAR_LEDGER_ORIGIN": "test.dsar.local/ledger"}
    settings = Settings.from_env(env)
    app = App(settings=settings, keys=Keys.load(None, data_dir), db=StateDB(url), clock=Clock())
    app.db.upgrade()
    if generate_key:
        keys.generate(settings.signing_keys_dir)
    try:
        yield app
    finally:
        app.db.dispose()
        if backend == "postgres":
            services.drop_postgres_database(url)


def clock_of(app: App) -> Clock:
    assert isinstance(app.clock, Clock)
    return app.clock


def evidence(system: str, collection: str, action: str, **fields: Any) -> CollectionEvidence:
    """Evidence as a connector reports it: counts, digests and keyed hashes only."""
    digest = hashlib.sha256(f"{system}/{collection}/{action}".encode()).hexdigest()
    base: dict[str, Any] = {"found": 2, "duration_ms": 12, "digest": f"sha256:{digest}",
                            "item_hashes": [digest[:32], digest[32:]]}
    if action == "erase":
        base.update(deleted=2, remaining=0)
    else:
        base.update(collected=2)
    base.update(fields)
    return CollectionEvidence(system=system, collection=collection, action=action, **base)


DEFAULT_EVIDENCE = (
    ("crm", "customers", "erase", {"deleted": 1, "masked": 1, "retained": 1,
                                   "retained_ground": "Art. 17(3)(b)",
                                   "retained_period": "P6Y"}),
    ("crm", "orders", "erase", {}),
    ("s3", "uploads", "erase", {"counts": {"versions_deleted": 3}}),
)


def complete_request(
    app: App, *, kind: str = "erasure", regime: str | None = None,
    items: tuple[tuple[str, str, str, dict[str, Any]], ...] = DEFAULT_EVIDENCE,
    pause_first: bool = False, extend: bool = False, export_bundle: bool = False,
    days: float = 5,
) -> str:
    """Submit a request, let ``days`` pass, write the fleet's tasks and evidence, and complete
    it with its record in one transaction; return the request id."""
    clock = clock_of(app)
    who = [Identity("email", "email", "jane@example.com")]
    if pause_first:
        made = requests.submit(app, kind, who, regime=regime, submitted_by="tester")
        clock.advance(days=1)
        requests.confirm_identity(app, made.request.id, "email-link", "tester")
    else:
        made = requests.submit(app, kind, who, regime=regime, submitted_by="tester",
                               identity_method="email-link")
    request_id = made.request.id
    if extend:
        clock.advance(hours=2)
        requests.extend(app, request_id, "complex request: many systems", "dpo")
    clock.advance(days=days)
    now = clock.now
    with app.db.session() as session:
        tasks: dict[tuple[str, str], int] = {}
        for system, collection, action, extra in items:
            if (system, action) not in tasks:
                tasks[(system, action)] = session.execute(
                    sa.insert(Task).values(
                        request_id=request_id, system=system, kind="sql", action=action,
                        state="done", depends_on=[], attempts=1, started_at=now,
                        finished_at=now).returning(Task.id)).scalar_one()
            body = evidence(system, collection, action, **extra).to_dict()
            session.execute(sa.insert(EvidenceRow).values(
                request_id=request_id, task_id=tasks[(system, action)], system=system,
                collection=collection, action=action, body=body, recorded_at=now))
        if export_bundle:
            session.add(Bundle(id="bdl_" + request_id[4:], request_id=request_id,
                               location="file:///tmp/x.zip", sha256="ab" * 32, size=1234,
                               created_at=now, link_expires_at=now + timedelta(days=30),
                               delete_after=now + timedelta(days=30)))
        session.flush()
        request = session.get(Request, request_id)
        assert request is not None
        request.completed_at = now
        build_record(session, app, request)
        request.state = "completed"
    return request_id


def count_rows(app: App, table: str) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_setup_completes_a_request_with_one_record(tmp_path: Path) -> None:
    for app in make_app("sqlite", tmp_path):
        request_id = complete_request(app)
        assert request_id.startswith("dsr_")
        assert count_rows(app, "completion_records") == count_rows(app, "ledger_entries") == 1
