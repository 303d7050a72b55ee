"""The fleet's housekeeping: checkpoints, and deleting expired bundles without listing the
bundle store at every tick."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.bundles.store import open_store
from dsar.db.models import Bundle, Checkpoint
from tests.workflows.fleet_helpers import Fleet
from workflows import housekeeping, runner
from workflows.broker import QUEUES


def completed_access(fleet: Fleet) -> tuple[str, str]:
    """Run an access request to completion here; returns its bundle's id and blob name."""
    request_id = fleet.submit("access")
    runner.follow(fleet.app, runner.plan(fleet.app, request_id, run_here=QUEUES), QUEUES)
    assert fleet.state(request_id) == "completed"
    with fleet.app.db.session() as session:
        bundle = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)).one()
        return bundle.id, bundle.location.rsplit("/", 1)[1]


def later(app: Any, delta: timedelta) -> None:
    real = app.clock
    app.clock = lambda: real() + delta


def test_expired_bundles_are_deleted_at_most_once_per_sweep_interval(
        one_system: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSAR_RETENTION_SWEEP_SECONDS", "600")
    monkeypatch.setattr(housekeeping, "_LAST_SWEEP", {})
    app = one_system.app
    store = open_store(one_system.env["DSAR_EXPORT_URL"])
    first, first_blob = completed_access(one_system)
    housekeeping.periodic_housekeeping(app)  # sweeps: nothing has expired
    with app.db.session() as session:
        checkpoint = session.scalars(sa.select(Checkpoint)).one()
        assert checkpoint.size == 1  # the completion record's ledger entry

    later(app, timedelta(days=app.settings.link_ttl_days, minutes=-1))
    housekeeping.periodic_housekeeping(app)  # a minute before the link expires: kept
    assert store.exists(first_blob)
    later(app, timedelta(minutes=2))
    housekeeping.periodic_housekeeping(app)  # expired, but within the interval: not listed yet
    assert store.exists(first_blob)

    later(app, timedelta(minutes=10))
    housekeeping.periodic_housekeeping(app)
    assert not store.exists(first_blob) and not store.exists(first + ".json")
    with app.db.session() as session:
        assert session.get(Bundle, first).deleted_at is not None
