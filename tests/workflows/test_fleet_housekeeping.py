"""The fleet's housekeeping: checkpoints, deleting bundles whose retention ended (found in the
state database), and orphaned bundles (found by listing the store, rarely)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.bundles.sidecar import BundleSidecar, write_sidecar
from dsar.bundles.store import LocalBundleStore, open_store
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


class CountingReads:
    """Counts what the local bundle store reads (sidecars and blobs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = LocalBundleStore.open_stream

        def open_stream(store: LocalBundleStore, name: str) -> Any:
            self.names.append(name)
            return real(store, name)

        monkeypatch.setattr(LocalBundleStore, "open_stream", open_stream)


def test_bundles_are_deleted_when_their_retention_ends_not_their_link(
        one_system: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """DSAR_BUNDLE_RETENTION_DAYS (7) decides, not the link's 30 days; the sweep runs at most
    once per DSAR_RETENTION_SWEEP_SECONDS and reads no sidecar."""
    one_system.env["DSAR_RETENTION_SWEEP_SECONDS"] = "600"
    one_system.env["DSAR_BUNDLE_RETENTION_DAYS"] = "7"
    app = one_system.app
    assert app.settings.link_ttl_days == 30
    store = open_store(one_system.env["DSAR_EXPORT_URL"])
    first, first_blob = completed_access(one_system)
    housekeeping.periodic_housekeeping(app)  # sweeps: nothing has expired
    with app.db.session() as session:
        checkpoint = session.scalars(sa.select(Checkpoint)).one()
        assert checkpoint.size == 1  # the completion record's ledger entry

    reads = CountingReads(monkeypatch)
    later(app, timedelta(days=7, minutes=-1))
    housekeeping.periodic_housekeeping(app)  # a minute before retention ends: kept
    assert store.exists(first_blob)
    later(app, timedelta(minutes=2))
    housekeeping.periodic_housekeeping(app)  # ended, but within the interval: not swept yet
    assert store.exists(first_blob)

    later(app, timedelta(minutes=10))
    housekeeping.periodic_housekeeping(app)
    assert not store.exists(first_blob) and not store.exists(first + ".json")
    with app.db.session() as session:
        assert session.get(Bundle, first).deleted_at is not None
    assert reads.names == []  # found in the state database, not by reading the store


def test_orphaned_bundles_are_found_by_listing_the_store_once_per_orphan_interval(
        one_system: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored bundles without a live row: a blob without a sidecar goes at once; one with a
    sidecar once the sidecar is an hour old (a completion may still be committing), also when
    its row is marked deleted; live bundles stay, and only the orphans' sidecars are read."""
    one_system.env["DSAR_ORPHAN_SWEEP_SECONDS"] = "3600"
    app = one_system.app
    store = open_store(one_system.env["DSAR_EXPORT_URL"])
    live, live_blob = completed_access(one_system)
    marked, marked_blob = completed_access(one_system)
    with app.db.session() as session:
        session.execute(sa.update(Bundle).where(Bundle.id == marked).values(deleted_at=app.now()))
    rolled_back = BundleSidecar("b_rolled_back", "r-rolled-back", app.now(),
                               app.now() + timedelta(days=30), "b_rolled_back.zip.dsar", True,
                               "personal-data.zip")
    write_sidecar(store, rolled_back)
    store.write_stream(rolled_back.blob, [b"sealed bytes"])
    store.write_stream("b_no_sidecar.zip.dsar", [b"sealed bytes"])

    reads = CountingReads(monkeypatch)
    housekeeping.periodic_housekeeping(app)
    assert store.exists(rolled_back.blob)  # minutes old: its completion may still commit
    assert store.exists(marked_blob)
    assert not store.exists("b_no_sidecar.zip.dsar")
    assert sorted(reads.names) == sorted(["b_rolled_back.json", f"{marked}.json"])

    later(app, timedelta(hours=1, minutes=1))
    housekeeping.periodic_housekeeping(app)
    assert not store.exists(rolled_back.blob) and not store.exists("b_rolled_back.json")
    assert not store.exists(marked_blob) and not store.exists(marked + ".json")
    assert store.exists(live_blob) and store.exists(live + ".json")
    with app.db.session() as session:
        assert session.get(Bundle, live).deleted_at is None


def test_the_store_is_not_listed_again_within_the_orphan_interval(
        one_system: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    one_system.env["DSAR_ORPHAN_SWEEP_SECONDS"] = "3600"
    app = one_system.app
    housekeeping.periodic_housekeeping(app)
    listed: list[str] = []
    real = LocalBundleStore.names

    def names(store: LocalBundleStore, suffix: str = "") -> Any:
        listed.append(suffix)
        return real(store, suffix)

    monkeypatch.setattr(LocalBundleStore, "names", names)
    later(app, timedelta(minutes=59))
    housekeeping.periodic_housekeeping(app)
    assert listed == []
    later(app, timedelta(minutes=2))
    housekeeping.periodic_housekeeping(app)
    assert listed == [""]
