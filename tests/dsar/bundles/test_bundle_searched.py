"""Collections that were searched and held nothing are in the bundle: listed in data.json with
no rows, and "searched, nothing found" in report.html — built directly, and through the fleet
(the searched collections come from the request's collect evidence)."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dsar.bundles import BundleMeta, RowsBatch, build_bundle, open_store
from dsar.bundles.aead import decrypt_stream
from dsar.bundles.reader import check_manifest, collection, load_data
from dsar.db.models import Bundle
from tests.dsar.bundles.test_bundle_build import _download
from tests.workflows.fleet_helpers import Fleet
from workflows.assembly import searched_collections
from workflows.runtime import InProcessFleet, wait_for


def test_searched_empty_collections_are_listed(datamap, local_store, key, secret, now):
    rows = [{"id": 1, "email": "a@example.org"}]
    meta = BundleMeta("r", searched=(("crm", "customer"), ("crm", "invoice"),
                                     ("media", "avatars")))
    info = build_bundle(meta, datamap, lambda: [RowsBatch("crm", "customer", rows)],
                        local_store, key, now)
    archive = zipfile.ZipFile(io.BytesIO(_download(local_store, info, key, secret, now)))
    assert check_manifest(archive) == []
    data = load_data(archive)
    assert [(c["system"], c["collection"]) for c in data["collections"]] == [
        ("crm", "customer"), ("crm", "invoice"), ("media", "avatars")]
    for system, name in (("crm", "invoice"), ("media", "avatars")):
        empty = collection(data, system, name)
        assert (empty["row_count"], empty["rows"], empty["objects"], empty["csv"]) == (
            0, [], [], None)
        assert empty["columns"] == [] and empty["types"] == {}
    assert collection(data, "crm", "customer")["row_count"] == 1
    assert sorted(n for n in archive.namelist() if n.startswith("csv/")) == [
        "csv/crm/customer.csv"]

    page = archive.read("report.html").decode()
    assert page.count("Searched, nothing found") == 2
    assert "about you in <strong>1</strong> system:" in page  # the one where data was found
    assert "(searched, nothing found)</li>" in page  # media, in the list of systems


def test_nothing_found_anywhere_lists_what_was_searched(datamap, local_store, key, secret, now):
    meta = BundleMeta("r", searched=(("crm", "customer"),))
    info = build_bundle(meta, datamap, lambda: [], local_store, key, now)
    archive = zipfile.ZipFile(io.BytesIO(_download(local_store, info, key, secret, now)))
    (only,) = load_data(archive)["collections"]
    assert (only["collection"], only["row_count"]) == ("customer", 0)
    page = archive.read("report.html").decode()
    assert "We found no personal data about you." in page
    assert "These are the places we searched:" in page
    assert "<li>Customer database: Your customer profile</li>" in page
    assert "Searched, nothing found" in page


def test_searched_collections_from_evidence() -> None:
    bodies: list[dict[str, Any]] = [
        {"system": "shop", "collection": "customer", "action": "collect", "outcome": "ok"},
        {"system": "shop", "collection": "employee", "action": "collect", "outcome": "skipped"},
        {"system": "shop", "collection": "orders", "action": "collect", "outcome": "ok"},
        {"system": "shop", "collection": "customer", "action": "collect", "outcome": "ok"},
        {"system": "shop", "collection": "customer", "action": "erase", "outcome": "ok"},
    ]
    assert searched_collections(bodies) == (("shop", "customer"), ("shop", "orders"))


SHOP_MAP = {
    "version": 1,
    "controller": {"name": "Shop Ltd"},
    "systems": [{
        "name": "shop", "kind": "sql", "url_env": "SHOP_URL",
        "tables": [
            {"name": "customer", "primary_key": ["id"], "identities": {"email": "email"},
             "provides": {"customer_id": "id"},
             "columns": {"email": {"category": "user.contact.email"}}},
            {"name": "orders", "primary_key": ["id"],
             "references": [{"columns": ["customer_id"], "table": "customer", "to": ["id"],
                             "direction": "inbound"}]},
        ]}],
}


NEWSLETTER = {"name": "mail", "kind": "sql", "url_env": "SHOP_URL",
              "tables": [{"name": "newsletter", "primary_key": ["id"],
                          "identities": {"email": "email"}}]}


@pytest.mark.parametrize(("state", "systems"), [("sqlite", 1), ("postgresql", 1),
                                                ("postgresql", 2)])
def test_fleet_bundle_lists_a_searched_empty_table(
        state: str, systems: int, tmp_path: Path, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One system: the last task bundles the data in hand; two: the assembly step does."""
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, email TEXT);"
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total NUMERIC);"
            "INSERT INTO customer VALUES (1, 'a@example.org'), (2, 'b@example.org');"
            "CREATE TABLE newsletter (id INTEGER PRIMARY KEY, email TEXT);"
            "INSERT INTO orders VALUES (10, 2, 5);")
    state_url = (request.getfixturevalue("postgres_url") if state == "postgresql"
                 else f"sqlite:///{tmp_path / 'state.sqlite3'}")
    datamap = {**SHOP_MAP, "systems": SHOP_MAP["systems"] + [NEWSLETTER] * (systems - 1)}
    fleet = Fleet(tmp_path / "fleet", state_url, "memory://", datamap,
                  {"SHOP_URL": f"sqlite:///{db}"})
    fleet.apply_env(monkeypatch)
    try:
        app = fleet.app
        request_id = fleet.submit("access", "a@example.org")
        with InProcessFleet(app, threads=2):
            assert wait_for(app, request_id, timeout=60).state == "completed"
        with app.db.session() as session:
            bundle = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)
                                     ).one()
            blob = bundle.location.rsplit("/", 1)[1]
        store = open_store(fleet.env["DSAR_EXPORT_URL"])
        data = b"".join(decrypt_stream(store.open_stream(blob), app.keys.bundle_key))
        archive = zipfile.ZipFile(io.BytesIO(data))
        collections = load_data(archive)["collections"]
        assert [(c["collection"], c["row_count"]) for c in collections] == [
            ("customer", 1), ("orders", 0), ("newsletter", 0)][:1 + systems]
        assert "Searched, nothing found" in archive.read("report.html").decode()
    finally:
        fleet.close()
